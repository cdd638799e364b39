"""``replay``: the sidecar's engine over a historical log, with the records' timestamps as clock.

Why: thresholds and ``for:`` durations are cheap to change and expensive to get wrong. Replaying
last month's log shows which alerts they would have raised, and when, before anyone is paged.

Time. A record's time is the largest timestamp seen so far: its own when the log is in order; a
record without a timestamp, or older than one already seen, takes that latest time (as live, where
a record lands in the bucket of its arrival), and one older than ``late_after`` is counted
``late``. Records before the first timestamp take the first one. A chunk is cut into runs whose
times share every window bucket and report step, and each run is ingested at its time, so the
windows hold what they would have held live. Every ``every`` seconds of log time the windows are
read (as a scrape would) and the bundled alert rules are evaluated on them, their ``for:``
durations counted in log time.

No I/O and no wall clock: bytes in, a ``Report`` out; the CLI reads the file and prints.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from exporter.anomaly import KIND_NAMES, Kind
from exporter.compare import ReferenceChecks
from exporter.config import parse_duration
from exporter.config_types import Config, WindowSpec
from exporter.errors import ConfigError
from exporter.records import Batch, Decoder
from exporter.reference import Reference
from exporter.sketch import SketchLayout, quantiles
from exporter.state import Snapshot, State, WindowView

FloatArray = npt.NDArray[np.float64]

# Windows are read just before a report boundary, so a bucket ending there is whole. 1 ms is far
# above float64 resolution at epoch scale (~0.2 µs) and far below any bucket width.
READ_BEFORE = 1e-3
MAX_PENDING_RECORDS = 100_000  # records held back while no timestamp has been seen yet
PREDICTION_FIELDS = ("prediction", "predicted_class")


class ReplayError(Exception):
    """The log cannot be replayed (no records, or no timestamps to drive time)."""


@dataclass(frozen=True)
class Thresholds:
    """The defaults of config/prometheus/rules/thresholds.yml (model_alert:* series)."""

    error_factor: float = 1.15  # model_alert:error_ratio_factor
    error_min_labels: int = 200  # model_alert:error_ratio_min_labels
    confidence_min: float = 0.9  # model_alert:confidence_gap_min
    latency_p99_max: float = 0.5  # model_alert:latency_p99_slo_seconds
    anomaly_max: float = 0.05  # model_alert:anomaly_ratio_max
    parse_error_max: float = 0.01  # model_alert:parse_error_ratio_max


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
    "ModelErrorRateAboveDevelopment": Rule("critical", 3600.0, 900.0),
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


# -- the alert rules as plain Python ------------------------------------------------------------


def conditions(
    rows: Sequence[Row],
    thresholds: Thresholds,
    slow: str,
    fast: str,
    source: str,
) -> list[AlertKey]:
    """The alerts whose expression holds on one step's rows; ``slow`` and ``fast`` name the 1h
    and 5m windows the rules read (rate1h / window="1h", and rate5m)."""
    found: list[AlertKey] = []
    lines = parse_errors = 0
    for row in rows:
        mv = (("model", row.model), ("version", row.version))
        if row.window == slow:
            for d in row.drift:  # model_version_field:model_window_drift_threshold_ratio > 1
                if d.exceeded:
                    name = (
                        "ModelPredictionDrift"
                        if d.field in PREDICTION_FIELDS
                        else "ModelFeatureDrift"
                    )
                    labels = (*mv, ("field", d.field), ("statistic", d.statistic))
                    found.append((name, (*labels, ("window", row.window))))
            if (
                row.error_ratio_gap is not None
                and row.error_ratio_gap > thresholds.error_factor
                and row.labelled >= thresholds.error_min_labels
            ):
                found.append(("ModelErrorRateAboveDevelopment", mv))
            if row.confidence_gap is not None and row.confidence_gap < thresholds.confidence_min:
                found.append(("ModelConfidenceDrop", (*mv, ("window", row.window))))
        if row.window == fast:
            if row.latency_p99_seconds is not None and (
                row.latency_p99_seconds > thresholds.latency_p99_max
            ):
                found.append(("ModelLatencyHigh", (*mv, ("quantile", "0.99"))))
            for name, kinds in row.anomalies.items():
                for kind, ratio in kinds.items():
                    if ratio > thresholds.anomaly_max:
                        labels = (*mv, ("field", name), ("kind", kind))
                        found.append(("ModelAnomalyRatioHigh", labels))
            lines += row.records + row.parse_errors
            parse_errors += row.parse_errors
    if lines and parse_errors / lines > thresholds.parse_error_max:
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


# -- reading windows into rows ------------------------------------------------------------------


def _rows(snapshot: Snapshot, time: float, latency: int | None, sketch: SketchLayout) -> list[Row]:
    names = snapshot.layout.anomaly_fields
    rows = []
    for group in snapshot.groups:
        for view in group.windows:
            rows.append(_row(view, group.model, group.version, time, names, (latency, sketch)))
    return rows


def _row(
    view: WindowView,
    model: str,
    version: str,
    time: float,
    names: tuple[str, ...],
    latency_sketch: tuple[int | None, SketchLayout],
) -> Row:
    s = view.summary
    anomalies: dict[str, dict[str, float]] = {}
    if s.records:
        for r, name in enumerate(names):
            for kind in np.flatnonzero(s.anomalies[r]).tolist():
                ratio = float(s.anomalies[r, kind]) / s.records
                anomalies.setdefault(name, {})[KIND_NAMES[kind]] = ratio
    p99 = None
    latency, sketch = latency_sketch
    if latency is not None and s.sketch is not None and s.count[latency]:
        p99 = float(quantiles(sketch, s.sketch[latency], (0.99,))[0])
    gaps = view.gaps
    return Row(
        time=time,
        model=model,
        version=version,
        window=view.spec.name,
        records=s.records,
        labelled=s.labelled,
        wrong=s.wrong,
        error_ratio=s.wrong / s.labelled if s.labelled else None,
        error_ratio_gap=None if gaps is None else gaps.error_ratio,
        confidence_gap=None if gaps is None else gaps.confidence,
        latency_p99_seconds=p99,
        parse_errors=int(s.anomalies[-1, Kind.PARSE_ERROR]),
        anomalies=anomalies,
        drift=[
            DriftStat(
                d.field,
                d.statistic,
                d.verdict.statistic,
                d.verdict.threshold,
                d.verdict.drifted,
            )
            for d in view.drift
        ],
    )


# -- the engine driven by the log's own time ----------------------------------------------------


def with_alert_windows(config: Config) -> Config:
    """The config plus the 5m and 1h windows the bundled rules read, when it lacks them."""
    have = {w.seconds for w in config.windows}
    extra = [WindowSpec(name, s) for name, s in (("5m", 300.0), ("1h", 3600.0)) if s not in have]
    return replace(config, windows=(*config.windows, *extra)) if extra else config


def _window_named(config: Config, seconds: float) -> str:
    return next(w.name for w in config.windows if w.seconds == seconds)


def effective_times(stamps: FloatArray, latest: float) -> FloatArray:
    """Each record's time, in batch row order.

    Its own timestamp, but never before ``latest`` (the largest of earlier blocks, which the
    windows have moved past); without one, the largest timestamp before it in the block. Records
    before any timestamp take the block's earliest; with none at all, the result is all -inf.
    """
    carried = np.fmax.accumulate(np.concatenate([[latest], stamps]))[1:]
    times: FloatArray = np.where(np.isnan(stamps), carried, np.maximum(stamps, latest))
    known = times > -math.inf
    if known.any() and not known.all():
        times[~known] = times[known].min()
    return times


def run_bounds(times: FloatArray, widths: Sequence[float]) -> list[tuple[int, int]]:
    """[lo, hi) runs of non-decreasing ``times`` that share their epoch ⌊t / w⌋ for every
    width: each run lands in one bucket of every window and in one report step."""
    n = len(times)
    cut = np.zeros(n, dtype=bool)
    for width in widths:
        epoch = np.floor(times / width)
        cut[1:] |= epoch[1:] != epoch[:-1]
    starts = [0, *np.flatnonzero(cut).tolist(), n]
    return [(lo, hi) for lo, hi in itertools.pairwise(starts) if hi > lo]


def _apportion(errors: Counter[str], sizes: Sequence[int]) -> list[Counter[str]]:
    """A chunk's unparseable lines spread over its runs in proportion to the runs' records
    (the decoder does not say where they were); every count is kept exactly."""
    shares: list[Counter[str]] = [Counter() for _ in sizes]
    total = sum(sizes)
    if not total:
        return shares
    cumulative = np.cumsum([0, *sizes])
    for reason, count in errors.items():
        upto = (count * cumulative) // total
        for i, part in enumerate(np.diff(upto).tolist()):
            if part:
                shares[i][reason] = int(part)
    return shares


class Replayer:
    """Feed it the log's bytes (complete lines) in order, then ``finish()`` for the report."""

    def __init__(
        self,
        config: Config,
        reference: Reference | None,
        every: float = 60.0,
        thresholds: Thresholds | None = None,
        for_seconds: Mapping[str, float] | None = None,
        source: str = "log",
    ) -> None:
        if config.fields.timestamp is None:
            raise ConfigError(["fields.timestamp: replay needs the records' timestamps"])
        if every <= 0:
            raise ConfigError(["--every: must be positive"])
        config = with_alert_windows(config)
        self._config = config
        self._decoder = Decoder(config.fields, config.late_after, config.future_after)
        self._layout = self._decoder.layout
        self._state = State(config, self._layout, [v.values for v in self._decoder.vocabularies])
        if reference is not None:
            self._state.set_reference(reference)
        self._checks: ReferenceChecks | None = None
        self._checked: Reference | None = None
        self._install_checks()
        self._every = every
        self._widths = [every, *(w.seconds / config.window_buckets for w in config.windows)]
        self._horizon = max(w.seconds for w in config.windows) + max(self._widths) + every
        self._slow = _window_named(config, 3600.0)
        self._fast = _window_named(config, 300.0)
        names = [spec.name for spec in self._layout.numeric]
        self._latency = names.index("latency_seconds") if "latency_seconds" in names else None
        self._thresholds = thresholds if thresholds is not None else Thresholds()
        self._for = dict(for_seconds) if for_seconds is not None else parse_for(())
        self._tracker = AlertTracker(self._for)
        self._source = source
        self._latest = -math.inf  # largest timestamp seen
        self._last_ingest = -math.inf
        self._first: float | None = None
        self._step: int | None = None
        self._pending: list[Batch] = []
        self._records = 0
        self._retimed = 0
        self._parse_errors: Counter[str] = Counter()
        self.rows: list[Row] = []

    def _install_checks(self) -> None:
        """Per-record checks follow the state's reference (given, or frozen from the log)."""
        reference = self._state.reference
        if reference is not self._checked:
            self._checked = reference
            self._checks = (
                None
                if reference is None
                else ReferenceChecks(
                    reference, self._layout, self._decoder.vocabularies, self._config.drift
                )
            )

    def feed(self, data: bytes) -> None:
        batch = self._decoder.decode(data)
        self._records += batch.size
        self._parse_errors.update(batch.parse_errors)
        if not batch.size:  # only unparseable lines: they happened "now"
            if self._first is None:
                self._hold(batch)
            else:
                self._ingest(batch, self._latest)
            return
        times = effective_times(batch.timestamp, self._latest)
        if times[0] == -math.inf:
            self._hold(batch)
            return
        # Row order is not line order (lines the decoder had to parse leniently come last), so
        # a block is put in time order; across blocks, time only moves forward.
        order = np.argsort(times, kind="stable")
        unparsed = batch.parse_errors
        batch, times = batch.take(order), times[order]
        self._mark_retimed(batch, times)
        self._latest = float(times[-1])
        if self._first is None:
            self._start(float(times[0]))
        bounds = run_bounds(times, self._widths)
        errors = _apportion(unparsed, [hi - lo for lo, hi in bounds])
        for (lo, hi), share in zip(bounds, errors, strict=True):
            run = batch.take(np.arange(lo, hi))
            run.parse_errors = share
            self._ingest(run, float(times[hi - 1]))

    def _hold(self, batch: Batch) -> None:
        self._pending.append(batch)
        if sum(b.size for b in self._pending) > MAX_PENDING_RECORDS:
            raise ReplayError(
                f"the first {MAX_PENDING_RECORDS} records have no timestamp: nothing to drive time"
            )

    def _start(self, t: float) -> None:
        self._first = t
        self._step = math.floor(t / self._every)
        pending, self._pending = self._pending, []
        for batch in pending:
            self._retimed += batch.size
            self._ingest(batch, t)

    def _mark_retimed(self, batch: Batch, times: FloatArray) -> None:
        """Count records that did not keep their own time; those moved by more than
        ``late_after`` are ``late``, as live."""
        own = batch.timestamp
        with np.errstate(invalid="ignore"):
            self._retimed += int(np.count_nonzero(~(own >= times)))
            late = own < times - self._config.late_after
        column = batch.flags[:, self._layout.timestamp_column]
        column[late & (column == 0)] = Kind.LATE

    def _ingest(self, batch: Batch, t: float) -> None:
        self._advance(math.floor(t / self._every))
        if self._checks is not None:
            self._checks.apply(batch)
        self._state.ingest(batch, t)
        self._last_ingest = max(self._last_ingest, t)
        self._install_checks()

    def _advance(self, step: int) -> None:
        """Report every boundary before ``step``; past the point where every window is empty,
        skip ahead (a gap of days in a log costs nothing)."""
        assert self._step is not None
        while self._step < step:
            boundary = (self._step + 1) * self._every
            if boundary - self._last_ingest > self._horizon:
                self._step = step
                return
            self._report(boundary)
            self._step += 1

    def _report(self, boundary: float) -> None:
        snapshot = self._state.snapshot(boundary - READ_BEFORE)
        rows = _rows(snapshot, boundary, self._latency, self._state.shape.sketch)
        self.rows.extend(rows)
        holding = conditions(rows, self._thresholds, self._slow, self._fast, self._source)
        self._tracker.observe(boundary, holding)

    def finish(self) -> Report:
        if self._first is None or self._step is None:
            if self._records or self._parse_errors:
                raise ReplayError("no record has a timestamp: nothing to drive time")
            raise ReplayError("the log holds no records")
        end = (self._step + 1) * self._every  # the step holding the last record is reported
        self._advance(self._step + 1)
        reference = self._state.reference
        return Report(
            source=self._source,
            every=self._every,
            start=self._first,
            end=end,
            records=self._records,
            parse_errors=dict(self._parse_errors),
            retimed=self._retimed,
            reference=None if reference is None else reference.hash,
            windows=[w.name for w in self._config.windows],
            thresholds=self._thresholds,
            for_seconds=self._for,
            rows=self.rows,
            alerts=self._tracker.finish(),
        )


