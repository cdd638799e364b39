# ruff: noqa: E501  (PromQL test expressions read better unbroken)
"""Metric names in the bundle's PromQL (dashboards and rules) against the metric contract.

A dashboard or alert that reads a metric the sidecar does not export shows "No data" or never
fires, silently. Every name the bundle reads must be documented in docs/metrics.md, recorded by
a bundled rule, or one of Prometheus' own series; the end-to-end test checks the same names
against a real scrape.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.bundle import (
    DASHBOARD_FILES,
    PROMETHEUS_SERIES,
    ROOT,
    dashboard_exprs,
    load_dashboards,
    load_rules,
    metric_names,
    recorded_names,
    variable_query_expr,
)

METRICS_DOC = ROOT / "docs" / "metrics.md"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def documented_metrics() -> tuple[set[str], set[str]]:
    """(all metric names, histogram names) from the first column of docs/metrics.md's tables."""
    names: set[str] = set()
    histograms: set[str] = set()
    section = ""
    for line in METRICS_DOC.read_text().splitlines():
        if line.startswith("#"):
            section = line.lower()
        if not line.startswith("|"):
            continue
        first_cell = line.split("|")[1]
        found = set(re.findall(r"`(model_[a-z0-9_]+)`", first_cell))
        names |= found
        if "histogram" in section:
            histograms |= found
    return names, histograms


def undocumented(names: set[str]) -> set[str]:
    documented, histograms = documented_metrics()
    known = documented | recorded_names() | PROMETHEUS_SERIES
    missing = set()
    for name in names:
        if name in known:
            continue
        base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
        if base is not None and base in histograms:
            continue
        missing.add(name)
    return missing


# --- the extractor itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            "sum by (model, version) (rate(model_predictions_total[5m]))",
            {"model_predictions_total"},
        ),
        (
            'histogram_quantile(0.99, sum by (model, version, le) (rate(model_latency_seconds_bucket{job=~"$job"}[$__rate_interval])))',
            {"model_latency_seconds_bucket"},
        ),
        (
            'quantile by (version) (0.5, label_replace(a_metric / b_metric, "statistic", "psi", "", ""))',
            {"a_metric", "b_metric"},
        ),
        (
            "x:y:z > on (model, version) group_left () w * scalar(model_alert:f) and on(model) v >= bool 1e-12",
            {"x:y:z", "w", "model_alert:f", "v"},
        ),
        ('time() - last_read{source="/var/log/*.jsonl"} offset 5m', {"last_read"}),
        ('count(up{job=~"$job"}) or vector(0)', {"up"}),
    ],
)
def test_metric_names_finds_metrics_and_nothing_else(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_label_values_query_yields_its_selector() -> None:
    query = 'label_values(model_predictions_total{job=~"$job"}, model)'
    assert metric_names(variable_query_expr(query)) == {"model_predictions_total"}


def test_metrics_doc_is_parsed() -> None:
    """Guards the parser: a doc change that hid every name would make the checks vacuous."""
    names, histograms = documented_metrics()
    assert {"model_predictions_total", "model_exporter_source_lag_bytes"} <= names
    assert {"model_window_drift_psi_threshold", "model_reference_quantile"} <= names
    assert histograms == {"model_latency_seconds", "model_prediction_score", "model_confidence"}


def test_undocumented_flags_unknown_names() -> None:
    assert undocumented({"model_latency_seconds_bucket", "up"}) == set()
    assert undocumented({"model_no_such_metric", "model_predictions_total_bucket"}) == {
        "model_no_such_metric",
        "model_predictions_total_bucket",
    }


# --- the bundle ----------------------------------------------------------------------------------


def test_rules_read_only_documented_or_recorded_metrics() -> None:
    used = {n for r in load_rules() for n in metric_names(r["expr"])}
    assert "model_window_drift_psi" in used  # the extractor saw the rules
    assert undocumented(used) == set()


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboards_read_only_documented_or_recorded_metrics(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    used = {n for e in dashboard_exprs(dashboard) for n in metric_names(e)}
    assert used
    assert undocumented(used) == set()


def test_every_recording_rule_is_used() -> None:
    """A recorded series nobody reads costs evaluation time and misleads readers."""
    used: set[str] = set()
    for rule in load_rules():
        used |= metric_names(rule["expr"])
    for dashboard in load_dashboards().values():
        for expr in dashboard_exprs(dashboard):
            used |= metric_names(expr)
    assert recorded_names() - used == set()
