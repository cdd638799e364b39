"""A live window against the reference: verdicts per field, aligned categories, gaps, and the
per-record reference checks — each against numpy on the same draws or a hand-made example.

The null tests draw a fresh reference and a fresh window for every seed (α is a probability over
both samples), through the same sketch path the sidecar uses.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from msgspec.structs import replace

from exporter.anomaly import Kind
from exporter.batch import OTHER, Batch, Layout
from exporter.compare import ReferenceChecks, align, compare, gaps
from exporter.config import parse_config
from exporter.config_types import DriftConfig
from exporter.decode import Decoder
from exporter.profile import build
from exporter.reference import Reference
from exporter.stats import drift
from exporter.stats.sketch import Sketches
from exporter.stats.window import Shape, Summary, summarize

CLASSES = ["yes", "no"]
COLOURS = ["red", "green", "blue", "black", "white"]
COLOUR_PROBS = np.array([0.35, 0.25, 0.2, 0.15, 0.05])
CAP = 8

CONFIG = parse_config(
    {
        "sources": ["/var/log/p.jsonl"],
        "fields": {
            "timestamp": None,
            "predicted_class": "cls",
            "confidence": "conf",
            "ground_truth": "truth",
            "features": [
                {"name": "x", "type": "numeric"},
                {"name": "y", "type": "numeric"},
                {"name": "z", "type": "numeric", "min": 0, "max": 100},
                {"name": "colour", "type": "categorical", "max_categories": CAP},
            ],
        },
    }
)
LAYOUT = Layout.from_fields(CONFIG.fields)
NUMERIC = [spec.name for spec in LAYOUT.numeric]  # confidence, x, y, z
# The Bonferroni divisor d counts tests: PSI and KS per numeric field, JS per categorical one.
TESTS = 2 * len(LAYOUT.numeric) + len(LAYOUT.categorical)
SKETCH = Sketches.unanchored(len(LAYOUT.numeric), CONFIG.sketch_relative_accuracy)
SHAPE = Shape(
    numeric=len(LAYOUT.numeric),
    categorical=len(LAYOUT.categorical),
    categories=CAP + 1,
    anomaly_fields=len(LAYOUT.anomaly_fields) + 1,
    sketch=SKETCH,
)
VOCABULARIES = [CLASSES, COLOURS]
NAMES = [[*enumerate(values), (CAP, OTHER)] for values in VOCABULARIES]


def draw(
    rng: np.random.Generator, n: int, shift: float = 0.0, scale: float = 1.0, colours: Any = None
) -> dict[str, np.ndarray]:
    """One sample of every field; ``shift``/``scale`` move x (in σ units) and y only."""
    return {
        "confidence": rng.beta(5.0, 2.0, n),
        "x": rng.normal(10.0 + 2.0 * shift, 2.0, n),
        "y": rng.lognormal(0.0, 0.5, n) * scale,
        "z": rng.uniform(40.0, 60.0, n),
        "predicted_class": rng.choice(2, size=n, p=[0.6, 0.4]),
        "colour": rng.choice(5, size=n, p=COLOUR_PROBS if colours is None else colours),
        "wrong": (rng.random(n) < 0.2).astype(np.int8),
    }


def to_batch(sample: dict[str, np.ndarray]) -> Batch:
    n = len(sample["x"])
    return Batch(
        groups=[("m", "v")],
        group=np.zeros(n, dtype=np.int64),
        numeric=np.column_stack([sample[name] for name in NUMERIC]).astype(np.float64),
        categorical=np.column_stack([sample["predicted_class"], sample["colour"]]).astype(np.int64),
        flags=np.zeros((n, len(LAYOUT.anomaly_fields)), dtype=np.int8),
        timestamp=np.full(n, np.nan),
        wrong=sample["wrong"],
    )


def summary_of(sample: dict[str, np.ndarray]) -> Summary:
    return summarize(to_batch(sample), None, SHAPE)


def reference_of(sample: dict[str, np.ndarray]) -> Reference:
    return build(summary_of(sample), LAYOUT, NAMES, SKETCH, CONFIG.quantiles, "2024-01-01")


def verdicts(summary: Summary, reference: Reference, settings: DriftConfig) -> dict[Any, Any]:
    found = compare(summary, reference, LAYOUT, NAMES, SKETCH, settings)
    return {(f.field, f.statistic): f.verdict for f in found}


# --- no drift when nothing changed -------------------------------------------------------------


def null_rates(settings: DriftConfig, seeds: int, n: int, m: int) -> tuple[int, dict[Any, int]]:
    windows_flagged = 0
    per_test: dict[Any, int] = {}
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        reference = reference_of(draw(rng, m))
        found = verdicts(summary_of(draw(rng, n)), reference, settings)
        assert len(found) == 2 * len(NUMERIC) + len(VOCABULARIES)
        flagged = [key for key, v in found.items() if v.drifted]
        windows_flagged += bool(flagged)
        for key in flagged:
            per_test[key] = per_test.get(key, 0) + 1
    return windows_flagged, per_test


def binomial_upper(trials: int, rate: float, z: float = 3.1) -> float:
    """An upper bound for a count of events with probability ``rate`` (normal approximation at
    about the 10⁻³ tail, plus one for small counts)."""
    return trials * rate + z * np.sqrt(trials * rate * (1 - rate)) + 1


def test_identical_distributions_stay_under_the_bonferroni_bound() -> None:
    """Critical values alone (floors 0), α = 0.05: each of the T tests of a window runs at α/T,
    so a window is flagged with probability at most α, and one test at most α/T."""
    alpha, seeds = 0.05, 300
    settings = DriftConfig(alpha=alpha, psi_floor=0.0, ks_floor=0.0, js_floor=0.0)
    flagged, per_test = null_rates(settings, seeds, n=1_000, m=5_000)
    assert flagged <= binomial_upper(seeds, alpha), (flagged, per_test)
    for statistic, count in (("psi", len(NUMERIC)), ("ks", len(NUMERIC)), ("js", 2)):
        family = sum(c for (_, s), c in per_test.items() if s == statistic)
        assert family <= binomial_upper(seeds, count * alpha / TESTS), (statistic, per_test)
    for key, count in per_test.items():
        assert count <= binomial_upper(seeds, alpha / TESTS), (key, per_test)


def test_default_floors_keep_identical_windows_quiet() -> None:
    flagged, per_test = null_rates(DriftConfig(), seeds=150, n=2_000, m=5_000)
    assert flagged <= binomial_upper(150, 0.01), per_test


# --- drift when something changed --------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "drifted"),
    [
        ({"shift": 0.5}, {"x"}),
        ({"scale": 1.5}, {"y"}),
        ({"colours": [0.1, 0.25, 0.2, 0.15, 0.3]}, {"colour"}),
    ],
)
def test_a_changed_field_drifts_and_the_others_do_not(
    change: dict[str, Any], drifted: set[str]
) -> None:
    for seed in range(5):
        rng = np.random.default_rng(seed)
        reference = reference_of(draw(rng, 10_000))
        found = verdicts(summary_of(draw(rng, 3_000, **change)), reference, DriftConfig())
        assert {field for (field, _), v in found.items() if v.drifted} == drifted, found
        for (field, _), verdict in found.items():
            if field in drifted:
                assert verdict.statistic > verdict.threshold


def test_threshold_is_the_critical_value_at_alpha_over_the_test_count() -> None:
    rng = np.random.default_rng(2)
    reference = reference_of(draw(rng, 5_000))
    n = 400
    found = verdicts(summary_of(draw(rng, n)), reference, DriftConfig(ks_floor=0.0))
    ks = found[("x", "ks")]
    assert ks.critical == pytest.approx(drift.ks_critical(n, 5_000, 0.01, TESTS))
    assert ks.threshold == ks.critical
    found = verdicts(summary_of(draw(rng, 20_000)), reference, DriftConfig())
    assert found[("x", "ks")].threshold == 0.05  # the floor wins in a large window
    assert found[("x", "psi")].threshold == 0.1


def test_unseen_category_counts_as_drift() -> None:
    rng = np.random.default_rng(9)
    reference = reference_of(draw(rng, 10_000))
    live = draw(rng, 2_000)
    live["colour"][:400] = 5  # a code the reference never named
    names = [NAMES[0], [*enumerate([*COLOURS, "purple"]), (CAP, OTHER)]]
    found = compare(summary_of(live), reference, LAYOUT, names, SKETCH, DriftConfig())
    js = {f.field: f.verdict for f in found if f.statistic == "js"}
    assert js["colour"].drifted
    assert not js["predicted_class"].drifted


def test_align_puts_unseen_values_in_the_other_cell() -> None:
    ref_shares = {"a": 0.5, "b": 0.3, OTHER: 0.2}
    names = [(0, "zz"), (1, "b"), (2, "a"), (3, "q"), (4, OTHER)]
    live = np.array([7, 11, 13, 17, 19])
    ref, counts = align(ref_shares, live, names)
    np.testing.assert_array_equal(ref, [0.5, 0.3, 0.2])
    np.testing.assert_array_equal(counts, [13, 11, 7 + 17 + 19])


def test_align_keeps_reference_categories_absent_from_the_window() -> None:
    ref_shares = {"a": 0.4, "b": 0.35, "c": 0.25}
    ref, counts = align(ref_shares, np.array([50, 0, 0]), [(0, "a"), (1, "b"), (2, OTHER)])
    np.testing.assert_array_equal(ref, [0.4, 0.35, 0.25, 0.0])
    np.testing.assert_array_equal(counts, [50, 0, 0, 0])
    rng = np.random.default_rng(4)
    reference = reference_of(draw(rng, 10_000))
    live = draw(rng, 1_000, colours=[0.5, 0.5, 0.0, 0.0, 0.0])  # blue, black, white vanish
    found = verdicts(summary_of(live), reference, DriftConfig())
    assert found[("colour", "js")].drifted


# --- nothing to say ----------------------------------------------------------------------------


def test_empty_window_gives_no_verdict_and_no_gap() -> None:
    reference = reference_of(draw(np.random.default_rng(1), 5_000))
    empty = Summary.empty(SHAPE)
    assert compare(empty, reference, LAYOUT, NAMES, SKETCH, DriftConfig()) == []
    got = gaps(empty, reference, LAYOUT)
    assert got.error_ratio is None
    assert got.confidence is None


def test_window_below_min_samples_gives_no_verdict() -> None:
    rng = np.random.default_rng(1)
    reference = reference_of(draw(rng, 5_000))
    assert verdicts(summary_of(draw(rng, 99)), reference, DriftConfig(min_samples=100)) == {}
    assert verdicts(summary_of(draw(rng, 100)), reference, DriftConfig(min_samples=100))


def test_all_missing_field_is_left_out_and_the_others_judged() -> None:
    rng = np.random.default_rng(6)
    reference = reference_of(draw(rng, 5_000))
    live = draw(rng, 1_000)
    live["y"] = np.full(1_000, np.nan)
    found = verdicts(summary_of(live), reference, DriftConfig())
    assert {field for field, _ in found} == {*NUMERIC, *("predicted_class", "colour")} - {"y"}


def test_fields_the_reference_does_not_know_are_skipped() -> None:
    rng = np.random.default_rng(6)
    reference = reference_of(draw(rng, 5_000))
    trimmed = replace(reference, numeric={k: v for k, v in reference.numeric.items() if k != "x"})
    found = compare(summary_of(draw(rng, 1_000)), trimmed, LAYOUT, NAMES, SKETCH, DriftConfig())
    assert "x" not in {f.field for f in found}
    ks = next(f.verdict for f in found if f.field == "y" and f.statistic == "ks")
    assert ks.critical == pytest.approx(drift.ks_critical(1_000, 5_000, 0.01, TESTS - 2))


# --- gaps --------------------------------------------------------------------------------------


def test_gaps_are_production_over_development() -> None:
    rng = np.random.default_rng(12)
    dev = draw(rng, 5_000)
    reference = reference_of(dev)
    live = draw(rng, 1_000)
    live["wrong"] = (rng.random(1_000) < 0.35).astype(np.int8)
    live["confidence"] = live["confidence"] * 0.8
    got = gaps(summary_of(live), reference, LAYOUT)
    assert got.error_ratio == pytest.approx(live["wrong"].mean() / dev["wrong"].mean())
    assert got.confidence == pytest.approx(live["confidence"].mean() / dev["confidence"].mean())


def test_gaps_are_none_without_labels_or_a_development_error_ratio() -> None:
    rng = np.random.default_rng(12)
    reference = reference_of(draw(rng, 5_000))
    live = draw(rng, 500)
    live["wrong"] = np.full(500, -1, dtype=np.int8)  # no ground truth in the window
    assert gaps(summary_of(live), reference, LAYOUT).error_ratio is None
    live = draw(rng, 500)
    for dev_error in (None, 0.0):
        got = gaps(summary_of(live), replace(reference, error_ratio=dev_error), LAYOUT)
        assert got.error_ratio is None
        assert got.confidence is not None


# --- reference checks --------------------------------------------------------------------------


def _lines(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _expected_numeric_flags(
    values: np.ndarray, ref: Any, bounded: bool, settings: DriftConfig
) -> np.ndarray:
    """The rule written out with numpy: outside the reference range plus margin (only without
    configured bounds) is out_of_range; else |z| > k is an outlier; NaN stays missing."""
    expected = np.zeros(values.size, dtype=np.int8)
    margin = settings.range_margin * (ref.max - ref.min)
    outside = (
        np.zeros(values.size, dtype=bool)
        if bounded
        else ((values < ref.min - margin) | (values > ref.max + margin))
    )
    beyond = (values < ref.min) | (values > ref.max)  # only values development never reached
    far = ~outside & beyond & (np.abs(values - ref.mean) > settings.outlier_z * ref.stddev)
    expected[outside] = Kind.OUT_OF_RANGE
    expected[far] = Kind.OUTLIER
    expected[np.isnan(values)] = Kind.MISSING
    return expected


@pytest.mark.parametrize("live_values_first", [False, True])
def test_reference_checks_flag_like_an_independent_computation(live_values_first: bool) -> None:
    rng = np.random.default_rng(31)
    dev = draw(rng, 5_000)
    reference = reference_of(dev)
    settings = DriftConfig(outlier_z=2.5, range_margin=0.1)
    n = 3_000
    x = rng.normal(10.0, 5.0, n)
    x[::50] = np.nan
    z = rng.uniform(0.0, 100.0, n)  # inside the configured bounds, far outside the reference
    colours = rng.choice([*COLOURS, "purple", "teal"], size=n)
    records = [
        {
            "x": None if np.isnan(x[i]) else float(x[i]),
            "y": 1.0,
            "z": float(z[i]),
            "conf": 0.7,
            "cls": "yes",
            "colour": str(colours[i]),
        }
        for i in range(n)
    ]
    decoder = Decoder(CONFIG.fields)
    if live_values_first:  # codes handed out before the profile was loaded
        decoder.decode(_lines([{"colour": "teal"}, {"colour": "red"}]))
    checks = ReferenceChecks(reference, LAYOUT, decoder.vocabularies, settings)
    batch = decoder.decode(_lines(records))
    checks.apply(batch)

    column = {name: i for i, name in enumerate(LAYOUT.anomaly_fields)}
    got_x = batch.flags[:, column["x"]]
    np.testing.assert_array_equal(
        got_x, _expected_numeric_flags(x, reference.numeric["x"], False, settings)
    )
    got_z = batch.flags[:, column["z"]]
    np.testing.assert_array_equal(
        got_z, _expected_numeric_flags(z, reference.numeric["z"], True, settings)
    )
    assert (got_z == Kind.OUTLIER).any()
    assert not (got_z == Kind.OUT_OF_RANGE).any()
    assert (got_x == Kind.OUT_OF_RANGE).any()
    assert (got_x == Kind.OUTLIER).any()
    unseen = np.isin(colours, ["purple", "teal"])
    np.testing.assert_array_equal(batch.flags[:, column["colour"]] == Kind.UNSEEN_CATEGORY, unseen)
    # Flagged values stay in the statistics: surprising, not invalid.
    assert np.count_nonzero(~np.isnan(batch.numeric[:, NUMERIC.index("x")])) == np.count_nonzero(
        ~np.isnan(x)
    )


def test_reference_checks_keep_the_first_kind_a_value_was_given() -> None:
    reference = reference_of(draw(np.random.default_rng(3), 5_000))
    decoder = Decoder(CONFIG.fields)
    checks = ReferenceChecks(reference, LAYOUT, decoder.vocabularies, DriftConfig())
    column = {name: i for i, name in enumerate(LAYOUT.anomaly_fields)}
    z, x = column["z"], column["x"]
    for record, z_kind, x_kind in (
        ({"z": 150.0, "x": "abc"}, Kind.OUT_OF_RANGE, Kind.NOT_A_NUMBER),
        ({"z": -3, "x": 1e9}, Kind.OUT_OF_RANGE, Kind.OUT_OF_RANGE),
        ({"y": 1.0}, Kind.MISSING, Kind.MISSING),
    ):
        batch = decoder.decode(_lines([record]))
        before = batch.flags.copy()
        checks.apply(batch)
        # configured bounds and decoding kinds come first; the reference adds only to x's 1e9
        assert batch.flags[0, z] == before[0, z] == z_kind, record
        assert batch.flags[0, x] == x_kind, record


def test_constant_reference_field_flags_any_other_value_as_out_of_range() -> None:
    rng = np.random.default_rng(3)
    dev = draw(rng, 1_000)
    dev["y"] = np.full(1_000, 2.0)
    reference = reference_of(dev)
    decoder = Decoder(CONFIG.fields)
    checks = ReferenceChecks(reference, LAYOUT, decoder.vocabularies, DriftConfig())
    batch = decoder.decode(_lines([{"y": 2.0}, {"y": 2.5}]))
    checks.apply(batch)
    y = LAYOUT.anomaly_fields.index("y")
    assert list(batch.flags[:, y]) == [0, Kind.OUT_OF_RANGE]