def replay(
    chunks: Iterable[bytes],
    config: Config,
    reference: Reference | None,
    every: float = 60.0,
    thresholds: Thresholds | None = None,
    for_seconds: Mapping[str, float] | None = None,
    source: str = "log",
) -> Report:
    replayer = Replayer(config, reference, every, thresholds, for_seconds, source)
    for chunk in chunks:
        replayer.feed(chunk)
    return replayer.finish()


# -- output --------------------------------------------------------------------------------------


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


HEADER = ("time", "model", "version", "n", "err%", "gap", "conf", "anomaly", "drift")


def render_text(report: Report, window: str | None = None) -> str:
    """A table over time for one window (default: the smallest), then the alert episodes."""
    window = window if window is not None else report.windows[0]
    errors = sum(report.parse_errors.values())
    lines = [
        f"replay of {report.source}: {report.records} records, {errors} unparseable lines, "
        f"{report.retimed} records without a timestamp or out of order (took the latest time)",
        f"log time {iso(report.start)} to {iso(report.end)}, a step every {report.every:g}s, "
        f"reference {report.reference or 'none (no drift or gaps)'}",
        f"window {window}: n records, err% error ratio, gap and conf = error ratio and mean "
        "confidence over development, top anomaly share, top drift statistics "
        "(value/threshold, ! = over)",
        "",
    ]
    table = [HEADER]
    for row in report.rows:
        if row.window == window:
            table.append(
                (
                    iso(row.time),
                    row.model,
                    row.version,
                    str(row.records),
                    _fixed(row.error_ratio, 1, 100.0),
                    _fixed(row.error_ratio_gap, 2),
                    _fixed(row.confidence_gap, 2),
                    _top_anomaly(row),
                    _top_drift(row),
                )
            )
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER) - 1)]
    for r in table:
        cells = [
            c.rjust(w) if i in (3, 4, 5, 6) else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=False))
        ]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    lines += ["", *render_alerts(report)]
    return "\n".join(lines) + "\n"


def render_alerts(report: Report) -> list[str]:
    t = report.thresholds
    lines = [
        f"alerts that would have fired (error ratio > {t.error_factor:g}x development with "
        f">= {t.error_min_labels} labels, confidence < {t.confidence_min:g}x development, "
        f"anomaly share > {t.anomaly_max:g}, parse errors > {t.parse_error_max:g}, "
        f"latency p99 > {t.latency_p99_max:g}s):"
    ]
    if not report.alerts:
        return [*lines, "  none"]
    for e in report.alerts:
        labels = " ".join(f"{k}={v}" for k, v in e.labels.items())
        until = "still firing at the end of the log" if e.end is None else f"to {iso(e.end)}"
        lines.append(f"  {e.alert} {e.severity} {labels} from {iso(e.start)} {until}")
    return lines
