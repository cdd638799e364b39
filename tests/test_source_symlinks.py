"""Symlinks and files that are not regular files, under a source's pattern.

A glob once followed a planted ``logs/shadow.jsonl -> /etc/shadow`` (its lines were counted as
parse errors) and another outside file's records were exported. By default a source reads only
what stays within its directory (the pattern's path before any wildcard); ``follow_symlinks``
opts in. Nothing but a regular file is ever opened.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest
from tail_harness import FaultyOps, Harness, record, records

from exporter.config import parse_config
from exporter.errors import ConfigError
from exporter.tail.fileident import FileOps


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    logs, outside = tmp_path / "logs", tmp_path / "outside"
    logs.mkdir()
    outside.mkdir()
    (outside / "secret.jsonl").write_bytes(records(100, 4))  # valid records: would be exported
    return logs, outside


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_planted_symlink_out_of_the_directory_is_not_read(
    dirs: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    logs, outside = dirs
    caplog.set_level(logging.WARNING)
    (logs / "shadow.jsonl").symlink_to(outside / "secret.jsonl")
    h = Harness(logs, pattern="*.jsonl", start_at="beginning")
    h.write(records(0, 2))
    for _ in range(3):
        h.tick()
    assert (h.records, h.parse_errors) == (2, 0)
    assert set(h.by_path) == {str(h.path)}
    stats = h.stats()
    assert (stats.symlinks_refused, stats.opens, stats.read_errors) == (1, 1, 0)
    (message,) = [m for m in warnings(caplog) if "shadow.jsonl" in m]  # once, not per poll
    assert "follow_symlinks" in message
    h.close()


def test_a_link_planted_again_counts_again(dirs: tuple[Path, Path]) -> None:
    logs, outside = dirs
    h = Harness(logs, pattern="*.jsonl", start_at="beginning")
    link = logs / "x.jsonl"
    link.symlink_to(outside / "secret.jsonl")
    h.tick()
    h.tick()  # still there: not counted again
    assert h.stats().symlinks_refused == 1
    link.unlink()
    h.tick()
    link.symlink_to(outside / "secret.jsonl")
    h.tick()
    assert h.stats().symlinks_refused == 2
    assert h.records == 0
    h.close()


def test_a_symlink_within_the_directory_is_followed_once(dirs: tuple[Path, Path]) -> None:
    """``current.jsonl -> p.jsonl``: the file is matched twice, read once, through either name."""
    logs, _ = dirs
    (logs / "a-current.jsonl").symlink_to("p.jsonl")  # sorts first: opened through the link
    h = Harness(logs, pattern="*.jsonl", start_at="beginning")
    h.write(records(0, 3))
    h.tick()
    h.write(records(3, 1))
    h.tick()
    stats = h.stats()
    assert (h.records, stats.opens, stats.symlinks_refused, stats.read_errors) == (4, 1, 0, 0)
    h.close()


def test_follow_symlinks_opts_in(dirs: tuple[Path, Path]) -> None:
    logs, outside = dirs
    (logs / "shadow.jsonl").symlink_to(outside / "secret.jsonl")
    h = Harness(logs, pattern="*.jsonl", start_at="beginning", follow_symlinks=True)
    h.write(records(0, 2))
    h.tick()
    assert h.records == 2 + 4
    assert h.stats().symlinks_refused == 0
    h.close()


def test_a_plain_path_that_is_a_symlink_out_of_its_directory(dirs: tuple[Path, Path]) -> None:
    logs, outside = dirs
    (logs / "p.jsonl").symlink_to(outside / "secret.jsonl")
    h = Harness(logs, start_at="beginning", create=False)
    h.tick()
    assert (h.records, h.stats().symlinks_refused, h.stats().files_present) == (0, 1, 0)
    h.close()
    h = Harness(logs, start_at="beginning", create=False, follow_symlinks=True)
    h.tick()
    assert h.records == 4
    h.close()


def test_a_symlinked_directory_under_a_wildcard_is_not_entered(dirs: tuple[Path, Path]) -> None:
    logs, outside = dirs
    (logs / "a").mkdir()
    (logs / "a" / "p.jsonl").write_bytes(records(0, 2))
    (logs / "evil").symlink_to(outside)
    (outside / "p.jsonl").write_bytes(records(10, 3))
    h = Harness(logs, pattern="*/p.jsonl", start_at="beginning", create=False)
    h.tick()
    assert (h.records, h.stats().symlinks_refused) == (2, 1)
    assert set(h.by_path) == {str(logs / "a" / "p.jsonl")}
    h.close()


def test_only_regular_files_are_opened(dirs: tuple[Path, Path]) -> None:
    logs, _ = dirs
    os.mkfifo(logs / "fifo.jsonl")
    (logs / "dir.jsonl").mkdir()
    (logs / "null.jsonl").symlink_to("/dev/null")  # leaves the directory, and is no file
    ops = FaultyOps()
    h = Harness(logs, pattern="*.jsonl", start_at="beginning", ops=ops)
    h.write(record(0))
    h.tick()
    assert (h.records, ops.calls["open"], h.stats().opens) == (1, 1, 1)
    h.close()


class SwapBeforeOpen(FaultyOps):
    """Replaces the file with something else between the poll's ``lstat`` and the ``open``."""

    def __init__(self, swap: dict[str, object]) -> None:
        super().__init__()
        self.swap = swap

    def open(self, path: str) -> int:
        replace = self.swap.pop(path, None)
        if callable(replace):
            replace()
        return super().open(path)


@pytest.mark.parametrize("replacement", ["symlink", "fifo"])
def test_a_file_replaced_between_the_poll_and_the_open_is_not_read(
    dirs: tuple[Path, Path], replacement: str
) -> None:
    logs, outside = dirs
    target = logs / "p.jsonl"
    target.write_bytes(record(0))

    def swap() -> None:
        target.unlink()
        if replacement == "symlink":
            target.symlink_to(outside / "secret.jsonl")
        else:
            os.mkfifo(target)

    ops = SwapBeforeOpen({str(target): swap})
    h = Harness(logs, start_at="beginning", create=False, ops=ops)
    h.tick()
    assert h.records == 0
    assert h.stats().opens == 0
    h.close()


def test_o_nofollow_refuses_a_symlink_by_name(tmp_path: Path) -> None:
    (tmp_path / "t").write_bytes(b"x")
    (tmp_path / "l").symlink_to(tmp_path / "t")
    with pytest.raises(OSError) as raised:
        FileOps().open(str(tmp_path / "l"))
    assert raised.value.errno == errno.ELOOP


def test_follow_symlinks_is_a_checked_source_key() -> None:
    base = {"fields": {"prediction": "p"}}
    config = parse_config({**base, "sources": [{"path": "/l/*.jsonl", "follow_symlinks": True}]})
    assert config.sources[0].follow_symlinks
    assert not parse_config({**base, "sources": ["/l/*.jsonl"]}).sources[0].follow_symlinks
    with pytest.raises(ConfigError, match=r"sources\[0\]\.follow_symlinks"):
        parse_config({**base, "sources": [{"path": "/l", "follow_symlinks": "yes"}]})
