"""Per-file bookkeeping of the tailer (kept apart so tailer.py stays readable)."""

from __future__ import annotations

import logging

from exporter.clock import Clock
from exporter.tail.fileident import Head
from exporter.tail.linebuf import LineAssembler
from exporter.tail.positions import Key

log = logging.getLogger("exporter.tail.tailer")  # one logger for everything the tailer says


class Tracked:
    """One open file of one source. ``handed`` is the end of the last whole line handed out."""

    __slots__ = (
        "asm",
        "fd",
        "handed",
        "head",
        "key",
        "mtime_ns",
        "nlink",
        "path",
        "rotated_at",
        "size",
        "waiting_since",
    )

    def __init__(
        self, path: str, fd: int, key: Key, head: Head, handed: int, asm: LineAssembler
    ) -> None:
        self.path = path
        self.fd = fd  # -1 after a stale handle was dropped; reopened on the next poll
        self.key = key
        self.head = head
        self.handed = handed
        self.asm = asm
        self.size = -1  # size/mtime at the last look; equal again => nothing to do
        self.mtime_ns = -1
        self.nlink = 1
        self.rotated_at: float | None = None  # monotonic time it left its path
        # After it left its path: since when nothing known is left to read (at EOF, or every
        # attempt failed). None while a backlog is being read: rotate_wait runs from here.
        self.waiting_since: float | None = None

    @property
    def read_off(self) -> int:
        return self.handed + self.asm.pending


class LogLimiter:
    """At most one warning per (path, errno) a minute: a broken file must not flood the log."""

    def __init__(self, clock: Clock, interval: float = 60.0) -> None:
        self._clock = clock
        self._interval = interval
        self._last: dict[tuple[str, int], float] = {}

    def warn(self, path: str, err: OSError, what: str) -> None:
        key = (path, err.errno or 0)
        now = self._clock.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            return
        if len(self._last) > 1000:
            self._last.clear()
        self._last[key] = now
        log.warning("cannot %s %s: %s", what, path, err.strerror or err)
