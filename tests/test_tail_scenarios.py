"""The tailing scenarios T1..T38 (docs/tailing.md lists them), each as a hand-driven test.

Every scenario runs twice: polling alone, and with a real watchdog observer ringing the waker
(the poll is the backstop either way, so the outcome must not differ). Ticks are explicit
``poll_once`` calls; rotate_wait is crossed with a ManualClock, never by sleeping.
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import shutil
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tail_harness import (
    COUNTERS,
    FaultyOps,
    Harness,
    SilentObserver,
    Writer,
    open_fds,
    record,
    records,
)

from exporter import atomic
from exporter.tail.fileident import FileOps
from exporter.tail.watch import start_watch

Make = Callable[..., Harness]


@pytest.fixture(params=["poll", "watch", "buffered"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Make]:
    """Polled and woken by a watch, with the compiled reader; and polled, reading into the
    tailer's own buffer, as where the reader is not compiled."""
    made: list[Harness] = []

    def factory(**kw: object) -> Harness:
        if request.param == "buffered":
            ops = kw.setdefault("ops", FileOps())
            assert isinstance(ops, FileOps)
            ops.reads_lines = False
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
    caplog.set_level(logging.INFO, logger="exporter.tail.tailer")
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


@pytest.mark.parametrize("poll_between", [True, False])
def test_t39_copytruncate_with_a_writer_without_o_append(make: Make, poll_between: bool) -> None:
    """The writer keeps its offset after the truncate, so the file starts with a hole that
    reads as NUL bytes, glued to its next record: the NULs are skipped and counted, the record
    is counted (it was lost as invalid_json). With or without a poll seeing the empty file."""
    h = make()
    fd = os.open(h.path, os.O_WRONLY)  # no O_APPEND: writes go to the fd's own offset
    try:
        os.write(fd, records(0, 3))
        h.tick()
        hole = os.lseek(fd, 0, os.SEEK_CUR)
        shutil.copyfile(h.path, h.dir / "p.jsonl.1")
        os.truncate(h.path, 0)
        if poll_between:
            h.tick()
        os.write(fd, records(3, 2))
    finally:
        os.close(fd)
    h.tick()
    assert h.path.read_bytes().startswith(b"\0" * hole)
    stats = h.stats()
    assert (h.records, h.parse_errors) == (5, 0)
    assert (stats.lines, stats.truncations, stats.nul_bytes_skipped) == (5, 1, hole)


def test_t39_a_hole_longer_than_max_line_bytes_is_no_long_line(make: Make) -> None:
    """A writer that was 3 MiB into the file before the truncate: the hole is read in pieces,
    never held in memory, and does not make the record behind it an over-long line."""
    h = make(tail={"max_line_bytes": 1 << 20, "read_chunk_bytes": 256 << 10})
    h.write(record(0))
    h.tick()
    os.truncate(h.path, 0)
    fd = os.open(h.path, os.O_WRONLY)
    try:
        os.pwrite(fd, record(1), 3 << 20)  # sparse: 3 MiB of NULs, then the record
    finally:
        os.close(fd)
    h.tick()
    stats = h.stats()
    assert (h.records, h.parse_errors, stats.lines_too_long) == (2, 0, 0)
    assert stats.nul_bytes_skipped == 3 << 20
    h.restart()  # the checkpoint is past the hole and the record: nothing is read again
    assert (h.records, h.stats().lines) == (0, 0)


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


def test_t13_rewrite_bigger_without_a_tick_is_caught_by_the_head(make: Make) -> None:
    h = make()
    h.write(records(0, 10))
    h.tick()
    size = h.path.stat().st_size
    os.truncate(h.path, 0)
    h.write(records(1000, 20))  # different bytes from the start, and larger than before
    assert h.path.stat().st_size > size
    h.tick()
    assert (h.records, h.stats().truncations) == (30, 1)


def test_t13_identical_head_is_taken_for_an_append(make: Make) -> None:
    """Documented limitation: a rewrite that starts with the very same bytes looks like growth."""
    h = make()
    h.write(records(0, 10))
    h.tick()
    os.truncate(h.path, 0)
    h.write(records(0, 20))
    h.tick()
    assert (h.records, h.stats().truncations) == (20, 0)


