"""Turn pieces of a file into whole lines with bounded memory (pure: no I/O).

The normal path does no per-line work: one ``rfind`` per piece finds where whole lines end;
the rest waits for its newline. Only when a piece is longer than ``max_line`` can it hold an
over-long line, and only then are lines looked at one by one.

NUL bytes are dropped as they arrive (one ``in`` test per piece when there are none). They never
belong to a JSON line: a writer without ``O_APPEND`` keeps writing at its old offset after a
copytruncate, so the file starts with a hole that reads as NULs, glued to the next real line.
Dropped, the hole costs neither that record nor memory, and never makes a line too long.
"""

from __future__ import annotations

import importlib

import numpy as np

BOM = b"\xef\xbb\xbf"
_NEWLINE = np.uint8(ord("\n"))
_COUNT_STEP = 1 << 16  # newlines are counted this many bytes at a time (cache-sized)

try:  # built without a C compiler: numpy counts
    _count_native = importlib.import_module("exporter._scan").count_lines
except ImportError:
    _count_native = None


def count_lines(data: bytes) -> int:
    """The number of newlines in ``data``: compiled, sixteen bytes a step (``_scan.c``); else
    numpy compares a window of bytes at a time, ~3× faster than ``bytes.count`` (which looks
    at one byte at a time), with no large temporary."""
    if _count_native is not None:
        return int(_count_native(data))
    if len(data) < _COUNT_STEP:
        return data.count(b"\n")
    view = np.frombuffer(data, dtype=np.uint8)
    return sum(
        int(np.count_nonzero(view[i : i + _COUNT_STEP] == _NEWLINE))
        for i in range(0, len(view), _COUNT_STEP)
    )


class LineAssembler:
    """Per-file line state: the pending partial line, or the over-long line being skipped.

    ``feed`` returns the whole lines now available and how many file bytes they settle.
    Settled bytes end at a line boundary, so the offset "handed out + settled" is always safe to
    checkpoint: a partial or half-skipped line is read again after a restart, never split.
    """

    __slots__ = (
        "_partial",
        "at_start",
        "max_line",
        "nul_bytes",
        "pending",
        "skipping",
        "too_long",
    )

    def __init__(self, max_line: int, *, at_start: bool, skipping: bool = False) -> None:
        self.max_line = max_line
        self.at_start = at_start  # the next settled byte is file offset 0 (strip a BOM there)
        self.skipping = skipping
        self.pending = 0  # file bytes consumed but not settled (partial or skipped)
        self.too_long = 0  # over-long lines dropped so far (cumulative)
        self.nul_bytes = 0  # NUL bytes read and dropped so far (every one fed; cumulative)
        self._partial = b""  # the pending partial line, without its NULs

    def feed(self, data: bytes | bytearray) -> tuple[bytes, int]:
        """The whole lines ``data`` completes (bytes of their own: ``data`` may be a buffer
        the caller reuses), and how many file bytes they settle."""
        settled = 0
        if self.skipping:
            nl = data.find(b"\n")
            if nl < 0:
                self.pending += len(data)
                self.nul_bytes += data.count(b"\0")
                return b"", 0
            self.nul_bytes += data.count(b"\0", 0, nl)
            settled = self.pending + nl + 1
            self.pending = 0
            self.skipping = False
            self.at_start = False
            data = data[nl + 1 :]
        # File bytes: whole lines end at the last newline of ``data`` (a NUL is no newline).
        nl = data.rfind(b"\n")
        if nl >= 0:
            settled += self.pending + nl + 1
            self.pending = len(data) - nl - 1
        else:
            self.pending += len(data)
        if b"\0" in data:
            kept = data.replace(b"\0", b"")
            self.nul_bytes += len(data) - len(kept)
            data = kept
        # The pending partial line never holds a newline: whole lines end at the last newline
        # of ``data``. They are copied out once (a read is a megabyte; each copy costs).
        end = data.rfind(b"\n") + 1
        if end == 0:
            return self._settle(b"", self._partial + data, settled, len(data))
        rest = bytes(data[end:])
        if self._partial:
            out = b"".join((self._partial, memoryview(data)[:end]))
        elif type(data) is bytes and not rest:
            out = data
        else:
            out = bytes(memoryview(data)[:end])
        return self._settle(out, rest, settled, len(data))

    @property
    def partial(self) -> bytes | None:
        """The pending partial line that the next read continues, or None while an over-long
        line is being skipped (then ``feed`` must see the read: it looks for the line's end)."""
        return None if self.skipping else self._partial

    def take(self, lines: bytes, rest: bytes, read: int) -> tuple[bytes, int]:
        """``feed`` for a read already joined to ``partial`` and cut at its last newline by the
        compiled reader (``exporter/tail/_read.c``): ``lines`` is partial + the read through its
        last newline (b"" if none), ``rest`` what follows, ``read`` the read's length. It must
        hold no NUL (those go through ``feed``). Same answers as ``feed``, without the copies."""
        if lines:
            settled = self.pending + len(lines) - len(self._partial)
            self.pending = len(rest)
        else:
            settled = 0
            self.pending += read
        return self._settle(lines, rest, settled, read)

    def _settle(self, out: bytes, rest: bytes, settled: int, read: int) -> tuple[bytes, int]:
        """The rules for whole lines ``out`` (b"" if none) and the new partial ``rest``, given
        ``read`` bytes of input (without NULs): over-long lines dropped, a BOM at offset 0."""
        if len(rest) > self.max_line:
            self.too_long += 1
            self.skipping = True
            self._partial = b""
        else:
            self._partial = rest
        if not out:
            return b"", settled
        bom = self.at_start and out.startswith(BOM)  # lengths count raw bytes, BOM included
        self.at_start = False
        if len(out) > self.max_line + 1:
            # Lines wholly inside the read are no longer than the read; only the first line,
            # which carries the old partial, can be over-long when pieces are small.
            if read > self.max_line:
                out, first_kept = self._drop_long(out)
            else:
                first = out.find(b"\n")
                first_kept = first <= self.max_line
                if not first_kept:
                    self.too_long += 1
                    out = out[first + 1 :]
            bom = bom and first_kept
        if bom:
            out = out[len(BOM) :]
        return out, settled

    def _drop_long(self, out: bytes) -> tuple[bytes, bool]:
        """Remove lines longer than max_line (only reached for pieces longer than that).

        Returns the kept bytes and whether the first line was kept. A window of max_line + 1
        bytes holding a newline holds no line too long up to its last newline, so one ``rfind``
        judges every line there: the Python loop turns once per window or over-long line, not
        once per line (a 2 MiB read with 1 MiB lines allowed took 45% longer per line)."""
        kept: list[bytes] = []
        start = at = 0  # lines from ``start`` to ``at`` are kept; the line at ``at`` is next
        limit = self.max_line
        while at < len(out):
            last = out.rfind(b"\n", at, at + limit + 1)
            if last >= 0:
                at = last + 1
                continue
            end = out.index(b"\n", at) + 1  # whole lines: there is a newline
            self.too_long += 1
            kept.append(out[start:at])
            start = at = end
        if not kept:
            return out, True
        first_kept = kept[0] != b""  # empty: the first drop was at offset 0
        kept.append(out[start:])
        return b"".join(kept), first_kept

    def reset(self) -> None:
        """Start over at offset 0 of a truncated or replaced file.

        The buffered bytes belong to content that is gone (handing them out would glue them to
        the new first line), and offset 0 may carry a BOM again.
        """
        self._partial = b""
        self.pending = 0
        self.skipping = False
        self.at_start = True
