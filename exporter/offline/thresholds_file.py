"""A thresholds rule file (config/prometheus/rules/thresholds.yml) → ``Thresholds``.

Why: a team tunes its alerts in that file, defaults and per-model or per-field overrides alike
(docs/alerts.md), and ``replay`` should back-test the thresholds Prometheus would use, not a
second copy typed again as flags. Only constant records (``expr: vector(N)``) of the
``model_alert:*`` thresholds are read; every other rule in the file is left to Prometheus.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

from exporter.config_file import read_yaml
from exporter.errors import ConfigError
from exporter.offline.thresholds import Override, Thresholds, bad_threshold

# record → (Thresholds attribute or None when replay does not evaluate it, labels it may carry)
RECORDS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "model_alert:error_ratio_factor": ("error_factor", ("model",)),
    "model_alert:error_ratio_min_labels": ("error_min_labels", ("model",)),
    "model_alert:mae_factor": ("mae_factor", ("model",)),
    "model_alert:mae_min_labels": ("mae_min_labels", ("model",)),
    "model_alert:drift_threshold_ratio_max": ("drift_ratio_max", ("model", "field")),
    "model_alert:confidence_gap_min": ("confidence_min", ("model",)),
    "model_alert:latency_p99_slo_seconds": ("latency_p99_max", ("model",)),
    "model_alert:anomaly_ratio_max": ("anomaly_max", ("model", "field")),
    "model_alert:parse_error_ratio_max": ("parse_error_max", ()),
    # Sidecar health: no meaning offline (docs/replay.md), read only to be checked.
    "model_alert:source_lag_bytes_max": (None, ()),
    "model_alert:log_stall_seconds": (None, ()),
}
_VECTOR = re.compile(r"\s*vector\s*\(\s*([^()\s]+)\s*\)\s*")


def load_thresholds(path: str, base: Thresholds, explicit: frozenset[str]) -> Thresholds:
    """The file's defaults replace ``base``'s, except those named in ``explicit`` (given as
    flags: a flag is the more deliberate choice); its labelled records become overrides."""
    defaults: dict[str, float] = {}
    overrides: list[Override] = []
    problems: list[str] = []
    for place, rule in _rules(read_yaml(path), path):
        record = rule.get("record")
        if not isinstance(record, str) or record not in RECORDS:
            continue  # an alert, or a rule of the user's own: Prometheus' business
        attribute, allowed = RECORDS[record]
        where = f"{place} ({record})"
        value = _constant(rule.get("expr"))
        labels = rule.get("labels") or {}
        if value is None:
            problems.append(f"{where}: expr must be vector(NUMBER), got {rule.get('expr')!r}")
            continue
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            problems.append(f"{where}: labels must map names to strings")
            continue
        extra = sorted(set(labels) - set(allowed))
        if extra:
            can = " and ".join(allowed) if allowed else "no labels (global only)"
            problems.append(f"{where}: label {', '.join(extra)} not allowed; it takes {can}")
            continue
        if attribute is None:
            continue
        if bad := bad_threshold(where, attribute, value):
            problems += bad
            continue
        model, field = labels.get("model", ""), labels.get("field", "")
        if field and not model:
            problems.append(f"{where}: a field label needs a model label too")
        elif model:
            overrides.append(Override(attribute, model, field, value))
        elif attribute in defaults:
            problems.append(f"{where}: the default is given twice")
        else:
            defaults[attribute] = value
    if problems:
        raise ConfigError(problems)
    chosen: dict[str, Any] = {
        k: _typed(base, k, v) for k, v in defaults.items() if k not in explicit
    }
    return replace(base, **chosen, overrides=tuple(overrides))


def _rules(document: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, list):
        raise ConfigError([f"{path}: not a Prometheus rule file (no groups: list)"])
    found = []
    for i, group in enumerate(groups):
        rules = group.get("rules") if isinstance(group, dict) else None
        if not isinstance(rules, list):
            raise ConfigError([f"{path}: groups[{i}]: no rules: list"])
        found += [
            (f"{path}: groups[{i}].rules[{j}]", rule)
            for j, rule in enumerate(rules)
            if isinstance(rule, dict)
        ]
    return found


def _constant(expr: Any) -> float | None:
    """The number of ``vector(N)``; None for any other expression."""
    if isinstance(expr, int | float) and not isinstance(expr, bool):
        return None  # a bare number is not a valid record expression for Prometheus either
    match = _VECTOR.fullmatch(expr) if isinstance(expr, str) else None
    if match is None:
        return None
    try:
        value = float(match.group(1))
    except ValueError:
        return None
    return value if not math.isnan(value) else None


def _typed(base: Thresholds, name: str, value: float) -> float | int:
    """Label counts stay integers (their flags are), when the file writes a whole number."""
    if isinstance(getattr(base, name), int) and value.is_integer():
        return int(value)
    return value
