"""``/api/v1/status``: the sidecar's state as one JSON document, for the live page and for scripts.

Built from what ``/metrics`` is built from — the store's snapshot, the latest drift assessment,
the assessor's one-hour history and the pipeline's health — and nothing else, so it reveals no
more than ``/metrics`` does: label values, numbers, the reference's hash and creation time, the
configured source paths (the ``source`` label). No file contents, no other paths, no secrets.

Bounded work: a document is built only on request, at most once per ``MIN_INTERVAL`` for each
kind of request (all histories, none, a set of windows in the config's order), one build at a
time, requests that arrive meanwhile share the result, and at most ``CACHED_DOCUMENTS`` kinds
are kept (least recently asked dropped first), so no query string can grow memory. History is
capped at ``MAX_HISTORY_POINTS`` per window (``downsample``), so the size of an answer depends on
the config (models × fields × windows), never on the traffic. Ingestion only ever waits for the
store's lock while a snapshot is copied, as for a scrape.

The format is versioned (``api_version``; the path says v1) and documented field by field in
docs/status-api.md, with a JSON Schema beside it (docs/status-api.schema.json) that the tests
hold the answers to. Fields are only added within a version, never renamed or removed.
"""

from __future__ import annotations

import gzip
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import numpy.typing as npt

from exporter import __version__
from exporter.anomaly import KIND_NAMES, Kind
from exporter.assess import Assessment, HistoryPoint, WindowAssessment
from exporter.clock import Clock
from exporter.compare import GAP_NAMES
from exporter.deflate import GZIP_LEVEL
from exporter.downsample import bins
from exporter.health import SOURCE_METRICS, Health
from exporter.reference import Reference
from exporter.state import GroupSnapshot, Snapshot, WindowView
from exporter.validate import number_label

API_VERSION = 1
MAX_HISTORY_POINTS = 120  # per window and series: a 1m window's hour of 5 s buckets is 720
MIN_INTERVAL = 1.0  # seconds: a document is built at most this often per kind of request
CACHED_DOCUMENTS = 8  # kinds of request kept (all, none, each window...): memory stays bounded

Check = Callable[[], tuple[bool, str]]
JSON = dict[str, Any]


@dataclass(frozen=True)
class Inputs:
    """Where the document's numbers come from; each is read once per build."""

    snapshot: Callable[[], Snapshot]
    assessment: Callable[[], Assessment]
    history: Callable[[str, str, str], list[HistoryPoint]]
    health: Callable[[], Health]
    live: Check
    ready: Check
    step: float  # the assessment step: how often drift numbers can change


