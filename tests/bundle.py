"""The bundled rules and dashboards as data, for the tests that check them (test_bundle_*).

Loaders, the PromQL metric-name extractor and the values Grafana substitutes for variables live
here, so no test module imports another.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.harness import WAIT

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "config" / "prometheus" / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
DASHBOARD_FILES = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
SHORT_FOR = "2s"  # the `for:` of every bundled alert in the end-to-end tests
# Series Prometheus itself creates: scrape health and the alert state the fleet view counts.
PROMETHEUS_SERIES = {"up", "ALERTS"}

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
_KEYWORDS |= {"and", "or", "unless", "offset", "atan2", "inf", "nan", "Inf", "NaN"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*\w+\s*\)\s*$", re.S)

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


def metric_names(expr: str) -> set[str]:
    """Metric names an expression reads: identifiers that are not functions (followed by
    "("), keywords, label names (inside braces or grouping clauses), strings, durations or
    Grafana variables."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    return {m for m in _IDENT.findall(text) if m not in _KEYWORDS}


def variable_query_expr(query: str) -> str:
    """The PromQL inside a Grafana ``label_values(expr, label)`` variable query."""
    m = _LABEL_VALUES.match(query)
    return m.group(1) if m else query


def substitute(expr: str, values: dict[str, str] = SUBSTITUTIONS) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values[m.group(1)], expr)


def load_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def alerts() -> list[dict[str, Any]]:
    return [r for r in load_rules() if "alert" in r]


def recorded_names() -> set[str]:
    return {r["record"] for r in load_rules() if "record" in r}


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in DASHBOARD_FILES}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


REGRESSION_ROW = "Regression"


def regression_panel(row_title: str) -> bool:
    """Panels under a row titled "Regression..." show MAE/RMSE and have data only for
    regression models; every other panel is checked against a classification model."""
    return row_title.startswith(REGRESSION_ROW)


def panels_with_row(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(title of the row above it, panel) for every panel that is not a row."""
    row = ""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
            for nested in panel.get("panels", []):
                yield row, nested
        else:
            yield row, panel


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression: panel targets and variable queries."""
    exprs = [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            exprs.append(variable_query_expr(query))
    return exprs


def generator_check(script: str) -> subprocess.CompletedProcess[str]:
    """``scripts/<script> --check``: exits 0 when the files it generates are up to date."""
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), "--check"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def shortened_rules(directory: Path) -> list[Path]:
    """The bundled rule files with every `for:` cut to seconds; nothing else changes."""
    directory.mkdir()
    out = []
    for path in RULE_FILES:
        data = yaml.safe_load(path.read_text())
        for group in data["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = SHORT_FOR
        target = directory / path.name
        target.write_text(yaml.safe_dump(data, sort_keys=False))
        out.append(target)
    return out
