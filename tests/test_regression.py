"""Regression models: a numeric label beside a score (no class) gives MAE and RMSE, checked
against numpy on the same values, in windows, in the profile and as a gap."""

from __future__ import annotations

import json
import math

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from exporter.assess import Assessment
from exporter.decode import Decoder
from exporter.engine import Engine
from exporter.offline.baseline import ProfileBuilder
from exporter.state import State
from tests.configs import regression_fields, unread_config
from tests.served import served

T0 = 1_800_000_000.0
CONFIG = unread_config(regression_fields())


def _lines(predictions: np.ndarray, labels: list[object]) -> bytes:
    return b"".join(
        json.dumps({"ts": T0, "y_hat": float(p), "y": y}).encode() + b"\n"
        for p, y in zip(predictions, labels, strict=True)
    )


def _scrape(
    state: State, now: float, assessment: Assessment | None = None
) -> dict[tuple[str, str], float]:
    assessed = None if assessment is None else (lambda: assessment)
    text = served(lambda: state.snapshot(now), None, assessed)
    return {
        (s.name, s.labels.get("window", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.labels.get("field")
    }


def test_window_mae_and_rmse_match_numpy_and_bad_labels_are_counted() -> None:
    rng = np.random.default_rng(3)
    truth = rng.normal(100.0, 10.0, 500)
    predictions = truth + rng.normal(0.0, 2.0, 500)
    labels: list[object] = [float(v) for v in truth]
    labels[:5] = ["n/a", None, [1], True, "12.5"]  # 3 not numbers; None is no label; "12.5" is
    decoder = Decoder(CONFIG.fields)
    state = State(CONFIG, decoder.layout, [v.values for v in decoder.vocabularies])
    state.ingest(decoder.decode(_lines(predictions, labels), T0), T0)

    used = np.array([v if isinstance(v, float) else math.nan for v in labels])
    used[4] = 12.5
    residual = predictions - used
    residual = residual[~np.isnan(residual)]
    metrics = _scrape(state, T0)
    assert metrics[("model_window_ground_truth", "1m")] == len(residual) == 496
    assert math.isclose(metrics[("model_window_mae", "1m")], np.abs(residual).mean(), rel_tol=1e-12)
    assert math.isclose(
        metrics[("model_window_rmse", "1m")], np.sqrt((residual**2).mean()), rel_tol=1e-12
    )
    assert ("model_window_error_ratio", "1m") not in metrics
    flagged = state.snapshot(T0).groups[0].totals.anomalies[decoder.layout.ground_truth_column]
    assert int(flagged.sum()) == 3  # "n/a", [1] and true


def test_profile_mae_and_the_gap() -> None:
    rng = np.random.default_rng(4)
    dev_truth = rng.normal(0.0, 1.0, 2_000)
    dev_predictions = dev_truth + rng.normal(0.0, 0.5, 2_000)
    builder = ProfileBuilder(CONFIG.fields, CONFIG.quantiles, CONFIG.sketch_relative_accuracy)
    builder.add(_lines(dev_predictions, [float(v) for v in dev_truth]))
    reference = builder.build("now")
    dev_residual = dev_predictions - dev_truth
    assert reference.error_ratio is None
    assert reference.mae is not None
    assert reference.rmse is not None
    assert math.isclose(reference.mae, np.abs(dev_residual).mean())
    assert math.isclose(reference.rmse, np.sqrt((dev_residual**2).mean()))

    engine = Engine(CONFIG, reference)
    truth = rng.normal(0.0, 1.0, 1_000)
    predictions = truth + rng.normal(0.0, 1.5, 1_000)  # three times the development noise
    engine.ingest(_lines(predictions, [float(v) for v in truth]), T0)
    later = T0 + engine.assessor.step  # gaps are assessed when the next step begins
    metrics = _scrape(engine.state, later, engine.advance(later))
    residual = predictions - truth
    live_mae, live_rmse = np.abs(residual).mean(), np.sqrt((residual**2).mean())
    assert math.isclose(
        metrics[("model_window_mae_gap", "1m")], live_mae / reference.mae, rel_tol=1e-9
    )
    assert math.isclose(
        metrics[("model_window_rmse_gap", "1m")], live_rmse / reference.rmse, rel_tol=1e-9
    )
    assert metrics[("model_reference_mae", "")] == reference.mae


CLASSIFICATION_ONLY = (
    "model_prediction_errors_total",
    "model_window_error_ratio",
    "model_window_error_ratio_gap",
    "model_window_estimated_error_ratio",
    "model_reference_error_ratio",
)


def test_a_regression_model_exports_no_classification_series() -> None:
    """Right-or-wrong has no meaning for a residual: no error counter at 0, no error ratio, no
    estimate from a calibration table (a regression profile has none)."""
    rng = np.random.default_rng(5)
    truth = rng.normal(50.0, 10.0, 1_000)
    predictions = truth + rng.normal(0.0, 2.0, 1_000)
    builder = ProfileBuilder(CONFIG.fields, CONFIG.quantiles, CONFIG.sketch_relative_accuracy)
    builder.add(_lines(predictions, [float(v) for v in truth]))
    reference = builder.build("now")
    assert reference.calibration is None
    decoder = Decoder(CONFIG.fields)
    state = State(CONFIG, decoder.layout, [v.values for v in decoder.vocabularies])
    state.set_reference(reference)
    state.ingest(decoder.decode(_lines(predictions, [float(v) for v in truth]), T0), T0)
    names = {name for name, _ in _scrape(state, T0)}
    assert "model_window_mae" in names
    assert "model_ground_truth_total" in names
    assert names.isdisjoint(CLASSIFICATION_ONLY), names & set(CLASSIFICATION_ONLY)


def test_late_labels_of_a_regression_model_give_mae_and_rmse() -> None:
    """Labels on their own line, joined by request id, are compared with the waiting score:
    the window's MAE and RMSE are numpy's over the joined pairs; a label that is not a number
    is matched but not labelled; a prediction labelled on its own line never waits."""
    config = unread_config(regression_fields(request_id="id"), ground_truth_join={"enabled": True})
    rng = np.random.default_rng(5)
    truth = rng.normal(50.0, 5.0, 300)
    predictions = truth + rng.normal(0.0, 2.0, 300)
    engine = Engine(config)
    lines = [{"ts": T0, "id": f"r{i}", "y_hat": float(p)} for i, p in enumerate(predictions)]
    lines.append({"ts": T0, "id": "inline", "y_hat": 1.0, "y": 1.5})
    engine.ingest(b"".join(json.dumps(r).encode() + b"\n" for r in lines), T0)
    labels: list[dict[str, object]] = [
        {"ts": T0 + 30, "id": f"r{i}", "y": float(y)} for i, y in enumerate(truth)
    ]
    labels[0]["y"] = "n/a"
    labels.append({"ts": T0 + 30, "id": "inline", "y": 1.5})
    counts = engine.ingest(b"".join(json.dumps(r).encode() + b"\n" for r in labels), T0 + 30)
    assert (counts.records, counts.labels) == (0, 301)

    residual = (predictions - truth)[1:]
    metrics = _scrape(engine.state, T0 + 30)
    assert metrics[("model_window_ground_truth", "1m")] == len(residual) + 1  # + the inline one
    window = np.append(residual, -0.5)
    assert math.isclose(metrics[("model_window_mae", "1m")], np.abs(window).mean(), rel_tol=1e-12)
    assert math.isclose(
        metrics[("model_window_rmse", "1m")], np.sqrt((window**2).mean()), rel_tol=1e-12
    )
    outcomes = engine.state.snapshot(T0 + 30).groups[0].join_outcomes
    assert (outcomes["matched"], outcomes["unmatched"]) == (300, 1)


def test_a_residual_past_the_largest_float_is_no_error_and_is_counted() -> None:
    """1.5e308 − (−1.5e308) overflows: that label is judged as an infinite one would be
    (type_mismatch) and kept out of MAE, which stays finite and exact on the other records."""
    predictions = np.array([1.5e308, 10.0, 20.0])
    labels: list[object] = [-1.5e308, 12.0, 17.0]
    decoder = Decoder(CONFIG.fields)
    state = State(CONFIG, decoder.layout, [v.values for v in decoder.vocabularies])
    with np.errstate(all="raise"):  # no overflow warning on the way either
        batch = decoder.decode(_lines(predictions, labels), T0)
    state.ingest(batch, T0)
    metrics = _scrape(state, T0)
    assert metrics[("model_window_ground_truth", "1m")] == 2
    assert metrics[("model_window_mae", "1m")] == 2.5
    flagged = state.snapshot(T0).groups[0].totals.anomalies[decoder.layout.ground_truth_column]
    assert int(flagged.sum()) == 1
