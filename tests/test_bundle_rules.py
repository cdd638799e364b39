"""The Prometheus rules, their promtool tests, the scrape config and the Alertmanager routing,
checked with the real promtool and amtool."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.bundle import (
    ROOT,
    RULE_FILES,
    RULES_DIR,
    alerts,
    generator_check,
    load_rules,
    metric_names,
    recorded_names,
)
from tests.harness import run_tool

RULE_TESTS = sorted((ROOT / "config" / "prometheus" / "tests").glob("*.yaml"))
# Overrides as a user adds them to thresholds.yml; only the override rule tests load them.
OVERRIDES = ROOT / "config" / "prometheus" / "tests" / "threshold_overrides.yml"
# Thresholds of the sidecar's own health: one value for every sidecar, no per-model override.
GLOBAL_ONLY = {
    "model_alert:parse_error_ratio_max",
    "model_alert:source_lag_bytes_max",
    "model_alert:log_stall_seconds",
}
ALERTMANAGER = ROOT / "config" / "alertmanager" / "alertmanager.yml"
ALERTS_DOC = ROOT / "docs" / "alerts.md"
RUNBOOK_BASE = "https://github.com/model-exporter/model-exporter/blob/main/docs/alerts.md#"


def duration_seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", text))


def github_anchor(heading: str) -> str:
    """The id GitHub gives a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


# --- promtool ------------------------------------------------------------------------------------


