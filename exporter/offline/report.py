"""The back-test's result and its two renderings: JSON for tools, a text table for people.

Why apart from the engine: what a report holds and how it reads are changed for readers, never
for the replay's correctness, and they need nothing of the engine's state.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from exporter.offline.backtest import Episode, Row
from exporter.offline.thresholds import Thresholds


@dataclass(frozen=True)
class Report:
    source: str
    every: float
    start: float | None
    end: float | None
    records: int
    parse_errors: dict[str, int]
    retimed: int  # records without a timestamp or out of order: they took the latest time
    reference: str | None
    windows: list[str]
    thresholds: Thresholds
    for_seconds: dict[str, float]
    rows: list[Row]
    alerts: list[Episode]
    regression: bool = False  # rows carry MAE and RMSE instead of an error ratio


def to_json(report: Report) -> str:
    return json.dumps(asdict(report), indent=1, allow_nan=False) + "\n"


def iso(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fixed(value: float | None, digits: int, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def _top_anomaly(row: Row) -> str:
    found = [
        (r, f"{name}/{kind}") for name, kinds in row.anomalies.items() for kind, r in kinds.items()
    ]
    if not found:
        return "-"
    ratio, name = max(found)
    return f"{name}={ratio * 100:.1f}%"


def _top_drift(row: Row, n: int = 3) -> str:
    ranked = sorted(row.drift, key=lambda d: d.value / d.threshold if d.threshold else 0.0)
    return " ".join(
        f"{d.field}:{d.statistic}={d.value:.3f}/{d.threshold:.3f}{'!' if d.exceeded else ''}"
        for d in reversed(ranked[-n:])
    )


ROW_KEY = ("time", "model", "version", "n")
HEADER = (*ROW_KEY, "err%", "gap", "conf", "anomaly", "drift")
REGRESSION_HEADER = (*ROW_KEY, "mae", "gap", "rmse", "gap", "conf", "anomaly", "drift")


def _errors(row: Row, regression: bool) -> tuple[str, ...]:
    """The error columns: error ratio and its gap, or MAE, RMSE and theirs."""
    if regression:
        return (
            _fixed(row.mae, 4),
            _fixed(row.mae_gap, 2),
            _fixed(row.rmse, 4),
            _fixed(row.rmse_gap, 2),
        )
    return _fixed(row.error_ratio, 1, 100.0), _fixed(row.error_ratio_gap, 2)


def render_text(report: Report, window: str | None = None) -> str:
    """A table over time for one window (default: the smallest), then the alert episodes."""
    window = window if window is not None else report.windows[0]
    errors = sum(report.parse_errors.values())
    measures = (
        "mae and rmse the mean absolute and root mean squared error, each gap = that over "
        "development, conf = mean confidence over development"
        if report.regression
        else "err% error ratio, gap and conf = error ratio and mean confidence over development"
    )
    lines = [
        f"replay of {report.source}: {report.records} records, {errors} unparseable lines, "
        f"{report.retimed} records without a timestamp or out of order (took the latest time)",
        f"log time {iso(report.start)} to {iso(report.end)}, a step every {report.every:g}s, "
        f"reference {report.reference or 'none (no drift or gaps)'}",
        f"window {window}: n records, {measures}, top anomaly share, top drift statistics "
        "(value/threshold, ! = over)",
        "",
    ]
    header: tuple[str, ...] = REGRESSION_HEADER if report.regression else HEADER
    table = [header]
    for row in report.rows:
        if row.window == window:
            table.append(
                (
                    iso(row.time),
                    row.model,
                    row.version,
                    str(row.records),
                    *_errors(row, report.regression),
                    _fixed(row.confidence_gap, 2),
                    _top_anomaly(row),
                    _top_drift(row),
                )
            )
    numbers = range(3, len(header) - 2)  # n through conf are right-aligned
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for r in table:
        cells = [
            c.rjust(w) if i in numbers else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=False))
        ]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    lines += ["", *render_alerts(report)]
    return "\n".join(lines) + "\n"


def _overridden(t: Thresholds) -> str:
    n = len(t.overrides)
    return f"; {n} per-model or per-field override{'s' if n != 1 else ''}" if n else ""


def render_alerts(report: Report) -> list[str]:
    t = report.thresholds
    lines = [
        f"alerts that would have fired (error ratio > {t.error_factor:g}x development with "
        f">= {t.error_min_labels} labels, MAE > {t.mae_factor:g}x development with "
        f">= {t.mae_min_labels} labels, confidence < {t.confidence_min:g}x development, "
        f"anomaly share > {t.anomaly_max:g}, parse errors > {t.parse_error_max:g}, "
        f"latency p99 > {t.latency_p99_max:g}s, drift statistic > {t.drift_ratio_max:g}x its "
        f"threshold{_overridden(t)}):"
    ]
    if not report.alerts:
        return [*lines, "  none"]
    for e in report.alerts:
        labels = " ".join(f"{k}={v}" for k, v in e.labels.items())
        until = "still firing at the end of the log" if e.end is None else f"to {iso(e.end)}"
        lines.append(f"  {e.alert} {e.severity} {labels} from {iso(e.start)} {until}")
    return lines
