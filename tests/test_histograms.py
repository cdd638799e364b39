"""Histogram buckets: as configured, or following the reference profile's range, decided once at
start (the sidecar's composition root) and never changed by a reload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exporter.config import parse_config
from exporter.config_lists import DEFAULT_HISTOGRAMS
from exporter.histograms import (
    MAX_BOUNDS,
    histogram_bounds,
    latency_bounds,
    linear_bounds,
    most_bounds,
    nice_step,
)
from exporter.offline.baseline import ProfileBuilder
from exporter.reference import NumericReference, Reference, load
from exporter.sidecar import build
from tests.harness import free_port

DEFAULTS = tuple(DEFAULT_HISTOGRAMS.items())


def numeric(low: float, high: float) -> NumericReference:
    return NumericReference(
        count=10, missing=0, mean=(low + high) / 2, stddev=1.0, min=low, max=high,
        quantiles={}, bin_edges=[], bin_shares=[1.0], cdf_points=[], cdf_values=[],
    )  # fmt: skip


def reference(**fields: NumericReference) -> Reference:
    return Reference(created="now", records=10, numeric=fields, categorical={})


@pytest.mark.parametrize(
    ("low", "high"), [(0.0002, 0.9998), (0.5, 1.0), (12.0, 480.0), (-3.2, 4.1), (1e-4, 3e-3)]
)
def test_linear_bounds_cover_the_development_range_in_about_ten_steps(
    low: float, high: float
) -> None:
    bounds = np.array(linear_bounds(numeric(low, high)))
    steps = np.diff(bounds)
    assert np.allclose(steps, steps[0])  # equal steps
    assert 7 <= len(bounds) <= 15
    assert bounds[0] - steps[0] < low  # the first bucket holds the smallest development value
    assert bounds[-1] >= high  # and the last finite one the largest: nothing in +Inf
    mantissa = steps[0] / 10 ** np.floor(np.log10(steps[0]))
    assert round(mantissa, 9) in (1.0, 2.0, 2.5, 5.0)


def test_a_probability_keeps_the_default_steps_and_stays_in_0_1() -> None:
    assert linear_bounds(numeric(0.0002, 0.9998)) == DEFAULT_HISTOGRAMS["prediction"]
    assert linear_bounds(numeric(0.5, 1.0))[-1] == 1.0
    assert linear_bounds(numeric(3.0, 3.0)) == ()  # constant: the defaults are kept


def test_latency_bounds_widen_the_default_never_narrow_it() -> None:
    assert latency_bounds(numeric(0.004, 0.02)) == DEFAULT_HISTOGRAMS["latency_seconds"]
    slow = latency_bounds(numeric(0.0003, 30.0))
    assert slow[0] <= 0.0003
    assert slow[-1] >= 300.0
    assert set(DEFAULT_HISTOGRAMS["latency_seconds"]) <= set(slow)


def test_nice_step_is_the_nearest_nice_number() -> None:
    assert nice_step(0.055) == pytest.approx(0.05)
    assert nice_step(56.0) == pytest.approx(50.0)
    assert nice_step(0.0032) == pytest.approx(0.0025)


def test_configured_bounds_win_and_fields_missing_from_the_profile_keep_the_default() -> None:
    ref = reference(prediction=numeric(12.0, 480.0), confidence=numeric(0.5, 1.0))
    got = dict(histogram_bounds(DEFAULTS, frozenset({"confidence"}), ref))
    assert got["prediction"][-1] >= 480.0
    assert got["confidence"] == DEFAULT_HISTOGRAMS["confidence"]  # set in the config
    assert got["latency_seconds"] == DEFAULT_HISTOGRAMS["latency_seconds"]  # not in the profile
    assert dict(histogram_bounds(DEFAULTS, frozenset(), None)) == DEFAULT_HISTOGRAMS


def test_the_config_remembers_which_histograms_it_sets() -> None:
    fields = {"prediction": "p"}
    config = parse_config(
        {"sources": ["/x"], "fields": fields, "histograms": {"prediction": [1, 2, 3]}}
    )
    assert config.explicit_histograms == frozenset({"prediction"})
    assert dict(config.histograms)["prediction"] == (1.0, 2.0, 3.0)
    assert parse_config({"sources": ["/x"], "fields": fields}).explicit_histograms == frozenset()


def _regression_setup(tmp_path: Path, scale: float) -> tuple[dict[str, Any], Path]:
    fields = {"timestamp": None, "model_name": "m", "model_version": "v", "prediction": "y_hat"}
    raw: dict[str, Any] = {"sources": [str(tmp_path / "log")], "fields": fields}
    config = parse_config(raw)
    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    values = np.random.default_rng(1).uniform(100.0, 400.0, 500) * scale
    builder.add(b"".join(json.dumps({"y_hat": float(v)}).encode() + b"\n" for v in values))
    path = tmp_path / f"reference-{scale}.json"
    path.write_text(builder.build("now").to_json())
    return raw, path


def test_the_sidecar_decides_its_buckets_at_start_and_keeps_them_on_reload(
    tmp_path: Path,
) -> None:
    raw, path = _regression_setup(tmp_path, 1.0)
    raw["reference"] = str(path)
    sidecar = build(parse_config(raw), listen_address=f"127.0.0.1:{free_port()}")
    try:
        state = sidecar.engine.state
        (histogram,) = state.snapshot(0.0).histograms
        assert histogram.name == "prediction"
        assert histogram.bounds[0] <= 100.0
        assert histogram.bounds[-1] >= 400.0
        assert histogram.bounds != DEFAULT_HISTOGRAMS["prediction"]
        _, other = _regression_setup(tmp_path, 10.0)  # a profile ten times wider
        state.set_reference(load(other))
        assert state.snapshot(0.0).histograms == (histogram,)
        raw["reference"] = str(other)  # a config reload names it: still the same buckets
        assert sidecar.reload(lambda: parse_config(raw))
        assert sidecar.engine.state.snapshot(0.0).histograms == (histogram,)
    finally:
        sidecar.server.stop()


def test_derived_bounds_never_exceed_what_the_size_budget_counts() -> None:
    """docs/metrics.md: a histogram left at its default counts 16 bounds (linear) or 34
    (latency) in the size budget, whatever the development range."""
    rng = np.random.default_rng(0)
    most = {"linear": 0, "latency": 0}
    for _ in range(4_000):
        low = float(rng.uniform(-1e3, 1e3) * 10 ** rng.uniform(-6, 6))
        high = low + float(10 ** rng.uniform(-8, 8))
        most["linear"] = max(most["linear"], len(linear_bounds(numeric(low, high))))
        fast, slow = sorted(10 ** rng.uniform(-12, 9, 2))
        most["latency"] = max(most["latency"], len(latency_bounds(numeric(fast, slow))))
    assert most["linear"] <= MAX_BOUNDS["prediction"] == MAX_BOUNDS["confidence"]
    assert most["latency"] <= MAX_BOUNDS["latency_seconds"]
    assert most_bounds("prediction", (1.0, 2.0), frozenset({"prediction"})) == 2
    assert most_bounds("latency_seconds", DEFAULT_HISTOGRAMS["latency_seconds"], frozenset()) == 34
