"""The bundle against the real thing: the sidecar tails a log, a real Prometheus scrapes it and
evaluates the bundled rules, a real Alertmanager routes the alerts with the bundled routing to a
webhook standing in for the pager and the chat channel.

Two models, each with its own sidecar: a classifier and a regression model. Each log is scripted:
a calm part identical to the development log the reference profile was built from (no alert may
fire), then a drift episode. The classifier's comes from the simulator: inputs and predictions
drift and the model is wrong more often (the drift and error-rate alerts must arrive, the error
one at the pager). The regression model's inputs stay put but its residuals double (the MAE
alert must arrive at the pager). Then every dashboard query must return data from that
Prometheus (the "Regression" rows for the regression model, the rest for the classifier), and
every metric name the bundle reads must exist in the real scrape of one of the two sidecars.

The only changes to the bundled files: `for:` durations shortened to seconds, and Alertmanager's
receivers pointed at the webhook with short grouping delays.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from exporter.offline.simulate import LineTruth, Scenario, generate_with_truth
from tests.bundle import (
    PROMETHEUS_SERIES,
    ROOT,
    SUBSTITUTIONS,
    dashboard_exprs,
    load_dashboards,
    load_rules,
    metric_names,
    panels_with_row,
    recorded_names,
    regression_panel,
    shortened_rules,
    substitute,
    variable_query_expr,
)
from tests.configs import example_config, write_config
from tests.harness import (
    RUN_TIMEOUT,
    WAIT,
    Alertmanager,
    Prometheus,
    ScrapeTarget,
    SidecarProcess,
    WebhookReceiver,
    wait_until,
)

pytestmark = pytest.mark.e2e

JOB = "model-exporter"
MODEL = {"model": "fraud-detector", "version": "v3"}
REGRESSION = {"model": "house-prices", "version": "r1"}
POOLED_MAE = (
    f'model_version_window:model_window_mae:pooled{{model="{REGRESSION["model"]}", window="1h"}}'
)
CALM, DRIFTED = 2_000, 8_000
# Evaluations (1 s apart) the calm part must go through without an alert: several times the
# shortened `for:`, so an alert that would fire on calm data has had every chance to.
CALM_EVALUATIONS = 8
ERROR_FACTOR = 1.15  # the default in thresholds.yml, checked below
MAE_FACTOR = 1.2  # the default in thresholds.yml, checked below
EXPECTED_ALERTS = {
    "ModelFeatureDrift": "ticket",
    "ModelPredictionDrift": "ticket",
    "ModelErrorRateAboveDevelopment": "pager",
    "ModelMAEAboveDevelopment": "pager",
}


def alertmanager_config(webhook: WebhookReceiver) -> str:
    """The bundled routing and inhibitions; receivers become webhooks named like them."""
    data: dict[str, Any] = yaml.safe_load(
        (ROOT / "config/alertmanager/alertmanager.yml").read_text()
    )
    data["receivers"] = [
        {"name": r["name"], "webhook_configs": [{"url": webhook.url + r["name"]}]}
        for r in data["receivers"]
    ]
    data["route"].update(group_wait="200ms", group_interval="1s")
    return yaml.safe_dump(data, sort_keys=False)


def write(log: Path, lines: list[bytes]) -> None:
    with log.open("ab") as f:
        f.write(b"".join(lines))


def regression_log(n: int, seed: int, noise: float) -> tuple[list[bytes], np.ndarray]:
    """A regression model's log: the price of a house from its size; the prediction is the
    true relation, the label adds normal noise of the given spread. Every line is labelled.
    Returns the lines and the absolute errors (for numpy's MAE)."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(40.0, 200.0, n)
    prediction = 3.0 * size
    label = prediction + rng.normal(0.0, noise, n)
    latency = rng.gamma(4.0, 5.0, n)
    lines = [
        json.dumps(
            {
                "ts": time.time(),
                "prediction": round(float(p), 3),
                "ground_truth": round(float(y), 3),
                "latency_ms": round(float(ms), 2),
                "features": {"size": round(float(s), 2)},
            }
        ).encode()
        + b"\n"
        for p, y, ms, s in zip(prediction, label, latency, size, strict=True)
    ]
    return lines, np.abs(np.round(prediction, 3) - np.round(label, 3))


def regression_config(log: Path, positions: Path, reference: Path | None) -> dict[str, Any]:
    """The example config reshaped for a regression model: a score and a numeric label, no
    class and no confidence."""
    config = example_config(log, positions, windows=["1m", "5m", "1h"])
    config["fields"] = {
        "timestamp": "ts",
        "model_name": REGRESSION["model"],
        "model_version": REGRESSION["version"],
        "prediction": {"path": "prediction"},
        "latency": {"path": "latency_ms", "unit": "ms", "min": 0},
        "ground_truth": "ground_truth",
        "features": [{"name": "size", "path": "features.size", "type": "numeric", "min": 0}],
    }
    config["reference"] = str(reference) if reference else None
    return config


def baseline(config: Path, development: Path, reference: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "baseline", "--config", str(config),
         "--input", str(development), "--output", str(reference)],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def error_ratio(truth: LineTruth) -> float:
    labelled = truth.has_ground_truth & truth.parses
    return float((truth.error & labelled).sum() / labelled.sum())


def scraped_names(metrics_text: str) -> set[str]:
    return {
        line.split("{", 1)[0].split(" ", 1)[0]
        for line in metrics_text.splitlines()
        if line and not line.startswith("#")
    }


def model_alerts(prometheus: Prometheus) -> list[dict[str, Any]]:
    """Every bundled alert Prometheus holds, pending or firing."""
    return [a for a in prometheus.alerts() if a["labels"]["alertname"].startswith("Model")]


def test_bundle_alerts_and_dashboards_against_the_real_sidecar(
    tmp_path: Path,
    start_sidecar: Callable[..., SidecarProcess],
    start_prometheus: Callable[..., Prometheus],
    start_alertmanager: Callable[..., Alertmanager],
    webhook: WebhookReceiver,
) -> None:
    thresholds = {r["record"]: r["expr"] for r in load_rules() if "record" in r}
    assert thresholds["model_alert:error_ratio_factor"] == f"vector({ERROR_FACTOR})"
    assert thresholds["model_alert:mae_factor"] == f"vector({MAE_FACTOR})"

    # The development log is the calm part itself, so the calm part matches the reference.
    start = time.time()
    calm, calm_truth = generate_with_truth(
        CALM, start, 1000.0, Scenario(seed=11, ground_truth_ratio=1.0, malformed_ratio=0.004)
    )
    drifted, drift_truth = generate_with_truth(
        DRIFTED,
        start,
        1000.0,
        Scenario(seed=12, ground_truth_ratio=1.0, malformed_ratio=0.004, drift_start=0.0),
        first_index=CALM,
    )
    # The scenario must be one the alerts are meant to catch: over the hour the alert reads,
    # the error ratio clearly exceeds development x factor (numpy over the simulator's truth).
    both = error_ratio(calm_truth) * CALM + error_ratio(drift_truth) * DRIFTED
    assert both / (CALM + DRIFTED) > 1.3 * ERROR_FACTOR * error_ratio(calm_truth)

    development = tmp_path / "development.jsonl"
    development.write_bytes(b"".join(calm))
    reference = tmp_path / "reference.json"
    base = example_config(tmp_path / "unused.jsonl")
    baseline(write_config(tmp_path, base, "baseline.yaml"), development, reference)

    # The regression model: calm residuals of spread 1, then spread 2 (MAE doubles).
    reg_calm, calm_errors = regression_log(CALM, seed=21, noise=1.0)
    reg_drifted, drift_errors = regression_log(DRIFTED, seed=22, noise=2.0)
    pooled_mae = float(np.concatenate([calm_errors, drift_errors]).mean())
    assert pooled_mae > 1.3 * MAE_FACTOR * float(calm_errors.mean())
    reg_development = tmp_path / "regression-development.jsonl"
    reg_development.write_bytes(b"".join(reg_calm))
    reg_reference = tmp_path / "regression-reference.json"
    reg_base = regression_config(tmp_path / "unused.jsonl", tmp_path / "unused.json", None)
    baseline(
        write_config(tmp_path, reg_base, "regression-baseline.yaml"), reg_development, reg_reference
    )

    log = tmp_path / "predictions.jsonl"
    log.touch()
    config = example_config(log, tmp_path / "positions.json", reference=str(reference))
    config["windows"] = ["1m", "5m", "1h"]
    sidecar = start_sidecar(write_config(tmp_path, config))
    reg_log = tmp_path / "regression.jsonl"
    reg_log.touch()
    reg_config = regression_config(reg_log, tmp_path / "regression-positions.json", reg_reference)
    reg_sidecar = start_sidecar(write_config(tmp_path, reg_config, "regression.yaml"))
    alertmanager = start_alertmanager(config_text=alertmanager_config(webhook))
    prometheus = start_prometheus(
        [
            ScrapeTarget(JOB, f"127.0.0.1:{sidecar.port}"),
            ScrapeTarget(JOB, f"127.0.0.1:{reg_sidecar.port}"),
        ],
        rule_files=shortened_rules(tmp_path / "rules"),
        alertmanagers=[alertmanager.address],
    )
    prometheus.wait_for_target_up(JOB)

    # --- calm: a first slice so the counters exist at a low value, then the rest -----------
    write(log, calm[:50])
    write(reg_log, reg_calm[:50])
    for model in (MODEL, REGRESSION):
        prometheus.wait_for_query(f'model_predictions_total{{model="{model["model"]}"}}')
    write(log, calm[50:])
    write(reg_log, reg_calm[50:])
    # The rules must have gone through the whole calm part of both logs, not only their first
    # slices, before "no alert" means anything.
    calm_records = {MODEL["model"]: int(calm_truth.parses.sum()), REGRESSION["model"]: CALM}
    for model, records in calm_records.items():
        prometheus.wait_for_query(
            f'count_over_time((sum(model_predictions_total{{model="{model}"}}) == {records})'
            f"[1m:1s]) >= {CALM_EVALUATIONS}"
        )
    drift_ratio = 'model_version_field:model_window_drift_threshold_ratio:median{window="1h"}'
    for evaluated in (
        drift_ratio,
        "model_version:model_prediction_errors:ratio_rate1h",
        POOLED_MAE,
    ):
        prometheus.wait_for_query(f"count_over_time(({evaluated})[1m:1s]) >= {CALM_EVALUATIONS}")
    assert model_alerts(prometheus) == []
    assert webhook.received_alerts() == []

    # --- the drift episode ----------------------------------------------------------------------
    write(log, drifted)
    write(reg_log, reg_drifted)

    def delivered() -> dict[str, set[str]] | None:
        got: dict[str, set[str]] = {}
        for body in webhook.received():
            for alert in body["alerts"]:
                if alert["status"] == "firing":
                    got.setdefault(alert["labels"]["alertname"], set()).add(body["receiver"])
        return got if set(EXPECTED_ALERTS) <= set(got) else None

    got = wait_until(delivered, timeout=WAIT, message=f"{sorted(EXPECTED_ALERTS)} at the webhook")
    for name, receiver in EXPECTED_ALERTS.items():
        assert got[name] == {receiver}, name
    drifting = {
        a["labels"]["field"]
        for a in model_alerts(prometheus)
        if a["labels"]["alertname"] == "ModelFeatureDrift"
        and a["state"] == "firing"
        and a["labels"]["model"] == MODEL["model"]
    }
    # The simulator drifts amount, merchant_risk and country; age and device are its controls.
    assert {"amount", "merchant_risk", "country"} <= drifting
    assert drifting <= {"amount", "age", "merchant_risk", "country", "device"}
    assert not drifting & {"age", "device"}

    # The MAE alert fired for the regression model only, at Prometheus' pooled MAE, which is
    # numpy's MAE over the same labelled records (1h window: every record written so far).
    mae_alerts = [
        a
        for a in model_alerts(prometheus)
        if a["labels"]["alertname"] == "ModelMAEAboveDevelopment"
    ]
    assert {a["labels"]["model"] for a in mae_alerts} == {REGRESSION["model"]}

    def mae_settled() -> float | None:
        mae = prometheus.query_value(POOLED_MAE)
        return mae if mae is not None and abs(mae - pooled_mae) < 1e-6 * pooled_mae else None

    wait_until(mae_settled, timeout=WAIT, message=f"pooled MAE {pooled_mae} (numpy)")

    # --- every dashboard query and variable returns data ------------------------------------------
    values = {**SUBSTITUTIONS, "job": JOB, **MODEL}
    regression_values = {**values, **REGRESSION}
    empty = []
    for name, dashboard in load_dashboards().items():
        for row, panel in panels_with_row(dashboard):
            for target in panel["targets"]:
                chosen = regression_values if regression_panel(row) else values
                query = substitute(target["expr"], chosen)
                if not prometheus.query(query):
                    empty.append(f"{name}: {panel['title']}: {query}")
        for var in dashboard["templating"]["list"]:
            if var["type"] == "query":
                label = var["query"]["query"].rsplit(",", 1)[1].strip(" )")
                selector = substitute(variable_query_expr(var["query"]["query"]), values)
                if not prometheus.label_values(label, selector):
                    empty.append(f"{name}: variable {var['name']}")
    assert empty == []

    # --- every metric name the bundle reads is in the real scrape of one of the sidecars -------
    used = {n for r in load_rules() for n in metric_names(r["expr"])}
    for dashboard in load_dashboards().values():
        used |= {n for e in dashboard_exprs(dashboard) for n in metric_names(e)}
    scraped = scraped_names(sidecar.metrics_text()) | scraped_names(reg_sidecar.metrics_text())
    missing = used - recorded_names() - PROMETHEUS_SERIES - scraped
    assert missing == set()
