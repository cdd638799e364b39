"""The alert thresholds ``replay`` back-tests: the defaults of the bundled rule set, per-model
and per-field overrides, and the check of a value given for one.

Why apart from ``backtest``: the CLI's parser reads these defaults for the replay flags' types
and help on every command, ``run`` included, and this module loads nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from exporter.errors import ConfigError


@dataclass(frozen=True)
class Override:
    """One labelled series of thresholds.yml: a threshold for one model, or for one field of
    one model (``field`` empty: the whole model)."""

    threshold: str  # a Thresholds attribute: error_factor, anomaly_max, ...
    model: str
    field: str
    value: float


@dataclass(frozen=True)
class Thresholds:
    """The defaults of config/prometheus/rules/thresholds.yml (model_alert:* series), and the
    per-model and per-field overrides a thresholds file adds (``thresholds_file``)."""

    error_factor: float = 1.15  # model_alert:error_ratio_factor
    error_min_labels: int = 200  # model_alert:error_ratio_min_labels
    mae_factor: float = 1.2  # model_alert:mae_factor
    mae_min_labels: int = 200  # model_alert:mae_min_labels
    confidence_min: float = 0.9  # model_alert:confidence_gap_min
    latency_p99_max: float = 0.5  # model_alert:latency_p99_slo_seconds
    anomaly_max: float = 0.05  # model_alert:anomaly_ratio_max
    parse_error_max: float = 0.01  # model_alert:parse_error_ratio_max
    drift_ratio_max: float = 1.0  # model_alert:drift_threshold_ratio_max
    overrides: tuple[Override, ...] = ()

    def of(self, threshold: str, model: str, field: str = "") -> float:
        """As recording.yml resolves it: the model-and-field series, else the model's, else
        the default."""
        value, rank = float(getattr(self, threshold)), 0
        for o in self.overrides:
            specific = 2 if o.field else 1
            mine = o.threshold == threshold and o.model == model and o.field in ("", field)
            if mine and specific > rank:
                value, rank = o.value, specific
        return value

    def check(self) -> None:
        """Refuse values no rule can mean (NaN, infinities, negatives, shares above 1), naming
        the flag, rather than back-test against them (and write NaN into the JSON). A thresholds
        file's values are checked as it is read, naming its rule (``thresholds_file``)."""
        problems = [
            problem
            for name, value in vars(self).items()
            if name != "overrides"
            for problem in bad_threshold(f"--{name.replace('_', '-')}", name, value)
        ]
        if problems:
            raise ConfigError(problems)


SHARES = ("anomaly_max", "parse_error_max")  # thresholds that are shares of records (≤ 1)


def bad_threshold(where: str, name: str, value: float) -> list[str]:
    """Why ``name``'s ``value`` cannot be a threshold, said of ``where`` (none: it can)."""
    top = 1.0 if name in SHARES else math.inf
    if math.isfinite(value) and 0.0 <= value <= top:
        return []
    what = "a share from 0 to 1" if name in SHARES else "a finite number >= 0"
    return [f"{where}: must be {what} (got {value})"]