def test_promtool_check_rules() -> None:
    result = run_tool("promtool", "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_test_rules(path: Path) -> None:
    result = run_tool("promtool", "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_tests_load_every_rule_file() -> None:
    for path in RULE_TESTS:
        loaded = {
            (path.parent / f).resolve() for f in yaml.safe_load(path.read_text())["rule_files"]
        }
        assert loaded <= {p.resolve() for p in RULE_FILES} | {OVERRIDES}, path.name
        assert RULES_DIR / "thresholds.yml" in loaded, f"{path.name}: alerts need thresholds"


def test_promtool_check_config_of_the_scrape_example() -> None:
    """Also resolves rule_files relative to prometheus.yml and checks them."""
    result = run_tool(
        "promtool", "check", "config", str(ROOT / "config" / "prometheus" / "prometheus.yml")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - firing == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown quiet"


# --- what every alert carries --------------------------------------------------------------------


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: r["alert"])
def test_alert_has_severity_annotations_and_a_production_for(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning"}
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    assert duration_seconds(rule["for"]) >= 300, "a production alert waits at least 5 minutes"


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: r["alert"])
def test_runbook_url_points_at_its_section_in_docs_alerts(rule: dict[str, Any]) -> None:
    url = rule["annotations"]["runbook_url"]
    assert url.startswith(RUNBOOK_BASE)
    anchor = url.removeprefix(RUNBOOK_BASE)
    headings = [
        line.lstrip("#").strip()
        for line in ALERTS_DOC.read_text().splitlines()
        if line.startswith("## ")
    ]
    assert anchor == github_anchor(rule["alert"])
    assert rule["alert"] in headings, f"docs/alerts.md has no '## {rule['alert']}' section"


def test_docs_alerts_documents_exactly_the_alerts() -> None:
    text = ALERTS_DOC.read_text()
    documented = set(re.findall(r"^## (\w+)\s*$", text, re.M))
    assert documented == {a["alert"] for a in alerts()}


def threshold_rules(path: Path = RULES_DIR / "thresholds.yml") -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]


def resolutions() -> dict[str, dict[str, Any]]:
    """The per-model (and per-field) resolutions of the thresholds, by recorded name."""
    return {
        r["record"]: r
        for r in load_rules()
        if "record" in r and r["record"].startswith("model_alert:") and r["record"].count(":") == 2
    }


def test_alerts_take_tunable_thresholds_from_the_thresholds_file() -> None:
    """One place to tune: every threshold an alert reads is recorded in thresholds.yml, either
    directly (the sidecar's own health) or through its per-model resolution, and every
    threshold recorded there is read by some alert."""
    defaults = {r["record"] for r in threshold_rules()}
    read = {n for a in alerts() for n in metric_names(a["expr"]) if n.startswith("model_alert:")}
    direct = {n for n in read if n.count(":") == 1}
    resolved = {n.rsplit(":", 1)[0] for n in read if n.count(":") == 2}
    assert direct == GLOBAL_ONLY
    assert direct | resolved == defaults
    assert read - direct == set(resolutions())
    factor = next(r for r in threshold_rules() if r["record"] == "model_alert:error_ratio_factor")
    assert factor["expr"] == "vector(1.15)"


def test_defaults_carry_no_labels() -> None:
    """The resolutions select the default as the series without `model` and `field`."""
    for rule in threshold_rules():
        assert "labels" not in rule, rule["record"]
        assert re.fullmatch(r"vector\([0-9.e+-]+\)", rule["expr"]), rule["record"]


@pytest.mark.parametrize("name", sorted(resolutions()), ids=str)
def test_each_resolution_prefers_the_override_and_falls_back_to_the_default(name: str) -> None:
    """An override wins, the default fills the other models: the pattern docs/alerts.md shows."""
    rule = resolutions()[name]
    base = name.rsplit(":", 1)[0]
    expr = rule["expr"]
    assert metric_names(expr) - {base} <= recorded_names(), "reads only recorded series"
    assert f'{base}{{model="", field=""}}' in expr, "the default"
    if name.endswith(":per_model_field"):
        overrides = [f'{base}{{model!="", field!=""}}', f'{base}{{model!="", field=""}}']
        assert expr.count("or on (model, field)") == 2
    else:
        overrides = [f'{base}{{model!="", field=""}}']
        assert "or on (model)" in expr
    for selector in overrides:
        assert selector in expr
    # The most specific comes first: `or` keeps the left side where both exist.
    positions = [expr.index(s) for s in [*overrides, f'{base}{{model="", field=""}}']]
    assert positions == sorted(positions)


def test_model_alerts_use_no_scalar_threshold() -> None:
    """scalar() of a threshold with an override is NaN (two series): the alert would never
    fire, silently. Model alerts join on the resolved per-model series instead."""
    for alert in alerts():
        if alert["alert"].startswith("Model") and not alert["alert"].startswith("ModelExporter"):
            assert "scalar(" not in alert["expr"], alert["alert"]


def test_override_tests_cover_every_overridable_threshold() -> None:
    """threshold_overrides.yml overrides each threshold that has a per-model resolution, with
    the labels users are told to use, and the override tests load it."""
    defaults = {r["record"] for r in threshold_rules()}
    overridden: dict[str, list[dict[str, str]]] = {}
    for rule in threshold_rules(OVERRIDES):
        assert rule["record"] in defaults, rule["record"]
        assert rule["expr"].startswith("vector(")
        overridden.setdefault(rule["record"], []).append(rule["labels"])
    per_field = {n.rsplit(":", 1)[0] for n in resolutions() if n.endswith(":per_model_field")}
    for name, label_sets in overridden.items():
        for labels in label_sets:
            assert "model" in labels, name
            allowed = {"model", "field"} if name in per_field else {"model"}
            assert set(labels) <= allowed, name
    assert set(overridden) == {n.rsplit(":", 1)[0] for n in resolutions()}
    for field_threshold in per_field:
        assert any("field" in labels for labels in overridden[field_threshold]), field_threshold
    users = [p for p in RULE_TESTS if "threshold_overrides.yml" in p.read_text()]
    assert [p.name for p in users] == ["threshold_overrides_test.yaml"]


@pytest.mark.parametrize(
    ("alert", "development", "factor"),
    [
        (
            "ModelErrorRateAboveDevelopment",
            "model_version:model_reference_error_ratio:max",
            "model_alert:error_ratio_factor:per_model",
        ),
        (
            "ModelMAEAboveDevelopment",
            "model_version:model_reference_mae:max",
            "model_alert:mae_factor:per_model",
        ),
    ],
)
def test_error_alerts_compare_with_development_times_the_factor(
    alert: str, development: str, factor: str
) -> None:
    rule = next(a for a in alerts() if a["alert"] == alert)
    assert {development, factor} <= metric_names(rule["expr"])


# --- the PrometheusRule for Kubernetes -----------------------------------------------------------


def test_prometheusrule_is_generated_from_the_rule_files() -> None:
    result = generator_check("gen_prometheusrule.py")
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load((ROOT / "deploy" / "kubernetes" / "prometheusrule.yaml").read_text())
    groups = [g for p in RULE_FILES for g in yaml.safe_load(p.read_text())["groups"]]
    key = lambda g: g["name"]  # noqa: E731
    assert sorted(manifest["spec"]["groups"], key=key) == sorted(groups, key=key)


def test_prometheusrule_groups_pass_promtool(tmp_path: Path) -> None:
    manifest = yaml.safe_load((ROOT / "deploy" / "kubernetes" / "prometheusrule.yaml").read_text())
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": manifest["spec"]["groups"]}))
    result = run_tool("promtool", "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# --- Alertmanager --------------------------------------------------------------------------------


def am_config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(ALERTMANAGER.read_text())
    return data


def test_amtool_check_config() -> None:
    result = run_tool("amtool", "check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("severity", "receiver"), [("critical", "pager"), ("warning", "ticket")])
def test_severity_routes_to_its_receiver(severity: str, receiver: str) -> None:
    result = run_tool(
        "amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER}",
        f"severity={severity}", "alertname=ModelErrorRateAboveDevelopment", "model=m", "version=1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [receiver]


def test_every_alert_severity_reaches_a_named_receiver() -> None:
    severities = {a["labels"]["severity"] for a in alerts()}
    routed = {r["matchers"][0] for r in am_config()["route"]["routes"]}
    assert {f'severity="{s}"' for s in severities} <= routed


def test_notifications_group_by_model_version_and_alert() -> None:
    assert set(am_config()["route"]["group_by"]) == {"alertname", "model", "version"}


def test_sidecar_down_inhibits_the_log_stalled_alert() -> None:
    rules = am_config()["inhibit_rules"]
    hit = [
        r
        for r in rules
        if r["source_matchers"] == ['alertname="ModelExporterDown"']
        and any(
            re.fullmatch(m.split("=~")[1].strip('"'), "ModelExporterLogStalled")
            for m in r["target_matchers"]
            if "=~" in m
        )
    ]
    assert hit
    assert hit[0]["equal"] == ["instance"]


def test_inhibit_rules_name_existing_alerts() -> None:
    names = {a["alert"] for a in alerts()}
    for rule in am_config()["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            op, pattern = (
                ("=~", matcher.split("=~")[1]) if "=~" in matcher else ("=", matcher.split("=")[1])
            )
            pattern = pattern.strip('"')
            matched = {
                n for n in names if (re.fullmatch(pattern, n) if op == "=~" else n == pattern)
            }
            expected = len(pattern.split("|")) if op == "=~" else 1
            assert len(matched) == expected, f"{matcher} matches {matched}"
