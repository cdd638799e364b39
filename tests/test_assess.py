"""Drift assessment outside the store: when it is recomputed, what it reads, what it keeps.

The statistics themselves are tested in test_drift/test_compare; here the rule: verdicts are those
of each window as it stood when the step began, kept for the whole step, recomputed only when a
window's buckets changed or the reference did, with one history point per bucket.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from exporter import assess
from exporter.assess import READ_BEFORE
from exporter.compare import compare, gaps
from exporter.config_types import Config
from exporter.engine import Engine
from exporter.offline.baseline import ProfileBuilder
from exporter.reference import Reference
from tests.configs import classifier_fields, unread_config

T0 = 1_800_000_000.0  # a multiple of every step and bucket width below


def _config(windows: list[str], buckets: int = 12) -> Config:
    fields = classifier_fields(features=[{"name": "x", "path": "x"}, {"name": "c", "path": "c"}])
    return unread_config(fields, windows=windows, window_buckets=buckets)


def _lines(rng: np.random.Generator, n: int, shift: float = 0.0) -> bytes:
    out = []
    for _ in range(n):
        record: dict[str, Any] = {
            "score": float(rng.uniform()),
            "cls": str(rng.choice(["fraud", "legit"])),
            "x": float(rng.normal(shift, 1.0)),
            "c": str(rng.choice(["a", "b", "c"])),
        }
        if rng.uniform() < 0.5:
            record["label"] = str(rng.choice(["fraud", "legit"]))
        out.append(json.dumps(record).encode() + b"\n")
    return b"".join(out)


def _reference(config: Config, seed: int = 1) -> Reference:
    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    builder.add(_lines(np.random.default_rng(seed), 3000))
    return builder.build("2025-01-01T00:00:00+00:00")


def _expected(engine: Engine, reference: Reference, at: float) -> dict[str, Any]:
    """Each window judged directly: compare() and gaps() on the window read at ``at``."""
    snapshot = engine.state.snapshot(at)
    settings = engine.config.drift
    sketch = engine.state.shape.sketch
    expected = {}
    for group in snapshot.groups:
        for view in group.windows:
            found = compare(
                view.summary, reference, snapshot.layout, snapshot.categories, sketch, settings
            )
            expected[view.spec.name] = (
                [(d.field, d.statistic, d.verdict) for d in found],
                gaps(view.summary, reference, snapshot.layout),
                view.summary.records,
            )
    return expected


def _assessed(assessment: assess.Assessment) -> dict[str, Any]:
    return {
        w.window: ([(d.field, d.statistic, d.verdict) for d in w.drift], w.gaps, w.records)
        for w in assessment.windows.values()
    }


def test_verdicts_are_those_of_each_window_when_the_step_began_and_hold_for_the_step() -> None:
    config = _config(["1m", "5m"])
    reference = _reference(config)
    engine = Engine(config, reference)
    rng = np.random.default_rng(2)
    step = engine.assessor.step
    assert step == 5.0  # 1m / 12 buckets
    checked = 0
    for i in range(40):
        now = T0 + 1.7 * i  # several arrivals per step, and steps without any
        start = math.floor(now / step) * step
        before = engine.assessor.latest
        expected = _expected(engine, reference, start - READ_BEFORE)  # before the arrival
        engine.ingest(_lines(rng, 60, shift=0.0 if i < 20 else 1.0), now)
        latest = engine.assessor.latest
        if before.at == start - READ_BEFORE:
            assert latest is before  # the same step: nothing recomputed, however much arrived
            continue
        assert latest.at == start - READ_BEFORE
        assert _assessed(latest) == expected
        checked += 1
    assert checked >= 12
    drifted = {d.field for w in engine.assessor.latest.windows.values() for d in w.drift}
    assert "x" in drifted  # the shift of x is seen, so the comparison is not vacuous
    assert any(d.verdict.drifted for d in engine.assessor.latest.window("m", "v", "1m").drift)


def test_a_window_is_judged_again_only_when_its_buckets_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _config(["1m", "5m"])
    engine = Engine(config, _reference(config))
    judged: list[float] = []
    real = assess.compare

    def counting(summary: Any, *args: Any) -> Any:
        judged.append(summary.records)
        return real(summary, *args)

    monkeypatch.setattr(assess, "compare", counting)
    # A model named in the config has its (empty) windows from the start: judged once, empty,
    # at the first look, before the records arrive.
    engine.ingest(_lines(np.random.default_rng(3), 500), T0)
    assert judged == [0, 0]
    judged.clear()
    for k in range(1, 12):  # idle steps: the records stay in both windows
        engine.advance(T0 + 5.0 * k)
    assert judged == [500, 500]  # once, at the first step after they arrived
    judged.clear()
    for k in range(12, 20):  # the 1m window's bucket ages out at T0 + 60; the 5m one stays
        engine.advance(T0 + 5.0 * k)
    assert judged == [0]
    judged.clear()
    engine.ingest(_lines(np.random.default_rng(4), 10), T0 + 5.0 * 20 + 1)
    engine.advance(T0 + 5.0 * 20 + 2)  # same step: no new judgement
    assert judged == []
    engine.advance(T0 + 5.0 * 21)
    assert sorted(judged) == [10, 510]


def test_a_new_reference_is_judged_at_once() -> None:
    config = _config(["1m"])
    engine = Engine(config, _reference(config, seed=1))
    engine.ingest(_lines(np.random.default_rng(5), 500), T0)
    first = engine.advance(T0 + 5.0)
    replacement = _reference(config, seed=7)
    engine.state.set_reference(replacement)
    second = engine.advance(T0 + 6.0)  # the same step
    assert second is not first
    assert second.reference is replacement
    assert _assessed(second) == _expected(engine, replacement, T0 + 5.0 - READ_BEFORE)
    engine.state.set_reference(None)
    assert engine.advance(T0 + 7.0).windows == {}  # no reference: nothing to say


def test_the_history_keeps_one_point_per_bucket_for_its_length() -> None:
    config = _config(["10s", "1m"], buckets=2)  # buckets of 5 s and 30 s; steps of 5 s
    engine = Engine(config, _reference(config), history_seconds=120.0)
    rng = np.random.default_rng(6)
    made: dict[float, assess.Assessment] = {}
    for k in range(60):  # five minutes, records in every step
        now = T0 + 5.0 * k + 1.0
        made[5.0 * k] = engine.advance(now)
        engine.ingest(_lines(rng, 150, shift=0.0 if k < 30 else 2.0), now)
    for window, width in (("10s", 5.0), ("1m", 30.0)):
        points = engine.assessor.history("m", "v", window)
        assert len(points) == 120 / width  # the last 120 s, one point per bucket
        times = [p.time for p in points]
        assert (
            times == [T0 + 5.0 * 59 - 5.0 * 59 % width - width * i for i in range(len(times))][::-1]
        )
        for point in points:
            assessed = made[point.time - T0].window("m", "v", window)
            assert assessed is not None
            assert point.records == assessed.records
            assert point.gaps == assessed.gaps
            assert [(d.field, d.statistic, d.value, d.threshold) for d in point.drift] == [
                (d.field, d.statistic, d.verdict.statistic, d.verdict.threshold)
                for d in assessed.drift
            ]
            assert [d.drifted for d in point.drift] == [d.verdict.drifted for d in assessed.drift]
    assert engine.assessor.history("m", "v", "5m") == []
    assert engine.assessor.history("other", "v", "10s") == []


def test_history_points_hold_the_window_quantiles_read_at_their_step() -> None:
    """The quantiles a point keeps are those of the window as it stood at the point's step:
    what the store's own snapshot gives for that instant (then clamped to min/max as on
    /metrics), for every numeric field and configured level."""
    config = _config(["10s", "1m"], buckets=2)
    engine = Engine(config, _reference(config), history_seconds=120.0)
    rng = np.random.default_rng(7)
    expected: dict[tuple[str, float], dict[str, list[float]]] = {}
    for k in range(30):
        now = T0 + 5.0 * k + 1.0
        engine.advance(now)
        snapshot = engine.state.snapshot(T0 + 5.0 * k - READ_BEFORE)
        for group in snapshot.groups:
            for view in group.windows:
                expected[(view.spec.name, T0 + 5.0 * k)] = {
                    spec.name: [
                        min(max(q, view.summary.low[f]), view.summary.high[f])
                        for q in view.quantiles[f].tolist()
                    ]
                    for f, spec in enumerate(snapshot.layout.numeric)
                    if view.summary.count[f]
                }
        engine.ingest(_lines(rng, 120, shift=0.0 if k < 15 else 3.0), now)
    checked = 0
    for window in ("10s", "1m"):
        for point in engine.assessor.history("m", "v", window):
            want = expected[(window, point.time)]
            assert set(point.quantiles) == {s.name for s in engine.state.layout.numeric}
            assert len(config.quantiles) == 3
            for name, values in want.items():
                assert list(point.quantiles[name]) == pytest.approx(values)
                checked += 1
    assert checked > 20
    shifted = engine.assessor.history("m", "v", "10s")[-1].quantiles["x"]
    assert shifted[0] > 2.0  # the median follows the shift: the points are not all alike


def test_a_failure_to_assess_exports_no_verdicts_and_ingestion_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(["1m"])
    engine = Engine(config, _reference(config))
    engine.ingest(_lines(np.random.default_rng(8), 200), T0)
    assert engine.advance(T0 + 5.0).windows

    def broken(*args: Any) -> Any:
        raise RuntimeError("an unforeseen bug")

    monkeypatch.setattr(assess, "compare", broken)
    engine.ingest(_lines(np.random.default_rng(9), 100), T0 + 6.0)
    counts = engine.ingest(_lines(np.random.default_rng(9), 100), T0 + 10.0)
    assert counts.records == 100
    assert engine.assessor.latest.windows == {}  # no stale verdicts
    assert "assessing drift failed" in caplog.text
    monkeypatch.undo()
    assert engine.advance(T0 + 15.0).window("m", "v", "1m") is not None


def test_a_scrape_during_an_assessment_reads_the_previous_one_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While a step's windows are being judged, ``latest`` is the previous step's assessment,
    never an empty one: a scrape in between once lost every drift series (they went stale in
    Prometheus and reset the alerts' for:)."""
    config = _config(["1m"])
    engine = Engine(config, _reference(config))
    engine.ingest(_lines(np.random.default_rng(8), 200), T0)
    before = engine.advance(T0 + 5.0)
    assert before.windows
    seen: list[assess.Assessment] = []
    judge = assess.Assessor._judge

    def watched(self: assess.Assessor, *args: Any) -> Any:
        seen.append(self.latest)  # what a scrape would read right now
        return judge(self, *args)

    monkeypatch.setattr(assess.Assessor, "_judge", watched)
    engine.ingest(_lines(np.random.default_rng(9), 100), T0 + 6.0)
    after = engine.advance(T0 + 10.0)
    assert seen
    assert all(latest is before for latest in seen)
    assert after is not before
    assert after.windows
