"""The reference profile: built from a development log, checked against numpy on the same values.

The profile's bins and CDF are computed from a sketch, so the oracle for them is numpy on the
raw values, with tolerances derived from the sketch's own bucket widths (the mass of the bucket
holding an edge), never from the profile code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from exporter.batch import OTHER
from exporter.config import parse_config
from exporter.config_types import Config
from exporter.engine import Engine
from exporter.errors import ConfigError
from exporter.offline.baseline import ProfileBuilder
from exporter.offline.replay import Replayer
from exporter.profile import BINS
from exporter.reference import (
    FORMAT,
    FORMAT_VERSION,
    Reference,
    check_compatible,
    load,
    parse,
)
from exporter.stats.sketch import SketchLayout
from tests.configs import unread_data

QUANTILES = [0.1, 0.5, 0.9, 0.99]
CATEGORIES = ["rare1", "rare2", "a", "b", "c", "d", "e"]
CAT_PROBS = [0.005, 0.005, 0.35, 0.25, 0.2, 0.12, 0.07]


def config(**overrides: Any) -> Config:
    raw: dict[str, Any] = {
        "sources": ["/var/log/p.jsonl"],
        "quantiles": QUANTILES,
        "fields": {**_timed_fields(), "timestamp": None},
    }
    raw.update(overrides)
    return parse_config(raw)


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def dev_records(
    rng: np.random.Generator, n: int, x: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """Lognormal x (continuous, wide in log space), integer k (ties), categories with the rare
    ones written first so "first seen" and "most frequent" differ."""
    xs = rng.lognormal(0.0, 1.0, n) if x is None else x
    ks = rng.poisson(2.0, n)
    cats = rng.choice(CATEGORIES[2:], size=n, p=np.array(CAT_PROBS[2:]) / sum(CAT_PROBS[2:]))
    rare = int(n * 0.01)
    cats[:rare] = rng.choice(CATEGORIES[:2], size=rare)
    records = []
    for i in range(n):
        cls = str(rng.choice(["yes", "no"]))
        truth = cls if rng.random() > 0.2 else ("no" if cls == "yes" else "yes")
        record: dict[str, Any] = {"x": float(xs[i]), "k": int(ks[i]), "c": str(cats[i])}
        record.update(cls=cls, truth=truth)
        records.append(record)
    return records


def profile(records: list[dict[str, Any]], cfg: Config | None = None, **build: Any) -> Reference:
    cfg = cfg or config()
    builder = ProfileBuilder(cfg.fields, cfg.quantiles, cfg.sketch_relative_accuracy)
    data = jsonl(records)
    half = len(data) // 2
    cut = data.rfind(b"\n", 0, half) + 1  # two chunks: the profile must not depend on chunking
    builder.add(data[:cut])
    builder.add(data[cut:])
    return builder.build(build.get("created", "2024-01-01T00:00:00+00:00"), build.get("source"))


def bucket_mass(values: np.ndarray, sketch: SketchLayout, edge: float) -> float:
    """Share of the values in the sketch bucket that holds ``edge``: how far a bin boundary
    moved to the bucket's start can shift a bin share."""
    idx = sketch.index(values)
    return float(np.mean(idx == sketch.index(np.asarray([edge]))[0]))


@pytest.fixture(scope="module")
def dev() -> tuple[list[dict[str, Any]], Reference]:
    records = dev_records(np.random.default_rng(11), 20_000)
    return records, profile(records)


# --- moments and quantiles ---------------------------------------------------------------------


def test_moments_match_numpy(dev: tuple[list[dict[str, Any]], Reference]) -> None:
    records, ref = dev
    assert ref.records == len(records)
    for name in ("x", "k"):
        values = np.array([r[name] for r in records], dtype=np.float64)
        got = ref.numeric[name]
        assert got.count == values.size
        assert got.missing == 0
        assert got.mean == pytest.approx(values.mean(), rel=1e-9)
        assert got.stddev == pytest.approx(values.std(), rel=1e-6)
        assert got.min == values.min()
        assert got.max == values.max()


def test_quantiles_within_the_sketch_bound(dev: tuple[list[dict[str, Any]], Reference]) -> None:
    records, ref = dev
    for name in ("x", "k"):
        values = np.array([r[name] for r in records], dtype=np.float64)
        got = ref.numeric[name].quantiles
        assert sorted(got) == sorted(f"{q:g}" for q in QUANTILES)
        for q in QUANTILES:
            truth = float(np.quantile(values, q, method="lower"))
            assert abs(got[f"{q:g}"] - truth) <= 0.01 * abs(truth) + 1e-12, (name, q)


