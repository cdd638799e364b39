"""Reading a whole log offline (``baseline``, ``replay``): chunks of complete lines and a
progress bar on a terminal."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from io import FileIO
from pathlib import Path
from typing import TextIO

from exporter.clock import SystemClock

try:  # built without a C compiler: read into a buffer
    from exporter.tail import _read  # type: ignore[attr-defined]
except ImportError:
    _read = None

BLOCK_BYTES = 1 << 20
# Blocks decoded in turn are applied together up to this many bytes (Engine.decode_all): the
# live loop's poll budget (exporter/tail/tailer.py), so replay's batches are the catch-up's.
APPLY_BYTES = 2 << 20


def read_chunks(path: str, block: int = BLOCK_BYTES) -> Iterator[bytes]:
    """Complete lines in blocks of about ``block`` bytes; a last line without a newline is
    still given (offline, the file is not growing).

    A regular file is read by the tailer's compiled reader: each read lands behind the pending
    partial line in the bytes handed out (``exporter/tail/_read.c``). Anything else (a pipe, a
    build without a C compiler) is read into one buffer kept for the whole file and the
    complete lines copied out once: a fresh megabyte per read faulted its pages in every time."""
    with open(path, "rb", buffering=0) as f:
        if _read is not None and stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            yield from _compiled_chunks(f.fileno(), block)
        else:
            yield from _buffered_chunks(f, block)


def _compiled_chunks(fd: int, block: int) -> Iterator[bytes]:
    assert _read is not None
    rest = b""
    offset = 0
    while True:
        lines, after, size, _, _ = _read.read_lines(fd, rest, block, offset)
        if not size:
            break
        offset += size
        if lines is None:  # the read holds a NUL: offline, it stays in its line; cut here
            cut = after.rfind(b"\n") + 1
            lines, after = after[:cut], after[cut:]
        if lines:
            yield lines
        rest = after
    if rest:
        yield rest + b"\n"


def _buffered_chunks(f: FileIO, block: int) -> Iterator[bytes]:
    buffer = bytearray(block)
    with memoryview(buffer) as view:
        rest = b""
        while size := f.readinto(buffer):
            cut = buffer.rfind(b"\n", 0, size) + 1
            if cut:
                yield b"".join((rest, view[:cut]))
                rest = bytes(view[cut:size])
            else:  # a line longer than a block
                rest += view[:size]
        if rest:
            yield rest + b"\n"


class Progress:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise (CI, pipes)."""

    def __init__(self, total_bytes: int, label: str, stream: TextIO | None = None) -> None:
        self._total = max(total_bytes, 1)
        self._label = label
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = self._stream.isatty()
        self._done = 0
        self._clock = SystemClock()
        self._started = self._clock.monotonic()
        self._shown = 0.0

    @classmethod
    def for_file(cls, path: str, label: str) -> Progress:
        return cls(Path(path).stat().st_size, label)

    def advance(self, nbytes: int) -> None:
        self._done += nbytes
        now = self._clock.monotonic()
        if self._enabled and (now - self._shown > 0.2 or self._done >= self._total):
            self._shown = now
            share = min(self._done / self._total, 1.0)
            bar = "#" * int(share * 30)
            rate = self._done / max(now - self._started, 1e-9) / 2**20
            self._stream.write(f"\r{self._label} [{bar:<30}] {share:6.1%} {rate:6.1f} MiB/s")
            self._stream.flush()

    def close(self) -> None:
        if self._enabled:
            self._stream.write("\n")
            self._stream.flush()
