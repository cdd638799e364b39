"""Reading a whole log offline (``baseline``, ``replay``): chunks of complete lines and a
progress bar on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from exporter.clock import SystemClock

BLOCK_BYTES = 1 << 20
# Blocks decoded in turn are applied together up to this many bytes (Engine.decode_all): the
# live loop's poll budget (exporter/tail/tailer.py), so replay's batches are the catch-up's.
APPLY_BYTES = 2 << 20


def read_chunks(path: str, block: int = BLOCK_BYTES) -> Iterator[bytes]:
    """Complete lines in blocks of about ``block`` bytes; a last line without a newline is
    still given (offline, the file is not growing).

    Blocks are read into one buffer kept for the whole file and the complete lines copied out
    once: a fresh megabyte per read faulted its pages in every time."""
    buffer = bytearray(block)
    with open(path, "rb", buffering=0) as f, memoryview(buffer) as view:
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
