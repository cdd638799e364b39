"""The tailing scenarios of /TAIL-SCENARIOS (T1..T38), each as a hand-driven test.

Every scenario runs twice: polling alone, and with a real watchdog observer ringing the waker
(the poll is the backstop either way, so the outcome must not differ). Ticks are explicit
``poll_once`` calls; rotate_wait is crossed with a ManualClock, never by sleeping.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tail_harness import Harness, Writer, open_fds, record, records

Make = Callable[..., Harness]


@pytest.fixture(params=["poll", "watch"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Make]:
    made: list[Harness] = []

    def factory(**kw: object) -> Harness:
        h = Harness(tmp_path, watch=request.param == "watch", **kw)  # type: ignore[arg-type]
        made.append(h)
        return h

    yield factory
    for h in made:
        h.close()


def test_t1_appended_records_are_counted(make: Make) -> None:
    h = make()
    h.write(records(0, 3))
    h.tick()
    assert (h.records, h.parse_errors, h.stats().lines) == (3, 0, 3)


@pytest.mark.parametrize(("start_at", "expected"), [("end", 2), ("beginning", 7)])
def test_t2_start_at_applies_to_files_present_at_start(
    make: Make, tmp_path: Path, start_at: str, expected: int
) -> None:
    (tmp_path / "p.jsonl").write_bytes(records(0, 5))
    h = make(start_at=start_at, create=False)
    h.write(records(5, 2))
    h.tick()
    assert h.records == expected


def test_t2_start_at_end_waits_for_a_partial_last_line(make: Make, tmp_path: Path) -> None:
    """Starting mid-line would hand out the line's tail as if it were whole."""
    (tmp_path / "p.jsonl").write_bytes(records(0, 5) + b'{"i": ')
    h = make(create=False)
    h.write(b"99}\n")
    h.tick()
    assert (h.records, h.parse_errors) == (1, 0)


def test_t3_file_absent_at_start_is_read_from_zero(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="exporter.source")
    h = make(create=False)
    for _ in range(3):
        h.tick()
        assert h.stats().files_present == 0
    h.write(records(0, 2))
    h.tick()
    assert h.stats().files_present == 1
    assert h.records == 2
    assert h.stats().read_errors == 0
    waiting = [r for r in caplog.records if "waiting" in r.getMessage()]
    assert len(waiting) == 1, "a missing file is logged once, not once per poll"


def test_t4_partial_line_waits_for_its_newline(make: Make) -> None:
    h = make()
    h.write(b'{"a":')
    h.tick()
    assert (h.records, h.parse_errors) == (0, 0)
    assert h.stats().lag_bytes == 5
    h.write(b"1}\n")
    h.tick()
    assert (h.records, h.parse_errors) == (1, 0)
    assert h.stats().lag_bytes == 0


def test_t5_partial_line_across_restart_is_counted_once(make: Make) -> None:
    h = make()
    h.write(b'{"a":')
    h.tick()
    h.stop()
    h.write(b"1}\n")
    h.start()
    assert (h.records, h.parse_errors) == (1, 0)


@pytest.mark.parametrize("keep_open", [True, False])
def test_t6_rename_and_create(make: Make, keep_open: bool) -> None:
    h = make(keep_open=keep_open)
    h.write(records(0, 2))
    h.path.rename(h.dir / "p.jsonl.1")
    h.writer.reopen()
    h.write(records(2, 1))
    h.tick()
    assert h.records == 3
    assert h.stats().rotations == 1
    assert h.stats().open_files == 2  # the old file stays open for late writes
    h.advance(h.tail.rotate_wait)
    h.tick()
    assert h.stats().open_files == 1


def test_t7_old_file_drained_before_switching(make: Make) -> None:
    h = make()
    h.write(records(0, 100))
    h.path.rename(h.dir / "p.jsonl.1")
    h.writer.reopen()
    h.write(records(100, 1))
    h.tick()
    assert h.records == 101


def test_t8_late_writes_within_rotate_wait_only(make: Make) -> None:
    h = make()
    a = h.writer  # writer A keeps its fd across the rename
    a.write(record(0))
    h.tick()
    h.path.rename(h.dir / "p.jsonl.1")
    b = Writer(h.path, keep_open=True)
    a.write(record(1))  # lands in p.jsonl.1
    b.write(record(2))
    h.tick()
    assert h.records == 3
    h.advance(h.tail.rotate_wait)
    a.write(record(3))
    h.tick()
    b.close()
    assert h.records == 3
    assert h.stats().open_files == 1


def test_t9_nocreate_then_create_later(make: Make) -> None:
    h = make()
    h.write(records(0, 1))
    h.tick()
    h.path.rename(h.dir / "p.jsonl.1")
    h.writer.reopen()
    for _ in range(3):
        h.tick()
        h.advance(h.tail.rotate_wait / 2)
    h.tick()
    assert h.stats().read_errors == 0
    assert h.stats().files_present == 0
    assert h.stats().open_files == 0  # the rotated file was let go after rotate_wait
    h.write(records(1, 2))
    h.tick()
    assert h.records == 3


def test_t10_create_from_temp(make: Make) -> None:
    h = make()
    h.write(record(0))
    h.path.rename(h.dir / "p.jsonl.1")
    tmp = h.dir / "p.jsonl.tmpXYZ"
    tmp.write_bytes(record(1))
    tmp.rename(h.path)
    h.tick()
    assert h.records == 2


@pytest.mark.parametrize("pattern", [None, "*.jsonl"])
def test_t11_copytruncate_with_append_writer(make: Make, pattern: str | None) -> None:
    """The copy p.jsonl.1 matches neither pattern, so nothing is counted twice."""
    h = make(pattern=pattern)
    h.write(records(0, 3))
    h.tick()
    shutil.copyfile(h.path, h.dir / "p.jsonl.1")
    os.truncate(h.path, 0)
    h.write(records(3, 2))
    h.tick()
    assert (h.records, h.stats().truncations) == (5, 1)


def test_t14_deleted_file_is_closed_within_rotate_wait(make: Make) -> None:
    h = make()
    h.write(records(0, 2))
    h.writer.close()
    before = open_fds()
    h.path.unlink()
    h.tick()
    assert h.records == 2
    h.advance(h.tail.rotate_wait)
    for _ in range(3):
        h.tick()
    assert h.stats().open_files == 0
    assert open_fds() == before - 1
    assert h.stats().rotations == 0  # a deletion is not a rotation


def test_t15_delete_and_recreate(make: Make) -> None:
    h = make()
    h.write(record(0))
    h.writer.close()
    h.path.unlink()
    h.tick()
    h.write(record(1))
    h.tick()
    assert h.records == 2


def test_t18_restart_resumes_where_it_stopped(make: Make) -> None:
    h = make()
    h.write(record(0))
    h.tick()
    h.stop()
    h.write(record(1))
    h.start()
    assert h.records == 1
    assert h.stats().checkpoint_resets == 0
