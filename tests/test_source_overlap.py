"""Two sources matching the same file: the first to track it reads it, the other skips it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tail_harness import count_lines, records

from exporter.clock import ManualClock
from exporter.config_types import SourceConfig, TailConfig
from exporter.tail.tailer import Tailer


def _tailer(paths: list[str], pos: Path, clock: ManualClock) -> Tailer:
    sources = [SourceConfig(path=p, start_at="beginning") for p in paths]
    return Tailer(sources, TailConfig(positions_file=str(pos), rotate_wait=5.0), clock)


def _poll(t: Tailer, times: int = 1) -> int:
    total = 0
    for _ in range(times):
        ok, bad = count_lines(t.poll_once())
        assert bad == 0
        total += ok
    return total


def test_a_file_matched_by_two_sources_is_read_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="exporter.tail.tailer")
    logs = tmp_path / "d"
    logs.mkdir()
    a = logs / "a.jsonl"
    a.write_bytes(records(0, 3))
    pos, clock = tmp_path / "pos.json", ManualClock(1000.0)
    glob_src, file_src = str(logs / "*.jsonl"), str(a)
    t = _tailer([glob_src, file_src], pos, clock)
    assert _poll(t, 3) == 3
    stats = t.stats()
    assert (stats[glob_src].lines, stats[file_src].lines) == (3, 0)
    assert (stats[glob_src].files_present, stats[file_src].files_present) == (1, 0)
    skipped = [r for r in caplog.records if "already followed" in r.getMessage()]
    assert len(skipped) == 1, "logged once, not once per poll"
    t.save_positions()
    t.close()

    with a.open("ab") as f:
        f.write(records(3, 2))
    t = _tailer([glob_src, file_src], pos, clock)
    assert _poll(t, 2) == 2, "the checkpoint entry was not overwritten by the other source"
    t.close()


def test_the_other_source_takes_over_when_the_first_lets_go(tmp_path: Path) -> None:
    """a.jsonl renamed to b.jsonl leaves the exact-path source but still matches the glob."""
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(records(0, 3))
    clock = ManualClock(1000.0)
    t = _tailer([str(a), str(tmp_path / "*.jsonl")], tmp_path / "pos.json", clock)
    assert _poll(t) == 3
    a.rename(b)
    with b.open("ab") as f:
        f.write(records(3, 1))
    assert _poll(t) == 1  # drained by the source that follows it
    clock.advance(5.0)
    assert _poll(t, 2) == 0  # handed over at its checkpoint: nothing read again
    with b.open("ab") as f:
        f.write(records(4, 2))
    assert _poll(t) == 2
    assert t.stats()[str(tmp_path / "*.jsonl")].files_present == 1
    t.close()
