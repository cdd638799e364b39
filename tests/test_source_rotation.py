"""A file that left its path is read to its end before it is let go, whatever the budget."""

from __future__ import annotations

import errno
from pathlib import Path

from tail_harness import FaultyOps, Harness, records

BUDGET = 64 << 10


def test_rotated_backlog_larger_than_the_budget_is_read_to_its_end(tmp_path: Path) -> None:
    """rotate_wait bounds the wait for late writes, not how long a backlog may take to read."""
    h = Harness(tmp_path, tail={"rotate_wait": 5.0})
    n = 1000
    backlog = records(0, n, pad=1000)  # ~1 MiB: 16 polls of 64 KiB, far beyond rotate_wait
    h.write(backlog)
    h.path.rename(tmp_path / "p.jsonl.1")
    h.writer.reopen()
    polls = 0
    while h.records < n and polls < 10 * len(backlog) // BUDGET:
        h.tick_once(BUDGET)
        h.advance(1.0)
        polls += 1
    assert h.records == n
    assert polls >= len(backlog) // BUDGET
    assert h.stats().bytes_dropped == 0
    h.advance(h.tail.rotate_wait)
    h.tick()
    assert h.stats().open_files == 0, "let go once read to its end and rotate_wait passed"
    h.close()


def test_rotated_backlog_is_read_before_the_new_file(tmp_path: Path) -> None:
    h = Harness(tmp_path, tail={"rotate_wait": 5.0})
    h.write(records(0, 200, pad=1000))
    h.path.rename(tmp_path / "p.jsonl.1")
    h.writer.reopen()
    h.write(records(200, 1))
    h.tick_once(BUDGET)
    assert set(h.by_path) == {str(tmp_path / "p.jsonl")}  # the path where it was last seen
    assert h.tailer.more_pending
    h.close()


def test_unreadable_rotated_file_is_given_up_and_its_bytes_counted(tmp_path: Path) -> None:
    ops = FaultyOps()
    h = Harness(tmp_path, ops=ops, tail={"rotate_wait": 5.0})
    lost = records(0, 10)
    h.write(lost)
    h.path.rename(tmp_path / "p.jsonl.1")
    h.writer.reopen()
    ops.fail["pread"] = errno.EIO
    h.tick()
    h.advance(h.tail.rotate_wait / 2)
    h.tick()
    assert h.stats().open_files == 1, "a failing rotated file gets rotate_wait to recover"
    h.advance(h.tail.rotate_wait / 2)
    h.tick()
    assert h.stats().open_files == 0
    assert h.records == 0
    assert h.stats().bytes_dropped == len(lost)
    h.close()