def _number(value: float | None) -> float | None:
    """JSON has no NaN or infinity: a value that is not a finite number is null."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _short(value: float | None) -> float | None:
    """History values, to six significant digits (a chart needs no more; halves the bytes)."""
    finite = _number(value)
    return None if finite is None else float(f"{finite:.6g}")


# -- the document ---------------------------------------------------------------------------------


def document(inputs: Inputs, now: float, started: float, history: Sequence[str] | None) -> JSON:
    """The whole answer; ``history`` names the windows whose history to include (None: all)."""
    snapshot = inputs.snapshot()
    assessment = inputs.assessment()
    live, live_detail = inputs.live()
    ready, ready_detail = inputs.ready()
    windows = [view.spec for view in snapshot.groups[0].windows] if snapshot.groups else []
    wanted = {w.name for w in windows} if history is None else set(history)
    reference = snapshot.reference
    return {
        "api_version": API_VERSION,
        "exporter_version": __version__,
        "generated_at": now,
        "started_at": started,
        "refresh_seconds": inputs.step,
        "health": {
            "live": live,
            "live_detail": live_detail,
            "ready": ready,
            "ready_detail": ready_detail,
        },
        "quantiles": [number_label(q) for q in snapshot.quantiles],
        "assessed_at": _number(assessment.at),
        "reference": None if reference is None else _reference(reference, snapshot, now),
        "models": [
            _model(group, snapshot, assessment, inputs.history, now, started, wanted)
            for group in snapshot.groups
        ],
        "sidecar": _sidecar(inputs.health(), now),
    }


def _reference(reference: Reference, snapshot: Snapshot, now: float) -> JSON:
    try:
        created = datetime.fromisoformat(reference.created).timestamp()
    except ValueError:
        created = math.nan
    return {
        "hash": reference.hash,
        "created": reference.created,
        "age_seconds": _number(now - created),
        "records": reference.records,
        "labelled": reference.labelled,
        "error_ratio": reference.error_ratio,
        "mae": reference.mae,
        "rmse": reference.rmse,
        "numeric": [
            {
                "field": name,
                "mean": ref.mean,
                "stddev": ref.stddev,
                "min": ref.min,
                "max": ref.max,
                "quantiles": {
                    label: ref.quantiles.get(label)
                    for label in (number_label(q) for q in snapshot.quantiles)
                },
            }
            for name, ref in reference.numeric.items()
        ],
        "categorical": [
            {"field": name, "shares": dict(ref.shares)}
            for name, ref in reference.categorical.items()
        ],
    }


def _model(
    group: GroupSnapshot,
    snapshot: Snapshot,
    assessment: Assessment,
    history: Callable[[str, str, str], list[HistoryPoint]],
    now: float,
    started: float,
    wanted: set[str],
) -> JSON:
    t = group.totals
    names = snapshot.layout.anomaly_fields
    anomalies: dict[str, dict[str, int]] = {}
    for row, name in enumerate((*names, "record")):
        for kind in range(1, len(KIND_NAMES)):
            if t.anomalies[row, kind]:
                anomalies.setdefault(name, {})[KIND_NAMES[kind]] = int(t.anomalies[row, kind])
    error_ratio = snapshot.reference.error_ratio if snapshot.reference is not None else None
    return {
        "model": group.model,
        "version": group.version,
        "records_total": t.records,
        "ground_truth_total": t.labelled,
        "prediction_errors_total": t.wrong,
        "last_record_timestamp": _number(t.latest),
        "anomalies_total": anomalies,
        "windows": {
            view.spec.name: _window(
                view,
                snapshot,
                assessment.window(group.model, group.version, view.spec.name),
                covered=max(min(view.spec.seconds, now - started), 1.0),
            )
            for view in group.windows
        },
        "history": {
            view.spec.name: _history(
                history(group.model, group.version, view.spec.name), snapshot, error_ratio
            )
            for view in group.windows
            if view.spec.name in wanted
        },
    }


def _window(
    view: WindowView, snapshot: Snapshot, assessed: WindowAssessment | None, covered: float
) -> JSON:
    s = view.summary
    layout = snapshot.layout
    labels = [number_label(q) for q in snapshot.quantiles]
    numeric = []
    for f, spec in enumerate(layout.numeric):
        n = int(s.count[f])
        values = [min(max(float(v), s.low[f]), s.high[f]) for v in view.quantiles[f]] if n else []
        numeric.append(
            {
                "field": spec.name,
                "samples": n,
                "mean": _number(s.mean(f)) if n else None,
                "stddev": _number(s.stddev(f)) if n else None,
                "min": _number(s.low[f]) if n else None,
                "max": _number(s.high[f]) if n else None,
                "quantiles": {
                    label: _number(values[i]) if n else None for i, label in enumerate(labels)
                },
            }
        )
    categorical = []
    for c, spec in enumerate(layout.categorical):
        counts = s.categories[c]
        n = int(counts.sum())
        shares = {value: float(counts[code] / n) for code, value in snapshot.categories[c] if n}
        categorical.append({"field": spec.name, "samples": n, "shares": shares})
    unparsed = int(s.anomalies[-1, Kind.PARSE_ERROR])
    anomalies: dict[str, dict[str, float]] = {}
    for row, name in enumerate((*layout.anomaly_fields, "record")):
        lines = s.records + unparsed if name == "record" else s.records
        for kind in range(1, len(KIND_NAMES)):
            if lines and s.anomalies[row, kind]:
                anomalies.setdefault(name, {})[KIND_NAMES[kind]] = float(
                    s.anomalies[row, kind] / lines
                )
    labelled = s.labelled if layout.has_ground_truth and s.labelled else 0
    regression = layout.regression
    gaps = assessed.gaps if assessed is not None else None
    return {
        "records": s.records,
        "records_per_second": s.records / covered,
        "ground_truth": s.labelled if layout.has_ground_truth else None,
        "error_ratio": s.wrong / labelled if labelled and not regression else None,
        "mae": _number(s.abs_error / labelled) if labelled and regression else None,
        "rmse": _number(math.sqrt(s.sq_error / labelled)) if labelled and regression else None,
        "label_delay_seconds": s.delay_total / s.joined if s.joined else None,
        "gaps": {
            name: None if gaps is None else _number(getattr(gaps, name)) for name in GAP_NAMES
        },
        "estimated_error_ratio": _number(assessed.estimated_error_ratio if assessed else None),
        "numeric": numeric,
        "categorical": categorical,
        "anomalies": anomalies,
        "drift": [
            {
                "field": d.field,
                "statistic": d.statistic,
                "value": _number(d.verdict.statistic),
                "threshold": _number(d.verdict.threshold),
                "drifted": bool(d.verdict.drifted),
            }
            for d in (assessed.drift if assessed is not None else ())
        ],
    }


# -- history ------------------------------------------------------------------------------------


def _column(values: npt.NDArray[np.float64]) -> list[float | None]:
    return [_short(v) for v in values.tolist()]


def _binned(
    values: npt.NDArray[np.float64], starts: npt.NDArray[np.intp], keep: str
) -> npt.NDArray[np.float64]:
    """Each bin's largest (``"max"``) or smallest value along the last axis, NaN ignored
    (a bin of NaN stays NaN)."""
    if values.shape[-1] == 0:
        return values
    reduce = np.fmax if keep == "max" else np.fmin
    with np.errstate(invalid="ignore"):
        return reduce.reduceat(values, starts, axis=-1)


def _history(points: list[HistoryPoint], snapshot: Snapshot, dev: float | None) -> JSON:
    """Columns over time, one entry per bin of points (see ``bins``): a bin shows its last
    point, except drift statistics and gaps, which show the bin's largest value (a spike is
    never averaged away), and thresholds, the bin's smallest. ``dev`` is the reference's
    error ratio, which turns the error-ratio gap back into an error ratio.

    Numpy does the binning: an hour of 5 s buckets is 720 points of a dozen statistics."""
    n = len(points)
    groups = bins(n, MAX_HISTORY_POINTS)
    starts = np.array([g.start for g in groups], dtype=np.intp)
    last = [points[g[-1]] for g in groups]
    keys = list(dict.fromkeys((d.field, d.statistic) for p in points for d in p.drift))
    row = {key: i for i, key in enumerate(keys)}
    values = np.full((len(keys), n), math.nan)
    thresholds = np.full((len(keys), n), math.nan)
    for j, p in enumerate(points):
        for d in p.drift:
            i = row[(d.field, d.statistic)]
            values[i, j], thresholds[i, j] = d.value, d.threshold
    values, thresholds = _binned(values, starts, "max"), _binned(thresholds, starts, "min")
    drift: dict[str, dict[str, dict[str, list[float | None]]]] = {}
    for (name, statistic), i in row.items():
        drift.setdefault(name, {})[statistic] = {
            "value": _column(values[i]),
            "threshold": _column(thresholds[i]),
        }
    gap_values = np.array(
        [[math.nan if (v := getattr(p.gaps, g)) is None else v for p in points] for g in GAP_NAMES],
        dtype=np.float64,
    ).reshape(len(GAP_NAMES), n)
    gaps = dict(zip(GAP_NAMES, _binned(gap_values, starts, "max"), strict=True))
    error_ratio = gaps["error_ratio"] * (math.nan if dev is None else dev)
    labels = [number_label(q) for q in snapshot.quantiles]
    numeric = [spec.name for spec in snapshot.layout.numeric]
    return {
        "points": len(groups),
        "downsampled_from": n,
        "time": [p.time for p in last],
        "records": [p.records for p in last],
        "drift": drift,
        "error_ratio_gap": _column(gaps["error_ratio"]),
        "error_ratio": _column(error_ratio),
        "confidence_gap": _column(gaps["confidence"]),
        "mae_gap": _column(gaps["mae"]),
        "rmse_gap": _column(gaps["rmse"]),
        "quantiles": {
            name: {
                label: [_short(p.quantiles[name][i]) if name in p.quantiles else None for p in last]
                for i, label in enumerate(labels)
            }
            for name in numeric
        },
    }


# -- the sidecar's own health ---------------------------------------------------------------------


def _sidecar(health: Health, now: float) -> JSON:
    sources = []
    for source, stats in health.sources.items():
        entry: JSON = {"source": source, "up": stats.files_present > 0}
        for metric in SOURCE_METRICS:
            key = metric.name + ("_total" if metric.type == "counter" else "")
            entry[key.removeprefix("source_")] = int(getattr(stats, metric.attribute))
        entry["parse_errors"] = {
            reason: count
            for (src, reason), count in sorted(health.parse_errors.items())
            if src == source and count
        }
        last = health.last_read.get(source)
        entry["last_read"] = last
        entry["last_read_age_seconds"] = None if last is None else max(now - last, 0.0)
        sources.append(entry)
    return {
        "sources": sources,
        "parse_errors_total": sum(health.parse_errors.values()),
        "checkpoint_errors_total": health.checkpoint_errors,
        "ingest_seconds_total": health.ingest_seconds,
        "reference_reloads": {
            outcome: health.reference_reloads.get(outcome, 0) for outcome in ("ok", "error")
        },
    }


# -- serving ------------------------------------------------------------------------------------


class QueryError(ValueError):
    """A query the endpoint does not understand (400, with this message)."""


def parse_query(query: str, windows: Sequence[str]) -> tuple[str, ...] | None:
    """``history=all`` (the default), ``history=none`` or ``history=W[,W...]`` (window names):
    which windows' history to include; None means all."""
    params = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(params) - {"history"})
    if unknown:
        raise QueryError(f"unknown parameter {unknown[0]!r} (known: history)")
    values = params.get("history", ["all"])
    if len(values) != 1:
        raise QueryError("history: give it once")
    value = values[0]
    if value == "all":
        return None
    if value == "none":
        return ()
    asked = value.split(",")
    bad = [w for w in asked if w not in windows]
    if bad:
        raise QueryError(f"history: {bad[0]!r} is not a window (windows: {', '.join(windows)})")
    return tuple(w for w in windows if w in asked)  # the config's order: one key per set


