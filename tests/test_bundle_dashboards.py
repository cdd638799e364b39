"""The Grafana dashboards and their provisioning: structure, variables, queries that the real
PromQL parser (promtool) accepts once the variables are substituted, and every field checked
against the types of Grafana's foundation SDK (no Grafana server runs here)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dashboard_types
import pytest
import yaml
from grafana_foundation_sdk.builders import timeseries

from tests.bundle import (
    DASHBOARD_FILES,
    ROOT,
    dashboard_exprs,
    generator_check,
    metric_names,
    panels,
    panels_with_row,
    regression_panel,
    substitute,
)
from tests.harness import RUN_TIMEOUT, promtool

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


def dashboards() -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, json.loads(p.read_text())) for p in DASHBOARD_FILES]


def visible_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in panels(dashboard) if p["type"] != "row"]


def test_the_three_dashboards_exist_with_stable_uids() -> None:
    assert {name: d["uid"] for name, d in dashboards()} == UIDS


def test_dashboards_are_generated_from_the_script() -> None:
    result = generator_check("gen_dashboards.py")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("name", "dashboard"), dashboards())
def test_dashboard_schema(name: str, dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] == 39
    assert dashboard.get("id") is None  # provisioned: Grafana assigns its own
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
    result = promtool("check", "rules", str(path))
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


def test_regression_rows_hold_exactly_the_mae_and_rmse_panels() -> None:
    """Regression panels sit in rows titled "Regression..." (that is how the end-to-end test
    knows to query them for a regression model), and every panel reading MAE or RMSE is in one."""
    found = {}
    for name, dashboard in dashboards():
        for row, panel in panels_with_row(dashboard):
            names = {n for t in panel["targets"] for n in metric_names(t["expr"])}
            reads_residuals = any("_mae" in n or "_rmse" in n for n in names)
            assert reads_residuals == regression_panel(row), f"{name}: {panel['title']}"
            found.setdefault(name, 0)
            found[name] += reads_residuals
    assert found["model-exporter-fleet.json"] >= 2
    assert found["model-exporter-model.json"] >= 3


# --- Grafana's own types ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "dashboard"), dashboards())
def test_dashboard_fits_the_grafana_sdk_types(name: str, dashboard: dict[str, Any]) -> None:
    assert dashboard_types.problems(dashboard) == []


def _first(dashboard: dict[str, Any], kind: str) -> dict[str, Any]:
    panel: dict[str, Any] = next(p for p in dashboard["panels"] if p["type"] == kind)
    return panel


def _misspelt_field_config(d: dict[str, Any]) -> None:
    panel = _first(d, "timeseries")
    panel["fieldconfig"] = panel.pop("fieldConfig")


def _misspelt_custom_option(d: dict[str, Any]) -> None:
    _first(d, "timeseries")["fieldConfig"]["defaults"]["custom"]["lineWidht"] = 1


def _draw_style_not_a_member(d: dict[str, Any]) -> None:
    _first(d, "timeseries")["fieldConfig"]["defaults"]["custom"]["drawStyle"] = "lines"


def _legend_mode_not_a_member(d: dict[str, Any]) -> None:
    _first(d, "timeseries")["options"]["legend"]["displayMode"] = "lists"


def _stat_graph_mode_not_a_member(d: dict[str, Any]) -> None:
    _first(d, "stat")["options"]["graphMode"] = "bars"


def _width_as_text(d: dict[str, Any]) -> None:
    _first(d, "stat")["gridPos"]["w"] = "4"


def _misspelt_query_field(d: dict[str, Any]) -> None:
    target = _first(d, "timeseries")["targets"][0]
    target["exp"] = target.pop("expr")


def _unit_as_number(d: dict[str, Any]) -> None:
    _first(d, "stat")["fieldConfig"]["defaults"]["unit"] = 1


def _variable_refresh_out_of_range(d: dict[str, Any]) -> None:
    d["templating"]["list"][1]["refresh"] = 7


@pytest.mark.parametrize(
    ("damage", "path"),
    [
        (_misspelt_field_config, ".fieldconfig"),
        (_misspelt_custom_option, ".custom.lineWidht"),
        (_draw_style_not_a_member, ".custom.draw_style"),
        (_legend_mode_not_a_member, ".legend.display_mode"),
        (_stat_graph_mode_not_a_member, ".options.graph_mode"),
        (_width_as_text, ".grid_pos.w"),
        (_misspelt_query_field, ".targets[0].exp"),
        (_unit_as_number, ".defaults.unit"),
        (_variable_refresh_out_of_range, ".refresh"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_a_wrong_panel_field_is_caught(damage: Callable[[dict[str, Any]], None], path: str) -> None:
    """The "can fail" proof for the JSON: one deliberate mistake each, named by its path."""
    dashboard = copy.deepcopy(dict(dashboards())["model-exporter-fleet.json"])
    damage(dashboard)
    found = dashboard_types.problems(dashboard)
    assert len(found) == 1, found
    assert path in found[0], found


def test_a_wrong_builder_call_fails_the_type_check(tmp_path: Path) -> None:
    """The "can fail" proof for the generator: mypy (which checks scripts/gen_dashboards.py in
    the test command) rejects a builder call with a value of the wrong type, and an option
    that does not exist fails when the generator runs."""
    bad = tmp_path / "bad_panel.py"
    bad.write_text(
        "from grafana_foundation_sdk.builders import timeseries\n"
        'panel = timeseries.Panel().title("x").draw_style("lines")\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(bad)],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'incompatible type "str"; expected "GraphDrawStyle"' in result.stdout
    with pytest.raises(AttributeError):
        timeseries.Panel().draw_styles  # type: ignore[attr-defined]  # noqa: B018


def test_mypy_checks_the_generator() -> None:
    """The test command's mypy run covers the generator, so the typed builders are checked."""
    mypy_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    assert "scripts/gen_dashboards.py" in mypy_files


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
