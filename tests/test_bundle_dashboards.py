"""The Grafana dashboards and their provisioning: structure, variables, and queries that the
real PromQL parser (promtool) accepts once the variables are substituted."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_bundle_promql import DASHBOARD_FILES, dashboard_exprs, panels

ROOT = Path(__file__).resolve().parent.parent
PROMTOOL = "/usr/bin/promtool"
DS_REF = {"type": "prometheus", "uid": "${datasource}"}
UIDS = {
    "model-exporter-fleet.json": "model-exporter-fleet",
    "model-exporter-model.json": "model-exporter-model",
    "model-exporter-sidecar.json": "model-exporter-sidecar",
}
MODEL_VARS = {"datasource", "job", "instance", "model", "version", "window"}
REQUIRED_VARS = {
    "model-exporter-fleet.json": MODEL_VARS,
    "model-exporter-model.json": MODEL_VARS | {"numeric_field", "categorical_field"},
    "model-exporter-sidecar.json": {"datasource", "job", "instance"},
}
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range"}
# Values the variables take when a query is checked or run: one concrete value each, as Grafana
# substitutes them (multi-value variables become a regex alternation, single ones a value).
SUBSTITUTIONS = {
    "__rate_interval": "1m",
    "job": "model-exporter",
    "instance": ".*",
    "model": "fraud-detector",
    "version": "v3",
    "window": "5m",
    "numeric_field": "amount",
    "categorical_field": "country",
}


def substitute(expr: str, values: dict[str, str] = SUBSTITUTIONS) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values[m.group(1)], expr)


def dashboards() -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, json.loads(p.read_text())) for p in DASHBOARD_FILES]


def visible_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in panels(dashboard) if p["type"] != "row"]


def test_the_three_dashboards_exist_with_stable_uids() -> None:
    assert {name: d["uid"] for name, d in dashboards()} == UIDS


def test_dashboards_are_generated_from_the_script() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("name", "dashboard"), dashboards())
def test_dashboard_schema(name: str, dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] == 39
    assert dashboard["id"] is None
    assert dashboard["title"]
    assert "__inputs" not in dashboard
    assert "DS_PROMETHEUS" not in json.dumps(dashboard)
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        pos = panel["gridPos"]
        assert pos["x"] >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]


@pytest.mark.parametrize(("name", "dashboard"), dashboards())
def test_every_panel_has_query_unit_thresholds_and_description(
    name: str, dashboard: dict[str, Any]
) -> None:
    found = visible_panels(dashboard)
    assert len(found) >= 8
    for panel in found:
        title = panel["title"]
        assert panel["datasource"] == DS_REF, title
        assert panel["description"].strip(), title
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["unit"], title
        assert defaults["thresholds"]["steps"], title
        assert panel["targets"], title
        for t in panel["targets"]:
            assert t["datasource"] == DS_REF, title
            assert t["expr"].strip(), title


@pytest.mark.parametrize(("name", "dashboard"), dashboards())
def test_template_variables(name: str, dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == REQUIRED_VARS[name]
    ds = variables["datasource"]
    assert (ds["type"], ds["query"]) == ("datasource", "prometheus")
    for var in variables.values():
        if var["type"] == "query":
            assert var["datasource"] == DS_REF, var["name"]
            assert var["query"]["query"].startswith("label_values("), var["name"]
    for panel in panels(dashboard):
        if "repeat" in panel:
            assert panel["repeat"] in variables


@pytest.mark.parametrize(("name", "dashboard"), dashboards())
def test_queries_use_only_defined_variables(name: str, dashboard: dict[str, Any]) -> None:
    defined = {v["name"] for v in dashboard["templating"]["list"]} | GRAFANA_BUILTINS
    text = json.dumps(dashboard)
    used = set(re.findall(r"\$\{?(\w+)\}?", text))
    assert used <= defined


@pytest.mark.parametrize(("name", "dashboard"), dashboards())
def test_every_query_parses(name: str, dashboard: dict[str, Any], tmp_path: Path) -> None:
    """promtool's parser, via a rule file holding every query as a recording rule."""
    exprs = [substitute(e) for e in dashboard_exprs(dashboard)]
    rules = [{"record": f"dashboard_query_{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": name, "rules": rules}]}))
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_model_dashboard_shows_each_field_against_its_reference() -> None:
    """The point of the product: every field's production view sits next to development."""
    model = dict(dashboards())["model-exporter-model.json"]
    exprs = " ".join(dashboard_exprs(model))
    for production, development in [
        ("model_window_quantile", "model_reference_quantile"),
        ("model_window_category_ratio", "model_reference_category_ratio"),
        ("model_window_error_ratio", "model_reference_error_ratio"),
        ("model_window_mean", "model_reference_mean"),
        ("model_window_drift_psi", "model_window_drift_psi_threshold"),
        ("model_window_drift_ks", "model_window_drift_ks_threshold"),
        ("model_window_drift_js", "model_window_drift_js_threshold"),
    ]:
        assert production in exprs
        assert development in exprs


def test_sidecar_dashboard_shows_the_last_read_age() -> None:
    sidecar = dict(dashboards())["model-exporter-sidecar.json"]
    assert any(
        "time() - model_exporter_last_read_timestamp_seconds" in e for e in dashboard_exprs(sidecar)
    )


# --- provisioning ------------------------------------------------------------------------------


def test_datasource_provisioning() -> None:
    data = yaml.safe_load((ROOT / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    (ds,) = data["datasources"]
    assert ds["type"] == "prometheus"
    assert ds["isDefault"] is True
    assert ds["url"].startswith("http://")


def test_dashboard_provider_loads_the_json_files() -> None:
    data = yaml.safe_load(
        (ROOT / "grafana/provisioning/dashboards/model-exporter.yaml").read_text()
    )
    (provider,) = data["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")