def test_error_ratio_and_labels_match_the_records(
    dev: tuple[list[dict[str, Any]], Reference],
) -> None:
    records, ref = dev
    wrong = sum(r["cls"] != r["truth"] for r in records)
    assert ref.labelled == len(records)
    assert ref.error_ratio == pytest.approx(wrong / len(records))


def test_missing_values_are_counted_not_binned() -> None:
    rng = np.random.default_rng(3)
    records = dev_records(rng, 2_000)
    for r in records[::4]:
        del r["x"]
    ref = profile(records)
    present = np.array([r["x"] for r in records if "x" in r])
    assert ref.numeric["x"].count == present.size
    assert ref.numeric["x"].missing == len(records) - present.size
    assert ref.numeric["x"].mean == pytest.approx(present.mean(), rel=1e-9)


# --- bins and CDF ------------------------------------------------------------------------------


def test_bins_are_equal_frequency_on_continuous_data(
    dev: tuple[list[dict[str, Any]], Reference],
) -> None:
    records, ref = dev
    x = np.array([r["x"] for r in records])
    got = ref.numeric["x"]
    sketch = SketchLayout(ref.sketch_relative_accuracy).anchored_on(x)
    shares = np.asarray(got.bin_shares)
    assert shares.sum() == pytest.approx(1.0, abs=1e-12)
    assert len(shares) == len(got.bin_edges) + 1
    assert len(shares) == BINS + 2  # underflow, 10 bins, overflow
    assert shares[0] == 0.0  # nothing below the development minimum
    assert shares[-1] == 0.0  # nothing beyond it: the overflow bin is for live surprises
    worst_bucket = max(bucket_mass(x, sketch, e) for e in got.bin_edges)
    assert np.all(np.abs(shares[1:-1] - 0.1) <= 2 * worst_bucket + 1e-9), shares
    # Against numpy's histogram on the raw values with the same edges: each edge can move by
    # at most the bucket that holds it.
    raw = np.histogram(x, bins=[-np.inf, *got.bin_edges, np.inf])[0] / x.size
    for i in range(len(shares)):
        edges = got.bin_edges[max(i - 1, 0) : i + 1]
        slack = sum(bucket_mass(x, sketch, e) for e in edges)
        assert abs(shares[i] - raw[i]) <= slack + 1e-9, (i, shares[i], raw[i])


def test_cdf_matches_the_empirical_cdf(dev: tuple[list[dict[str, Any]], Reference]) -> None:
    records, ref = dev
    x = np.sort(np.array([r["x"] for r in records]))
    got = ref.numeric["x"]
    sketch = SketchLayout(ref.sketch_relative_accuracy).anchored_on(x)
    assert got.cdf_points == sorted(set(got.cdf_points))
    assert len(got.cdf_points) >= 95  # 99 percentiles, barely any tie on continuous data
    ecdf = np.searchsorted(x, got.cdf_points, side="right") / x.size
    for point, value, exact in zip(got.cdf_points, got.cdf_values, ecdf, strict=True):
        assert abs(value - exact) <= bucket_mass(x, sketch, point) + 1e-9
    assert np.all(np.diff(got.cdf_values) >= 0)


