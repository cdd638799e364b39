"""The engine's failure handling: a failure at any step after decoding leaves nothing half-done.

Each test injects an unforeseen error at one step of ``Engine.apply`` (the reference checks, the
label join's matching, the state's update, the checks for a reference frozen by the batch) and
checks that the store and the join buffer are exactly as before, that the batch's records are
counted ``unprocessable``, and that the same lines go through normally once the fault is gone.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from exporter.anomaly import Kind
from exporter.batch import Batch
from exporter.compare import ReferenceChecks
from exporter.config_types import Config
from exporter.decode import Decoder
from exporter.engine import Engine
from exporter.join import LabelJoin
from exporter.offline.baseline import ProfileBuilder
from exporter.reference import Reference
from exporter.state import State
from tests.configs import classifier_fields, unread_config

T0 = 1_800_000_000.0


def _config(**extra: Any) -> Config:
    return unread_config(
        classifier_fields(request_id="id", features=[{"name": "x", "path": "x"}]),
        ground_truth_join={"enabled": True, "timeout": "10m", "capacity": 100},
        **extra,
    )


def _lines(*records: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def _prediction(i: int, x: float = 1.0) -> dict[str, Any]:
    return {"ts": T0, "id": f"r{i}", "score": 0.8, "cls": "fraud", "x": x}


def _label(i: int, label: str = "legit") -> dict[str, Any]:
    return {"ts": T0, "id": f"r{i}", "label": label}


def _reference(config: Config) -> Reference:
    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    rng = np.random.default_rng(1)
    builder.add(_lines(*(_prediction(i, float(x)) for i, x in enumerate(rng.normal(0, 1, 500)))))
    return builder.build("2025-01-01T00:00:00+00:00")


def _observed(engine: Engine) -> tuple[Any, ...]:
    """Everything a batch can change: totals, window contents, join outcomes, the buffer."""
    (group,) = engine.state.snapshot(T0).groups
    t = group.totals
    windows = [
        (w.summary.records, w.summary.labelled, w.summary.wrong, w.summary.joined)
        for w in group.windows
    ]
    assert engine.join is not None
    anomalies = t.anomalies.sum()
    return (
        t.records,
        t.labelled,
        t.wrong,
        anomalies,
        windows,
        group.join_outcomes,
        engine.join.pending,
    )


def _fail(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("an unforeseen bug")


STEPS: dict[str, tuple[type, str]] = {
    "reference checks": (ReferenceChecks, "apply"),
    "label join": (LabelJoin, "match"),
    "state update": (State, "prepare"),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_a_failure_after_decoding_applies_nothing_and_counts_the_records(
    step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config()
    engine = Engine(config, _reference(config))
    first = engine.ingest(_lines(_prediction(1), _prediction(2)), T0)
    assert (first.records, first.labels) == (2, 0)
    before = _observed(engine)

    chunk = _lines(_label(1), _prediction(3), {"not": "a record"}) + b"junk\n"
    with monkeypatch.context() as patch:
        patch.setattr(*STEPS[step], _fail)
        counts = engine.ingest(chunk, T0)
    assert counts.records == 0
    assert counts.parse_errors == {"unprocessable": 3, "invalid_json": 1}
    assert _observed(engine) == before  # the label did not take r1, r3 is not counted

    again = engine.ingest(chunk, T0)
    assert (again.records, again.labels) == (2, 1)  # r3 and the {"not": ...} record
    (group,) = engine.state.snapshot(T0).groups
    assert group.totals.records == 4
    assert group.join_outcomes == {"matched": 1}
    assert (group.totals.labelled, group.totals.wrong) == (1, 1)
    assert engine.join is not None
    assert engine.join.pending == 2  # r2 and r3 still wait


def test_a_failure_building_the_checks_of_a_frozen_reference_freezes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _config(drift={"freeze_first": 3})
    engine = Engine(config)
    engine.ingest(_lines(_prediction(1), _prediction(2)), T0)
    before = _observed(engine)
    chunk = _lines(_prediction(3, 5.0), _prediction(4, 6.0))
    with monkeypatch.context() as patch:
        patch.setattr(Engine, "_checks_for", _fail)
        counts = engine.ingest(chunk, T0)
    assert counts.parse_errors == {"unprocessable": 2}
    assert _observed(engine) == before
    assert engine.state.reference is None

    engine.ingest(chunk, T0)
    reference = engine.state.reference
    assert reference is not None
    assert reference.records == 3  # the first three records, each counted once
    assert reference.numeric["x"].mean == pytest.approx((1 + 1 + 5) / 3)
    (group,) = engine.state.snapshot(T0).groups
    assert group.totals.records == 4  # the fourth is counted, after the freeze


def test_only_decoding_is_retried_line_by_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A decode that trips on a chunk is retried per line; a line that still trips is counted
    ``unprocessable`` and the others are applied once, together."""
    config = _config()
    engine = Engine(config)
    real = Decoder.decode
    applied: list[int] = []
    real_prepare = State.prepare

    def fragile(self: Decoder, data: bytes, now: float | None = None) -> Batch:
        if data.count(b"\n") > 1 or b'"r2"' in data:
            raise RuntimeError("an unforeseen bug")
        return real(self, data, now)

    def counting(self: State, batch: Batch | None, *args: Any, **kwargs: Any) -> Any:
        applied.append(0 if batch is None else batch.size)
        return real_prepare(self, batch, *args, **kwargs)

    monkeypatch.setattr(Decoder, "decode", fragile)
    monkeypatch.setattr(State, "prepare", counting)
    counts = engine.ingest(_lines(_prediction(1), _prediction(2), _label(1), _prediction(3)), T0)
    assert counts.parse_errors == {"unprocessable": 1}
    assert (counts.records, counts.labels) == (2, 1)
    assert applied == [2]  # one update, for the lines that decoded
    (group,) = engine.state.snapshot(T0).groups
    assert group.totals.records == 2
    assert group.join_outcomes == {"matched": 1}


