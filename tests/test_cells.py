"""The reference's cells as counters: the same vectors compare hands to PSI and JS, the same
thresholds once Prometheus supplies n, additive across replicas, and the calibration estimate.

Oracles: ``tests/oracle.py`` (numpy on the raw values, bucket keys for the sketch's bins) and the
sidecar's own per-window verdicts, which the fleet computation must reproduce exactly.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from oracle import pool, psi, sketch_bins
from prometheus_client.parser import text_string_to_metric_families

from exporter.assess import WindowAssessment
from exporter.batch import OTHER
from exporter.cells import ReferenceCells
from exporter.compare import align
from exporter.config import parse_config
from exporter.config_types import Config
from exporter.decode import Decoder
from exporter.engine import Engine
from exporter.offline.backtest import FleetHistory
from exporter.offline.baseline import ProfileBuilder
from exporter.reference import Reference
from exporter.state import State
from exporter.stats import drift
from exporter.stats.sketch import binned_counts
from tests.harness import promtool
from tests.served import served

T0 = 1_717_000_000.0
KEPT = ["a", "b", "c", "d"]


def config(**drift_settings: Any) -> Config:
    return parse_config(
        {
            "sources": ["/var/log/p.jsonl"],
            "windows": ["1m", "1h"],
            "fields": {
                "timestamp": "ts",
                "model_name": "m",
                "model_version": "v1",
                "predicted_class": "cls",
                "confidence": {"path": "conf", "min": 0, "max": 1},
                "ground_truth": "truth",
                "features": [
                    {"name": "x", "type": "numeric"},
                    {"name": "c", "type": "categorical"},
                ],
            },
            "drift": drift_settings,
        }
    )


def records(
    rng: np.random.Generator, n: int, shift: float = 0.0, rare: bool = True
) -> list[dict[str, Any]]:
    """x lognormal (moved by ``shift`` in log space), a category with rare values folded into
    __other__ (when ``rare``), confidence from a beta, truth right with probability conf."""
    values = [*KEPT, "rare1", "rare2"] if rare else KEPT
    probs = np.array([0.4, 0.3, 0.15, 0.13, 0.01, 0.01][: len(values)])
    out = []
    for _ in range(n):
        conf = float(rng.beta(6, 2))
        cls = str(rng.choice(["yes", "no"]))
        right = rng.random() < conf
        out.append(
            {
                "ts": T0,
                "x": float(rng.lognormal(shift, 1.0)),
                "c": str(rng.choice(values, p=probs / probs.sum())),
                "conf": conf,
                "cls": cls,
                "truth": cls if right else ("no" if cls == "yes" else "yes"),
            }
        )
    return out


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def profile(cfg: Config, rows: list[dict[str, Any]]) -> Reference:
    builder = ProfileBuilder(cfg.fields, cfg.quantiles, cfg.sketch_relative_accuracy)
    builder.add(jsonl(rows))
    return builder.build("2024-01-01T00:00:00+00:00")


def sidecar(cfg: Config, reference: Reference | None) -> Engine:
    """The sidecar's engine: decode, reference checks, state, assessment."""
    return Engine(cfg, reference)


def assessed(engine: Engine, window: str) -> WindowAssessment:
    """A window as assessed at the next step (when it holds what was ingested at T0)."""
    assessment = engine.advance(T0 + engine.assessor.step)
    (found,) = [w for w in assessment.windows.values() if w.window == window]
    return found


@pytest.fixture(scope="module")
def dev() -> tuple[Config, list[dict[str, Any]], Reference]:
    cfg = config()
    rows = records(np.random.default_rng(1), 3_000)
    return cfg, rows, profile(cfg, rows)


