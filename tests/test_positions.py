"""The checkpoint file: round trip, tolerance of damage, atomic replace, TTL pruning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter import atomic
from exporter.tail import positions as positions_mod
from exporter.tail.positions import FORMAT_VERSION, Position, Positions

ONE = (
    b'{"dev": 1, "ino": 2, "offset": 3, "head_len": 0,'
    b' "head": "", "marker": "", "source": "", "path": "", "seen": 0}'
)
ENTRY = b'{"version": 1, "files": [' + ONE + b"]}"


def entry(ino: int, *, offset: int = 10, seen: float = 100.0, source: str = "s") -> Position:
    return Position(
        dev=1,
        ino=ino,
        offset=offset,
        head_len=5,
        head="abcd",
        marker="ef01",
        source=source,
        path=f"/logs/{ino}",
        seen=seen,
    )


def test_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "pos.json")
    p = Positions(path)
    written = [entry(1), entry(2, offset=99)]
    for e in written:
        p.put(e)
    assert p.save()
    back = Positions.load(path)
    assert back.errors == 0
    assert sorted(back.entries(), key=lambda e: e.ino) == written
    assert json.loads(Path(path).read_bytes())["version"] == FORMAT_VERSION


def test_a_well_formed_entry_loads(tmp_path: Path) -> None:
    """The damaged variants below differ from this one in one place each."""
    path = tmp_path / "pos.json"
    path.write_bytes(ENTRY)
    p = Positions.load(str(path))
    assert p.errors == 0
    assert [(e.key, e.offset, e.seen) for e in p.entries()] == [((1, 2), 3, 0.0)]


def test_missing_file_is_a_first_run_not_an_error(tmp_path: Path) -> None:
    p = Positions.load(str(tmp_path / "absent.json"))
    assert (p.errors, p.entries()) == (0, [])


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\xff garbage",
        b"[]",
        b'{"version": 99, "files": []}',
        b'{"version": 1, "files": {}}',
        b'{"version": 1, "files": [{"dev": 1}]}',
        b'{"version": 1, "files": [{"dev": "1", "ino": 2, "offset": 3, "head_len": 0,'
        b' "head": "", "marker": "", "source": "", "path": "", "seen": 0}]}',
        b'{"version": 1, "files": [{"dev": 1, "ino": 2, "offset": -3, "head_len": 0,'
        b' "head": "", "marker": "", "source": "", "path": "", "seen": 0}]}',
        b"[" * 100_000,
        b'{"version": true, "files": []}',
        b'{"version": 1, "files": [], "written_by": "someone else"}',
        b'{"version": 2, "files": [{"fingerprint": "abc"}]}',
        ENTRY.replace(b'"dev": 1', b'"dev": true'),
        ENTRY.replace(b'"seen": 0', b'"seen": "yesterday"'),
        ENTRY.replace(b'"head_len": 0', b'"head_len": -1'),
        ENTRY.replace(b'"path": ""', b'"path": "", "inode_generation": 7'),
        b'{"version": 1, "files": [' + ONE + b", " + ONE + b"]}",  # two entries for one file
    ],
)
def test_damaged_checkpoint_is_counted_and_ignored(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "pos.json"
    path.write_bytes(content)
    p = Positions.load(str(path))
    assert (p.errors, p.entries()) == (1, [])


def test_crash_during_save_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "pos.json")
    p = Positions(path)
    p.put(entry(1))
    assert p.save()
    p.put(entry(2))

    def crash(*_: object) -> None:
        raise OSError("killed before the rename")

    monkeypatch.setattr(atomic.Path, "replace", crash)
    assert not p.save()
    assert p.errors == 1
    monkeypatch.undo()
    back = Positions.load(path)
    assert (back.errors, [e.ino for e in back.entries()]) == (0, [1])


def test_prune_drops_only_entries_older_than_ttl() -> None:
    p = Positions()
    for ino, seen in [(1, 0.0), (2, 50.0), (3, 100.0)]:
        p.put(entry(ino, seen=seen))
    assert p.prune(now=120.0, ttl=60.0) == 2
    assert [e.ino for e in p.entries()] == [3]


def test_has_source_and_forget() -> None:
    p = Positions()
    p.put(entry(1, source="a"))
    assert p.has_source("a")
    assert not p.has_source("b")
    p.forget((1, 1))
    assert not p.has_source("a")


def test_without_a_path_nothing_is_written(tmp_path: Path) -> None:
    p = Positions.load(None)
    p.put(entry(1))
    assert p.save()
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every checkpoint actually written (each costs two fsyncs)."""
    done: list[bytes] = []
    real = positions_mod.write_atomic

    def counting(path: str, data: bytes) -> None:
        real(path, data)
        done.append(data)

    monkeypatch.setattr(positions_mod, "write_atomic", counting)
    return done


def test_an_unchanged_checkpoint_is_not_written_again(tmp_path: Path, writes: list[bytes]) -> None:
    p = Positions(str(tmp_path / "pos.json"))
    p.put(entry(1))
    for _ in range(3):
        assert p.save()
    assert len(writes) == 1
    p.put(entry(1, offset=20))
    assert p.save()
    assert len(writes) == 2
    assert p.prune(now=1000.0, ttl=60.0) == 1
    assert p.save()
    assert len(writes) == 3, "a pruned entry is a change"


def test_seen_alone_is_written_only_when_it_moved_more_than_the_slack(
    tmp_path: Path, writes: list[bytes]
) -> None:
    p = Positions(str(tmp_path / "pos.json"))
    p.put(entry(1, seen=100.0))
    p.save(seen_slack=10.0)
    p.put(entry(1, seen=110.0))
    p.save(seen_slack=10.0)
    assert len(writes) == 1
    p.put(entry(1, seen=110.5))
    p.save(seen_slack=10.0)
    assert len(writes) == 2
    assert Positions.load(p.path).entries() == [entry(1, seen=110.5)]


def test_a_loaded_checkpoint_is_not_rewritten_until_it_changes(
    tmp_path: Path, writes: list[bytes]
) -> None:
    path = str(tmp_path / "pos.json")
    first = Positions(path)
    first.put(entry(1))
    first.save()
    again = Positions.load(path)
    again.save()
    assert len(writes) == 1


def test_a_failed_save_is_retried_even_without_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writes: list[bytes]
) -> None:
    p = Positions(str(tmp_path / "pos.json"))
    p.put(entry(1))

    def crash(*_: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(atomic.Path, "replace", crash)
        assert not p.save()
    assert p.save()
    assert [e.ino for e in Positions.load(p.path).entries()] == [1]