def test_tied_values_collapse_bins_to_the_distinct_values(
    dev: tuple[list[dict[str, Any]], Reference],
) -> None:
    records, ref = dev
    k = np.array([r["k"] for r in records], dtype=np.float64)
    got = ref.numeric["k"]
    assert got.bin_edges == sorted(set(got.bin_edges))
    distinct = np.unique(k)
    # Each integer sits in its own sketch bucket, so bins hold whole values: every bin share is
    # the exact frequency of the values in it, and no bin is empty between min and max.
    shares = np.asarray(got.bin_shares)
    assert shares.sum() == pytest.approx(1.0, abs=1e-12)
    assert shares[0] == 0.0
    assert shares[-1] == 0.0
    assert np.all(shares[1:-1] > 0)
    assert len(got.bin_edges) - 1 <= min(distinct.size, BINS + 1)
    # Bins are unions of whole values: every cumulative share is the exact share of values
    # below one of the distinct values (or of all of them).
    below = {0.0, 1.0} | {float(np.mean(k < v)) for v in distinct}
    for cumulative in np.cumsum(shares):
        assert min(abs(cumulative - b) for b in below) <= 1e-9, cumulative
    for edge in got.bin_edges[1:-1]:
        # a development value, to the sketch's relative accuracy
        assert np.min(np.abs(distinct - edge) - 0.01 * np.abs(distinct)) <= 1e-12, edge
    # A CDF point is a sketch value (within 1 % of a development value v); its CDF value is the
    # share in buckets up to the point's, which for whole numbers is exactly P(k <= v).
    nearest = distinct[[int(np.argmin(np.abs(distinct - p))) for p in got.cdf_points]]
    np.testing.assert_allclose(got.cdf_points, nearest, rtol=0.01, atol=1e-9)
    np.testing.assert_allclose(got.cdf_values, [np.mean(k <= v) for v in nearest], atol=1e-12)


def test_constant_data_gives_one_bin_and_a_point_mass() -> None:
    records = dev_records(np.random.default_rng(5), 500, x=np.full(500, 7.25))
    got = profile(records).numeric["x"]
    assert got.stddev == 0.0
    assert got.min == got.max == 7.25
    assert got.bin_shares == [0.0, 1.0, 0.0]
    assert abs(got.bin_edges[0] - 7.25) <= 0.01 * 7.25
    assert got.bin_edges[0] < 7.25 * 1.01 < got.bin_edges[1]
    assert got.cdf_values == [1.0] * len(got.cdf_points)
    for value in got.quantiles.values():
        assert abs(value - 7.25) <= 0.01 * 7.25


def test_zeros_and_negatives_are_binned_like_numpy() -> None:
    rng = np.random.default_rng(8)
    x = np.concatenate([np.zeros(3_000), rng.normal(-5, 2, 3_000), rng.exponential(3, 4_000)])
    rng.shuffle(x)
    ref = profile(dev_records(rng, x.size, x=x))
    got = ref.numeric["x"]
    sketch = SketchLayout(ref.sketch_relative_accuracy).anchored_on(x)
    shares = np.asarray(got.bin_shares)
    assert shares.sum() == pytest.approx(1.0, abs=1e-12)
    raw = np.histogram(x, bins=[-np.inf, *got.bin_edges, np.inf])[0] / x.size
    for i in range(len(shares)):
        edges = got.bin_edges[max(i - 1, 0) : i + 1]
        slack = sum(bucket_mass(x, sketch, e) for e in edges)
        assert abs(shares[i] - raw[i]) <= slack + 1e-9, (i, shares[i], raw[i])
    # The zero tie (30 %) is one bin, not three empty ones.
    zero_bins = [
        i for i in range(len(got.bin_edges) - 1) if got.bin_edges[i] <= 0 < got.bin_edges[i + 1]
    ]
    assert len(zero_bins) == 1
    assert shares[zero_bins[0] + 1] >= 0.3


# --- categories --------------------------------------------------------------------------------


def test_categories_keep_the_most_frequent_and_fold_the_rest(
    dev: tuple[list[dict[str, Any]], Reference],
) -> None:
    """The kept set is chosen on one random half and the shares measured on the other: each
    share is a half-sample estimate of the full-data share."""
    records, ref = dev
    values, counts = np.unique([r["c"] for r in records], return_counts=True)
    order = np.argsort(-counts)
    top = [str(values[i]) for i in order[:3]]
    got = ref.categorical["c"]
    assert got.count == len(records)
    assert abs(got.share_count - len(records) / 2) <= 4 * np.sqrt(len(records) / 4)
    assert set(got.shares) == {*top, OTHER}
    full = {str(v): c / len(records) for v, c in zip(values, counts, strict=True)}
    rest = counts[order[3:]].sum() / len(records)
    for value, share in [*((v, full[v]) for v in top), (OTHER, rest)]:
        tolerance = 4 * np.sqrt(share * (1 - share) / got.share_count)
        assert abs(got.shares[value] - share) <= tolerance, (value, got.shares[value], share)
    assert sum(got.shares.values()) == pytest.approx(1.0)
    assert got.vocabulary == sorted(full)  # every development value, for unseen_category


