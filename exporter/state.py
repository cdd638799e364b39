"""Per-(model, version) state: counters since start, histograms and sliding windows.

The store computes nothing at scrape time beyond copying and quantiles: drift verdicts and
gaps against the reference are ``assess``'s, which reads window views from here.

Adding a batch has two halves. ``prepare`` computes everything the batch changes (summaries per
model version, histogram counts) without touching the store, so it may fail
and leave nothing behind; ``commit`` only adds the prepared numbers, under the lock, in one
call. One lock guards it all: a scrape holds it only while copying window views; quantiles are
computed on the copies, outside the lock, so a scrape never stalls ingestion for long.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from exporter.anomaly import Kind
from exporter.batch import OTHER, Batch, Layout, mapped, nameless
from exporter.cells import ReferenceCells
from exporter.config_types import Config, WindowSpec
from exporter.join import GroupKey, Joined
from exporter.reference import Reference
from exporter.stats.sketch import Sketches, quantiles
from exporter.stats.window import Ring, Shape, Summary, summarize

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
    # Records per reference cell of each field since the profile was loaded (ReferenceCells)
    cells: list[IntArray] = field(default_factory=list)


@dataclass(frozen=True)
class WindowView:
    spec: WindowSpec
    summary: Summary
    quantiles: FloatArray  # [F, Q], NaN where the field had no value


Signature = tuple[tuple[int, int], ...]  # a window's buckets as (epoch, revision): see Ring


@dataclass(frozen=True)
class WindowRead:
    """One window of one model version read for assessment; ``summary`` is None when the
    window's signature equals the one the reader already had (nothing changed)."""

    key: GroupKey
    spec: WindowSpec
    signature: Signature
    summary: Summary | None


@dataclass(frozen=True)
class WindowReads:
    at: float
    categories: list[list[tuple[int, str]]]
    sketch: Sketches  # the sketch layout the summaries were counted in
    windows: list[WindowRead]


@dataclass(frozen=True)
class Part:
    """One model version's share of a batch, summarised."""

    key: GroupKey
    summary: Summary
    codes: IntArray  # [n, C] its category codes (``freeze`` draws a held-out half from them)
    histogram_counts: IntArray  # [H, widest + 1]
    histogram_sums: FloatArray  # [H]
    cells: tuple[str, list[IntArray]] | None = None  # (profile hash, records per cell)


@dataclass
class Update:
    """What one batch changes, computed by ``prepare`` outside the store; ``commit`` adds it."""

    now: float
    named: list[int]  # names in each vocabulary once this batch's codes were assigned
    parts: list[Part] = field(default_factory=list)
    joined: list[tuple[GroupKey, Summary]] = field(default_factory=list)
    outcomes: dict[tuple[GroupKey, str], int] = field(default_factory=dict)
    parse_errors: int = 0
    shape: Shape | None = None  # sketch windows newly anchored on this batch's values

    @property
    def records(self) -> int:
        return sum(part.summary.records for part in self.parts)


@dataclass(frozen=True)
class GroupSnapshot:
    model: str
    version: str
    totals: Summary
    histogram_counts: IntArray
    histogram_sums: FloatArray
    windows: list[WindowView]
    join_outcomes: dict[str, int] = field(default_factory=dict)
    cells: list[IntArray] = field(default_factory=list)  # aligned with Snapshot.cells.fields


@dataclass(frozen=True)
class Snapshot:
    now: float
    layout: Layout
    categories: list[list[tuple[int, str]]]  # per categorical field: (code, value), __other__ last
    histograms: tuple[Histogram, ...]
    quantiles: tuple[float, ...]
    reference: Reference | None = None
    groups: list[GroupSnapshot] = field(default_factory=list)
    cells: ReferenceCells | None = None


