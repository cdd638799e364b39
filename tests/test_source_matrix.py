"""Rotation matrix: watcher x writer x rotation style x whether a poll saw the file first.

Every combination must count each written record exactly once, except where no tailer can:
copytruncate before any poll saw the old lines (they exist only in the uncovered copy).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from tail_harness import Harness, records


def _rename(h: Harness) -> None:
    h.path.rename(h.dir / "p.jsonl.1")


def create(h: Harness) -> None:
    _rename(h)
    h.path.touch()
    h.writer.reopen()


def nocreate(h: Harness) -> None:
    _rename(h)
    h.writer.reopen()  # the writer's next write creates p


def create_from_temp(h: Harness) -> None:
    _rename(h)
    tmp = h.dir / "p.jsonl.tmpXYZ"
    tmp.touch()
    tmp.rename(h.path)
    h.writer.reopen()


def copytruncate(h: Harness) -> None:
    shutil.copyfile(h.path, h.dir / "p.jsonl.1")
    os.truncate(h.path, 0)  # the O_APPEND writer keeps its fd


def copy_and_remove(h: Harness) -> None:
    shutil.copyfile(h.path, h.dir / "p.jsonl.1")
    h.path.unlink()
    h.writer.reopen()


def remove(h: Harness) -> None:
    h.path.unlink()
    h.writer.reopen()


ROTATIONS: dict[str, Callable[[Harness], None]] = {
    "create": create,
    "nocreate": nocreate,
    "create-from-temp": create_from_temp,
    "copytruncate": copytruncate,
    "cp+rm": copy_and_remove,
    "rm": remove,
}


@pytest.mark.parametrize("polled_before", [True, False], ids=["polled", "unpolled"])
@pytest.mark.parametrize("rotation", list(ROTATIONS))
@pytest.mark.parametrize("keep_open", [True, False], ids=["append-fd", "reopen-per-write"])
@pytest.mark.parametrize("watch", [False, True], ids=["poll", "watch"])
def test_rotation_matrix(
    tmp_path: Path, watch: bool, keep_open: bool, rotation: str, polled_before: bool
) -> None:
    h = Harness(tmp_path, watch=watch, keep_open=keep_open)
    try:
        h.write(records(0, 7))
        if polled_before:
            h.tick()
        ROTATIONS[rotation](h)
        h.write(records(7, 4))
        h.tick()
        h.advance(h.tail.rotate_wait)
        h.tick()
        h.write(records(11, 2))
        h.tick()
        lost = 7 if rotation == "copytruncate" and not polled_before else 0
        assert h.records == 13 - lost
        assert h.parse_errors == 0
        assert h.stats().open_files == 1
        assert h.stats().lag_bytes == 0
    finally:
        h.close()


def test_truncation_of_a_file_that_left_its_path_is_still_noticed(tmp_path: Path) -> None:
    """Found by the model test: copytruncate, one same-sized record, then delete, one poll."""
    h = Harness(tmp_path)
    try:
        h.write(records(0, 1))
        h.tick()
        copytruncate(h)
        h.write(records(1, 1))
        assert h.path.stat().st_size == len(records(0, 1))
        remove(h)
        h.tick()
        assert (h.records, h.stats().truncations) == (2, 1)
    finally:
        h.close()
