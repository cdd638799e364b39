"""Per-(model, version) state: counters since start, histograms and sliding windows.

One lock guards it all: the ingest thread holds it while adding a batch summary, a scrape
holds it only while copying window views; quantiles and everything derived are computed on
the copies, outside the lock, so a scrape never stalls ingestion for long.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from exporter.anomaly import Kind
from exporter.batch import OTHER, Batch, Layout
from exporter.compare import FieldDrift, Gaps, compare, gaps
from exporter.config_types import Config, DriftConfig, WindowSpec
from exporter.join import GroupKey, Joined
from exporter.profile import build
from exporter.reference import Reference
from exporter.stats.sketch import Sketches, quantiles
from exporter.stats.window import Ring, Shape, Summary, category_counts, summarize

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

OVERFLOW_GROUP = ("__other__", "__other__")


@dataclass(frozen=True)
class Histogram:
    """A Prometheus histogram of one numeric field (cumulative counts per upper bound)."""

    name: str
    column: int
    bounds: tuple[float, ...]


@dataclass
class _Group:
    totals: Summary
    histogram_counts: IntArray  # [H, len(bounds) + 1], the last column is +Inf
    histogram_sums: FloatArray  # [H]
    rings: list[Ring]
    join_outcomes: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class WindowView:
    spec: WindowSpec
    summary: Summary
    quantiles: FloatArray  # [F, Q], NaN where the field had no value
    drift: list[FieldDrift] = field(default_factory=list)
    gaps: Gaps | None = None


@dataclass(frozen=True)
class GroupSnapshot:
    model: str
    version: str
    totals: Summary
    histogram_counts: IntArray
    histogram_sums: FloatArray
    windows: list[WindowView]
    join_outcomes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    now: float
    layout: Layout
    categories: list[list[tuple[int, str]]]  # per categorical field: (code, value), __other__ last
    histograms: tuple[Histogram, ...]
    quantiles: tuple[float, ...]
    reference: Reference | None = None
    groups: list[GroupSnapshot] = field(default_factory=list)


class State:
    def __init__(self, config: Config, layout: Layout, category_names: list[list[str]]) -> None:
        """``category_names`` are the decoder's vocabularies, so a code always maps to the
        value it was given for.

        The ingest thread appends to them while decoding, outside this lock, and a scrape reads
        them from another thread. So ``ingest`` records under the lock how many names each
        held once the batch's codes were assigned, and a snapshot copies exactly that prefix
        (one slice: atomic under the GIL, never a half-read list). Every code a window counted
        has its name, and a name decoded for a batch not yet ingested is not shown.
        """
        self._config = config
        self._layout = layout
        self._category_lists = category_names
        self._named = [0] * len(category_names)  # names the ingested codes may refer to
        caps = [spec.max_categories for spec in layout.categorical]
        self._shape = Shape(
            numeric=len(layout.numeric),
            categorical=len(layout.categorical),
            categories=max(caps, default=0) + 1,
            anomaly_fields=len(layout.anomaly_fields) + 1,
            sketch=Sketches.unanchored(len(layout.numeric), config.sketch_relative_accuracy),
        )
        columns = {spec.name: i for i, spec in enumerate(layout.numeric)}
        self._histograms = tuple(
            Histogram(name, columns[name], bounds)
            for name, bounds in config.histograms
            if name in columns
        )
        self._groups: dict[tuple[str, str], _Group] = {}
        self._last_key = (config.fields.model_value, config.fields.version_value)
        self._unattributed = 0  # parse errors seen before any record named its model
        self._lock = threading.Lock()
        self._reference: Reference | None = None
        freeze = config.drift.freeze_first
        self._freezing = Summary.empty(self._shape) if freeze > 0 else None
        # Category counts of a seeded random half of the frozen records (see profile.build).
        self._held_out = np.zeros((self._shape.categorical, self._shape.categories), np.int64)
        self._split = np.random.default_rng(0)

    @property
    def reference(self) -> Reference | None:
        return self._reference

    def set_reference(self, reference: Reference | None) -> None:
        with self._lock:
            self._reference = reference
            self._freezing = None  # a profile from a file wins over freezing the first records
            if reference is not None:  # fields with no value yet are anchored on the profile
                self._anchor([_reference_values(reference, s.name) for s in self._layout.numeric])

    def _anchor(self, columns: list[FloatArray]) -> None:
        """Place the sketch window of each field not anchored yet (see ``stats.sketch``)."""
        sketch = self._shape.sketch.anchored_on(columns)
        if sketch is not self._shape.sketch:
            self._shape = replace(self._shape, sketch=sketch)

    def set_drift(self, drift: DriftConfig) -> None:
        """New drift thresholds (a config reload); ``freeze_first`` keeps its value from start."""
        with self._lock:
            kept = replace(drift, freeze_first=self._config.drift.freeze_first)
            self._config = replace(self._config, drift=kept)

    @property
    def shape(self) -> Shape:
        return self._shape

    def _group(self, key: tuple[str, str]) -> _Group:
        group = self._groups.get(key)
        if group is None:
            # Each model version holds its own windows (megabytes): past the configured number,
            # the rest share one overflow group rather than grow memory without bound.
            if len(self._groups) >= self._config.max_model_versions - 1 and key != OVERFLOW_GROUP:
                return self._group(OVERFLOW_GROUP)
            h = len(self._histograms)
            widest = max((len(x.bounds) for x in self._histograms), default=0) + 1
            group = _Group(
                totals=Summary.empty(self._shape, with_sketch=False),
                histogram_counts=np.zeros((h, widest), dtype=np.int64),
                histogram_sums=np.zeros(h),
                rings=[
                    Ring(w, self._config.window_buckets, self._shape) for w in self._config.windows
                ],
            )
            self._groups[key] = group
        return group

    def ingest(self, batch: Batch, now: float) -> None:
        """Add a batch whose records all arrived at ``now``."""
        parts: list[tuple[tuple[str, str], Summary, npt.NDArray[np.bool_] | None]] = []
        if any(layout.offset is None for layout in self._shape.sketch.fields):
            with self._lock:
                self._anchor(list(batch.numeric.T))
        if len(batch.groups) == 1:
            parts.append((batch.groups[0], summarize(batch, None, self._shape), None))
        else:
            for code, key in enumerate(batch.groups):
                rows = batch.group == code
                parts.append((key, summarize(batch, rows, self._shape), rows))
        with self._lock:
            self._named = [len(names) for names in self._category_lists]
            for key, summary, rows in parts:
                if summary.records == 0:
                    continue
                group = self._group(key)
                if self._freezing is not None and self._reference is None:
                    codes = batch.categorical if rows is None else batch.categorical[rows]
                    self._freeze(summary, codes, now)
                self._add(
                    group, summary, batch.numeric if rows is None else batch.numeric[rows], now
                )
                self._last_key = key
            errors = sum(batch.parse_errors.values()) + self._unattributed
            self._unattributed = 0
            if errors:
                self._add_parse_errors(errors, now)

    def _add(self, group: _Group, summary: Summary, numeric: FloatArray, now: float) -> None:
        for ring in group.rings:
            ring.add(now, summary)
        summary.sketch = None
        group.totals.add(summary)
        for h, histogram in enumerate(self._histograms):
            values = numeric[:, histogram.column]
            values = values[~np.isnan(values)]
            slots = np.searchsorted(np.asarray(histogram.bounds), values, side="left")
            group.histogram_counts[h, : len(histogram.bounds) + 1] += np.bincount(
                slots, minlength=len(histogram.bounds) + 1
            )
            group.histogram_sums[h] += float(values.sum())

    def add_joined(
        self,
        joined: Mapping[GroupKey, Joined],
        outcomes: Mapping[tuple[GroupKey, str], int],
        now: float,
    ) -> None:
        """Late labels matched at ``now``: they count in the window of the label's arrival."""
        with self._lock:
            for key, found in joined.items():
                summary = Summary.empty(self._shape)
                summary.labelled, summary.wrong = found.labelled, found.wrong
                summary.joined, summary.delay_total = found.matched, found.delay_total
                group = self._group(key)
                for ring in group.rings:
                    ring.add(now, summary)
                summary.sketch = None
                group.totals.add(summary)
            for (key, outcome), count in outcomes.items():
                self._group(key).join_outcomes[outcome] += count

    def _freeze(self, summary: Summary, codes: IntArray, now: float) -> None:
        """Without a profile, the first ``freeze_first`` production records become the
        reference (the whole batch that crosses the count, so it may hold a few more)."""
        assert self._freezing is not None
        self._freezing.add(summary)
        half = self._split.random(len(codes)) < 0.5
        self._held_out += category_counts(codes[half], self._shape)
        if self._freezing.records < self._config.drift.freeze_first:
            return
        created = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
        self._reference = build(
            self._freezing,
            self._layout,
            self._names(),
            self._shape.sketch,
            self._config.quantiles,
            created,
            {"frozen_first_records": self._freezing.records},
            regression=self._config.fields.regression,
            held_out=self._held_out,
        )
        self._freezing = None

    def _names(self) -> list[list[tuple[int, str]]]:
        return [
            [*enumerate(values[:named]), (spec.max_categories, OTHER)]
            for values, named, spec in zip(
                self._category_lists, self._named, self._layout.categorical, strict=True
            )
        ]

    def _add_parse_errors(self, errors: int, now: float) -> None:
        """A line that is not a record names no model: it is charged to the group of the
        record read just before it (usually the only group a sidecar sees). Before any record
        has named a model, they wait for the first one rather than invent an "unknown" model
        (the sidecar's own parse-error counter has them at once)."""
        names_from_log = self._config.fields.model_path or self._config.fields.version_path
        if not self._groups and names_from_log:
            self._unattributed += errors
            return
        summary = Summary.empty(self._shape)
        summary.anomalies[-1, Kind.PARSE_ERROR] = errors
        group = self._group(self._last_key)
        for ring in group.rings:
            ring.add(now, summary)
        summary.sketch = None
        group.totals.add(summary)

    def snapshot(self, now: float) -> Snapshot:
        with self._lock:
            names = self._names()
            reference = self._reference
            sketch = self._shape.sketch
            copied = [
                (
                    key,
                    _copy(group.totals),
                    group.histogram_counts.copy(),
                    group.histogram_sums.copy(),
                    [(ring.spec, ring.view(now)) for ring in group.rings],
                    dict(group.join_outcomes),
                )
                for key, group in self._groups.items()
            ]
        snapshot = Snapshot(
            now, self._layout, names, self._histograms, self._config.quantiles, reference
        )
        drift = self._config.drift
        for (model, version), totals, counts, sums, views, outcomes in copied:
            windows = []
            for spec, view in views:
                found: list[FieldDrift] = []
                window_gaps = None
                if reference is not None:
                    found = compare(view, reference, self._layout, names, sketch, drift)
                    window_gaps = gaps(view, reference, self._layout)
                qs = _quantiles(sketch, view, self._config.quantiles)
                windows.append(WindowView(spec, view, qs, found, window_gaps))
            snapshot.groups.append(
                GroupSnapshot(model, version, totals, counts, sums, windows, outcomes)
            )
        return snapshot


def _quantiles(sketch: Sketches, summary: Summary, qs: tuple[float, ...]) -> FloatArray:
    result = np.full((len(sketch), len(qs)), math.nan)
    if summary.sketch is None:
        return result
    for f in range(len(sketch)):
        if summary.count[f]:
            result[f] = quantiles(sketch[f], summary.sketch[f], qs)
    return result


def _reference_values(reference: Reference, name: str) -> FloatArray:
    """The profile's percentiles of a field: where its live values are expected to lie."""
    ref = reference.numeric.get(name)
    return np.asarray(ref.cdf_points if ref is not None else [], dtype=np.float64)


def _copy(summary: Summary) -> Summary:
    """A copy for a snapshot (without the sketch: counters need none)."""
    return replace(
        summary,
        count=summary.count.copy(),
        total=summary.total.copy(),
        deviations=summary.deviations.copy(),
        low=summary.low.copy(),
        high=summary.high.copy(),
        sketch=None,
        categories=summary.categories.copy(),
        anomalies=summary.anomalies.copy(),
        clamped=summary.clamped.copy(),
    )
