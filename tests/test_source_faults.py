"""Faults injected through FileOps: counted, logged sparingly, never fatal."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest
from tail_harness import FaultyOps, Harness, record, records


@pytest.fixture
def ops() -> FaultyOps:
    return FaultyOps()


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
    ops.fail["lstat"] = errno.EACCES
    h = Harness(tmp_path, ops=ops)
    for _ in range(3):
        h.tick()
    assert h.stats().read_errors == 4  # the start-up tick and three more
    assert len([r for r in caplog.records if r.name == "exporter.tail.tailer"]) == 1
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


def test_a_broad_glob_never_tails_the_checkpoint(tmp_path: Path) -> None:
    h = Harness(
        tmp_path, pattern="*", start_at="beginning", tail={"positions_file": str(tmp_path / "pos")}
    )
    h.write(record(0))
    h.tick()
    h.tailer.save_positions()
    h.tailer.save_positions()
    h.tick()
    assert (h.records, h.parse_errors) == (1, 0)
    assert set(h.by_path) == {str(h.path)}
    assert (h.stats().files_present, h.stats().lag_bytes) == (1, 0)
    h.close()


def test_busy_file_does_not_starve_the_others(tmp_path: Path) -> None:
    h = Harness(tmp_path, pattern="*.jsonl", tail={"read_chunk_bytes": 1024})
    (tmp_path / "a.jsonl").write_bytes(records(0, 2000))
    (tmp_path / "b.jsonl").write_bytes(records(0, 1))
    seen: set[str] = set()
    for _ in range(3):
        h.tick_once(4096)
        seen |= set(h.by_path)
    assert str(tmp_path / "b.jsonl") in seen
    h.close()


@pytest.mark.parametrize("code", [errno.EACCES, errno.EMFILE])
def test_start_at_end_survives_a_failed_first_open(
    tmp_path: Path, ops: FaultyOps, code: int
) -> None:
    """The file was there at start: its history is skipped even if the first open failed."""
    (tmp_path / "p.jsonl").write_bytes(records(0, 5))
    ops.fail["open"] = code
    ops.fail_times["open"] = 2
    h = Harness(tmp_path, ops=ops, create=False, start_at="end")
    h.tick()
    assert (h.records, h.stats().read_errors) == (0, 2)
    h.write(records(5, 2))
    h.tick()
    assert h.records == 2
    h.close()


def test_a_file_that_appears_after_a_failed_first_open_is_read_from_zero(
    tmp_path: Path, ops: FaultyOps
) -> None:
    """start_at covers the files present at start, not whatever is at their path later."""
    (tmp_path / "p.jsonl").write_bytes(records(0, 5))
    ops.fail["open"] = errno.EACCES
    ops.fail_times["open"] = 1
    h = Harness(tmp_path, ops=ops, create=False, start_at="end")
    fresh = tmp_path / "fresh"
    fresh.write_bytes(records(5, 2))  # created while the old one exists: another inode
    fresh.rename(h.path)
    h.tick()
    assert h.records == 2
    h.close()


def test_over_long_line_is_counted_once_across_a_stale_handle(
    tmp_path: Path, ops: FaultyOps
) -> None:
    h = Harness(tmp_path, ops=ops, tail={"max_line_bytes": 100})
    h.write(record(0) + b'{"long": "' + b"y" * 300)
    h.tick()
    assert h.stats().lines_too_long == 1
    h.write(b"y" * 300)
    ops.fail["pread"] = errno.ESTALE
    ops.fail_times["pread"] = 1
    h.tick()
    h.tick()  # reopened by path: the same file
    h.write(b'"}\n' + record(1))
    h.tick()
    assert (h.records, h.parse_errors) == (2, 0)
    assert h.stats().lines_too_long == 1
    assert h.stats().opens == 2
    h.close()


def test_a_relative_checkpoint_path_is_still_excluded_from_an_absolute_glob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    h = Harness(tmp_path, pattern="*", start_at="beginning", tail={"positions_file": "pos"})
    h.write(record(0))
    h.tick()
    h.tailer.save_positions()
    h.write(record(1))  # a change, so the next save writes the checkpoint again
    h.tick()
    h.tailer.save_positions()
    h.tick()
    assert (h.records, h.parse_errors) == (2, 0)
    assert set(h.by_path) == {str(h.path)}
    # The checkpoint has no final newline, so only these show that it was being followed.
    assert (h.stats().files_present, h.stats().lag_bytes) == (1, 0)
    h.close()