class State:
    def __init__(self, config: Config, layout: Layout, category_names: list[list[str]]) -> None:
        """``category_names`` are the decoder's vocabularies, so a code always maps to the
        value it was given for.

        The ingest thread appends to them while decoding, outside this lock, and a scrape reads
        them from another thread. So ``commit`` records under the lock how many names each
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
        self._bounds = [np.asarray(h.bounds, dtype=np.float64) for h in self._histograms]
        self._histogram_columns = [h.column for h in self._histograms]
        self._widest = max((len(x.bounds) for x in self._histograms), default=0) + 1
        self._groups: dict[tuple[str, str], _Group] = {}
        self._nameless = nameless(config.fields)
        # Groups that never take one of the ``max_model_versions`` slots: the overflow group,
        # and the group of lines that name no model (a few such lines must not push a real
        # model version into ``__other__``).
        self._unslotted = {OVERFLOW_GROUP, self._nameless}
        self._lock = threading.Lock()
        self._version = 0  # bumped by every change a scrape could show
        self._bucket_widths = sorted({w.seconds / config.window_buckets for w in config.windows})
        self._reference: Reference | None = None
        self._cells: ReferenceCells | None = None
        if not (config.fields.model_path or config.fields.version_path):
            # A model named in the config has its series (counters at 0) before its first
            # record, so rate() and the fleet rules across replicas count that record too.
            self._group(self._nameless)

    @property
    def reference(self) -> Reference | None:
        return self._reference

    @property
    def cells(self) -> ReferenceCells | None:
        return self._cells

    def version(self, now: float) -> tuple[int, ...]:
        """Equal for two moments only if a snapshot would be too: nothing was added, no
        reference changed, and no window bucket turned over in between. (Read before taking
        the snapshot it names, so a change in between only costs a render.)"""
        return (self._version, *(math.floor(now / width) for width in self._bucket_widths))

    def set_reference(self, reference: Reference | None) -> None:
        with self._lock:
            self._version += 1
            self._reference = reference
            if reference is not None:  # fields with no value yet are anchored on the profile
                self._shape = _anchored(
                    self._shape,
                    [_reference_values(reference, s.name) for s in self._layout.numeric],
                )
            self._install_cells(reference)

    def _install_cells(self, reference: Reference | None) -> None:
        """Cell counters follow the profile: a new hash starts them at zero (the series carry
        the hash, so Prometheus sees new series), the same hash keeps counting."""
        if reference is None:
            self._cells = None
        elif self._cells is None or self._cells.hash != reference.hash:
            self._cells = ReferenceCells.build(reference, self._layout, self._shape.sketch)
        else:
            return
        for group in self._groups.values():
            group.cells = self._empty_cells()

    def _empty_cells(self) -> list[IntArray]:
        fields = () if self._cells is None else self._cells.fields
        return [np.zeros(f.size, dtype=np.int64) for f in fields]

    @property
    def shape(self) -> Shape:
        return self._shape

    @property
    def layout(self) -> Layout:
        return self._layout

    def _group(self, key: tuple[str, str]) -> _Group:
        group = self._groups.get(key)
        if group is None:
            # Each model version holds its own windows (megabytes): past the configured number,
            # the rest share one overflow group rather than grow memory without bound.
            if self._room() <= 0 and key not in self._unslotted:
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
                cells=self._empty_cells(),
            )
            self._groups[key] = group
        return group

    def ingest(self, batch: Batch, now: float) -> None:
        """Add a batch whose records all arrived at ``now``."""
        self.commit(self.prepare(batch, now))

    def prepare(
        self,
        batch: Batch | None,
        now: float,
        joined: Mapping[GroupKey, Joined] | None = None,
        outcomes: Mapping[tuple[GroupKey, str], int] | None = None,
    ) -> Update:
        """Everything a batch (its records arrived at ``now``) and the late labels matched at
        ``now`` change, computed without changing the store.

        Called from the ingest thread only, which is also the only writer: the group table
        and the shape it reads cannot change before the matching ``commit``.
        """
        named = [len(names) for names in self._category_lists]
        update = Update(now, named, outcomes=dict(outcomes or {}))
        shape = self._shape
        if batch is not None:
            if any(layout.offset is None for layout in shape.sketch.fields):
                shape = _anchored(shape, list(batch.numeric.T))
                update.shape = shape if shape is not self._shape else None
            update.parts = self._parts(batch, shape, self._names(update.named))
            update.parse_errors = sum(batch.parse_errors.values())
        for key, found in (joined or {}).items():
            # Late labels count in the window of the label's arrival.
            summary = Summary.empty(self._shape)
            summary.labelled, summary.wrong = found.labelled, found.wrong
            summary.joined, summary.delay_total = found.matched, found.delay_total
            summary.abs_error, summary.sq_error = found.abs_error, found.sq_error
            update.joined.append((key, summary))
        return update

    def _parts(self, batch: Batch, shape: Shape, names: list[list[tuple[int, str]]]) -> list[Part]:
        cells = self._cells
        parts = []
        for key, rows in self._by_group(batch):
            summary = summarize(rows, None, shape)
            if summary.records == 0:
                continue
            counts, sums = self._histogram_counts(rows.numeric, summary)
            counted = None if cells is None else (cells.hash, cells.count(summary, names))
            parts.append(Part(key, summary, rows.categorical, counts, sums, counted))
        return parts

    def _room(self) -> int:
        """How many more (model, version) pairs get their own group: ``max_model_versions``
        of them, the nameless group and the overflow group the rest share coming on top."""
        named = len(self._groups.keys() - self._unslotted)
        return self._config.max_model_versions - named

    def _by_group(self, batch: Batch) -> list[tuple[tuple[str, str], Batch]]:
        """The batch's records per state group, in order of first appearance.

        Keys past ``max_model_versions`` go to the overflow group here, before anything is
        summarised, and the rows are grouped with one sort: a log that names a new model on
        every line costs one summary per kept group, not one pass over the batch per name.
        Only the ingest thread adds groups, so reading the group table without the lock is
        safe here.
        """
        if len(batch.groups) == 1:
            return [(batch.groups[0], batch)]
        slots: dict[tuple[str, str], int] = {}
        room = self._room()
        if room <= 0:
            slot_of = self._slots_when_full(batch.groups, slots)
        else:
            slot_of = np.empty(len(batch.groups), dtype=np.int64)
            for code, key in enumerate(batch.groups):
                kept = key
                if key not in self._groups and key not in slots and key not in self._unslotted:
                    if room <= 0:
                        kept = OVERFLOW_GROUP
                    else:
                        room -= 1
                slot_of[code] = slots.setdefault(kept, len(slots))
        if len(slots) == 1:
            return [(next(iter(slots)), batch)]
        slot = slot_of[batch.group]
        order = np.argsort(slot, kind="stable")
        bounds = np.searchsorted(slot[order], np.arange(len(slots) + 1))
        return [(key, batch.take(order[bounds[i] : bounds[i + 1]])) for key, i in slots.items()]

    def _slots_when_full(
        self, keys: list[tuple[str, str]], slots: dict[tuple[str, str], int]
    ) -> IntArray:
        """``_by_group``'s slot of each key once no new key gets a group: a key that has one,
        or needs no slot (``_unslotted``), keeps it; every other key shares the overflow
        group's slot. Looked up in C, because a log with a new model on every line has about
        as many keys as rows."""
        kept = list(self._groups.keys() | self._unslotted)
        index = dict(zip(kept, range(len(kept)), strict=True))
        found = mapped(keys, index, -1)  # each key's index into kept, or -1
        # The first place of each kept key present, and of the first key past them (most keys,
        # when there are many: only the few kept ones are sorted).
        own = np.flatnonzero(found >= 0)
        _, first_own = np.unique(found[own], return_index=True)
        firsts = own[first_own].tolist()
        if len(own) < len(keys):
            firsts.append(int(np.argmax(found < 0)))
        slot_of = np.empty(len(kept) + 1, dtype=np.int64)  # by index into kept + 1
        for code in sorted(firsts):  # slots in order of first appearance
            k = int(found[code])
            slot_of[k + 1] = slots.setdefault(kept[k] if k >= 0 else OVERFLOW_GROUP, len(slots))
        result: IntArray = slot_of[found + 1]
        return result

    def _histogram_counts(
        self, numeric: FloatArray, summary: Summary
    ) -> tuple[IntArray, FloatArray]:
        """Counts per bucket and the sum of each histogram's field; the summary already holds
        the field's valid values' count and sum.

        The histograms' columns are sorted once (NaN, no value, sorts last), and each bound
        is looked up in its sorted column: the values ≤ each bound are Prometheus's cumulative
        counts, and the +Inf bucket is whatever valid value is left. A few lookups per bound
        instead of a binary search per value."""
        counts = np.zeros((len(self._histograms), self._widest), dtype=np.int64)
        sums = np.zeros(len(self._histograms))
        if not self._histograms or not len(numeric):
            return counts, sums
        ordered = np.sort(numeric.T[self._histogram_columns], axis=1)
        for h, bounds in enumerate(self._bounds):
            column = self._histograms[h].column
            cumulative = np.empty(len(bounds) + 2, dtype=np.int64)
            cumulative[0] = 0
            cumulative[1:-1] = ordered[h].searchsorted(bounds, side="right")
            cumulative[-1] = summary.count[column]
            counts[h, : len(bounds) + 1] = cumulative[1:] - cumulative[:-1]
            sums[h] = summary.total[column]
        return counts, sums

    def commit(self, update: Update) -> None:
        """Add a prepared update: only additions and assignments, in one call under the lock."""
        now = update.now
        with self._lock:
            self._version += 1
            self._named = update.named
            if update.shape is not None:
                self._shape = update.shape
            for part in update.parts:
                group = self._group(part.key)
                self._add(group, part.summary, now)
                group.histogram_counts += part.histogram_counts
                group.histogram_sums += part.histogram_sums
                if part.cells is not None and self._cells is not None:
                    hash_, counts = part.cells
                    if hash_ == self._cells.hash:  # counted against the profile still in use
                        for f, field_counts in enumerate(counts):
                            group.cells[f] += field_counts
            if update.parse_errors:
                self._add_parse_errors(update.parse_errors, now)
            for key, summary in update.joined:
                self._add(self._group(key), summary, now)
            for (key, outcome), count in update.outcomes.items():
                self._group(key).join_outcomes[outcome] += count

    def _add(self, group: _Group, summary: Summary, now: float) -> None:
        for ring in group.rings:
            ring.add(now, summary)
        group.totals.add(summary)  # totals keep no sketch: theirs is None, none is added

    def names(self, named: list[int]) -> list[list[tuple[int, str]]]:
        """(code, value) of each categorical field up to ``named`` (an update's), ``__other__``
        last: the names a prepared update's codes refer to."""
        return self._names(named)

    def _names(self, named: list[int] | None = None) -> list[list[tuple[int, str]]]:
        """(code, value) of each categorical field, up to ``named`` (default: the names of
        the codes committed so far), ``__other__`` last."""
        limits = self._named if named is None else named
        return [
            [*enumerate(values[:limit]), (spec.max_categories, OTHER)]
            for values, limit, spec in zip(
                self._category_lists, limits, self._layout.categorical, strict=True
            )
        ]

    def _add_parse_errors(self, errors: int, now: float) -> None:
        """A line that is not a record names no model. With names from the log it is charged
        to ``__unknown__`` (``batch.nameless``), never to the model read last: a bad line says
        nothing about that model, and charging it there made one model's error ratio another's.
        With a static name there is one model, and it is charged there."""
        summary = Summary.empty(self._shape)
        summary.anomalies[-1, Kind.PARSE_ERROR] = errors
        self._add(self._group(self._nameless), summary, now)

    def snapshot(self, now: float) -> Snapshot:
        with self._lock:
            names = self._names()
            reference = self._reference
            cells = self._cells
            sketch = self._shape.sketch
            copied = [
                (
                    key,
                    _copy(group.totals),
                    group.histogram_counts.copy(),
                    group.histogram_sums.copy(),
                    [(ring.spec, ring.view(now)) for ring in group.rings],
                    dict(group.join_outcomes),
                    [c.copy() for c in group.cells],
                )
                for key, group in self._groups.items()
            ]
        snapshot = Snapshot(
            now,
            self._layout,
            names,
            self._histograms,
            self._config.quantiles,
            reference,
            cells=cells,
        )
        for (model, version), totals, counts, sums, views, outcomes, cell_counts in copied:
            windows = [
                WindowView(spec, view, _quantiles(sketch, view, self._config.quantiles))
                for spec, view in views
            ]
            snapshot.groups.append(
                GroupSnapshot(model, version, totals, counts, sums, windows, outcomes, cell_counts)
            )
        return snapshot

    def window_reads(
        self, at: float, known: Mapping[tuple[GroupKey, str], Signature]
    ) -> WindowReads:
        """Every window of every model version as it stands at ``at``, for assessment; a window
        whose signature is in ``known`` unchanged is not merged again (its summary is None)."""
        reads = []
        with self._lock:
            for key, group in self._groups.items():
                for ring in group.rings:
                    signature = ring.signature(at)
                    unchanged = known.get((key, ring.spec.name)) == signature
                    summary = None if unchanged else ring.view(at)
                    reads.append(WindowRead(key, ring.spec, signature, summary))
            return WindowReads(at, self._names(), self._shape.sketch, reads)


def _anchored(shape: Shape, columns: list[FloatArray]) -> Shape:
    """The shape with the sketch window of each field not anchored yet placed on these values
    (see ``stats.sketch``); the same shape when nothing changed."""
    sketch = shape.sketch.anchored_on(columns)
    return shape if sketch is shape.sketch else replace(shape, sketch=sketch)


def _quantiles(sketch: Sketches, summary: Summary, qs: tuple[float, ...]) -> FloatArray:
    result = np.full((len(sketch), len(qs)), math.nan)
    if summary.sketch is None:
        return result
    for f in range(len(sketch)):
        if summary.count[f]:
            start, counts = summary.sketch.span(f)
            result[f] = quantiles(sketch[f], counts, qs, start)
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