def test_predicted_class_shares_match_the_records(
    dev: tuple[list[dict[str, Any]], Reference],
) -> None:
    records, ref = dev
    got = ref.categorical["predicted_class"]
    yes = sum(r["cls"] == "yes" for r in records) / len(records)
    assert got.shares == pytest.approx({"yes": yes, "no": 1 - yes}, abs=0.02)
    assert OTHER not in got.shares
    assert got.vocabulary == ["no", "yes"]


# --- serialisation and hash --------------------------------------------------------------------


def test_round_trip_through_json_is_exact(dev: tuple[list[dict[str, Any]], Reference]) -> None:
    _, ref = dev
    text = ref.to_json()
    body = json.loads(text)
    assert body["format"] == FORMAT
    assert body["format_version"] == FORMAT_VERSION
    assert body["hash"] == ref.hash == ref.content_hash()
    assert parse(text) == ref


def test_hash_is_stable_across_rebuilds_and_follows_the_content() -> None:
    records = dev_records(np.random.default_rng(21), 3_000)
    first = profile(records, created="2024-01-01T00:00:00+00:00", source={"path": "/a"})
    again = profile(records, created="2025-06-01T12:00:00+00:00", source={"path": "/b"})
    assert first.hash == again.hash
    assert first.hash.startswith("sha256:")
    changed = [dict(r) for r in records]
    changed[0]["x"] = changed[0]["x"] + 1.0
    assert profile(changed).hash != first.hash
    other_quantiles = profile(records, config(quantiles=[0.5]))
    assert other_quantiles.hash != first.hash