def test_cells_are_the_vectors_compare_tests(
    dev: tuple[Config, list[dict[str, Any]], Reference],
) -> None:
    """Values beyond the development range (underflow, overflow) and unseen categories land
    in the pooled cells exactly as compare pools them."""
    cfg, _, reference = dev
    engine = sidecar(cfg, reference)
    live = records(np.random.default_rng(2), 2_000, shift=0.4)
    live[0]["x"], live[1]["x"] = 1e-6, 1e6  # below and above anything seen in development
    live[2]["c"] = "never-seen"
    engine.ingest(jsonl(live), T0)
    snapshot = engine.state.snapshot(T0)
    cells = snapshot.cells
    assert cells is not None
    assert cells.hash == reference.hash
    group = snapshot.groups[0]
    window = group.windows[1].summary  # 1h: every record
    sketch = engine.state.shape.sketch
    by_name = {f.name: (f, counts) for f, counts in zip(cells.fields, group.cells, strict=True)}
    assert set(by_name) == {"confidence", "x", "predicted_class", "c"}
    for f, spec in enumerate(snapshot.layout.numeric):
        field, counts = by_name[spec.name]
        ref = reference.numeric[spec.name]
        assert window.sketch is not None
        bins = binned_counts(sketch[f], window.sketch[f], ref.bin_edges)
        shares, expected = drift.pool_unsupported(ref.bin_shares, bins)
        np.testing.assert_array_equal(counts, expected)
        np.testing.assert_allclose(field.shares, shares, rtol=1e-12)
    for c, spec in enumerate(snapshot.layout.categorical):
        field, counts = by_name[spec.name]
        aligned = align(
            reference.categorical[spec.name].shares, window.categories[c], snapshot.categories[c]
        )
        shares, expected = drift.pool_unsupported(*aligned)
        np.testing.assert_array_equal(counts, expected)
        np.testing.assert_allclose(field.shares, shares, rtol=1e-12)
    # The raw values, binned by numpy on the sketch's bucket keys, give the same numeric cells.
    x = np.array([r["x"] for r in live])
    bins = np.bincount(sketch_bins(x, reference.numeric["x"].bin_edges, 0.01), minlength=11)
    _, expected = pool(np.asarray(reference.numeric["x"].bin_shares), bins)
    np.testing.assert_array_equal(by_name["x"][1], expected)
    assert by_name["x"][1][0] >= 1
    assert by_name["x"][1][-1] >= 1


def test_fleet_statistics_from_cells_reproduce_the_sidecar_verdicts(
    dev: tuple[Config, list[dict[str, Any]], Reference],
) -> None:
    """PSI and JS of the cell counts with threshold max(floor, factor·(1/n + 1/m)) (the
    recording rules' formula) equal each window's verdict; no verdict below the minimum."""
    cfg, _, reference = dev
    for n, shift in ((150, 0.0), (600, 0.3), (5_000, 0.0), (5_000, 0.5)):
        engine = sidecar(cfg, reference)
        live = records(np.random.default_rng(n), n, shift=shift)
        engine.ingest(jsonl(live), T0)
        snapshot = engine.state.snapshot(T0)
        assert snapshot.cells is not None
        verdicts = {(d.field, d.statistic): d.verdict for d in assessed(engine, "1h").drift}
        fleet = {t.field: t for t in engine.assessor.latest.fleet}
        assert set(fleet) == {f.name for f in snapshot.cells.fields}
        for field, counts in zip(snapshot.cells.fields, snapshot.groups[0].cells, strict=True):
            verdict = verdicts.get((field.name, field.statistic))
            part = fleet[field.name]
            assert part.statistic == field.statistic
            total = float(counts.sum())
            if total < part.required:
                assert verdict is None, (n, field.name)
                continue
            assert verdict is not None, (n, field.name)
            inv = 1 / total + 1 / field.reference_count
            if field.statistic == "psi":
                statistic = psi(field.shares, counts)
                threshold = max(part.floor, part.critical * inv)
            else:
                p, q = drift.smoothed_shares(field.shares, counts)
                statistic = drift.js_distance(p, q)
                threshold = max(part.floor, math.sqrt(part.critical * inv))
            assert statistic == pytest.approx(verdict.statistic, rel=1e-9), (n, field.name)
            assert threshold == pytest.approx(verdict.threshold, rel=1e-12), (n, field.name)


def test_counts_add_up_across_replicas(
    dev: tuple[Config, list[dict[str, Any]], Reference],
) -> None:
    """Three replicas with a third each sum to one sidecar that saw everything: what the
    recording rules rely on."""
    cfg, _, reference = dev
    live = records(np.random.default_rng(5), 3_000, shift=0.2)
    whole = sidecar(cfg, reference)
    whole.ingest(jsonl(live), T0)
    parts = []
    for r in range(3):
        engine = sidecar(cfg, reference)
        engine.ingest(jsonl(live[r::3]), T0)
        parts.append(engine.state.snapshot(T0).groups[0].cells)
    for f, counts in enumerate(whole.state.snapshot(T0).groups[0].cells):
        np.testing.assert_array_equal(sum(p[f] for p in parts), counts)


def test_counters_exist_at_zero_before_the_first_record(
    dev: tuple[Config, list[dict[str, Any]], Reference],
) -> None:
    """A model named in the config has its series from the start, so increase() across
    replicas counts its first records too."""
    cfg, _, reference = dev
    engine = sidecar(cfg, reference)
    snapshot = engine.state.snapshot(T0)
    assert [(g.model, g.version) for g in snapshot.groups] == [("m", "v1")]
    assert snapshot.groups[0].totals.records == 0
    assert [int(c.sum()) for c in snapshot.groups[0].cells] == [0, 0, 0, 0]