def _stop_at_offset(h: Harness, content: bytes) -> None:
    h.write(content)
    h.tick()
    h.stop()
    shutil.copyfile(h.path, h.dir / "p.jsonl.1")
    os.truncate(h.path, 0)


def test_t17_copytruncate_while_stopped_smaller(make: Make) -> None:
    h = make()
    _stop_at_offset(h, records(0, 10))
    h.write(records(100, 3))
    h.start()
    assert (h.records, h.stats().checkpoint_resets) == (3, 1)


def test_t17_copytruncate_while_stopped_larger(make: Make) -> None:
    h = make()
    _stop_at_offset(h, records(0, 10))
    h.write(records(100, 30))
    h.start()
    assert (h.records, h.stats().checkpoint_resets) == (30, 1)


def test_t17_same_head_but_different_bytes_before_the_offset(make: Make) -> None:
    """Head identical (first KiB), offset region different: only the marker can tell."""
    h = make()
    same = records(0, 12, pad=100)  # > 1 KiB shared prefix
    _stop_at_offset(h, same + records(500, 5))
    h.write(same + records(700, 40))
    h.start()
    assert (h.records, h.stats().checkpoint_resets) == (12 + 40, 1)


@pytest.mark.parametrize("damage", [b"", b"\x00garbage{{", b'{"version": 1}'])
@pytest.mark.parametrize(("start_at", "expected"), [("end", 2), ("beginning", 7)])
def test_t20_corrupt_checkpoint_falls_back_to_start_at(
    make: Make, tmp_path: Path, damage: bytes, start_at: str, expected: int
) -> None:
    h = make(start_at=start_at, create=False, tick_at_start=False)
    h.tailer.close()
    assert h.tail.positions_file is not None
    Path(h.tail.positions_file).write_bytes(damage)
    h.path.write_bytes(records(0, 5))
    h.start()
    assert h.tailer.checkpoint_errors() == 1
    h.write(records(5, 2))
    h.tick()
    assert h.records == expected


