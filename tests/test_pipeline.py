"""The ingest loop: what it does when something unexpected happens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from exporter.batch import Batch
from exporter.clock import ManualClock
from exporter.config import parse_config
from exporter.config_types import Config, SourceConfig
from exporter.decode import Decoder
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
    decoder = Decoder(config.fields)
    state = State(config, decoder.layout, [v.values for v in decoder.vocabularies])
    tailer = Tailer(
        [SourceConfig(s.path, start_at="beginning") for s in config.sources], config.tail, clock
    )
    return Pipeline(
        tailer, decoder, state, clock, config.tail, reference_file=reference, **kwargs
    ), state


def _records(state: State) -> int:
    return sum(g.totals.records for g in state.snapshot(1_000.0).groups)


def test_a_chunk_that_trips_an_unexpected_error_is_ingested_line_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path)
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"p": i / 10}) + "\n" for i in range(10)))
    pipeline, state = _pipeline(config)
    real = State.ingest

    def fragile(self: State, batch: Batch, now: float) -> None:
        if batch.size > 1 or (batch.size == 1 and batch.numeric[0, 0] == 0.5):
            raise RuntimeError("an unforeseen bug")
        real(self, batch, now)

    monkeypatch.setattr(State, "ingest", fragile)
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
    monkeypatch.setattr("exporter.pipeline.ReferenceChecks", cannot)
    pipeline.step()
    assert state.reference is None
    assert pipeline.health().reference_reloads == {"error": 1}
