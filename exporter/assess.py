"""Drift verdicts and gaps of every window against the reference, assessed once per step.

Why outside the store: the store keeps windows; judging them against the development profile is
statistics, and it costs far more than copying a window (a sketch binned against every field's
reference). Done at every scrape, that cost grows with the number of scrapers and model versions
for answers that barely move.

The rule. Time is cut into steps as wide as the smallest window's bucket (5 s with the default
windows and 12 buckets). At the first look in a new step, every window is read as it stood just
before the step began (``READ_BEFORE``) and judged against the reference; the results are kept
until the next step, so every scrape in between renders the same numbers. A window whose
buckets did not change since its last assessment (no new record, no bucket aged out) keeps its
result without being judged again, and a new reference is judged at once. So the drift and gap
series change at most once per step and lag the window gauges by less than one step; live and
``replay`` read at the same instants and agree.

For a page that charts drift over time, each window keeps a short history: one point per bucket
of that window (the assessment made at the first step of the bucket, i.e. the window as it
stood when the previous bucket closed), for ``HISTORY_SECONDS``. A point also holds the
window's quantiles of each numeric field, so the page can draw them against the reference's
without reading the store again (they are computed when the window is judged, from the same
merged sketch, so they cost one pass over buckets already summed).

Pure but for the cache: window reads and the reference in, verdicts out; no I/O, no clock.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from exporter.compare import FieldDrift, FleetThreshold, Gaps, compare, fleet_thresholds, gaps
from exporter.config_types import Config, DriftConfig
from exporter.join import GroupKey
from exporter.reference import Reference
from exporter.state import Signature, State, WindowRead, WindowReads
from exporter.stats.sketch import quantiles as sketch_quantiles
from exporter.stats.window import Summary

# Windows are read just before a step boundary, so a bucket ending there is whole. 1 ms is far
# above float64 resolution at epoch scale (~0.2 µs) and far below any bucket width.
READ_BEFORE = 1e-3
HISTORY_SECONDS = 3600.0  # the history a live page charts: the last hour


def assessment_step(config: Config) -> float:
    """Seconds per step: the smallest window's bucket width."""
    return min(w.seconds for w in config.windows) / config.window_buckets


@dataclass(frozen=True)
class WindowAssessment:
    """One window of one model version, judged against the reference."""

    model: str
    version: str
    window: str
    records: int  # records in the window as it was read
    drift: tuple[FieldDrift, ...]  # fields with too few samples for a verdict are left out
    gaps: Gaps
    # [F, Q] the window's quantiles of each numeric field (layout order, the configured
    # levels), clamped to its min and max as on /metrics; NaN where the field had no value.
    quantiles: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.zeros((0, 0)), compare=False
    )
    # The error ratio the window's confidence implies under the profile's calibration table
    # (cells.ReferenceCells.estimated_error_ratio); None without a table or a confidence value.
    estimated_error_ratio: float | None = None


@dataclass(frozen=True)
class Assessment:
    """Every window's verdicts, read at ``at``; empty without a reference. ``fleet`` holds the
    thresholds' parts the fleet rules apply to the pooled cell counts of the profile (its hash)."""

    at: float
    reference: Reference | None = None
    windows: dict[tuple[str, str, str], WindowAssessment] = field(default_factory=dict)
    fleet: tuple[FleetThreshold, ...] = ()

    def window(self, model: str, version: str, window: str) -> WindowAssessment | None:
        return self.windows.get((model, version, window))


@dataclass(frozen=True)
class DriftPoint:
    field: str
    statistic: str
    value: float
    threshold: float

    @property
    def drifted(self) -> bool:
        return self.value > self.threshold


@dataclass(frozen=True)
class HistoryPoint:
    """One window's assessment at one of its bucket boundaries, as plain numbers."""

    time: float  # the bucket boundary
    records: int
    drift: tuple[DriftPoint, ...]
    gaps: Gaps
    quantiles: dict[str, tuple[float, ...]] = field(default_factory=dict)  # field → levels


@dataclass(frozen=True)
class _Stored:
    """A history point kept compactly: statistic names shared, values in one small array."""

    epoch: int
    records: int
    names: tuple[tuple[str, str], ...]
    values: npt.NDArray[np.float64]  # [k, 2]: statistic, threshold
    gaps: Gaps
    quantiles: npt.NDArray[np.float64]  # [F, Q], as in WindowAssessment


@dataclass(frozen=True)
class _Cached:
    signature: Signature
    result: WindowAssessment


