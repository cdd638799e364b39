"""Atomic replacement of the files the sidecar writes: the checkpoint and the reference profile."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from exporter import atomic
from exporter.cli import main
from exporter.offline.simulate import Scenario, generate
from tests.configs import example_config, write_config
from tests.harness import RUN_TIMEOUT


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(file type, inode) of everything fsynced through exporter.atomic."""
    done: list[tuple[str, int]] = []
    real: Callable[[int], None] = os.fsync

    def recording(fd: int) -> None:
        st = os.fstat(fd)
        done.append(("dir" if stat.S_ISDIR(st.st_mode) else "file", st.st_ino))
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", recording)
    return done


def test_the_file_and_its_directory_are_fsynced(
    tmp_path: Path, synced: list[tuple[str, int]]
) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"old")
    atomic.write_atomic(str(target), b"new")
    assert target.read_bytes() == b"new"
    assert synced == [("file", target.stat().st_ino), ("dir", tmp_path.stat().st_ino)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"old")

    def full(*_: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "write", full)
    with pytest.raises(OSError, match="No space"):
        atomic.write_atomic(str(target), b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def baseline(config: Path, log: Path, out: Path) -> int:
    return main(["baseline", "--config", str(config), "--input", str(log), "--output", str(out)])


def test_baseline_writes_the_profile_through_the_atomic_helper(
    tmp_path: Path, synced: list[tuple[str, int]]
) -> None:
    log = tmp_path / "dev.jsonl"
    log.write_bytes(b"".join(generate(2_000, 1_764_000_000.0, 50.0, Scenario())))
    config = write_config(tmp_path, example_config(log))
    out = tmp_path / "profiles" / "reference.json"
    out.parent.mkdir()
    assert baseline(config, log, out) == 0
    assert json.loads(out.read_text())["records"] > 0
    assert ("file", out.stat().st_ino) in synced
    assert ("dir", out.parent.stat().st_ino) in synced
    assert sorted(p.name for p in out.parent.iterdir()) == ["reference.json"]


def test_baseline_reports_an_unwritable_output_and_exits_1(tmp_path: Path) -> None:
    log = tmp_path / "dev.jsonl"
    log.write_bytes(b"".join(generate(200, 1_764_000_000.0, 50.0, Scenario())))
    config = write_config(tmp_path, example_config(log))
    out = tmp_path / "missing-directory" / "reference.json"
    assert baseline(config, log, out) == 1
    assert not out.parent.exists()


@pytest.mark.parametrize("command", ["baseline", "replay --html"])
def test_an_output_that_cannot_be_written_is_refused_before_the_log_is_read(
    tmp_path: Path, command: str
) -> None:
    """Reading a development log can take minutes; a profile or report that cannot be written
    is said at once, not after the whole pass. The log comes on a pipe that stays open and
    empty: a command that started reading it would wait for data, never reaching the exit."""
    config = write_config(tmp_path, example_config(tmp_path / "x.jsonl"))
    out = str(tmp_path / "missing-directory" / "out")
    args = (
        ["baseline", "--config", str(config), "--input", "/dev/stdin", "--output", out]
        if command == "baseline"
        else ["replay", "--config", str(config), "--html", out, "/dev/stdin"]
    )
    with subprocess.Popen(
        [sys.executable, "-m", "exporter", *args],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    ) as process:
        try:
            code = process.wait(timeout=RUN_TIMEOUT)
        finally:
            process.kill()
            assert process.stdin is not None
            assert process.stderr is not None
            process.stdin.close()
            err = process.stderr.read().decode()
    assert code == 1, err
    assert f"cannot write {out}: directory {tmp_path / 'missing-directory'} does not exist" in err
