"""Where an HTTP request head ends, within limits: decided on the bytes received so far, before
any worker thread is involved.

The connection server reads request heads without blocking, in its one selector thread, and
hands a connection to a worker only when ``HeadScan`` says the head can be parsed without
waiting for another byte: its blank line has arrived, or enough has arrived to know the answer
is an error (``MAX_REQUEST_LINE``: 414; ``MAX_HEAD_BYTES`` or ``MAX_HEADERS``: 431). The worker
then parses those bytes with ``HeadBudget`` (``exporter.request``), which applies the same
limits, so the scan never says "ready" where the parse would still need bytes (a property the
tests check on random heads). Python's own limits are 64 KiB per line and 100 headers.
"""

from __future__ import annotations

import io
from http.client import HTTPException, LineTooLong

MAX_REQUEST_LINE = 8 << 10  # longer: 414
MAX_HEAD_BYTES = 16 << 10  # request line and headers together; more: 431
MAX_HEADERS = 64  # header lines; more: 431
# A connection buffers at most this much of what a client sends ahead: enough to decide on any
# head (a complete one, or one past a limit), so what a client can park in memory is bounded.
HEAD_BUFFER = MAX_HEAD_BYTES + 1


class HeadBudget:
    """Reads the request line and headers within a byte and line budget (431 past it)."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        self._raw = raw
        self._left = MAX_HEAD_BYTES
        self._lines = 0

    def readline(self, limit: int = -1) -> bytes:
        self._lines += 1
        if self._lines > MAX_HEADERS + 2:  # the request line, the headers, the blank line
            raise HTTPException(f"more than {MAX_HEADERS} header lines")
        want = self._left + 1 if limit < 0 else min(limit, self._left + 1)
        line = self._raw.readline(want)
        self._left -= len(line)
        if self._left < 0:
            raise LineTooLong(f"request head over {MAX_HEAD_BYTES} bytes")
        return line


class HeadScan:
    """Whether the bytes received so far hold a request head that can be parsed whole.

    Incremental: each call looks only at the lines completed since the last one, so a head
    trickling in one byte at a time costs linear work, not quadratic. ``reset`` after the worker
    consumed a head (what follows it, a pipelined request, is scanned afresh).
    """

    def __init__(self) -> None:
        self._start = 0  # where the next line to look at starts
        self._lines = 0  # complete lines seen

    def reset(self) -> None:
        self._start = 0
        self._lines = 0

    def ready(self, data: bytes | bytearray) -> bool:
        if len(data) > MAX_HEAD_BYTES:
            return True  # over the byte budget whatever follows: 431 (or 414)
        while True:
            end = data.find(b"\n", self._start)
            if end < 0:  # a line still arriving: only a too-long request line is decided
                return self._lines == 0 and len(data) > MAX_REQUEST_LINE
            if self._lines == 0 and end >= MAX_REQUEST_LINE:
                return True  # 414
            blank = end == self._start or (end == self._start + 1 and data[self._start] == 0x0D)
            self._lines += 1
            self._start = end + 1
            # A blank line ends the head (a blank request line is refused at once); the line
            # after MAX_HEADERS + 2 is refused without being read.
            if blank or self._lines >= MAX_HEADERS + 2:
                return True
