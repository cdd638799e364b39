"""The rendered scrape: numbers against numpy, ``promtool check metrics``, and a golden file of
the metric shape (family names, types, label names; never values).

Regenerate the golden file after an intended change with ``UPDATE_GOLDEN=1 pytest
tests/test_collector.py`` and commit it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.anomaly import (
    CATEGORICAL_KINDS,
    KIND_NAMES,
    LABEL_KINDS,
    NAME_KINDS,
    NUMERIC_KINDS,
    PARSE_ERROR_REASONS,
    TIMESTAMP_KINDS,
)
from exporter.batch import UNKNOWN
from exporter.collector import ModelCollector
from exporter.config import parse_config
from exporter.engine import Engine
from exporter.health import SOURCE_METRICS
from exporter.offline.baseline import ProfileBuilder
from exporter.state import Snapshot, State
from tests.harness import promtool
from tests.served import served
from tests.state_data import (
    CLASSES,
    CONFIG,
    FIELD_OF,
    SOURCE,
    T0,
    build,
    encode,
    health,
    make_records,
    valid,
)

GOLDEN = Path(__file__).parent / "golden" / "metrics_shape.txt"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(snapshot: Callable[[], Snapshot], with_health: bool = True) -> str:
    """What the sidecar serves (``Bodies.render``), less the server's own families."""
    return served(snapshot, health if with_health else None)


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
    return samples


