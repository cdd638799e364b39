"""The ingest loop: what it does when something unexpected happens."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from exporter.batch import Batch
from exporter.clock import ManualClock
from exporter.config import parse_config
from exporter.config_types import Config, SourceConfig
from exporter.decode import Decoder
from exporter.engine import Engine
from exporter.offline.baseline import ProfileBuilder
from exporter.offline.read import read_chunks
from exporter.pipeline import Pipeline
from exporter.reload import ReferenceFile
from exporter.state import State
from exporter.tail.tailer import Tailer


def _config(tmp_path: Path, **extra: Any) -> Config:
    return parse_config(
        {
            "sources": [{"path": str(tmp_path / "p.jsonl"), "start_at": "beginning"}],
            "positions_file": str(tmp_path / "positions.json"),
            "fields": {"model_name": "m", "model_version": "v", "prediction": "p"},
            **extra,
        }
    )


def _pipeline(
    config: Config, reference: ReferenceFile | None = None, **kwargs: Any
) -> tuple[Pipeline, State]:
    clock = ManualClock(1_000.0)
    engine = Engine(config)
    tailer = Tailer(
        [SourceConfig(s.path, start_at="beginning") for s in config.sources], config.tail, clock
    )
    return Pipeline(
        tailer, engine, clock, config.tail, reference_file=reference, **kwargs
    ), engine.state


def _records(state: State) -> int:
    return sum(g.totals.records for g in state.snapshot(1_000.0).groups)


def test_a_chunk_that_trips_an_unexpected_error_is_ingested_line_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path)
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"p": i / 10}) + "\n" for i in range(10)))
    pipeline, state = _pipeline(config)
    real = Decoder.decode

    def fragile(self: Decoder, data: bytes, now: float | None = None) -> Batch:
        if data.count(b"\n") > 1 or b"0.5" in data:
            raise RuntimeError("an unforeseen bug")
        return real(self, data, now)

    monkeypatch.setattr(Decoder, "decode", fragile)
    assert pipeline.step() == 10
    assert _records(state) == 9  # only the line that still fails is lost ...
    errors = pipeline.health().parse_errors
    assert errors == {(str(tmp_path / "p.jsonl"), "unprocessable"): 1}  # ... and counted


def test_a_dying_loop_reports_failure_and_does_not_checkpoint_unread_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path)
    (tmp_path / "p.jsonl").write_text(json.dumps({"p": 0.1}) + "\n")
    failed: list[bool] = []
    pipeline, _ = _pipeline(config, on_failure=lambda: failed.append(True))

    def broken(self: Tailer, max_bytes: int | None = None) -> list[Any]:
        raise OSError("the disk went away")

    monkeypatch.setattr(Tailer, "poll_once", broken)
    pipeline.run()
    assert failed == [True]
    assert pipeline.failed
    assert pipeline.healthy()[0] is False
    assert not (tmp_path / "positions.json").exists()


def test_a_profile_that_parses_but_cannot_be_used_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path)
    (tmp_path / "p.jsonl").touch()
    (tmp_path / "ref.json").write_text("{}")
    reference = ReferenceFile(str(tmp_path / "ref.json"), config.sketch_relative_accuracy)
    pipeline, state = _pipeline(config, reference)

    def cannot(*args: Any, **kwargs: Any) -> None:
        raise ValueError("unusable")

    monkeypatch.setattr("exporter.reload.load", lambda path: object())
    monkeypatch.setattr("exporter.reload.check_compatible", lambda ref, accuracy: None)
    monkeypatch.setattr("exporter.engine.ReferenceChecks", cannot)
    pipeline.step()
    assert state.reference is None
    assert pipeline.health().reference_reloads == {"error": 1}


def test_ready_once_every_source_was_polled(tmp_path: Path) -> None:
    """Readiness waits for the first pass (start_at: end is fixed then), a missing file
    included: polled is polled, whether or not the file exists yet."""
    config = _config(
        tmp_path,
        sources=[
            {"path": str(tmp_path / "p.jsonl"), "start_at": "end"},
            {"path": str(tmp_path / "not-yet.jsonl")},
        ],
    )
    (tmp_path / "p.jsonl").touch()
    pipeline, _ = _pipeline(config)
    assert pipeline.ready() == (False, "waiting for the first poll of the sources")
    pipeline.step()
    assert pipeline.ready() == (True, "ok")


def test_not_ready_while_a_configured_reference_is_not_in_use(tmp_path: Path) -> None:
    config = _config(tmp_path)
    (tmp_path / "p.jsonl").touch()
    reference = ReferenceFile(str(tmp_path / "missing.json"), config.sketch_relative_accuracy)
    pipeline, _ = _pipeline(config, reference)
    pipeline.step()
    assert pipeline.ready() == (False, "reference profile not loaded")


def test_reload_reads_the_reference_again_even_when_its_file_looks_unchanged(
    tmp_path: Path,
) -> None:
    """SIGHUP's contract: the profile is read again, not only when (inode, size, mtime) moved."""
    config = _config(tmp_path)
    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(json.dumps({"p": i / 100}) + "\n" for i in range(100)))
    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    for chunk in read_chunks(str(dev)):
        builder.add(chunk)
    path = tmp_path / "ref.json"
    path.write_text(builder.build("2026-01-01T00:00:00+00:00", {}).to_json())
    reference = ReferenceFile(str(path), config.sketch_relative_accuracy)
    (tmp_path / "p.jsonl").touch()
    pipeline, state = _pipeline(config, reference)
    state.set_reference(reference.load_now())

    # Same size, same inode, same mtime: only the creation time differs (not hashed).
    before = path.stat()
    text = path.read_text().replace("2026-01-01T00:00:00", "2026-01-02T00:00:00")
    with path.open("r+") as f:
        f.write(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_ino, path.stat().st_size) == (before.st_ino, before.st_size)

    pipeline.step()
    assert state.reference is not None
    assert state.reference.created.startswith("2026-01-01")  # the hot reload sees no change
    pipeline.reload(config.drift)
    pipeline.step()
    assert state.reference.created.startswith("2026-01-02")
    assert pipeline.health().reference_reloads == {"ok": 2}


def test_the_drain_at_stop_reads_what_was_written_before_it_and_not_what_keeps_coming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that keeps logging through the sidecar's shutdown must not hold the exit: the
    drain reads the backlog there was at the stop (more than one poll's byte budget of it),
    and what is written after is left for the next start, from the saved checkpoint."""
    config = _config(tmp_path)
    log = tmp_path / "p.jsonl"
    line = json.dumps({"p": 0.5, "pad": "x" * 200}) + "\n"
    backlog = 30_000  # ~6.5 MB: several polls' budget (POLL_BUDGET_BYTES)
    log.write_text(line * backlog)
    pipeline, state = _pipeline(config)
    real = Engine.ingest_all
    written_after = [0]

    def still_writing(self: Engine, chunks: Sequence[bytes], now: float) -> Any:
        if written_after[0] < 100_000:  # the writer carries on while the sidecar drains
            with log.open("a") as f:
                f.write(line * 1_000)
            written_after[0] += 1_000
        return real(self, chunks, now)

    monkeypatch.setattr(Engine, "ingest_all", still_writing)
    pipeline.stop()  # stopped before the loop runs: run() goes straight to the drain
    pipeline.run()
    counted = _records(state)
    assert counted >= backlog  # everything written before the stop ...
    assert written_after[0] < 100_000  # ... and the drain ended while the writer still wrote
    assert counted < backlog + written_after[0]  # some of what came after is left unread
    assert (tmp_path / "positions.json").exists()  # checkpointed: read after a restart