def test_a_new_profile_restarts_the_counters_and_the_same_one_keeps_them(
    dev: tuple[Config, list[dict[str, Any]], Reference],
) -> None:
    cfg, rows, reference = dev
    engine = sidecar(cfg, reference)
    engine.ingest(jsonl(rows[:500]), T0)
    engine.state.set_reference(profile(cfg, rows))  # rebuilt from the same data: the same hash
    assert int(engine.state.snapshot(T0).groups[0].cells[0].sum()) == 500
    other = profile(cfg, rows[:2_000])
    assert other.hash != reference.hash
    engine.state.set_reference(other)
    snapshot = engine.state.snapshot(T0)
    assert snapshot.cells is not None
    assert snapshot.cells.hash == other.hash
    assert [int(c.sum()) for c in snapshot.groups[0].cells] == [0, 0, 0, 0]
    engine.ingest(jsonl(rows[:100]), T0 + 1)
    assert int(engine.state.snapshot(T0 + 1).groups[0].cells[0].sum()) == 100


def test_categories_without_other_pool_unseen_values_into_the_last_kept_cell() -> None:
    """With nothing folded in development the other cell has no share: compare pools it into
    the last kept category, and so do the counters (named after the category they start with)."""
    cfg = config()
    reference = profile(cfg, records(np.random.default_rng(3), 2_000, rare=False))
    assert OTHER not in reference.categorical["c"].shares
    engine = sidecar(cfg, reference)
    live = records(np.random.default_rng(4), 300, rare=False)
    for row in live[:7]:
        row["c"] = "brand-new"
    engine.ingest(jsonl(live), T0)
    snapshot = engine.state.snapshot(T0)
    assert snapshot.cells is not None
    field = next(f for f in snapshot.cells.fields if f.name == "c")
    counts = snapshot.groups[0].cells[snapshot.cells.fields.index(field)]
    assert field.values == tuple(v for v in reference.categorical["c"].shares)
    last = field.values[-1]
    expected = sum(1 for r in live if r["c"] in (last, "brand-new"))
    assert counts[-1] == expected


def test_estimated_error_ratio_is_the_calibration_applied_to_the_window(
    dev: tuple[Config, list[dict[str, Any]], Reference],
) -> None:
    """numpy: each live record's confidence cell (bucket keys), the development error ratio of
    that cell from the profile's table (shrunk by one record towards the overall ratio), and
    the mean over the window."""
    cfg, rows, reference = dev
    calibration = reference.calibration
    assert calibration is not None
    assert calibration.field == "confidence"
    # The table counts the development records per bin (numpy on the raw values).
    conf = np.array([r["conf"] for r in rows])
    wrong = np.array([r["cls"] != r["truth"] for r in rows])
    edges = reference.numeric["confidence"].bin_edges
    bins = sketch_bins(conf, edges, 0.01)
    np.testing.assert_array_equal(calibration.labelled, np.bincount(bins, minlength=len(edges) + 1))
    np.testing.assert_array_equal(
        calibration.wrong, np.bincount(bins[wrong], minlength=len(edges) + 1)
    )
    engine = sidecar(cfg, reference)
    live = records(np.random.default_rng(9), 800, shift=0.0)
    engine.ingest(jsonl(live), T0)
    got = assessed(engine, "1m").estimated_error_ratio
    assert got is not None
    shares = np.asarray(reference.numeric["confidence"].bin_shares)
    _, labelled = pool(shares, np.asarray(calibration.labelled, dtype=float))
    _, wrongs = pool(shares, np.asarray(calibration.wrong, dtype=float))
    overall = wrongs.sum() / labelled.sum()
    per_cell = (wrongs + overall) / (labelled + 1)
    live_conf = np.array([r["conf"] for r in live])
    cell_of_bin = np.cumsum(shares > 0) - 1
    cells = np.maximum(cell_of_bin, 0)[sketch_bins(live_conf, edges, 0.01)]
    assert got == pytest.approx(float(per_cell[cells].mean()), rel=1e-12)
    # Calibrated by construction (truth right with probability conf): close to the truth.
    truth = float(np.mean([r["cls"] != r["truth"] for r in live]))
    assert abs(got - truth) < 0.03


def test_cells_follow_a_frozen_reference() -> None:
    """Counting starts after the record that completed ``freeze_first`` (the first 500 became
    the profile; the other 100 of that batch are counted against it)."""
    cfg = config(freeze_first=500)
    engine = sidecar(cfg, None)
    engine.ingest(jsonl(records(np.random.default_rng(6), 600)), T0)
    snapshot = engine.state.snapshot(T0)
    assert snapshot.reference is not None
    assert snapshot.cells is not None
    assert snapshot.cells.hash == snapshot.reference.hash
    engine.ingest(jsonl(records(np.random.default_rng(7), 50)), T0)
    assert int(engine.state.snapshot(T0).groups[0].cells[0].sum()) == 100 + 50


