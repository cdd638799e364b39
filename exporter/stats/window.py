"""Aggregates of a set of records, and time-sliding windows made of them.

A ``Summary`` holds what a window needs to answer every scrape question — count, sum, squared
deviations, min, max and a quantile sketch per numeric field, category counts, anomaly counts and
label outcomes — with array shapes fixed by the layout. Summaries merge by addition (min/max
by min/max), so a batch is summarised once and added to each window, and a window is the
merge of its live buckets. Nothing here reads the clock: ``now`` is always an argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from exporter.anomaly import N_KINDS
from exporter.batch import Batch
from exporter.config_types import WindowSpec
from exporter.stats.sketch import BucketCounts, Sketches

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Shape:
    """Array sizes of every summary of one pipeline."""

    numeric: int  # F
    categorical: int  # C
    categories: int  # widest vocabulary + 1 (the __other__ slot)
    anomaly_fields: int  # A, the last row is the whole record (parse errors)
    sketch: Sketches  # one layout per numeric field


@dataclass
class Summary:
    records: int
    count: IntArray  # [F] valid values
    total: FloatArray  # [F] sum
    deviations: FloatArray  # [F] sum of squared deviations from the mean (M2)
    low: FloatArray  # [F] min (+inf when empty)
    high: FloatArray  # [F] max (-inf when empty)
    sketch: BucketCounts | None  # per field; None where quantiles are not needed
    categories: IntArray  # [C, V]
    anomalies: IntArray  # [A, N_KINDS]
    labelled: int
    wrong: int
    latest: float  # largest record timestamp (-inf when none)
    joined: int = 0  # late labels joined to their prediction by request id
    delay_total: float = 0.0  # sum of their delays, seconds
    abs_error: float = 0.0  # regression: sum of |prediction − label| over labelled records
    sq_error: float = 0.0  # regression: sum of (prediction − label)²
    # [F] values outside their field's sketch window (quantiles of those are not within bound)
    clamped: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def empty(cls, shape: Shape, with_sketch: bool = True) -> Summary:
        f = shape.numeric
        return cls(
            records=0,
            count=np.zeros(f, dtype=np.int64),
            total=np.zeros(f),
            deviations=np.zeros(f),
            low=np.full(f, np.inf),
            high=np.full(f, -np.inf),
            sketch=BucketCounts(f, shape.sketch.size) if with_sketch else None,
            categories=np.zeros((shape.categorical, shape.categories), dtype=np.int64),
            anomalies=np.zeros((shape.anomaly_fields, N_KINDS), dtype=np.int64),
            labelled=0,
            wrong=0,
            latest=-math.inf,
            clamped=np.zeros(f, dtype=np.int64),
        )

    def clear(self) -> None:
        self.records = self.labelled = self.wrong = self.joined = 0
        self.latest = -math.inf
        self.delay_total = self.abs_error = self.sq_error = 0.0
        for array in (
            self.count,
            self.total,
            self.deviations,
            self.categories,
            self.anomalies,
            self.clamped,
        ):
            array.fill(0)
        self.low.fill(np.inf)
        self.high.fill(-np.inf)
        if self.sketch is not None:
            self.sketch.clear()

    def _merge_moments(self, other: Summary) -> None:
        """Chan et al.'s parallel update: M2 = M2a + M2b + δ²·na·nb/n.

        A plain sum of squares loses the variance to cancellation when the mean is large
        against the spread (timestamps, ids, amounts around 1e8); deviations do not.
        """
        a, b = self.count, other.count
        both = (a > 0) & (b > 0)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            delta = np.divide(other.total, b, out=np.zeros(len(b)), where=b > 0)
            delta -= np.divide(self.total, a, out=np.zeros(len(a)), where=a > 0)
            # Only where both sides hold values: with one side empty the term is 0, and
            # computed, δ² of a mean past 1e154 overflows and inf·0 made the spread NaN.
            cross = np.divide(delta * delta * a * b, a + b, out=np.zeros(len(a)), where=both)
            self.deviations += other.deviations + cross
            self.total += other.total
        self.count += other.count

    def mean(self, f: int) -> float:
        return float(self.total[f] / self.count[f])

    def stddev(self, f: int) -> float:
        """Population standard deviation of field ``f`` (count must be > 0)."""
        return math.sqrt(max(float(self.deviations[f] / self.count[f]), 0.0))

    def add(self, other: Summary) -> None:
        """Merge ``other`` into this summary in place."""
        self.records += other.records
        self.labelled += other.labelled
        self.wrong += other.wrong
        self.latest = max(self.latest, other.latest)
        self.joined += other.joined
        self.delay_total += other.delay_total
        self.abs_error += other.abs_error
        self.sq_error += other.sq_error
        if other.records == 0:
            # A summary of no records (a chunk's parse errors, late labels) holds no value:
            # only its anomalies count.
            self.anomalies += other.anomalies
            return
        self._merge_moments(other)
        np.minimum(self.low, other.low, out=self.low)
        np.maximum(self.high, other.high, out=self.high)
        self.categories += other.categories
        self.anomalies += other.anomalies
        self.clamped += other.clamped
        if self.sketch is not None and other.sketch is not None:
            self.sketch.add(other.sketch)


def category_counts(codes: IntArray, shape: Shape) -> IntArray:
    """Counts per category code [C, V] of a [n, C] code matrix (-1, no value, not counted).

    Read field-major (``codes.T``: a view, contiguous for a decoded batch), and the rows
    without a value are only filtered out when there are some."""
    fields = codes.T
    offsets = np.arange(shape.categorical, dtype=np.int64)[:, None] * shape.categories
    placed = fields + offsets
    present = fields >= 0
    flat = np.bincount(
        placed.ravel() if present.all() else placed[present],
        minlength=shape.categorical * shape.categories,
    )
    return flat.reshape(shape.categorical, shape.categories)


def anomaly_counts(flags: npt.NDArray[np.int8], shape: Shape) -> IntArray:
    """Counts per anomaly field and kind [A, N_KINDS] of a [n, A'] flag matrix (A' ≤ A: the
    last row, the whole record's, is not in it). Only flagged cells are counted (OK is not):
    a flag is rare, and the matrix is n × A'. Read field-major, like ``category_counts``."""
    counts = np.zeros((shape.anomaly_fields, N_KINDS), dtype=np.int64)
    n, width = flags.shape
    cells = flags.T.ravel()  # a view when the batch is field-major, else one copy
    flagged = np.flatnonzero(cells != 0)  # a boolean mask: numpy scans it far faster
    if len(flagged):
        found = np.bincount(flagged // n * N_KINDS + cells[flagged], minlength=width * N_KINDS)
        counts[:width] = found.reshape(width, N_KINDS)
    return counts


def summarize(batch: Batch, rows: npt.NDArray[np.bool_] | None, shape: Shape) -> Summary:
    """Summarise the batch's records (all, or those selected by the ``rows`` mask)."""
    numeric = batch.numeric if rows is None else batch.numeric[rows]
    codes = batch.categorical if rows is None else batch.categorical[rows]
    flags = batch.flags if rows is None else batch.flags[rows]
    wrong = batch.wrong if rows is None else batch.wrong[rows]
    stamps = batch.timestamp if rows is None else batch.timestamp[rows]
    n = len(numeric)
    if n == 0:
        return Summary.empty(shape)

    # Field-major: every statistic below reduces along contiguous rows, which numpy does
    # several times faster than down the columns of a record-major matrix. A decoded batch
    # is stored field-major already (``Decoder._classify``), so this is a view, no copy.
    values = np.ascontiguousarray(numeric.T)
    missing = np.isnan(values)
    # Values near the float limit overflow the sums to inf: the collector then exports no
    # mean or stddev for that window (min, max and quantiles stay exact).
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if not missing.any():  # the usual batch: no masking at all
            valid = None
            count = np.full(shape.numeric, n, dtype=np.int64)
            total = values.sum(axis=1)
            centred = values - (total / n)[:, None]
            low = np.fmin.reduce(values, axis=1)
            high = np.fmax.reduce(values, axis=1)
        else:
            # Few values are missing (a malformed line or two): they are found once and
            # zeroed where they are, rather than masking the whole matrix at every step.
            valid = ~missing
            at = np.flatnonzero(missing.ravel())
            count = n - np.bincount(at // n, minlength=shape.numeric)
            zeroed = values.copy()
            zeroed.ravel()[at] = 0.0
            total = zeroed.sum(axis=1)
            means = np.where(count > 0, total / np.maximum(count, 1), 0.0)
            centred = np.subtract(zeroed, means[:, None], out=zeroed)
            centred.ravel()[at] = 0.0  # a missing value contributes no deviation
            empty = count == 0
            low = np.where(empty, np.inf, np.fmin.reduce(values, axis=1))  # fmin skips NaN
            high = np.where(empty, -np.inf, np.fmax.reduce(values, axis=1))
        deviations = np.einsum("ij,ij->i", centred, centred)
    sketch, clamped = shape.sketch.count_fields(values, valid)

    labelled = int(np.count_nonzero(wrong >= 0))
    summary = Summary(
        records=n,
        count=count,
        total=total,
        deviations=deviations,
        low=low,
        high=high,
        sketch=sketch,
        categories=(
            category_counts(codes, shape)
            if shape.categorical
            else np.zeros((0, shape.categories), dtype=np.int64)
        ),
        anomalies=anomaly_counts(flags, shape),
        labelled=labelled,
        wrong=int(np.count_nonzero(wrong == 1)) if labelled else 0,
        latest=_latest(stamps),
        clamped=clamped,
    )
    if batch.residual is not None:
        residual = batch.residual if rows is None else batch.residual[rows]
        residual = residual[~np.isnan(residual)]
        summary.labelled += len(residual)
        with np.errstate(over="ignore"):
            summary.abs_error = float(np.abs(residual).sum())
            summary.sq_error = float((residual * residual).sum())
    return summary


def _latest(stamps: FloatArray) -> float:
    """The largest timestamp, NaN (none) skipped; -inf when there is none."""
    if not len(stamps):
        return -math.inf
    top = float(stamps.max())
    if not math.isnan(top):  # no NaN: the maximum is the answer (one pass)
        return top
    return -math.inf if np.isnan(stamps).all() else float(np.nanmax(stamps))


class Ring:
    """A time-sliding window: ``buckets`` summaries of ``seconds / buckets`` each.

    A bucket is identified by its epoch number ⌊t / width⌋; a slot is reused (cleared) when a
    newer epoch lands on it, and at read time only epochs within the last ``buckets`` count.
    So an idle window empties itself without a timer, and the window spans between
    (buckets − 1) and buckets bucket widths of time.

    Each slot counts the additions it received (its revision), so a reader can tell whether
    the buckets a view covers changed since it last looked without merging them again.
    """

    def __init__(self, spec: WindowSpec, buckets: int, shape: Shape) -> None:
        self.spec = spec
        self.width = spec.seconds / buckets
        self._slots = [Summary.empty(shape) for _ in range(buckets)]
        self._epochs = [-1] * buckets
        self._revisions = [0] * buckets
        self._closed: tuple[tuple[int, ...], Summary] | None = None
        self._shape = shape

    def _epoch(self, now: float) -> int:
        return math.floor(now / self.width)

    def add(self, now: float, summary: Summary) -> None:
        epoch = self._epoch(now)
        slot = epoch % len(self._slots)
        if self._epochs[slot] != epoch:
            if self._epochs[slot] > epoch:
                return  # older than anything the window still holds
            self._slots[slot].clear()
            self._epochs[slot] = epoch
        self._slots[slot].add(summary)
        self._revisions[slot] += 1

    def view(self, now: float) -> Summary:
        """The merge of the buckets still inside the window at ``now``.

        The buckets other than the current one change only when the current bucket turns
        over (or a clock that stepped back adds to one), so their merge is kept between
        calls: a scrape merges two summaries instead of one per bucket.
        """
        epoch = self._epoch(now)
        current = epoch % len(self._slots)
        key = (epoch, *self._epochs, *self._revisions[:current], *self._revisions[current + 1 :])
        if self._closed is None or self._closed[0] != key:
            closed = Summary.empty(self._shape)
            for slot, (summary, slot_epoch) in enumerate(
                zip(self._slots, self._epochs, strict=True)
            ):
                if slot != current and epoch - len(self._slots) < slot_epoch <= epoch:
                    closed.add(summary)
            self._closed = (key, closed)
        merged = Summary.empty(self._shape)
        merged.add(self._closed[1])
        if self._epochs[current] == epoch:
            merged.add(self._slots[current])
        return merged

    def signature(self, now: float) -> tuple[tuple[int, int], ...]:
        """(epoch, revision) of each bucket ``view(now)`` would merge: equal signatures mean
        equal views, so whatever was derived from a view can be kept until this changes."""
        epoch = self._epoch(now)
        return tuple(
            sorted(
                (slot_epoch, revision)
                for slot_epoch, revision in zip(self._epochs, self._revisions, strict=True)
                if epoch - len(self._slots) < slot_epoch <= epoch
            )
        )
