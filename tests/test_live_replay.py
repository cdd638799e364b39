"""The live loop and ``replay`` are one engine: the same log gives the same numbers.

A log of bursts (each burst's records share a timestamp, bursts 7 s apart so each falls in its own
assessment step) with drift, malformed lines, records without a timestamp and labels on their own
line, is fed to the real ``Pipeline`` tailing a file with a manual clock set to each burst's time,
and to ``Replayer`` burst by burst. At every report boundary both hold the same windows (every
count, moment, sketch bucket, category and anomaly), the same totals and join outcomes, and the
live assessment equals the drift and gaps in replay's rows; at the end, the same record and
parse-error counts.

Records stamped before an earlier burst or far in the future are left out on purpose: there the
two differ by design (replay places such a record at the latest time seen, live at its arrival;
docs/replay.md).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exporter.assess import READ_BEFORE, Assessment
from exporter.batch import UNKNOWN
from exporter.clock import ManualClock
from exporter.config import parse_config
from exporter.engine import Engine
from exporter.offline.baseline import ProfileBuilder
from exporter.offline.replay import Replayer
from exporter.offline.simulate import Scenario, generate
from exporter.pipeline import Pipeline
from exporter.state import Snapshot
from exporter.stats.window import Summary
from exporter.tail.tailer import Tailer
from tests.configs import example_config

START = 1_764_000_000.0  # a multiple of 3600
BURSTS = 700  # 7 s apart: about 80 minutes of log
PER_BURST = 24
EVERY = 60.0


def _bursts(rng: np.random.Generator) -> list[bytes]:
    """The simulator's lines regrouped into bursts, some labels moved to their own later line
    and some timestamps removed (never a burst's first record, so replay carries the burst's
    own time to them, as live places them at their arrival)."""
    lines = generate(
        BURSTS * PER_BURST,
        START,
        10.0,
        # In the simulator's own time (10 lines/s): bursts 250 to 500 drift.
        Scenario(seed=3, drift_start=600.0, drift_end=1200.0, malformed_ratio=0.03),
    )
    bursts: list[list[bytes]] = [[] for _ in range(BURSTS)]
    for i, line in enumerate(lines):
        j = i // PER_BURST
        t = START + 7.0 * j + 1.0
        try:
            record: Any = json.loads(line)
        except ValueError:
            bursts[j].append(line)  # not JSON, or cut short: stays as written
            continue
        record["ts"] = t
        if "ground_truth" in record and rng.uniform() < 0.5 and j + 3 < BURSTS:
            label = {"ts": START + 7.0 * (j + 3) + 1.0, "request_id": record["request_id"]}
            label["ground_truth"] = record.pop("ground_truth")
            bursts[j + 3].append(json.dumps(label).encode() + b"\n")
        if i % PER_BURST and rng.uniform() < 0.05:
            del record["ts"]
        bursts[j].append(json.dumps(record).encode() + b"\n")
    return [b"".join(burst) for burst in bursts]


def _assert_same_summary(live: Summary, replayed: Summary, where: str) -> None:
    for name in ("records", "labelled", "wrong", "joined", "latest"):
        assert getattr(live, name) == getattr(replayed, name), (where, name)
    for name in ("delay_total", "abs_error", "sq_error"):
        assert getattr(live, name) == getattr(replayed, name), (where, name)
    for name in ("count", "total", "deviations", "low", "high", "categories", "anomalies"):
        np.testing.assert_array_equal(getattr(live, name), getattr(replayed, name), where + name)
    if live.sketch is None or replayed.sketch is None:
        assert live.sketch is replayed.sketch is None, where
    else:
        np.testing.assert_array_equal(live.sketch, replayed.sketch, where + " sketch")


def _assert_same_snapshot(live: Snapshot, replayed: Snapshot) -> None:
    assert [(g.model, g.version) for g in live.groups] == [
        (g.model, g.version) for g in replayed.groups
    ]
    assert live.categories == replayed.categories
    for a, b in zip(live.groups, replayed.groups, strict=True):
        _assert_same_summary(a.totals, b.totals, f"{a.model} totals ")
        assert a.join_outcomes == b.join_outcomes
        np.testing.assert_array_equal(a.histogram_counts, b.histogram_counts)
        for wa, wb in zip(a.windows, b.windows, strict=True):
            _assert_same_summary(wa.summary, wb.summary, f"{a.model} {wa.spec.name} ")
            np.testing.assert_array_equal(wa.quantiles, wb.quantiles)


def _live_drift(assessment: Assessment) -> dict[tuple[str, str, str], Any]:
    return {
        key: (
            [(d.field, d.statistic, d.verdict.statistic, d.verdict.threshold) for d in w.drift],
            (w.gaps.error_ratio, w.gaps.confidence),
        )
        for key, w in assessment.windows.items()
    }


def test_live_loop_and_replay_agree_on_the_same_log(tmp_path: Path) -> None:
    log = tmp_path / "predictions.jsonl"
    log.touch()
    data = example_config(log, ground_truth_join={"enabled": True})
    config = parse_config(data)
    assert {w.name for w in config.windows} == {"1m", "5m", "1h"}  # replay adds none
    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    builder.add(b"".join(generate(5000, START - 86_400, 10.0, Scenario(seed=1))))
    reference = builder.build("2025-11-23T00:00:00+00:00")
    bursts = _bursts(np.random.default_rng(4))

    clock = ManualClock(START)
    engine = Engine(config, reference)
    pipeline = Pipeline(Tailer(config.sources, config.tail, clock), engine, clock, config.tail)
    replayer = Replayer(config, reference, every=EVERY)
    assert engine.assessor.step == 5.0
    assert EVERY % engine.assessor.step == 0

    live_drift: dict[float, dict[tuple[str, str, str], Any]] = {}
    boundary = math.floor(START / EVERY) * EVERY + EVERY
    for j, burst in enumerate(bursts):
        t = START + 7.0 * j + 1.0
        while boundary <= t:  # a report boundary passes before this burst
            clock.set(boundary)
            pipeline.step()  # nothing to read: the assessment moves on to the new step
            live_drift[boundary] = _live_drift(engine.assessor.latest)
            # Replay reports a boundary (moving its engine there, which expires the labels
            # waited for too long) once the first record after it comes; live has just passed
            # it. Move replay's engine there too, as its report will, to compare the same instant.
            replayer.engine.advance(boundary)
            _assert_same_snapshot(
                engine.state.snapshot(boundary - READ_BEFORE),
                replayer.engine.state.snapshot(boundary - READ_BEFORE),
            )
            boundary += EVERY
        clock.set(t)
        with log.open("ab") as f:
            f.write(burst)
        assert pipeline.step() == burst.count(b"\n")
        replayer.feed(burst)
    report = replayer.finish()
    clock.set(boundary)
    pipeline.step()
    live_drift[boundary] = _live_drift(engine.assessor.latest)

    # Counts: records (labels on their own line are not records) and unparseable lines (they
    # name no model: they count under __unknown__, which holds no record).
    groups = {(g.model, g.version): g for g in engine.state.snapshot(boundary).groups}
    assert groups.pop((UNKNOWN, UNKNOWN)).totals.records == 0
    (group,) = groups.values()
    assert report.records == group.totals.records
    health = pipeline.health().parse_errors
    assert report.parse_errors == {reason: n for (_, reason), n in health.items()}
    assert report.parse_errors["invalid_json"] > 0
    assert group.join_outcomes["matched"] > 100

    # Drift and gaps: replay's rows at each boundary are the live assessment at that instant.
    rows = {(r.time, r.model, r.version, r.window): r for r in report.rows}
    assert {t for t, *_ in rows} == set(live_drift)
    drifted = 0
    for t, windows in live_drift.items():
        for (model, version, window), (drift, window_gaps) in windows.items():
            row = rows[(t, model, version, window)]
            assert [(d.field, d.statistic, d.value, d.threshold) for d in row.drift] == drift
            assert (row.error_ratio_gap, row.confidence_gap) == window_gaps
            drifted += sum(d.exceeded for d in row.drift)
    assert drifted > 50  # the drift episode is seen, so the comparison is not vacuous
    # With --every a multiple of the step, a row's gap describes the same records as its window.
    for row in report.rows:
        if row.error_ratio is not None and row.error_ratio_gap is not None:
            assert reference.error_ratio is not None
            assert row.error_ratio_gap == pytest.approx(row.error_ratio / reference.error_ratio)