def test_build_skips_fields_the_profile_cannot_judge(
    dev: tuple[Config, list[dict[str, Any]], Reference],
) -> None:
    cfg, _, reference = dev
    decoder = Decoder(cfg.fields)
    cells = ReferenceCells.build(
        reference, decoder.layout, State(cfg, decoder.layout, [[]] * 2).shape.sketch
    )
    assert [f.name for f in cells.fields] == ["confidence", "x", "predicted_class", "c"]
    empty = reference.categorical["c"].__class__(
        count=0, missing=0, shares={}, share_count=0, vocabulary=None
    )
    cut = Reference(
        created=reference.created,
        records=reference.records,
        numeric=reference.numeric,
        categorical={**reference.categorical, "c": empty},
        hash="sha256:x",
    )
    cells = ReferenceCells.build(
        cut, decoder.layout, State(cfg, decoder.layout, [[]] * 2).shape.sketch
    )
    assert "c" not in [f.name for f in cells.fields]


def test_the_scrape_carries_every_cell_with_the_profile_hash(
    dev: tuple[Config, list[dict[str, Any]], Reference],
) -> None:
    """2 series per cell and 4 per field (docs/metrics.md), every one with the hash; numeric
    cells name their bounds, categorical ones their category; promtool accepts the scrape."""
    cfg, _, reference = dev
    engine = sidecar(cfg, reference)
    engine.ingest(jsonl(records(np.random.default_rng(12), 500)), T0)
    assessment = engine.advance(T0 + engine.assessor.step)
    text = served(lambda: engine.state.snapshot(T0), None, lambda: assessment)
    checked = promtool("check", "metrics", input=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    fleet = ("model_field_bin_records", "model_reference_bin_share")
    per_field = (
        "model_reference_drift_critical",
        "model_reference_drift_samples",
        "model_drift_floor",
        "model_drift_min_samples",
    )
    series: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        if family.name in fleet + per_field:
            series[family.name] = [s.labels for s in family.samples]
    snapshot = engine.state.snapshot(T0)
    assert snapshot.cells is not None
    cells = {f.name: f.size for f in snapshot.cells.fields}
    for name in fleet + per_field:
        assert {s["reference_hash"] for s in series[name]} == {reference.hash}, name
        per = {f: sum(1 for s in series[name] if s["field"] == f) for f in cells}
        assert per == (cells if name in fleet else dict.fromkeys(cells, 1)), name
    info = {(s["field"], s["bin"]): s for s in series["model_reference_bin_share"]}
    assert info[("x", "0")]["lower"] == "-Inf"
    assert info[("x", str(cells["x"] - 1))]["upper"] == "+Inf"
    assert info[("x", "0")].get("value", "") == ""  # empty: no label, to Prometheus
    assert [info[("c", str(b))]["value"] for b in range(cells["c"])] == [
        *reference.categorical["c"].shares
    ]
    records_total = {
        (s.labels["field"], s.labels["bin"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "model_field_bin_records"
        for s in family.samples
    }
    assert sum(v for (f, _), v in records_total.items() if f == "x") == 500


def test_the_replay_mirror_counts_each_range_like_the_rules(
    dev: tuple[Config, list[dict[str, Any]], Reference],
) -> None:
    """FleetHistory (replay's ModelFleetDrift) sees the counters at each report step, as
    scrapes (the first one after the first records): the records of the 1h range are those
    after the first sample inside it, and the statistic is numpy's PSI on exactly those."""
    cfg, _, reference = dev
    engine = sidecar(cfg, reference)
    history = FleetHistory()
    rows = records(np.random.default_rng(13), 7_200, shift=0.3)
    x = np.array([r["x"] for r in rows])
    shares = np.asarray(reference.numeric["x"].bin_shares)
    edges = reference.numeric["x"].bin_edges
    for minute in range(120):  # a record a second for two hours, a report every minute
        now = T0 + 60.0 * (minute + 1)
        engine.ingest(jsonl(rows[60 * minute : 60 * (minute + 1)]), now - 1)
        found = history.observe(now, engine.state.snapshot(now), engine.advance(now))
        stat = next((f for f in found if f.field == "x"), None)
        first = max(0, minute - 60)  # the first report (sample) in [now - 1h, now]
        counted = x[60 * (first + 1) : 60 * (minute + 1)]  # after that sample, up to now
        if len(counted) < 100:  # below drift.min_samples: no verdict
            assert stat is None, minute
            continue
        assert stat is not None, minute
        assert stat.records == len(counted)
        bins = np.bincount(sketch_bins(counted, edges, 0.01), minlength=len(edges) + 1)
        assert stat.value == pytest.approx(psi(*pool(shares, bins)), rel=1e-9)
        assert stat.reference_hash == reference.hash