def test_t20_kill_during_a_save_keeps_the_previous_checkpoint(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make()
    h.write(records(0, 3))
    h.tick()
    h.tailer.save_positions()
    h.write(records(3, 2))
    h.tick()

    def killed(*_: object) -> None:
        raise OSError("killed between the temp file and the rename")

    monkeypatch.setattr(atomic.Path, "replace", killed)
    h.tailer.save_positions()
    monkeypatch.undo()
    h.tailer.close()  # the process dies here: no further save
    h.start()
    assert h.tailer.checkpoint_errors() == 0
    assert h.records == 2  # re-counted since the last good save, never lost


def test_t21_entries_of_vanished_files_are_pruned_after_the_ttl(make: Make) -> None:
    h = make(pattern="*.jsonl", start_at="beginning")
    for name in ("a", "b", "c"):
        (h.dir / f"{name}.jsonl").write_bytes(record(0))
    h.tick()
    h.stop()
    for name in ("a", "b", "c"):
        (h.dir / f"{name}.jsonl").unlink()
    h.start()
    assert h.tail.positions_file is not None
    saved = Path(h.tail.positions_file)

    def entries() -> set[str]:
        h.tailer.save_positions()
        return {Path(e["path"]).name for e in json.loads(saved.read_bytes())["files"]}

    assert entries() == {"a.jsonl", "b.jsonl", "c.jsonl", "p.jsonl"}  # kept within the TTL
    h.advance(h.tail.positions_ttl + 1)
    h.tick()
    assert entries() == {"p.jsonl"}


def _json_line(total: int) -> bytes:
    """A valid JSON line whose content (without the newline) is exactly ``total`` bytes."""
    head = b'{"pad":"'
    return head + b"x" * (total - len(head) - 2) + b'"}\n'


def test_t22_over_long_line_is_skipped_and_tailing_resyncs(make: Make) -> None:
    limit = 1 << 20
    h = make(tail={"max_line_bytes": limit})
    assert len(_json_line(limit)) == limit + 1
    h.write(record(0) + _json_line(2 * limit) + record(1) + _json_line(limit))
    h.tick()
    assert (h.records, h.parse_errors, h.stats().lines_too_long) == (3, 0, 1)
    h.write(record(2))
    h.tick()
    assert h.records == 4


def test_t22_memory_stays_bounded_while_a_huge_line_streams_in(make: Make) -> None:
    limit = 64 << 10
    h = make(tail={"max_line_bytes": limit, "read_chunk_bytes": 16 << 10})
    h.write(record(0))
    tracemalloc.start()
    try:
        for _ in range(40):  # 40 x 256 KiB = 10 MiB of one line, polled as it grows
            h.write(b"y" * (256 << 10))
            h.tick()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    h.write(b"\n" + record(1))
    h.tick()
    assert peak < 4 * limit + (256 << 10), peak
    assert (h.records, h.stats().lines_too_long) == (2, 1)


def test_t23_multibyte_character_across_read_pieces(make: Make) -> None:
    h = make(tail={"read_chunk_bytes": 64})
    text = "é€𝄞" * 50
    line = json.dumps({"t": text}, ensure_ascii=False).encode() + b"\n"
    assert len(line) > 64
    h.write(line)
    h.tick()
    assert (h.records, h.parse_errors) == (1, 0)


def test_t23_invalid_utf8_is_passed_through_and_tailing_continues(make: Make) -> None:
    h = make()
    h.write(b'{"a": "\xff\xfe"}\n' + record(1))
    h.tick()
    assert (h.records, h.parse_errors) == (1, 1)


def test_t24_bom_crlf_and_blank_lines(make: Make) -> None:
    h = make(create=False)
    h.write(b"\xef\xbb\xbf" + b'{"a":1}\r\n' + b"\r\n" + b"\n" + b"   \t\n" + b'{"a":2}\r\n')
    h.tick()
    assert (h.records, h.parse_errors) == (2, 0)


def test_t24_bom_split_across_polls(make: Make) -> None:
    h = make(create=False)
    h.write(b"\xef\xbb")
    h.tick()
    h.write(b'\xbf{"a":1}\n')
    h.tick()
    assert (h.records, h.parse_errors) == (1, 0)


def test_t25_garbage_and_pretty_printed_json(make: Make) -> None:
    h = make()
    h.write(record(0) + b"not json\n" + record(1))
    pretty = json.dumps({"a": 1}, indent=2).encode() + b"\n"
    assert pretty.count(b"\n") == 3
    h.write(pretty)
    h.tick()
    assert (h.records, h.parse_errors) == (2, 1 + 3)


@pytest.mark.parametrize(("pattern", "a_after"), [("*.jsonl", 1), ("*", 1)])
def test_t26_glob_new_files_and_renames(make: Make, pattern: str, a_after: int) -> None:
    h = make(name="a.jsonl", pattern=pattern)
    a = Writer(h.path, keep_open=False)
    a.write(record(0))
    h.tick()
    (h.dir / "b.jsonl").write_bytes(records(1, 2))
    h.path.rename(h.dir / "a.jsonl.1")
    h.tick()
    h.advance(h.tail.rotate_wait)
    h.tick()
    assert h.by_path == {str(h.path): a_after, str(h.dir / "b.jsonl"): 2}
    assert h.stats().rotations == (1 if pattern == "*.jsonl" else 0)


def test_t26_renamed_file_still_matched_keeps_being_followed(make: Make) -> None:
    h = make(name="a.jsonl", pattern="*")
    h.write(record(0))
    h.tick()
    h.path.rename(h.dir / "a.jsonl.1")
    h.write(record(1))  # the writer's fd follows the inode
    h.tick()
    h.advance(10 * h.tail.rotate_wait)
    h.writer.write(record(2))
    h.tick()
    assert h.records == 3
    assert h.stats().open_files == 1


def test_t27_identical_first_lines_are_different_files(make: Make) -> None:
    h = make(pattern="*.jsonl")
    first = record(0)
    for name, i in (("a", 1), ("b", 2)):
        (h.dir / f"{name}.jsonl").write_bytes(first + record(i))
    h.tick()
    assert h.by_path == {str(h.dir / "a.jsonl"): 2, str(h.dir / "b.jsonl"): 2}


def test_t28_tiny_new_file(make: Make) -> None:
    h = make(pattern="*.jsonl")
    line = b'{"a":123}\n'
    assert len(line) == 10
    (h.dir / "tiny.jsonl").write_bytes(line)
    h.tick()
    assert h.records == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads mode-000 files; see the fake-EACCES twin")
def test_t29_unreadable_file_with_real_permissions(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    h = make(create=False)
    h.path.touch(mode=0o000)
    h.tick()
    h.tick()
    assert h.stats().read_errors >= 1
    h.path.chmod(0o644)
    h.write(record(0))
    h.tick()
    assert h.records == 1
    warned = [r for r in caplog.records if r.name == "exporter.tail.tailer" and r.levelno >= 30]
    assert len(warned) == 1


def test_t31_no_events_at_all_polling_still_counts(tmp_path: Path) -> None:
    observer = SilentObserver()
    h = Harness(tmp_path)
    try:
        stop = start_watch([h.source.path], h.waker, observer_factory=lambda: observer)
        h.write(records(0, 5))
        assert not h.waker.wait(0)
        h.tick()
        assert h.records == 5
        stop()
        assert observer.stopped
    finally:
        h.close()


def test_t32_burst_is_read_in_bounded_polls_until_the_lag_is_zero(make: Make) -> None:
    h = make()
    n = 200_000
    h.write(records(0, n))
    budget = 1 << 20
    polls = 0
    while True:
        h.tick_once(budget)
        polls += 1
        assert h.last_poll_bytes <= budget + h.tail.max_line_bytes
        if not h.tailer.more_pending:
            break
    assert h.records == n
    assert h.stats().lag_bytes == 0
    assert polls >= h.path.stat().st_size // budget


def test_t34_drain_then_checkpoint_at_a_line_boundary(make: Make) -> None:
    h = make()
    h.write(records(0, 3) + b'{"partial":')
    h.tick()  # the final poll the ingest loop makes on stop()
    h.stop()
    assert h.records == 3
    assert h.tail.positions_file is not None
    (saved,) = json.loads(Path(h.tail.positions_file).read_bytes())["files"]
    assert saved["offset"] == len(records(0, 3))
    h.write(b"1}\n")
    h.start()
    assert (h.records, h.parse_errors) == (1, 0)


def test_t35_counters_never_decrease_across_truncation(make: Make) -> None:
    h = make()
    h.write(records(0, 50))
    h.tick()
    os.truncate(h.path, 0)
    h.tick()
    h.write(records(0, 2))
    h.tick()
    assert h.stats().truncations == 1
    for before, after in itertools.pairwise(h.history):
        for name in COUNTERS:
            assert getattr(after, name) >= getattr(before, name)


def test_t29_open_refused_then_allowed(make: Make, caplog: pytest.LogCaptureFixture) -> None:
    ops = FaultyOps()
    ops.fail["open"] = errno.EACCES
    h = make(create=False, ops=ops)
    h.path.touch()
    for _ in range(5):
        h.tick()
        h.advance(1.0)
    assert h.stats().read_errors >= 1
    assert h.stats().files_present == 0
    warned = [r for r in caplog.records if r.name == "exporter.tail.tailer"]
    assert len(warned) == 1, "one warning per minute per file and error, not one per poll"
    del ops.fail["open"]
    h.write(record(0))
    h.tick()
    assert h.records == 1
    assert h.stats().files_present == 1
    h.close()


def test_t30_idle_poll_costs_one_lstat_per_file(make: Make) -> None:
    ops = FaultyOps()
    h = make(pattern="*.jsonl", ops=ops)
    (h.dir / "b.jsonl").write_bytes(records(0, 3))
    h.write(records(0, 2))
    h.tick()
    h.tick()  # settles size/mtime after the read
    ops.calls.clear()
    polls = 50
    for _ in range(polls):
        h.tick()
    assert dict(ops.calls) == {"glob": polls, "lstat": 2 * polls}
    h.close()


def test_t38_stale_handle_on_a_replaced_file_reads_the_new_one_from_zero(make: Make) -> None:
    ops = FaultyOps()
    h = make(ops=ops)
    h.write(records(0, 3))
    h.tick()

    def server_replaces_the_file() -> None:
        fresh = h.dir / "fresh"
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


def test_t38_stale_handle_on_the_same_file_resumes_without_duplicates(make: Make) -> None:
    ops = FaultyOps()
    h = make(ops=ops)
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