def series(samples: Samples, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """Every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return [
        (dict(key), value)
        for (sample, key), value in samples.items()
        if sample == name and wanted <= key
    ]


def one(samples: Samples, name: str, **labels: str) -> float:
    found = series(samples, name, **labels)
    assert len(found) == 1, (name, labels, found)
    return found[0][1]


@pytest.fixture
def ingested() -> tuple[State, list[dict[str, Any]]]:
    _, decoder, state = build()
    records = make_records(np.random.default_rng(21), 4_000, T0)
    state.ingest(decoder.decode(encode(records, junk=5), T0), T0)
    return state, records


def promtool_check(text: str) -> None:
    result = promtool("check", "metrics", input=text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


def test_promtool_accepts_the_scrape(ingested: tuple[State, list[dict[str, Any]]]) -> None:
    state, _ = ingested
    promtool_check(scrape(lambda: state.snapshot(T0 + 1)))


def test_several_groups_render_distinct_series_promtool_accepts() -> None:
    _, decoder, state = build()
    records = make_records(np.random.default_rng(22), 1_000, T0, models=("a", "b", "c"))
    state.ingest(decoder.decode(encode(records, junk=2), T0), T0)
    text = scrape(lambda: state.snapshot(T0))
    promtool_check(text)
    samples = parse(text)  # fails on a duplicate series
    for model in ("a", "b", "c"):
        count = sum(r["model"] == model for r in records)
        assert one(samples, "model_predictions_total", model=model, version="v1") == count


def test_window_statistics_match_numpy(ingested: tuple[State, list[dict[str, Any]]]) -> None:
    state, records = ingested
    samples = parse(scrape(lambda: state.snapshot(T0 + 1)))
    mv = {"model": "fraud", "version": "v1"}
    for w in ("1m", "1h"):
        assert one(samples, "model_window_predictions", window=w, **mv) == len(records)
        for field, key in FIELD_OF.items():
            values = valid(records, key)
            labels = {**mv, "field": field, "window": w}
            assert one(samples, "model_window_samples", **labels) == len(values)
            assert one(samples, "model_window_mean", **labels) == pytest.approx(values.mean())
            assert one(samples, "model_window_stddev", **labels) == pytest.approx(
                values.std(), rel=1e-6
            )
            assert one(samples, "model_window_min", **labels) == values.min()
            assert one(samples, "model_window_max", **labels) == values.max()
            quantiles = series(samples, "model_window_quantile", **labels)
            assert sorted(float(lb["q"]) for lb, _ in quantiles) == [0.1, 0.5, 0.9, 0.99]
            for lb, estimate in quantiles:
                exact = np.quantile(values, float(lb["q"]), method="lower")
                assert abs(estimate - exact) <= 0.01 * abs(exact) * (1 + 1e-9), (field, lb)
        classes = [r["cls"] for r in records]
        for value in CLASSES:
            ratio = one(
                samples,
                "model_window_category_ratio",
                field="predicted_class",
                value=value,
                window=w,
                **mv,
            )
            assert ratio == pytest.approx(classes.count(value) / len(classes))
        labelled = [r for r in records if "truth" in r]
        wrong = sum(r["truth"] != r["cls"] for r in labelled)
        assert one(samples, "model_window_ground_truth", window=w, **mv) == len(labelled)
        assert one(samples, "model_window_error_ratio", window=w, **mv) == pytest.approx(
            wrong / len(labelled)
        )
        nan_share = sum(r["p"] == "abc" for r in records) / len(records)
        ratio = one(
            samples,
            "model_window_anomaly_ratio",
            field="prediction",
            kind="not_a_number",
            window=w,
            **mv,
        )
        assert ratio == pytest.approx(nan_share)
        junk = one(
            samples,
            "model_window_anomaly_ratio",
            field="record",
            kind="parse_error",
            window=w,
            model=UNKNOWN,
            version=UNKNOWN,
        )
        assert junk == 1.0  # per line read: the lines that name no model are all parse errors


def test_counters_and_histograms_match_numpy(
    ingested: tuple[State, list[dict[str, Any]]],
) -> None:
    state, records = ingested
    samples = parse(scrape(lambda: state.snapshot(T0 + 1)))
    mv = {"model": "fraud", "version": "v1"}
    assert one(samples, "model_predictions_total", **mv) == len(records)
    labelled = [r for r in records if "truth" in r]
    assert one(samples, "model_ground_truth_total", **mv) == len(labelled)
    assert one(samples, "model_prediction_errors_total", **mv) == sum(
        r["truth"] != r["cls"] for r in labelled
    )
    assert one(samples, "model_anomalies_total", field="record", kind="parse_error", **mv) == 0
    unknown = {"model": UNKNOWN, "version": UNKNOWN}
    assert one(samples, "model_anomalies_total", field="record", kind="parse_error", **unknown) == 5
    assert one(samples, "model_predictions_total", **unknown) == 0
    assert one(samples, "model_last_record_timestamp_seconds", **mv) == max(
        r["ts"] for r in records
    )
    for metric, key in (
        ("model_prediction_score", "p"),
        ("model_confidence", "conf"),
        ("model_latency_seconds", "lat_ms"),
    ):
        values = valid(records, key)
        buckets = series(samples, f"{metric}_bucket", **mv)
        assert buckets
        for labels, count in buckets:
            bound = float(labels["le"])
            assert count == (values <= bound).sum(), (metric, bound)
        assert one(samples, f"{metric}_count", **mv) == len(values)
        assert one(samples, f"{metric}_sum", **mv) == pytest.approx(values.sum())


def test_every_applicable_anomaly_pair_is_exported_from_the_start() -> None:
    _, decoder, state = build()
    good = {"ts": T0, "model": "m", "version": "v", "p": 0.5, "conf": 0.5, "lat_ms": 3.0}
    good |= {"cls": "cat", "truth": "cat", "f": {"amount": 1.0, "country": "DE"}}
    state.ingest(decoder.decode(encode([good]), T0), T0)
    samples = parse(scrape(lambda: state.snapshot(T0)))
    layout = state.snapshot(T0).layout
    expected = {(s.name, KIND_NAMES[k]) for s in layout.numeric for k in NUMERIC_KINDS}
    expected |= {(s.name, KIND_NAMES[k]) for s in layout.categorical for k in CATEGORICAL_KINDS}
    expected |= {("timestamp", KIND_NAMES[k]) for k in TIMESTAMP_KINDS}
    expected |= {("ground_truth", KIND_NAMES[k]) for k in LABEL_KINDS}
    expected |= {(name, KIND_NAMES[k]) for name in ("model", "version") for k in NAME_KINDS}
    expected |= {("record", "parse_error")}
    found = series(samples, "model_anomalies_total", model="m", version="v")
    assert {(lb["field"], lb["kind"]) for lb, _ in found} == expected
    assert all(value == 0 for _, value in found)
    ratios = series(samples, "model_window_anomaly_ratio", model="m", version="v", window="1m")
    assert {(lb["field"], lb["kind"]) for lb, _ in ratios} == expected


def test_a_field_without_valid_values_exports_samples_but_no_statistics() -> None:
    _, decoder, state = build()
    records = [{"ts": T0, "model": "m", "version": "v", "p": "abc", "conf": 0.5}] * 3
    state.ingest(decoder.decode(encode(records), T0), T0)
    samples = parse(scrape(lambda: state.snapshot(T0)))
    labels = {"model": "m", "version": "v", "field": "prediction", "window": "1m"}
    assert one(samples, "model_window_samples", **labels) == 0
    for name in ("mean", "stddev", "min", "max", "quantile"):
        assert series(samples, f"model_window_{name}", **labels) == []
    assert one(samples, "model_window_mean", **{**labels, "field": "confidence"}) == 0.5
    assert series(samples, "model_window_error_ratio", model="m") == []  # nothing labelled


def test_idle_windows_export_zero_records_and_no_ratios(
    ingested: tuple[State, list[dict[str, Any]]],
) -> None:
    state, records = ingested
    samples = parse(scrape(lambda: state.snapshot(T0 + 7200)))
    mv = {"model": "fraud", "version": "v1"}
    assert one(samples, "model_predictions_total", **mv) == len(records)
    for w in ("1m", "1h"):
        assert one(samples, "model_window_predictions", window=w, **mv) == 0
        assert series(samples, "model_window_anomaly_ratio", window=w) == []
        assert series(samples, "model_window_mean", window=w) == []


def test_an_empty_state_renders_without_series() -> None:
    _, _, state = build()
    samples = parse(scrape(lambda: state.snapshot(T0), with_health=False))
    assert sorted(name for name, _ in samples) == [
        "model_exporter_build_info",
        "model_exporter_render_errors_total",
    ]


def test_registration_takes_no_snapshot() -> None:
    """The sidecar registers the collector in the registry it hands the server (for the
    server's own families): registering must not render."""
    calls: list[float] = []
    _, _, state = build()

    def snapshot() -> Snapshot:
        calls.append(T0)
        return state.snapshot(T0)

    registry = CollectorRegistry()
    registry.register(ModelCollector(snapshot))
    assert calls == []
    generate_latest(registry)
    assert len(calls) == 1


def test_health_families(ingested: tuple[State, list[dict[str, Any]]]) -> None:
    state, _ = ingested
    samples = parse(scrape(lambda: state.snapshot(T0)))
    src = {"source": "/var/log/*.jsonl"}
    assert one(samples, "model_exporter_lines_total", **src) == SOURCE.lines
    assert one(samples, "model_exporter_bytes_read_total", **src) == SOURCE.bytes_read
    assert one(samples, "model_exporter_file_opens_total", **src) == SOURCE.opens
    assert one(samples, "model_exporter_source_lag_bytes", **src) == SOURCE.lag_bytes
    assert one(samples, "model_exporter_source_up", **src) == 1
    for metric in SOURCE_METRICS:  # each family shows its own field
        suffix = "_total" if metric.type == "counter" else ""
        name = f"model_exporter_{metric.name}{suffix}"
        assert one(samples, name, **src) == getattr(SOURCE, metric.attribute), name
    assert one(samples, "model_exporter_parse_errors_total", reason="invalid_json", **src) == 3
    assert one(samples, "model_exporter_last_read_timestamp_seconds", **src) == T0
    assert one(samples, "model_exporter_ingest_seconds_total") == 0.25
    assert one(samples, "model_exporter_nul_bytes_skipped_total", **src) == SOURCE.nul_bytes_skipped
    assert one(samples, "model_exporter_symlinks_refused_total", **src) == SOURCE.symlinks_refused
    assert one(samples, "model_exporter_label_values_truncated_total", field="country") == 2
    assert one(samples, "model_exporter_render_errors_total") == 0


def test_no_label_is_named_quantile_on_a_gauge(
    ingested: tuple[State, list[dict[str, Any]]],
) -> None:
    """docs/metrics.md: the quantile label is `q`; `quantile` is reserved for summaries."""
    state, _ = ingested
    samples = parse(scrape(lambda: state.snapshot(T0)))
    assert all("quantile" not in dict(labels) for _, labels in samples)
    assert series(samples, "model_window_quantile")
    assert all("q" in labels for labels, _ in series(samples, "model_window_quantile"))


def shape(text: str) -> str:
    """One line per sample name: family type, sample name, label names. No values."""
    lines = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(sorted(sample.labels)) or "-"
            lines.add(f"{family.name} {family.type} {sample.name} {labels}")
    return "".join(f"{line}\n" for line in sorted(lines))


def test_metric_shape_matches_the_golden_file(
    ingested: tuple[State, list[dict[str, Any]]],
) -> None:
    state, _ = ingested
    got = shape(scrape(lambda: state.snapshot(T0)))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(got, encoding="utf-8")
    if not GOLDEN.exists():
        pytest.fail(f"{GOLDEN} is missing; write it with UPDATE_GOLDEN=1 and commit it")
    assert got == GOLDEN.read_text(encoding="utf-8"), (
        "metric shape changed; if intended, regenerate with UPDATE_GOLDEN=1"
    )


def test_the_parse_error_reasons_are_documented() -> None:
    """docs/metrics.md lists exactly the reasons the decoder and the ingest loop count."""
    docs = (Path(__file__).parent.parent / "docs" / "metrics.md").read_text(encoding="utf-8")
    row = next(
        line
        for line in docs.splitlines()
        if line.startswith("| `model_exporter_parse_errors_total` |")
    )
    described = row.split("|")[4]
    assert set(re.findall(r"`([a-z0-9_]+)`", described)) == set(PARSE_ERROR_REASONS)


def test_golden_file_names_only_documented_families() -> None:
    """Every family in the golden file appears in docs/metrics.md."""
    docs = (Path(__file__).parent.parent / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert GOLDEN.exists()
    for line in GOLDEN.read_text(encoding="utf-8").splitlines():
        family, kind = line.split(" ")[:2]
        documented = f"{family}_total" if kind == "counter" else family
        assert f"`{documented}`" in docs or f"`{family}`" in docs, family


def test_stddev_is_not_negative_for_constant_values() -> None:
    """Rounding must never make a variance negative; the scrape must not show NaN."""
    _, decoder, state = build()
    records = [{"ts": T0, "model": "m", "version": "v", "p": 0.1 + 0.2}] * 1_000
    state.ingest(decoder.decode(encode(records), T0), T0)
    samples = parse(scrape(lambda: state.snapshot(T0)))
    stddev = one(
        samples, "model_window_stddev", model="m", field="prediction", window="1m", version="v"
    )
    assert stddev >= 0
    assert not math.isnan(stddev)
    assert stddev == pytest.approx(np.std(np.full(1_000, 0.1 + 0.2)), abs=1e-7)


def test_stddev_of_values_with_a_large_offset() -> None:
    """Values 1e8 ± 1 in several batches and buckets: merged deviations keep the spread."""
    _, decoder, state = build()
    values = 1e8 + np.random.default_rng(23).normal(0.0, 1.0, 2_000)
    for i, part in enumerate(np.array_split(values, 7)):
        records = [{"ts": T0, "model": "m", "version": "v", "f": {"amount": v}} for v in part]
        state.ingest(decoder.decode(encode(records), T0 + i), T0 + i)
    end = T0 + 6
    samples = parse(scrape(lambda: state.snapshot(end)))
    labels = {"model": "m", "version": "v", "field": "amount", "window": "1m"}
    assert one(samples, "model_window_stddev", **labels) == pytest.approx(values.std(), rel=0.01)


def test_quantiles_beyond_the_sketch_range_stay_within_min_and_max() -> None:
    _, decoder, state = build()
    values = np.linspace(5e9, 6e9, 101)
    records = [{"ts": T0, "model": "m", "version": "v", "f": {"amount": v}} for v in values]
    state.ingest(decoder.decode(encode(records), T0), T0)
    samples = parse(scrape(lambda: state.snapshot(T0)))
    labels = {"model": "m", "version": "v", "field": "amount", "window": "1m"}
    low, high = (
        one(samples, "model_window_min", **labels),
        one(samples, "model_window_max", **labels),
    )
    for q in ("0.5", "0.9", "0.99"):
        assert low <= one(samples, "model_window_quantile", q=q, **labels) <= high


def test_moments_that_overflow_are_not_exported() -> None:
    _, decoder, state = build()
    records = [{"ts": T0, "model": "m", "version": "v", "f": {"amount": 1.5e308}}] * 2
    state.ingest(decoder.decode(encode(records), T0), T0)
    samples = parse(scrape(lambda: state.snapshot(T0)))
    labels = {"model": "m", "version": "v", "field": "amount", "window": "1m"}
    assert one(samples, "model_window_max", **labels) == 1.5e308
    assert not series(samples, "model_window_mean", **labels)
    assert not series(samples, "model_window_stddev", **labels)


def test_drift_families_render_the_latest_assessment_and_compute_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = parse_config(CONFIG)
    rng = np.random.default_rng(24)
    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    builder.add(encode(make_records(rng, 3_000, T0 - 86_400)))
    engine = Engine(config, builder.build("2025-01-01T00:00:00+00:00"))
    engine.ingest(encode(make_records(rng, 2_000, T0)), T0)
    assessment = engine.advance(T0 + engine.assessor.step)
    assert assessment.windows

    def fail(*args: Any) -> Any:
        raise AssertionError("a scrape must not judge drift")

    monkeypatch.setattr("exporter.assess.compare", fail)
    monkeypatch.setattr("exporter.assess.gaps", fail)
    samples = parse(served(lambda: engine.state.snapshot(T0 + 6), None, lambda: assessment))
    expected = 0
    for w in assessment.windows.values():
        mv = {"model": w.model, "version": w.version, "window": w.window}
        for d in w.drift:
            labels = {**mv, "field": d.field}
            statistic = f"model_window_drift_{d.statistic}"
            assert one(samples, statistic, **labels) == d.verdict.statistic
            assert one(samples, f"{statistic}_threshold", **labels) == d.verdict.threshold
            drifted = one(samples, "model_window_drift_detected", statistic=d.statistic, **labels)
            assert drifted == float(d.verdict.drifted)
            expected += 1
        assert one(samples, "model_window_error_ratio_gap", **mv) == w.gaps.error_ratio
        assert one(samples, "model_window_confidence_gap", **mv) == w.gaps.confidence
    assert expected > 10
    assert len(series(samples, "model_window_drift_detected")) == expected
