"""Drive a Tailer by hand and count what it hands out, independently of the real parser.

``records`` = lines that ``json.loads`` accepts; ``parse_errors`` = non-blank lines it refuses.
Every chunk is also checked against the Chunk contract (whole lines, honest line count).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exporter.clock import ManualClock
from exporter.config_types import SourceConfig, StartAt, TailConfig
from exporter.health import SourceStats
from exporter.tail.fileident import FileOps
from exporter.tail.tailer import Chunk, Tailer
from exporter.tail.watch import Waker, start_watch


def record(i: int, pad: int = 0) -> bytes:
    return json.dumps({"i": i, "pad": "x" * pad}).encode() + b"\n"


def records(start: int, n: int, pad: int = 0) -> bytes:
    return b"".join(record(i, pad) for i in range(start, start + n))


COUNTERS = (
    "lines",
    "bytes_read",
    "rotations",
    "truncations",
    "lines_too_long",
    "read_errors",
    "opens",
    "checkpoint_resets",
)


def count_lines(chunks: list[Chunk], by_path: dict[str, int] | None = None) -> tuple[int, int]:
    ok = bad = 0
    for c in chunks:
        assert not c.data.startswith(b"\xef\xbb\xbf"), "the BOM is stripped"
        assert c.data.endswith(b"\n"), "a chunk must hold whole lines only"
        assert c.lines == c.data.count(b"\n")
        for line in c.data.split(b"\n")[:-1]:
            if not line.strip():
                continue
            try:
                json.loads(line)
            except ValueError:
                bad += 1
            else:
                ok += 1
                if by_path is not None:
                    by_path[c.path] = by_path.get(c.path, 0) + 1
    return ok, bad


class Writer:
    """Appends to a path, either holding one O_APPEND fd or reopening for every write."""

    def __init__(self, path: Path, keep_open: bool) -> None:
        self.path = path
        self.keep_open = keep_open
        self.fd = -1

    def write(self, data: bytes) -> None:
        if self.keep_open:
            if self.fd < 0:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self.fd, data)
        else:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    def reopen(self) -> None:
        """What a writer does after rotation (logrotate's postrotate signal)."""
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Harness:
    def __init__(
        self,
        directory: Path,
        *,
        name: str = "p.jsonl",
        pattern: str | None = None,
        start_at: StartAt = "end",
        create: bool = True,
        watch: bool = False,
        keep_open: bool = True,
        ops: FileOps | None = None,
        tail: dict[str, Any] | None = None,
        tick_at_start: bool = True,
        follow_symlinks: bool = False,
    ) -> None:
        self.dir = directory
        self.path = directory / name
        where = str(directory / pattern) if pattern else str(self.path)
        self.source = SourceConfig(path=where, start_at=start_at, follow_symlinks=follow_symlinks)
        state = directory.parent / f"{directory.name}-state"
        state.mkdir(exist_ok=True)  # outside the log directory, so `dir/*` never matches it
        defaults: dict[str, Any] = {"rotate_wait": 5.0, "positions_file": str(state / "pos.json")}
        self.tail = TailConfig(**(defaults | (tail or {})))
        self.clock = ManualClock(1000.0)
        self.ops = ops
        self.writer = Writer(self.path, keep_open)
        self.records = self.parse_errors = self.last_poll_bytes = 0
        self.by_path: dict[str, int] = {}
        self.history: list[SourceStats] = []
        self.waker = Waker()
        self._stop_watch: Callable[[], None] | None = None
        if watch:
            self._stop_watch = start_watch([self.source.path], self.waker)
        if create:
            self.path.touch()
        self.tailer = self._new_tailer()
        if tick_at_start:
            self.tick()

    def _new_tailer(self) -> Tailer:
        return Tailer([self.source], self.tail, self.clock, ops=self.ops)

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    def tick(self, max_bytes: int | None = None) -> None:
        """One poll as the ingest loop does it: after a wake-up (if watching), until drained."""
        self.waker.wait(0)
        while True:
            self.tick_once(max_bytes)
            if not self.tailer.more_pending:
                return

    def tick_once(self, max_bytes: int | None = None) -> None:
        chunks = self.tailer.poll_once(max_bytes)
        self.last_poll_bytes = sum(len(c.data) for c in chunks)
        ok, bad = count_lines(chunks, self.by_path)
        self.records += ok
        self.parse_errors += bad
        now = self.stats()
        if self.history:  # T35: no counter ever decreases, whatever happened to the files
            before = self.history[-1]
            for name in COUNTERS:
                assert getattr(now, name) >= getattr(before, name), name
        self.history.append(now)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def stats(self) -> SourceStats:
        return self.tailer.stats()[self.source.path]

    def stop(self) -> None:
        """A clean shutdown: last poll already done by the caller, checkpoint saved, fds closed."""
        self.tailer.save_positions()
        self.tailer.close()

    def start(self) -> None:
        """A fresh process from the checkpoint; its counters start at 0."""
        self.records = self.parse_errors = 0
        self.by_path.clear()
        self.history.clear()
        self.tailer = self._new_tailer()
        self.tick()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.tailer.close()
        self.writer.close()
        if self._stop_watch is not None:
            self._stop_watch()
            self._stop_watch = None


def open_fds() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


class SilentObserver:
    """A watchdog stand-in that accepts watches and never reports an event (T31)."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[Any, str, bool]] = []
        self.started = self.stopped = False

    def schedule(self, handler: Any, path: str, *, recursive: bool = False) -> None:
        self.scheduled.append((handler, path, recursive))

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def join(self, timeout: float | None = None) -> None:
        return None


class FaultyOps(FileOps):
    """Counts every call; raises a chosen errno from a chosen call while ``fail`` is set."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.fail: dict[str, int] = {}  # call name -> errno
        self.fail_times: dict[str, int] = {}  # call name -> how many more failures (-1: forever)
        self.before_fail: dict[str, object] = {}

    def _maybe_fail(self, name: str, target: str = "") -> None:
        self.calls[name] += 1
        code = self.fail.get(name)
        if code is None:
            return
        left = self.fail_times.get(name, -1)
        if left == 0:
            return
        self.fail_times[name] = left - 1
        hook = self.before_fail.get(name)
        if callable(hook):
            hook()
        raise OSError(code, os.strerror(code), target)

    def glob(self, pattern: str) -> list[str]:
        self.calls["glob"] += 1
        return super().glob(pattern)

    def lstat(self, path: str) -> os.stat_result:
        self._maybe_fail("lstat", path)
        return super().lstat(path)

    def stat(self, path: str) -> os.stat_result:
        self._maybe_fail("stat", path)
        return super().stat(path)

    def open(self, path: str) -> int:
        self._maybe_fail("open", path)
        return super().open(path)

    def fstat(self, fd: int) -> os.stat_result:
        self._maybe_fail("fstat")
        return super().fstat(fd)

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        self._maybe_fail("pread")
        return super().pread(fd, size, offset)

    def pread_into(self, fd: int, buffer: memoryview, offset: int) -> int:
        self._maybe_fail("pread")
        return super().pread_into(fd, buffer, offset)

    def read_lines(
        self, fd: int, head: bytes, size: int, offset: int
    ) -> tuple[bytes | None, bytes, int, int, int]:
        self._maybe_fail("pread")
        return super().read_lines(fd, head, size, offset)

    def close(self, fd: int) -> None:
        self.calls["close"] += 1
        super().close(fd)