class Assessor:
    """Keeps the latest assessment and the history; ``advance`` is called from one thread (the
    ingest thread, or replay), readers take ``latest`` and ``history`` from any thread."""

    def __init__(
        self,
        state: State,
        settings: DriftConfig,
        step: float,
        buckets: int,
        history_seconds: float = HISTORY_SECONDS,
        levels: tuple[float, ...] = (),
    ) -> None:
        """``levels``: the quantiles each assessment and history point keeps (none: none)."""
        self._state = state
        self._levels = levels
        self._settings = settings
        self._step = step
        self._buckets = buckets
        self._history_seconds = history_seconds
        self._at_step: int | None = None
        self._reference: Reference | None = None
        self._cache: dict[tuple[GroupKey, str], _Cached] = {}
        self._names: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}
        self._history: dict[tuple[GroupKey, str], tuple[float, deque[_Stored]]] = {}
        self._history_lock = threading.Lock()
        self.latest = Assessment(-math.inf)

    @property
    def step(self) -> float:
        return self._step

    def set_settings(self, settings: DriftConfig) -> None:
        """New thresholds: every window is judged again at the next ``advance``."""
        self._settings = settings
        self._at_step = None
        self._cache.clear()

    def advance(self, now: float) -> Assessment:
        """The assessment in force at ``now``: recomputed at the first call in a new step, or
        when the reference changed; called before the records arriving at ``now`` are added,
        so a step's windows hold exactly the records that arrived before it began."""
        step = math.floor(now / self._step)
        reference = self._state.reference
        if step == self._at_step and reference is self._reference:
            return self.latest
        start = step * self._step
        fresh = reference is not self._reference
        # A failure below is not retried before the next step.
        self._at_step, self._reference = step, reference
        try:
            latest = self._assessment(start, reference, fresh)
        except BaseException:
            self.latest = Assessment(start - READ_BEFORE, reference)  # no stale verdicts
            raise
        # Published whole, in one assignment: a scrape meanwhile reads the previous step's
        # verdicts, never a half-built or empty assessment (its series would go stale).
        self.latest = latest
        return latest

    def _assessment(self, start: float, reference: Reference | None, fresh: bool) -> Assessment:
        if reference is None:
            self._cache.clear()
            return Assessment(start - READ_BEFORE, reference)
        windows = self._assess(start, reference, fresh)
        cells = self._state.cells
        fleet: tuple[FleetThreshold, ...] = ()
        if cells is not None and cells.hash == reference.hash:
            fleet = fleet_thresholds(cells, reference, self._state.layout, self._settings)
        return Assessment(start - READ_BEFORE, reference, windows, fleet)

    def _assess(
        self, start: float, reference: Reference, fresh: bool
    ) -> dict[tuple[str, str, str], WindowAssessment]:
        known = {} if fresh else {key: c.signature for key, c in self._cache.items()}
        reads = self._state.window_reads(start - READ_BEFORE, known)
        results = {}
        for read in reads.windows:
            key = (read.key, read.spec.name)
            cached = self._cache.get(key)
            if read.summary is None and cached is not None:
                result = cached.result
            else:
                result = self._judge(read, reference, reads)
                self._cache[key] = _Cached(read.signature, result)
            results[(*read.key, read.spec.name)] = result
            if self._history_seconds > 0:
                self._remember(key, read.spec.seconds / self._buckets, start, result)
        return results

    def _judge(
        self, read: WindowRead, reference: Reference, reads: WindowReads
    ) -> WindowAssessment:
        summary = read.summary
        assert summary is not None
        layout = self._state.layout
        found = compare(summary, reference, layout, reads.categories, reads.sketch, self._settings)
        model, version = read.key
        cells = self._state.cells
        return WindowAssessment(
            model,
            version,
            read.spec.name,
            summary.records,
            tuple(found),
            gaps(summary, reference, layout),
            self._quantiles(summary, reads),
            None if cells is None else cells.estimated_error_ratio(summary),
        )

    def _quantiles(self, summary: Summary, reads: WindowReads) -> npt.NDArray[np.float64]:
        result = np.full((len(reads.sketch), len(self._levels)), math.nan)
        if summary.sketch is None or not self._levels:
            return result
        for f in range(len(reads.sketch)):
            if summary.count[f]:
                found = sketch_quantiles(reads.sketch[f], summary.sketch[f], self._levels)
                result[f] = np.clip(found, summary.low[f], summary.high[f])
        return result

    # -- history ----------------------------------------------------------------------------

    def _remember(
        self, key: tuple[GroupKey, str], width: float, start: float, result: WindowAssessment
    ) -> None:
        """The first assessment in each bucket of the window becomes that bucket's point."""
        epoch = math.floor(start / width)  # the window's bucket the step began in
        with self._history_lock:
            if key not in self._history:
                length = max(1, math.ceil(self._history_seconds / width))
                self._history[key] = (width, deque(maxlen=length))
            _, points = self._history[key]
            if points and points[-1].epoch >= epoch:
                return
            names = tuple((d.field, d.statistic) for d in result.drift)
            names = self._names.setdefault(names, names)
            values = np.array(
                [(d.verdict.statistic, d.verdict.threshold) for d in result.drift], dtype=float
            ).reshape(-1, 2)
            points.append(
                _Stored(epoch, result.records, names, values, result.gaps, result.quantiles)
            )

    def history(self, model: str, version: str, window: str) -> list[HistoryPoint]:
        """One window's points over the last ``HISTORY_SECONDS``, oldest first."""
        with self._history_lock:
            found = self._history.get(((model, version), window))
            if found is None:
                return []
            width, stored = found[0], list(found[1])
        numeric = [spec.name for spec in self._state.layout.numeric]
        return [
            HistoryPoint(
                time=p.epoch * width,
                records=p.records,
                drift=tuple(
                    DriftPoint(f, s, float(v), float(t))
                    for (f, s), (v, t) in zip(p.names, p.values.tolist(), strict=True)
                ),
                gaps=p.gaps,
                quantiles={
                    name: tuple(row)
                    for name, row in zip(numeric, p.quantiles.tolist(), strict=False)
                },
            )
            for p in stored
        ]
