"""Faults injected through FileOps (T29, T30, T38): counted, logged sparingly, never fatal."""

from __future__ import annotations

import errno
import logging
import os
from collections import Counter
from pathlib import Path

import pytest
from tail_harness import Harness, record, records

from exporter.fileident import FileOps


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

    def close(self, fd: int) -> None:
        self.calls["close"] += 1
        super().close(fd)


@pytest.fixture
def ops() -> FaultyOps:
    return FaultyOps()


def test_t29_open_refused_then_allowed(
    tmp_path: Path, ops: FaultyOps, caplog: pytest.LogCaptureFixture
) -> None:
    ops.fail["open"] = errno.EACCES
    h = Harness(tmp_path, create=False, ops=ops)
    h.path.touch()
    for _ in range(5):
        h.tick()
        h.advance(1.0)
    assert h.stats().read_errors >= 1
    assert h.stats().files_present == 0
    warned = [r for r in caplog.records if r.name == "exporter.source"]
    assert len(warned) == 1, "one warning per minute per file and error, not one per poll"
    del ops.fail["open"]
    h.write(record(0))
    h.tick()
    assert h.records == 1
    assert h.stats().files_present == 1
    h.close()


def test_t30_idle_poll_costs_one_stat_per_file(tmp_path: Path, ops: FaultyOps) -> None:
    h = Harness(tmp_path, pattern="*.jsonl", ops=ops)
    (tmp_path / "b.jsonl").write_bytes(records(0, 3))
    h.write(records(0, 2))
    h.tick()
    h.tick()  # settles size/mtime after the read
    ops.calls.clear()
    polls = 50
    for _ in range(polls):
        h.tick()
    assert dict(ops.calls) == {"glob": polls, "stat": 2 * polls}
    h.close()


def test_t38_stale_handle_on_a_replaced_file_reads_the_new_one_from_zero(
    tmp_path: Path, ops: FaultyOps
) -> None:
    h = Harness(tmp_path, ops=ops)
    h.write(records(0, 3))
    h.tick()

    def server_replaces_the_file() -> None:
        fresh = tmp_path / "fresh"
        fresh.write_bytes(records(100, 2))
        fresh.rename(h.path)

    h.write(record(3))
    ops.fail["pread"] = errno.ESTALE
    ops.fail_times["pread"] = 1
    ops.before_fail["pread"] = server_replaces_the_file
    h.tick()
    assert h.stats().read_errors == 1
    h.tick()
    assert h.records == 3 + 2
    assert h.stats().open_files == 1
    h.close()


def test_t38_stale_handle_on_the_same_file_resumes_without_duplicates(
    tmp_path: Path, ops: FaultyOps
) -> None:
    h = Harness(tmp_path, ops=ops)
    h.write(records(0, 3))
    h.tick()
    h.write(records(3, 2))
    ops.fail["pread"] = errno.ESTALE
    ops.fail_times["pread"] = 1
    h.tick()
    h.tick()
    assert h.stats().read_errors == 1
    assert h.records == 5
    assert h.stats().opens == 2
    h.close()


def test_transient_read_error_keeps_the_file_and_retries(tmp_path: Path, ops: FaultyOps) -> None:
    h = Harness(tmp_path, ops=ops)
    h.write(records(0, 3))
    ops.fail["pread"] = errno.EIO
    ops.fail_times["pread"] = 2
    h.tick()
    h.tick()
    assert h.records < 3
    h.tick()
    assert h.records == 3
    assert h.stats().read_errors == 2
    assert h.stats().opens == 1
    h.close()


def test_stat_error_on_the_directory_is_counted(
    tmp_path: Path, ops: FaultyOps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    ops.fail["stat"] = errno.EACCES
    h = Harness(tmp_path, ops=ops)
    for _ in range(3):
        h.tick()
    assert h.stats().read_errors == 4  # the start-up tick and three more
    assert len([r for r in caplog.records if r.name == "exporter.source"]) == 1
    h.close()


def test_close_releases_every_fd_and_is_idempotent(tmp_path: Path, ops: FaultyOps) -> None:
    h = Harness(tmp_path, pattern="*.jsonl", ops=ops, start_at="beginning")
    for name in ("a", "b"):
        (tmp_path / f"{name}.jsonl").write_bytes(record(0))
    h.tick()
    (tmp_path / "a.jsonl").rename(tmp_path / "a.old")  # one file in its grace period
    h.tick()
    assert h.stats().open_files == 3
    h.tailer.close()
    h.tailer.close()
    assert ops.calls["close"] == ops.calls["open"]
    assert h.stats().open_files == 0
    assert h.tailer.poll_once() == []
