"""The bundled alert rules as plain Python, for back-testing them over a replayed log.

Why: ``replay`` answers "which alerts would these thresholds have raised, and when" without a
Prometheus. That needs the rules' conditions, thresholds and ``for:`` semantics offline; they live
here, apart from the engine that produces the rows they read, so keeping them in step with
config/prometheus/rules/ means reading one small module.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from exporter.assess import Assessment
from exporter.compare import fleet_verdict
from exporter.errors import ConfigError
from exporter.offline.thresholds import Thresholds
from exporter.state import Snapshot
from exporter.validate import parse_duration

PREDICTION_FIELDS = ("prediction", "predicted_class")
OWN_ALERTS = ("confidence", "latency_seconds")  # fields judged by their own alerts, not drift
FLEET_RANGE = 3600.0  # model_version_field:model_fleet_drift_threshold_ratio:1h


def ratio_over(value: float, threshold: float, ratio_max: float) -> bool:
    """PromQL's ``value / threshold > ratio_max``, where x/0 is +Inf and 0/0 NaN (never
    above anything)."""
    if threshold == 0:
        return value > 0
    return value / threshold > ratio_max


@dataclass(frozen=True)
class Rule:
    severity: str
    window: float  # seconds of data the rule's expression reads
    for_seconds: float


# Mirrors config/prometheus/rules/alerts.yml: severity, the window (or rate range) each expression
# reads, and its `for:`. The conditions themselves are in `conditions` below. Keep them in step.
RULES: dict[str, Rule] = {
    "ModelFeatureDrift": Rule("warning", 3600.0, 1800.0),
    "ModelPredictionDrift": Rule("warning", 3600.0, 1800.0),
    "ModelFleetDrift": Rule("warning", 3600.0, 1800.0),
    "ModelErrorRateAboveDevelopment": Rule("critical", 3600.0, 900.0),
    "ModelMAEAboveDevelopment": Rule("critical", 3600.0, 900.0),
    "ModelConfidenceDrop": Rule("warning", 3600.0, 1800.0),
    "ModelLatencyHigh": Rule("critical", 300.0, 600.0),
    "ModelAnomalyRatioHigh": Rule("warning", 300.0, 900.0),
    "ModelExporterParseErrorsHigh": Rule("warning", 300.0, 900.0),
}

Labels = tuple[tuple[str, str], ...]
AlertKey = tuple[str, Labels]


@dataclass(frozen=True)
class DriftStat:
    field: str
    statistic: str  # psi, ks or js
    value: float
    threshold: float
    exceeded: bool


@dataclass(frozen=True)
class Row:
    """One window of one model version at one report step, as a scrape would have seen it."""

    time: float
    model: str
    version: str
    window: str
    records: int
    labelled: int
    wrong: int
    error_ratio: float | None
    error_ratio_gap: float | None
    confidence_gap: float | None
    latency_p99_seconds: float | None
    parse_errors: int
    anomalies: dict[str, dict[str, float]]  # field → kind → share of records, non-zero only
    drift: list[DriftStat]
    # Regression models (a score and a numeric label): error_ratio is None, these are not.
    mae: float | None = None
    rmse: float | None = None
    mae_gap: float | None = None
    rmse_gap: float | None = None


@dataclass(frozen=True)
class FleetStat:
    """One field's fleet statistic at one report step (the fleet rules' 1h ratio)."""

    model: str
    version: str
    field: str
    statistic: str  # psi or js
    reference_hash: str
    records: int  # the pooled n
    value: float
    threshold: float


@dataclass
class FleetHistory:
    """The fleet rules over one sidecar (its own fleet): the cell counters as Prometheus would
    have scraped them at every report step, and the 1h test on their increase.

    As the rules: the records of a range are the last sample minus the first one inside it
    (max_over_time − min_over_time), per profile hash; a new hash, or a new model version,
    starts from its first sample. A sidecar restart cannot happen in a replay, so the rules'
    increase() fallback has nothing to mirror.
    """

    seconds: float = FLEET_RANGE
    _samples: dict[tuple[str, str, str], deque[tuple[float, list[npt.NDArray[np.int64]]]]] = field(
        default_factory=dict
    )

    def observe(self, time: float, snapshot: Snapshot, assessment: Assessment) -> list[FleetStat]:
        cells = snapshot.cells
        reference = assessment.reference
        if cells is None or reference is None or reference.hash != cells.hash:
            return []
        thresholds = {t.field: t for t in assessment.fleet}
        found = []
        for group in snapshot.groups:
            samples = self._samples.setdefault((group.model, group.version, cells.hash), deque())
            samples.append((time, group.cells))
            while samples and samples[0][0] < time - self.seconds:
                samples.popleft()
            first = samples[0][1]
            for f, cell in enumerate(cells.fields):
                threshold = thresholds.get(cell.name)
                if threshold is None:
                    continue
                counts = group.cells[f] - first[f]
                verdict = fleet_verdict(cell, threshold, counts)
                if verdict is not None:
                    found.append(
                        FleetStat(
                            group.model,
                            group.version,
                            cell.name,
                            cell.statistic,
                            cells.hash,
                            int(counts.sum()),
                            verdict.statistic,
                            verdict.threshold,
                        )
                    )
        return found


@dataclass(frozen=True)
class Episode:
    """An alert that would have fired: from ``start`` (pending since ``pending_since``) to
    ``end``, the first evaluation where its condition no longer held (None: still firing)."""

    alert: str
    severity: str
    labels: dict[str, str]
    pending_since: float
    start: float
    end: float | None


def conditions(
    rows: Sequence[Row],
    thresholds: Thresholds,
    slow: str,
    fast: str,
    source: str,
    fleet: Sequence[FleetStat] = (),
) -> list[AlertKey]:
    """The alerts whose expression holds on one step's rows and fleet statistics; ``slow`` and
    ``fast`` name the 1h and 5m windows the rules read (rate1h / window="1h", and rate5m)."""
    found: list[AlertKey] = []
    t = thresholds
    for f in fleet:  # model_version_field:model_fleet_drift_threshold_ratio:1h > ratio max
        ratio_max = t.of("drift_ratio_max", f.model, f.field)
        if f.field not in OWN_ALERTS and ratio_over(f.value, f.threshold, ratio_max):
            pool: Labels = (
                ("model", f.model),
                ("version", f.version),
                ("field", f.field),
                ("statistic", f.statistic),
                ("reference_hash", f.reference_hash),
            )
            found.append(("ModelFleetDrift", pool))
    lines = parse_errors = 0
    for row in rows:
        mv = (("model", row.model), ("version", row.version))
        if row.window == slow:
            for d in row.drift:  # model_version_field:model_window_drift_threshold_ratio > max
                if ratio_over(d.value, d.threshold, t.of("drift_ratio_max", row.model, d.field)):
                    name = (
                        "ModelPredictionDrift"
                        if d.field in PREDICTION_FIELDS
                        else "ModelFeatureDrift"
                    )
                    labels = (*mv, ("field", d.field), ("statistic", d.statistic))
                    found.append((name, (*labels, ("window", row.window))))
            if (
                row.error_ratio_gap is not None
                and row.error_ratio_gap > t.of("error_factor", row.model)
                and row.labelled >= t.of("error_min_labels", row.model)
            ):
                found.append(("ModelErrorRateAboveDevelopment", mv))
            if (
                row.mae_gap is not None
                and row.mae_gap > t.of("mae_factor", row.model)
                and row.labelled >= t.of("mae_min_labels", row.model)
            ):
                found.append(("ModelMAEAboveDevelopment", mv))
            confidence_min = t.of("confidence_min", row.model)
            if row.confidence_gap is not None and row.confidence_gap < confidence_min:
                found.append(("ModelConfidenceDrop", (*mv, ("window", row.window))))
        if row.window == fast:
            if row.latency_p99_seconds is not None and (
                row.latency_p99_seconds > t.of("latency_p99_max", row.model)
            ):
                found.append(("ModelLatencyHigh", (*mv, ("quantile", "0.99"))))
            for name, kinds in row.anomalies.items():
                for kind, ratio in kinds.items():
                    if ratio > t.of("anomaly_max", row.model, name):
                        labels = (*mv, ("field", name), ("kind", kind))
                        found.append(("ModelAnomalyRatioHigh", labels))
            lines += row.records + row.parse_errors
            parse_errors += row.parse_errors
    if lines and parse_errors / lines > t.parse_error_max:
        found.append(("ModelExporterParseErrorsHigh", (("source", source),)))
    return found


class AlertTracker:
    """Prometheus' ``for:``: an alert fires at the first evaluation at least ``for`` after the
    evaluation where its condition started holding, and resolves at the first where it fails."""

    def __init__(self, for_seconds: Mapping[str, float]) -> None:
        self._for = for_seconds
        self._active: dict[AlertKey, float] = {}
        self._firing: dict[AlertKey, float] = {}
        self.episodes: list[Episode] = []

    def observe(self, now: float, holding: Iterable[AlertKey]) -> None:
        now_holding = set(holding)
        for key in [k for k in self._active if k not in now_holding]:
            since = self._active.pop(key)
            fired = self._firing.pop(key, None)
            if fired is not None:
                self.episodes.append(_episode(key, since, fired, now))
        for key in now_holding:
            since = self._active.setdefault(key, now)
            if key not in self._firing and now - since >= self._for[key[0]]:
                self._firing[key] = now

    def finish(self) -> list[Episode]:
        """Every episode, those still firing at the end of the log with ``end=None``."""
        ongoing = [_episode(k, self._active[k], t, None) for k, t in self._firing.items()]
        return sorted(
            [*self.episodes, *ongoing], key=lambda e: (e.start, e.alert, sorted(e.labels.items()))
        )


def _episode(key: AlertKey, since: float, fired: float, end: float | None) -> Episode:
    name, labels = key
    return Episode(name, RULES[name].severity, dict(labels), since, fired, end)


def parse_for(items: Iterable[str]) -> dict[str, float]:
    """``ALERT=DURATION`` overrides of the rules' ``for:`` durations."""
    result = {name: rule.for_seconds for name, rule in RULES.items()}
    problems = []
    for item in items:
        name, _, text = item.partition("=")
        if name not in RULES:
            problems.append(f"--for {item}: unknown alert (known: {', '.join(RULES)})")
            continue
        try:
            result[name] = 0.0 if text.strip() == "0" else parse_duration(text)
        except ValueError as exc:
            problems.append(f"--for {item}: {exc}")
    if problems:
        raise ConfigError(problems)
    return result