def test_a_chunk_no_line_of_which_decodes_is_counted_line_by_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = Engine(_config())
    monkeypatch.setattr(Decoder, "decode", _fail)
    counts = engine.ingest(_lines(_prediction(1), _prediction(2)) + b"{bad\n", T0)
    assert counts.parse_errors == {"unprocessable": 3}
    assert counts.records == 0


def test_records_and_labels_are_counted_apart() -> None:
    """Live and replay count records through this: a label on its own line is not a record."""
    engine = Engine(_config())
    counted = [
        engine.ingest(_lines(_prediction(1), _prediction(2)), T0),
        engine.ingest(_lines(_label(1), _label(9), _prediction(3)) + b"[1]\n", T0 + 1),
    ]
    assert [(c.records, c.labels) for c in counted] == [(2, 0), (1, 2)]
    assert counted[1].parse_errors == {"not_an_object": 1}
    (group,) = engine.state.snapshot(T0 + 1).groups
    assert group.totals.records == 3
    assert group.join_outcomes == {"matched": 1, "unmatched": 1}


def test_new_drift_thresholds_rebuild_the_checks_and_are_judged_at_once() -> None:
    """A config reload (SIGHUP) hands new thresholds to the engine: the next look, even within
    the same step, judges every window with them, and the per-record checks use them."""
    config = _config()
    reference = _reference(config)
    engine = Engine(config, reference)
    rng = np.random.default_rng(2)
    values = rng.normal(0, 1, 300)
    engine.ingest(_lines(*(_prediction(i, float(x)) for i, x in enumerate(values))), T0)
    before = engine.advance(T0 + 5.0).window("m", "v", "1m")
    assert before is not None
    assert max(d.verdict.threshold for d in before.drift if d.statistic == "psi") < 0.5
    x = reference.numeric["x"]
    far = x.max + 2 * (x.max - x.min)  # beyond the default range margin: out_of_range
    engine.ingest(_lines(_prediction(1000, far)), T0 + 6.0)

    engine.set_drift(replace(config.drift, psi_floor=0.5, range_margin=10.0, freeze_first=7))
    after = engine.advance(T0 + 6.0).window("m", "v", "1m")  # the same step
    assert after is not None
    assert {d.verdict.threshold for d in after.drift if d.statistic == "psi"} == {0.5}
    assert engine.config.drift.freeze_first == 0  # taken once, at start
    engine.ingest(_lines(_prediction(1001, far)), T0 + 7.0)  # inside the wider margin: outlier
    (group,) = engine.state.snapshot(T0 + 7.0).groups
    row = engine.decoder.layout.anomaly_fields.index("x")
    assert group.totals.anomalies[row, Kind.OUT_OF_RANGE] == 1
    assert group.totals.anomalies[row, Kind.OUTLIER] == 1


@pytest.mark.parametrize("named", [False, True])
def test_a_timestamp_the_config_does_not_name_is_optional(named: bool) -> None:
    """Without ``fields.timestamp`` the default path ``ts`` is used where records have it; a
    log without timestamps is then not a log whose every record misses one (that counted every
    record as a ``missing`` timestamp and fired ModelAnomalyRatioHigh). Named, it is required."""
    fields: dict[str, Any] = {"model_name": "m", "prediction": "score"}
    if named:
        fields["timestamp"] = "ts"
    engine = Engine(unread_config(fields))
    batch = engine.decode(_lines({"score": 0.5}, {"score": 0.5, "ts": T0 - 3600}), T0)
    column = batch.flags[:, engine.decoder.layout.timestamp_column].tolist()
    assert sorted(column) == ([Kind.MISSING] if named else [0]) + [Kind.LATE]


def _cutting_config() -> Config:
    """Model and version names and a category read from the log, with a short label limit."""
    fields = {
        "timestamp": "ts",
        "model": "model",
        "version": "version",
        "prediction": "score",
        "predicted_class": "cls",
        "features": [{"name": "x", "path": "x"}],
    }
    return unread_config(fields, max_label_value_bytes=16)


