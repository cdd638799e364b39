"""Development vs production, end to end: a real fitted model, its development log turned into a
profile by ``model-exporter baseline``, the real sidecar comparing production with it, and a real
Prometheus scraping the verdicts.

The model is a scikit-learn logistic regression on the breast-cancer data set that ships with
scikit-learn. The development log holds out-of-fold predictions on the development half (an
honest error rate); production is the other half: a calm part as it is, then a shifted part where
two features are moved by 1.5 development standard deviations before the model predicts, so the
inputs, the predictions and the error rate all change. Expected numbers (means, error ratios) come
from numpy on the same rows, never from the sidecar's code.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from oracle import pool, sketch_bins
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests.configs import tailed_data, write_config
from tests.harness import (
    RUN_TIMEOUT,
    WAIT,
    Prometheus,
    ScrapeTarget,
    SidecarProcess,
    promtool,
    wait_until,
)

pytestmark = pytest.mark.e2e

MODEL = 'model="cancer-screen",version="lr-1"'
SHIFTED = ("mean_radius", "worst_concave_points")
UNSHIFTED_NUMERIC = ("mean_texture", "mean_smoothness", "latency_seconds")
UNSHIFTED_CATEGORICAL = ("texture_band",)
LOGGED = {  # field name in the log → column of the data set
    "mean_radius": "mean radius",
    "worst_concave_points": "worst concave points",
    "mean_texture": "mean texture",
    "mean_smoothness": "mean smoothness",
}
CLASS_NAMES = ("malignant", "benign")  # the data set's target codes 0 and 1
# The short window must hold the shifted part across several 1 s scrapes even on a slow machine,
# and the calm part must age out of it before the shifted part arrives (the test waits for that).
SHORT, LONG = "10s", "1m"
# psi and ks for each numeric field (score, confidence, latency, features), js for two categorical
VERDICTS = 2 * (3 + len(LOGGED)) + 2


@dataclass(frozen=True)
class Part:
    """Rows of one log: what was written and the truth about it."""

    lines: list[bytes]
    features: dict[str, np.ndarray]
    wrong: np.ndarray
    confidence: np.ndarray


@dataclass(frozen=True)
class Scenario:
    dev: Part
    calm: Part
    shifted: Part


def _scenario() -> Scenario:
    data = load_breast_cancer()
    names = list(data.feature_names)
    x_dev, x_prod, y_dev, y_prod = train_test_split(
        data.data, data.target, test_size=0.5, random_state=0, stratify=data.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    dev_proba = cross_val_predict(model, x_dev, y_dev, cv=folds, method="predict_proba")
    model.fit(x_dev, y_dev)
    texture = x_dev[:, names.index("mean texture")]
    bands = np.quantile(texture, [1 / 3, 2 / 3])  # the derived category's cut points

    half = len(x_prod) // 2
    x_calm, y_calm = x_prod[:half], y_prod[:half]
    x_shift, y_shift = x_prod[half:].copy(), y_prod[half:]
    spread = x_dev.std(axis=0)
    for field in SHIFTED:
        column = names.index(LOGGED[field])
        x_shift[:, column] += 1.5 * spread[column]

    rng = np.random.default_rng(5)
    parts = []
    for x, y, proba in (
        (x_dev, y_dev, dev_proba),
        (x_calm, y_calm, model.predict_proba(x_calm)),
        (x_shift, y_shift, model.predict_proba(x_shift)),
    ):
        latency_ms = rng.lognormal(np.log(8.0), 0.3, len(x))
        parts.append(_part(x, y, proba, latency_ms, names, bands))
    return Scenario(*parts)


def _part(
    x: np.ndarray,
    y: np.ndarray,
    proba: np.ndarray,
    latency_ms: np.ndarray,
    names: list[str],
    bands: np.ndarray,
) -> Part:
    predicted = proba.argmax(axis=1)
    features = {field: x[:, names.index(column)] for field, column in LOGGED.items()}
    band = np.array(["low", "mid", "high"])[np.searchsorted(bands, features["mean_texture"])]
    lines = []
    for i in range(len(x)):
        record = {
            "ts": time.time(),
            "model": "cancer-screen",
            "version": "lr-1",
            "request_id": f"r{i}",
            "scores": {"malignant": float(proba[i, 0]), "top": float(proba[i].max())},
            "label": CLASS_NAMES[predicted[i]],
            "latency_ms": float(latency_ms[i]),
            "truth": CLASS_NAMES[y[i]],
            "inputs": {
                **{field: float(values[i]) for field, values in features.items()},
                "texture_band": str(band[i]),
            },
        }
        lines.append(json.dumps(record).encode() + b"\n")
    features["latency_seconds"] = latency_ms / 1000
    return Part(lines, features, predicted != y, proba.max(axis=1))


def _config(log: Path, reference: Path | None, **extra: Any) -> dict[str, Any]:
    """A field mapping of our own (not the example config's), two windows: a short one the calm
    part ages out of quickly, and a long one that keeps it."""
    features: list[dict[str, Any]] = [
        {"name": field, "path": f"inputs.{field}", "type": "numeric"} for field in LOGGED
    ]
    features.append({"name": "texture_band", "path": "inputs.texture_band", "type": "categorical"})
    fields = {
        "timestamp": "ts",
        "model": "model",
        "version": "version",
        "request_id": "request_id",
        "prediction": {"path": "scores.malignant", "min": 0, "max": 1},
        "predicted_class": "label",
        "confidence": {"path": "scores.top", "min": 0, "max": 1},
        "latency": {"path": "latency_ms", "unit": "ms", "min": 0},
        "ground_truth": "truth",
        "features": features,
    }
    config = tailed_data(log, fields, windows=[SHORT, LONG], window_buckets=5, quantiles=[0.5, 0.9])
    if reference is not None:
        config["reference"] = str(reference)
    config.update(extra)
    return config


def _baseline(config: Path, log: Path, output: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "exporter", "baseline"),
            *("--config", str(config), "--input", str(log), "--output", str(output)),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    profile: dict[str, Any] = json.loads(output.read_text())
    assert profile["hash"] in done.stdout
    return profile


def _append(log: Path, lines: list[bytes]) -> None:
    with log.open("ab") as f:
        f.write(b"".join(lines))


def _by_field(result: list[dict[str, Any]], name: str) -> dict[tuple[str, str], float]:
    """{(field, statistic-or-"") : value} for one metric name of a query result."""
    found = {}
    for series in result:
        labels = series["metric"]
        if labels["__name__"] == name:
            found[(labels["field"], labels.get("statistic", ""))] = float(series["value"][1])
    return found


def _window_set(
    prometheus: Prometheus, window: str, records: int, gap: float, since: float
) -> list[dict[str, Any]] | None:
    """Every drift series of one window as one scrape saw them: the latest scrape after
    ``since`` (when the records were written) at which the window held exactly ``records``
    records and its verdicts described them, if all the verdicts were present then.

    Verdicts are assessed once per step on the window as it stood when the step began
    (docs/drift.md), so they may still describe part of the records for up to a step: the error
    ratio gap, exact for these records and nothing else, says when they cover all of them. The
    instant query is made at that scrape's own time, so the answer is the same however long
    after the scrape this runs (the window may have moved on since)."""

    def over_time(name: str) -> dict[float, float]:
        held = prometheus.query(f"{name}{{window='{window}',{MODEL}}}[10m]")
        return {float(t): float(v) for series in held for t, v in series["values"]}

    counts = over_time("model_window_predictions")
    gaps = over_time("model_window_error_ratio_gap")
    times = [
        t
        for t, n in counts.items()
        if t > since and n == records and t in gaps and gaps[t] == pytest.approx(gap, rel=1e-9)
    ]
    if not times:
        return None
    result = prometheus.query(
        "{__name__=~'model_window_drift_.*|model_window_error_ratio_gap|model_window_error_ratio|"
        "model_window_estimated_error_ratio|model_window_predictions|model_window_confidence_gap',"
        f"window='{window}'}}",
        at=max(times),
    )
    predictions = [
        float(s["value"][1])
        for s in result
        if s["metric"]["__name__"] == "model_window_predictions"
    ]
    assert predictions == [records], predictions
    detected = _by_field(result, "model_window_drift_detected")
    return result if len(detected) >= VERDICTS else None


def _assert_drift(
    result: list[dict[str, Any]],
    fields: tuple[str, ...],
    statistics: tuple[str, ...],
    drifted: bool,
) -> None:
    """Each statistic of each field is over its threshold (and detected) or under it (and not)."""
    for statistic in statistics:
        values = _by_field(result, f"model_window_drift_{statistic}")
        thresholds = _by_field(result, f"model_window_drift_{statistic}_threshold")
        detected = _by_field(result, "model_window_drift_detected")
        for field in fields:
            key = (field, "")
            over = values[key] > thresholds[key]
            assert over == drifted, (field, statistic, values[key], thresholds[key])
            assert detected[(field, statistic)] == (1.0 if drifted else 0.0), (field, statistic)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return _scenario()


def test_production_drift_is_measured_against_the_development_profile(
    tmp_path: Path,
    scenario: Scenario,
    start_sidecar: Callable[..., SidecarProcess],
    start_prometheus: Callable[..., Prometheus],
) -> None:
    started = time.monotonic()
    config, log, profile_path, profile = _with_profile(tmp_path, scenario)
    sidecar = start_sidecar(config)
    prometheus = start_prometheus([ScrapeTarget("model", f"127.0.0.1:{sidecar.port}")])
    prometheus.wait_for_target_up("model")

    # -- calm production: same distribution, nothing drifts ----------------------------------
    appended = time.time()
    _append(log, scenario.calm.lines)
    calm = len(scenario.calm.lines)
    dev_error = float(scenario.dev.wrong.mean())
    wait_until(
        lambda: prometheus.query_value(f"model_predictions_total{{{MODEL}}}") == calm,
        timeout=WAIT,
        message=f"Prometheus to see {calm} predictions",
    )
    calm_gap = float(scenario.calm.wrong.mean()) / dev_error
    result = wait_until(
        lambda: _window_set(prometheus, LONG, calm, calm_gap, appended),
        timeout=WAIT,
        message="calm verdicts",
    )
    # -- the development profile, as Prometheus sees it (labelled like each live model) ------
    info = prometheus.wait_for_query(f"model_reference_info{{{MODEL}}}")
    assert info[0]["metric"]["hash"] == profile["hash"]
    assert prometheus.query_value(f"model_reference_samples{{{MODEL}}}") == len(scenario.dev.lines)
    got = prometheus.query_value(f"model_reference_error_ratio{{{MODEL}}}")
    assert got == pytest.approx(dev_error, rel=1e-12)
    for field, values in scenario.dev.features.items():
        got = prometheus.query_value(f'model_reference_mean{{field="{field}",{MODEL}}}')
        assert got == pytest.approx(float(values.mean()), rel=1e-9), field
        assert got == profile["numeric"][field]["mean"]
        got = prometheus.query_value(f'model_reference_max{{field="{field}",{MODEL}}}')
        assert got == pytest.approx(float(values.max()), rel=1e-12), field
        got = prometheus.query_value(f'model_reference_quantile{{field="{field}",q="0.5",{MODEL}}}')
        assert got == profile["numeric"][field]["quantiles"]["0.5"]
        truth = float(np.quantile(values, 0.5, method="lower"))
        assert abs(got - truth) <= 0.01 * abs(truth)
    bands = {
        s["metric"]["value"]: float(s["value"][1])
        for s in prometheus.query(f'model_reference_category_ratio{{field="texture_band",{MODEL}}}')
    }
    assert bands == pytest.approx(profile["categorical"]["texture_band"]["shares"])

    detected = _by_field(result, "model_window_drift_detected")
    assert set(detected.values()) == {0.0}, detected
    every = prometheus.query("model_window_drift_detected")  # all windows exported right now
    assert every
    assert {float(s["value"][1]) for s in every} == {0.0}, every
    _assert_drift(result, SHIFTED + UNSHIFTED_NUMERIC, ("psi", "ks"), drifted=False)
    _assert_drift(result, UNSHIFTED_CATEGORICAL, ("js",), drifted=False)
    checked = promtool("check", "metrics", input=sidecar.metrics_text())
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The error ratio the calm confidences imply under the development calibration, beside
    # the measured one (the numbers for docs/drift.md come from bench/estimate.py).
    calm_estimate = _by_field_plain(result, "model_window_estimated_error_ratio")
    assert calm_estimate == pytest.approx(_estimate(profile, scenario.calm.confidence), rel=1e-9)
    calm_measured = _by_field_plain(result, "model_window_error_ratio")
    assert calm_measured == pytest.approx(float(scenario.calm.wrong.mean()), rel=1e-9)
    calm_seen = time.monotonic() - started

    # -- the calm part ages out of the short window, then the shifted part arrives -----------
    wait_until(
        lambda: (
            prometheus.query_value(f'model_window_predictions{{window="{SHORT}",{MODEL}}}') == 0
        ),
        timeout=WAIT,
        message=f"the {SHORT} window to forget the calm part",
    )
    appended = time.time()
    _append(log, scenario.shifted.lines)
    shifted = len(scenario.shifted.lines)
    shifted_gap = float(scenario.shifted.wrong.mean()) / dev_error
    result = wait_until(
        lambda: _window_set(prometheus, SHORT, shifted, shifted_gap, appended),
        timeout=WAIT,
        message="shifted verdicts",
    )
    _assert_drift(result, SHIFTED, ("psi", "ks"), drifted=True)
    _assert_drift(result, UNSHIFTED_NUMERIC, ("psi", "ks"), drifted=False)
    _assert_drift(result, UNSHIFTED_CATEGORICAL, ("js",), drifted=False)
    gap = _by_field_plain(result, "model_window_error_ratio_gap")
    assert float(scenario.shifted.wrong.mean()) > float(scenario.calm.wrong.mean())
    assert gap == pytest.approx(float(scenario.shifted.wrong.mean()) / dev_error, rel=1e-9)
    assert gap > 1.15
    shifted_estimate = _by_field_plain(result, "model_window_estimated_error_ratio")
    want = _estimate(profile, scenario.shifted.confidence)
    assert shifted_estimate == pytest.approx(want, rel=1e-9)
    checked = promtool("check", "metrics", input=sidecar.metrics_text())
    assert checked.returncode == 0, checked.stdout + checked.stderr
    shifted_seen = time.monotonic() - started

    # -- hot reload: a new valid profile replaces the old one; a corrupt one is refused -------
    smaller = tmp_path / "dev-first-half.jsonl"
    smaller.write_bytes(b"".join(scenario.dev.lines[: len(scenario.dev.lines) // 2]))
    staged = tmp_path / "staged.json"
    second = _baseline(config, smaller, staged)
    assert second["hash"] != profile["hash"]
    staged.replace(profile_path)
    wait_until(
        lambda: prometheus.query(f'model_reference_info{{hash="{second["hash"]}",{MODEL}}}'),
        timeout=WAIT,
        message="Prometheus to see the reloaded profile's hash",
    )
    staged.write_text('{"format": "model-exporter/reference", "format_version": 1, "numer')
    staged.replace(profile_path)  # atomic, as a deploy tool would
    wait_until(
        lambda: "refused, keeping the profile" in sidecar.output(),
        timeout=WAIT,
        message="the sidecar to refuse the corrupt profile",
    )
    hashes = [
        line
        for line in sidecar.metrics_text().splitlines()
        if line.startswith("model_reference_info{")
    ]
    assert len(hashes) == 1
    assert f'hash="{second["hash"]}"' in hashes[0]
    sidecar.assert_running()
    print(
        f"\ne2e drift: calm verdicts after {calm_seen:.1f}s, shifted after {shifted_seen:.1f}s, "
        f"total {time.monotonic() - started:.1f}s; error gap {gap:.2f}; error ratio calm "
        f"{calm_measured:.3f} (estimated {calm_estimate:.3f}), shifted "
        f"{float(scenario.shifted.wrong.mean()):.3f} (estimated {shifted_estimate:.3f})"
    )


def _estimate(profile: dict[str, Any], confidence: np.ndarray) -> float:
    """numpy: each record's confidence bin (sketch bucket keys, tests/oracle.py), the bins
    without a development share pooled to the left, each cell's development error ratio shrunk
    by one record towards the overall one, averaged over the records."""
    shares = np.asarray(profile["numeric"]["confidence"]["bin_shares"])
    table = profile["calibration"]
    _, labelled = pool(shares, np.asarray(table["labelled"], dtype=float))
    _, wrong = pool(shares, np.asarray(table["wrong"], dtype=float))
    per_cell = (wrong + wrong.sum() / labelled.sum()) / (labelled + 1)
    bins = sketch_bins(confidence, profile["numeric"]["confidence"]["bin_edges"], 0.01)
    cell = np.maximum(np.cumsum(shares > 0) - 1, 0)[bins]
    return float(per_cell[cell].mean())


def _by_field_plain(result: list[dict[str, Any]], name: str) -> float:
    values = [float(s["value"][1]) for s in result if s["metric"]["__name__"] == name]
    assert len(values) == 1, (name, values)
    return values[0]


def _with_profile(tmp_path: Path, scenario: Scenario) -> tuple[Path, Path, Path, dict[str, Any]]:
    """A config whose reference is built (by the real `baseline` command) from the development
    log; returns the config, the empty production log, the profile's path and its content."""
    dev_log, log, profile_path = (
        tmp_path / "dev.jsonl",
        tmp_path / "prod.jsonl",
        tmp_path / "reference.json",
    )
    dev_log.write_bytes(b"".join(scenario.dev.lines))
    log.touch()
    config = write_config(tmp_path, _config(log, profile_path))
    return config, log, profile_path, _baseline(config, dev_log, profile_path)


def _scrape(sidecar: SidecarProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for family in text_string_to_metric_families(sidecar.metrics_text()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def _value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    wanted = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and wanted <= ls]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def test_refused_profile_is_counted(
    tmp_path: Path, scenario: Scenario, start_sidecar: Callable[..., SidecarProcess]
) -> None:
    config, log, profile_path, profile = _with_profile(tmp_path, scenario)
    sidecar = start_sidecar(config)
    _append(log, scenario.calm.lines[:10])  # a model series, so model_reference_info is labelled
    wait_until(
        lambda: _value(_scrape(sidecar), "model_predictions_total") == 10,
        timeout=WAIT,
        message="10 records",
    )
    staged = tmp_path / "staged.json"
    staged.write_text("{ this is not a profile")
    staged.replace(profile_path)  # atomic, as a deploy tool would
    # Wait on the log line itself: "refused" alone also matches this test's own tmp_path.
    wait_until(
        lambda: "refused, keeping the profile" in sidecar.output(),
        timeout=WAIT,
        message="a refusal",
    )
    samples = _scrape(sidecar)
    assert _value(samples, "model_reference_info", hash=profile["hash"]) == 1.0
    assert _value(samples, "model_exporter_reference_reloads_total", outcome="error") == 1.0
    assert _value(samples, "model_exporter_reference_reloads_total", outcome="ok") == 1.0


def test_freeze_first_makes_the_first_production_records_the_reference(
    tmp_path: Path, scenario: Scenario, start_sidecar: Callable[..., SidecarProcess]
) -> None:
    freeze = 100
    log = tmp_path / "prod.jsonl"
    log.touch()
    config = write_config(tmp_path, _config(log, None, drift={"freeze_first": freeze}))
    sidecar = start_sidecar(config)
    lines = scenario.dev.lines
    _append(log, lines[:60])
    wait_until(
        lambda: _value(_scrape(sidecar), "model_predictions_total") == 60,
        timeout=WAIT,
        message="60 records",
    )
    assert _value(_scrape(sidecar), "model_reference_info") is None

    _append(log, lines[60:120])

    def frozen_reference() -> dict[Any, float] | None:
        samples = _scrape(sidecar)
        return samples if _value(samples, "model_reference_info") is not None else None

    samples = wait_until(frozen_reference, timeout=WAIT, message="a frozen reference")
    frozen = _value(samples, "model_reference_samples")
    assert frozen is not None
    assert frozen == freeze  # exactly the count, though the batch that crossed it held more
    first = scenario.dev.features["mean_radius"][:freeze]
    got = _value(samples, "model_reference_mean", field="mean_radius")
    assert got == pytest.approx(float(first.mean()), rel=1e-9)
    hash_label = next(
        dict(ls)["hash"] for (n, ls), _ in samples.items() if n == "model_reference_info"
    )
    assert hash_label.startswith("sha256:")
    # Later records are compared with the frozen reference.
    _append(log, lines[120:])
    wait_until(
        lambda: (
            _value(
                _scrape(sidecar),
                "model_window_drift_detected",
                field="mean_radius",
                statistic="ks",
                window=LONG,
            )
            is not None
        ),
        timeout=WAIT,
        message="verdicts against the frozen reference",
    )