def _edited(ref: Reference, edit: Any) -> str:
    body = json.loads(ref.to_json())
    edit(body)
    return json.dumps(body)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda b: b.update(format="something/else"), "reference.format"),
        (lambda b: b.update(format_version=99), "reference.format_version"),
        (lambda b: b.pop("records"), "records"),
        (lambda b: b["numeric"]["x"].pop("bin_edges"), "bin_edges"),
        (lambda b: b["numeric"]["x"]["bin_shares"].pop(), "reference.numeric.x.bin_shares"),
        (lambda b: b["numeric"]["x"]["cdf_values"].pop(), "reference.numeric.x.cdf_values"),
        (lambda b: b["numeric"]["x"]["bin_edges"].reverse(), "reference.numeric.x.bin_edges"),
        (lambda b: b["numeric"]["x"].update(mean=123.0), "reference.hash"),
        (lambda b: b["categorical"]["c"].pop("shares"), "shares"),
        # Wrong types are refused here, never found later by the code that uses them.
        (lambda b: b["numeric"]["x"]["bin_edges"].append("x"), "reference.numeric.x.bin_edges"),
        (lambda b: b["numeric"]["x"].update(min="abc"), "reference.numeric.x.min"),
        (lambda b: b["numeric"]["x"].update(stddev=None), "reference.numeric.x.stddev"),
        (lambda b: b["numeric"]["x"]["quantiles"].update(bad="q"), "reference.numeric.x.quantiles"),
        (lambda b: b["categorical"]["c"]["shares"].update(z=7), "reference.categorical.c.shares"),
        (lambda b: b.update(error_ratio="high"), "reference.error_ratio"),
        (lambda b: b.update(numeric=[1]), "reference.numeric"),
        (lambda b: b["numeric"]["x"]["bin_shares"].__setitem__(0, 1.5), "numeric.x.bin_shares"),
        (lambda b: b["numeric"]["x"].update(count=-1), "reference.numeric.x.count"),
        (lambda b: b["numeric"]["x"].update(surprise=1), "reference.numeric.x: Object contains"),
        (lambda b: b["categorical"]["c"].update(vocabulary=[1]), "categorical.c.vocabulary"),
        (lambda b: b.update(labelled=2.5), "reference.labelled"),
    ],
)
def test_parse_refuses_bad_profiles_naming_the_key(
    dev: tuple[list[dict[str, Any]], Reference], edit: Any, expected: str
) -> None:
    _, ref = dev
    with pytest.raises(ConfigError) as raised:
        parse(_edited(ref, edit))
    assert any(expected in problem for problem in raised.value.problems), raised.value.problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object"), ("", "not valid JSON")],
)
def test_parse_refuses_what_is_not_a_profile(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(text, "ref.json")
    assert raised.value.problems[0].startswith("ref.json")
    assert expected in raised.value.problems[0]


def test_a_profile_of_the_previous_format_is_refused_with_the_way_out(
    dev: tuple[list[dict[str, Any]], Reference],
) -> None:
    _, ref = dev
    old = _edited(ref, lambda b: b.update(format_version=1))
    with pytest.raises(ConfigError) as raised:
        parse(old, "ref.json")
    assert raised.value.problems == [
        "ref.json.format_version: is 1, this sidecar reads 2 "
        "(rebuild the profile with `model-exporter baseline`)"
    ]


def test_load_names_an_unreadable_file(tmp_path: Any) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as raised:
        load(missing)
    assert str(missing) in raised.value.problems[0]


# --- freezing the first production records -----------------------------------------------------


def test_freeze_first_turns_the_first_records_into_the_reference() -> None:
    cfg = config(drift={"freeze_first": 200})
    engine = Engine(cfg)
    records = dev_records(np.random.default_rng(4), 300)
    engine.ingest(jsonl(records[:150]), 1000.0)
    assert engine.state.reference is None
    engine.ingest(jsonl(records[150:]), 1001.0)
    reference = engine.state.reference
    assert reference is not None
    assert reference.records == 200  # exactly the count, though the batch held 300
    x = np.array([r["x"] for r in records[:200]])
    assert reference.numeric["x"].mean == pytest.approx(x.mean(), rel=1e-9)
    (group,) = engine.state.snapshot(1001.0).groups
    assert group.totals.records == 300  # the records after the count are counted as usual


def test_freeze_first_takes_the_first_records_in_log_order_from_a_backlog() -> None:
    """One batch of 3,000 records (a backlog read at start) freezes its first 500 lines' records:
    label-only lines are no records, and lines the decoder reads leniently (here an ``x``
    written as a string, and lines with a stray field type) sit anywhere among them."""
    cfg = config(
        drift={"freeze_first": 500},
        fields={**_timed_fields(), "timestamp": None, "request_id": "id"},
        ground_truth_join={"enabled": True, "timeout": "10m", "capacity": 100},
    )
    engine = Engine(cfg)
    rng = np.random.default_rng(11)
    records = dev_records(rng, 3000)
    lines: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        record["id"] = f"r{i}"
        if i % 7 == 3:
            record["k"] = str(record["k"])  # not a number: read by the lenient parser
        lines.append(record)
        if i % 5 == 0:
            lines.append({"id": f"r{i}", "truth": "yes"})  # a label on its own line
    engine.ingest(jsonl(lines), 1000.0)
    reference = engine.state.reference
    assert reference is not None
    assert reference.records == 500
    assert reference.source == {"frozen_first_records": 500}
    x = np.array([r["x"] for r in records[:500]])
    assert reference.numeric["x"].mean == pytest.approx(x.mean(), rel=1e-9)
    assert reference.numeric["x"].max == x.max()
    (group,) = engine.state.snapshot(1000.0).groups
    assert group.totals.records == 3000


@pytest.mark.parametrize("held", [0, 100])
def test_replay_freezes_exactly_the_configured_count(held: int) -> None:
    """``replay`` splits the run that crosses the count as the live engine does (523 is no
    multiple of the 50 records a 5 s bucket holds here, at which replay cuts runs anyway).
    A first block without timestamps is held until a time arrives, and its records come first."""
    cfg = config(drift={"freeze_first": 523}, fields=_timed_fields())
    records = dev_records(np.random.default_rng(12), 3000)
    for i, record in enumerate(records[held:]):
        record["ts"] = 1_800_000_000.0 + i * 0.1
    replayer = Replayer(cfg, None)
    if held:
        replayer.feed(jsonl(records[:held]))
    replayer.feed(jsonl(records[held:]))
    assert replayer.finish().records == 3000
    reference = replayer.engine.state.reference
    assert reference is not None
    assert reference.records == 523
    x = np.array([r["x"] for r in records[:523]])
    assert reference.numeric["x"].mean == pytest.approx(x.mean(), rel=1e-9)


def test_chunks_applied_together_still_freeze_exactly_the_configured_count() -> None:
    """Chunks read in turn are applied as one batch, except while ``freeze_first`` counts:
    then each chunk is its own batch, and the one holding the 523rd record is cut there, live
    (one poll's chunks) and in ``replay`` (one group of blocks)."""
    cfg = config(drift={"freeze_first": 523}, fields=_timed_fields())
    records = dev_records(np.random.default_rng(13), 3000)
    for i, record in enumerate(records):
        record["ts"] = 1_800_000_000.0 + i * 0.1
    chunks = [jsonl(records[k : k + 400]) for k in range(0, 3000, 400)]
    engine = Engine(cfg)
    assert len(engine.decode_all(chunks[:3])) == 4  # chunk, chunk cut in two, chunk
    engine.ingest_all(chunks[:3], 1_800_000_000.0)
    replayer = Replayer(cfg, None)
    replayer.feed_all(chunks)
    assert replayer.finish().records == 3000
    x = np.array([r["x"] for r in records[:523]])
    for reference in (engine.state.reference, replayer.engine.state.reference):
        assert reference is not None
        assert reference.records == 523
        assert reference.numeric["x"].mean == pytest.approx(x.mean(), rel=1e-9)
    assert len(engine.decode_all(chunks[3:])) == 1  # frozen: one batch again


def _timed_fields() -> dict[str, Any]:
    return {
        "timestamp": "ts",
        "predicted_class": "cls",
        "ground_truth": "truth",
        "features": [
            {"name": "x", "type": "numeric"},
            {"name": "k", "type": "numeric"},
            {"name": "c", "type": "categorical", "max_categories": 3},
        ],
    }


def test_a_profile_built_at_another_sketch_accuracy_is_refused(
    dev: tuple[list[dict[str, Any]], Reference],
) -> None:
    _, ref = dev
    check_compatible(ref, ref.sketch_relative_accuracy)
    with pytest.raises(ConfigError, match="sketch_relative_accuracy"):
        check_compatible(ref, ref.sketch_relative_accuracy / 2)


# --- the calibration table ---------------------------------------------------------------------

GOLDEN_FORMAT2 = Path(__file__).parent / "golden" / "reference_format2.json"


def calibrated_profile() -> Reference:
    """A classifier with a confidence field: truth right with probability conf."""
    rng = np.random.default_rng(8)
    rows = []
    for _ in range(2_000):
        conf = float(rng.uniform(0.5, 1.0))
        cls = str(rng.choice(["yes", "no"]))
        truth = cls if rng.random() < conf else ("no" if cls == "yes" else "yes")
        rows.append(
            {"x": float(rng.normal()), "k": 1, "c": "a", "conf": conf, "cls": cls, "truth": truth}
        )
    cfg = config(
        fields={
            "timestamp": None,
            "predicted_class": "cls",
            "confidence": {"path": "conf", "min": 0, "max": 1},
            "ground_truth": "truth",
            "features": [{"name": "x", "type": "numeric"}],
        }
    )
    return profile(rows, cfg)


def test_a_format_2_profile_from_before_the_table_loads_and_keeps_its_hash() -> None:
    """tests/golden/reference_format2.json was written by `baseline` before `calibration`
    existed: it loads unchanged, with the same hash, and writes back without the key."""
    text = GOLDEN_FORMAT2.read_text()
    assert "calibration" not in text
    ref = parse(text)
    assert ref.calibration is None
    assert ref.hash == json.loads(text)["hash"] == ref.content_hash()
    assert "calibration" not in json.loads(ref.to_json())


def test_the_calibration_table_round_trips_and_enters_the_hash() -> None:
    ref = calibrated_profile()
    assert ref.calibration is not None
    assert len(ref.calibration.labelled) == len(ref.numeric["confidence"].bin_shares)
    assert sum(ref.calibration.labelled) == 2_000
    assert parse(ref.to_json()) == ref
    without = msgspec.structs.replace(ref, calibration=None)
    assert without.content_hash() != ref.hash


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c.update(field="x2"), "reference.calibration.field"),
        (lambda c: c["labelled"].pop(), "reference.calibration: labelled and wrong"),
        (lambda c: c["wrong"].__setitem__(2, 10**6), "reference.calibration.wrong"),
        (lambda c: c["labelled"].__setitem__(0, -1), "reference.calibration.labelled"),
        (lambda c: c.update(extra=1), "reference.calibration"),
    ],
)
def test_a_bad_calibration_table_is_refused_naming_the_key(edit: Any, expected: str) -> None:
    ref = calibrated_profile()
    body = json.loads(ref.to_json())
    edit(body["calibration"])
    body["hash"] = ""  # the content checks come first; the hash is tested above
    with pytest.raises(ConfigError) as raised:
        parse(json.dumps(body))
    assert any(expected in problem for problem in raised.value.problems), raised.value.problems