def test_a_chunk_retried_line_by_line_counts_its_cut_label_values_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Decoding is retried, so it must count nothing itself: a chunk whose decode fails after
    doing all its work and is then decoded line by line ends with the same counters as a clean
    one (label values cut, records, parse errors)."""
    long = "n" * 40
    records = [
        {"ts": T0, "model": long + "m", "version": long + "v", "score": 0.5, "cls": long, "x": 1},
        {"ts": T0, "model": "short", "version": "1", "score": 0.5, "cls": long + "2", "x": 2},
        {"ts": T0, "model": long + "m", "version": "1", "score": 0.5, "cls": "ok", "x": 3},
    ]
    chunk = _lines(*records) + b"{bad\n"

    clean = Engine(_cutting_config())
    clean_counts = clean.ingest(chunk, T0)

    retried = Engine(_cutting_config())
    real = Decoder.decode
    failed: list[int] = []

    def fails_once_after_decoding(self: Decoder, data: bytes, now: float | None = None) -> Batch:
        batch = real(self, data, now)  # every side effect of a whole decode happens ...
        if not failed:
            failed.append(len(data))
            raise RuntimeError("an unforeseen bug")  # ... and then it trips
        return batch

    monkeypatch.setattr(Decoder, "decode", fails_once_after_decoding)
    retried_counts = retried.ingest(chunk, T0)

    assert failed == [len(chunk)]  # the whole chunk failed once, then went line by line
    expected = {"model": 2, "version": 1, "predicted_class": 2}
    assert clean.decoder.labels_cut() == expected
    assert retried.decoder.labels_cut() == expected
    assert (retried_counts.records, retried_counts.parse_errors) == (
        clean_counts.records,
        clean_counts.parse_errors,
    )

    def totals(engine: Engine) -> list[tuple[str, str, int]]:
        groups = engine.state.snapshot(T0).groups
        return sorted((g.model, g.version, g.totals.records) for g in groups)

    assert totals(retried) == totals(clean)


def test_a_batch_that_cannot_be_applied_counts_no_cut_label_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its records are counted unprocessable and never reach a series, so what decoding cut
    in them is not counted either."""
    engine = Engine(_cutting_config())
    chunk = _lines({"ts": T0, "model": "m" * 40, "version": "1", "score": 0.5, "cls": "a"})
    with monkeypatch.context() as patch:
        patch.setattr(State, "prepare", _fail)
        engine.ingest(chunk, T0)
    assert engine.decoder.labels_cut() == {"model": 0, "version": 0, "predicted_class": 0}
    engine.ingest(chunk, T0)
    assert engine.decoder.labels_cut() == {"model": 1, "version": 0, "predicted_class": 0}


def test_waiting_predictions_expire_with_time_when_the_log_goes_quiet() -> None:
    """``timeout`` is how long a prediction waits for its label. Expiry used to run only when
    the next lines arrived, so after the last line of a quiet log (a low-traffic model, the
    night) the predictions past their timeout waited on, uncounted, for as long as the lull
    lasted. Moving time on expires them, as live (the loop's pass) and replay (its steps) do."""
    engine = Engine(_config())  # timeout 10m
    engine.ingest(_lines(_prediction(1), _prediction(2)), T0)
    engine.ingest(_lines(_prediction(3)), T0 + 300)
    assert engine.join is not None
    engine.advance(T0 + 599)
    assert engine.join.pending == 3
    engine.advance(T0 + 601)
    (group,) = engine.state.snapshot(T0 + 601).groups
    assert (engine.join.pending, group.join_outcomes) == (1, {"expired": 2})
    engine.advance(T0 + 901)
    (group,) = engine.state.snapshot(T0 + 901).groups
    assert (engine.join.pending, group.join_outcomes) == (0, {"expired": 3})
    # A label that comes after its prediction expired is unmatched, as before.
    engine.ingest(_lines(_label(1)), T0 + 902)
    (group,) = engine.state.snapshot(T0 + 902).groups
    assert group.join_outcomes == {"expired": 3, "unmatched": 1}


def test_chunks_ingested_as_one_batch_count_as_chunk_after_chunk() -> None:
    """``ingest_all`` decodes chunk by chunk and applies one batch: records, labels joined
    across the chunks (a prediction in one, its label in the next), parse errors, anomalies,
    window contents and the join's buffer all come out as when each chunk is ingested alone."""
    chunks = [
        _lines(*(_prediction(i, float(i)) for i in range(40))) + b"{bad\n",
        _lines(*(_label(i) for i in range(20)), *(_prediction(i) for i in range(40, 60))),
        b"not json\n" + _lines(*(_label(i, "fraud") for i in range(40, 50))),
        _lines({"ts": T0, "id": "r99", "score": "high", "cls": "fraud", "x": 1.0}),
    ]
    alone = Engine(_config(), _reference(_config()))
    counts_alone = [alone.ingest(chunk, T0) for chunk in chunks]
    together = Engine(_config(), _reference(_config()))
    counts = together.ingest_all(chunks, T0)

    assert counts.records == sum(c.records for c in counts_alone) == 61
    assert counts.labels == sum(c.labels for c in counts_alone) == 30
    assert counts.parse_errors == sum((c.parse_errors for c in counts_alone), Counter())
    assert sum(counts.parse_errors.values()) == 2
    assert _observed(together) == _observed(alone)
    assert len(together.decode_all(chunks, T0)) == 1  # one batch to apply