@dataclass
class _Cached:
    at: float  # monotonic time it was built
    body: bytes
    gzipped: bytes | None = None


class StatusEndpoint:
    """Builds the document on request, at most once per ``min_interval`` per kind of request,
    one build at a time; callers that arrive meanwhile get the same bytes."""

    def __init__(
        self,
        inputs: Inputs,
        windows: Sequence[str],
        clock: Clock,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self._inputs = inputs
        self._windows = tuple(windows)
        self._clock = clock
        self._min_interval = min_interval
        self._started = clock.now()
        self._lock = threading.Lock()
        # Least recently used last; bounded, since every set of windows is a key of its own.
        self._cache: OrderedDict[tuple[str, ...] | None, _Cached] = OrderedDict()
        self.builds = 0

    def get(self, query: str, gzipped: bool = False) -> tuple[int, bytes]:
        """(status code, body): 200 and the JSON (gzip-compressed if asked), or 400 and a
        message naming what is wrong with the query."""
        try:
            history = parse_query(query, self._windows)
        except QueryError as exc:
            return 400, f"{exc}\n".encode()
        with self._lock:
            cached = self._cache.get(history)
            if cached is None or self._clock.monotonic() - cached.at >= self._min_interval:
                body = self._build(history)
                cached = _Cached(self._clock.monotonic(), body)
                self._cache[history] = cached
            self._cache.move_to_end(history)
            while len(self._cache) > CACHED_DOCUMENTS:
                self._cache.popitem(last=False)
            if not gzipped:
                return 200, cached.body
            if cached.gzipped is None:
                cached.gzipped = gzip.compress(cached.body, compresslevel=GZIP_LEVEL)
            return 200, cached.gzipped

    def _build(self, history: tuple[str, ...] | None) -> bytes:
        self.builds += 1
        doc = document(self._inputs, self._clock.now(), self._started, history)
        # ASCII only: every label value is escaped, so the bytes are valid UTF-8 whatever the
        # log held, and a JSON parser gives back exactly the label values /metrics shows.
        return json.dumps(doc, allow_nan=False, separators=(",", ":")).encode("ascii")