def test_no_calibration_without_labels_or_confidence(
    dev: tuple[list[dict[str, Any]], Reference],
) -> None:
    _, ref = dev  # labels, but no confidence field
    assert ref.calibration is None


# --- labels on their own line --------------------------------------------------------------------


def _joined_config(tmp_path: Any, regression: bool) -> Any:
    fields = (
        {"timestamp": None, "prediction": "score", "ground_truth": "truth", "request_id": "id"}
        if regression
        else {
            "timestamp": None,
            "predicted_class": "cls",
            "ground_truth": "truth",
            "request_id": "id",
        }
    )
    fields["features"] = [{"name": "x"}]
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(unread_data(fields, ground_truth_join={"enabled": True})))
    return path


@pytest.mark.parametrize("regression", [False, True])
def test_baseline_joins_labels_on_their_own_line_as_if_inline(
    tmp_path: Any, regression: bool
) -> None:
    """A development log whose labels come later, on their own line, gives the profile that
    the same log with every label inline gives: labels are not records, and their errors make
    the development error ratio (or MAE and RMSE)."""
    from exporter.cli import main  # noqa: PLC0415

    rng = np.random.default_rng(8)
    inline, later, pending = [], [], []
    for i in range(3_000):
        record: dict[str, Any] = {"id": f"r{i}", "x": float(rng.normal())}
        if regression:
            record["score"] = float(rng.normal(10.0, 2.0))
            truth: Any = record["score"] + float(rng.normal())
        else:
            record["cls"] = str(rng.choice(["yes", "no"]))
            truth = record["cls"] if rng.random() > 0.3 else "maybe"
        inline.append({**record, "truth": truth})
        later.append(record)
        pending.append({"id": f"r{i}", "truth": truth})
        if len(pending) > 50:  # labels come 50 predictions late
            later.append(pending.pop(0))
    later += pending
    config = _joined_config(tmp_path, regression)
    profiles = []
    for name, records in (("inline", inline), ("later", later)):
        log, out = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.json"
        log.write_bytes(jsonl(records))
        assert (
            main(["baseline", "--config", str(config), "--input", str(log), "--output", str(out)])
            == 0
        )
        profiles.append(json.loads(out.read_text()))
    joined = profiles[1]
    assert joined["records"] == 3_000
    assert joined["labelled"] == 3_000
    assert joined["numeric"]["x"]["missing"] == 0
    if regression:
        errors = np.array([r["score"] - r["truth"] for r in inline])
        assert joined["mae"] == pytest.approx(np.abs(errors).mean(), rel=1e-12)
    else:
        wrong = sum(r["cls"] != r["truth"] for r in inline)
        assert joined["error_ratio"] == wrong / 3_000
    if not regression:
        assert joined["hash"] == profiles[0]["hash"]
    # A regression profile sums its errors in another order (float rounding moves the hash).
    for profile_ in profiles:
        for key in ("hash", "created", "source", "mae", "rmse"):
            profile_.pop(key)
    assert profiles[1] == profiles[0]


# --- a development log of several model versions --------------------------------------------------


def test_baseline_says_when_it_pools_several_model_versions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A profile describes one model: a development log naming several model versions gives
    one profile of them all mixed, and every live version would be judged against that mix.
    ``baseline`` still writes it (a log may hold one model under several names), but says
    which versions it pooled and how many records each had."""
    from exporter.cli import main  # noqa: PLC0415

    fields = {"timestamp": None, "model": "m", "version": "v", "prediction": "score"}
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps(unread_data(fields)))
    mixed = [{"m": "demand", "v": "v7", "score": 1.0}] * 30 + [{"m": "price", "v": 2, "score": 9.0}]
    single = [{"m": "demand", "v": "v7", "score": 1.0}] * 30
    for name, records in (("mixed", mixed), ("single", single)):
        log, out = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.json"
        log.write_bytes(jsonl(records))
        caplog.clear()
        args = ["baseline", "--config", str(config), "--input", str(log), "--output", str(out)]
        assert main(args) == 0
        assert out.exists()
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        if name == "single":
            assert warnings == []
        else:
            assert len(warnings) == 1
            assert "2 model versions" in warnings[0]
            assert "demand/v7 (30 records), price/2 (1 records)" in warnings[0]
