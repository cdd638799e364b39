"""A mergeable quantile sketch with a relative-error guarantee (DDSketch-style log buckets).

Why this shape: a window is a ring of buckets, and a scrape merges the buckets of a window.
Count arrays over a fixed layout make "merge" a numpy sum and "insert a batch" a ``bincount``
per field, with memory bounded by the layout rather than by the event rate; each field's counts
are kept over the span of buckets its values reach (``BucketCounts``), not the whole layout.

Bucket keys are global: key ``k`` holds magnitudes in (γ^(k−1), γ^k], whatever the field, so any
two sketches of the same accuracy agree on where a value falls. A dense array over every key a
double can reach (≈ 71 000 per sign at 1 %) would cost over a megabyte per field and window
bucket, so each field keeps a *window* of ``SPAN`` consecutive keys per sign (18 decades at 1 %),
placed where its values are: the window is anchored, once, on the median magnitude of the first
non-zero values the field sees (or on the reference profile's values). So epoch-sized numbers
(1.7e9), amounts in micro-units (1e13) and tiny probabilities (1e-12) all keep the bound, and the
memory is what the fixed 1e-9..1e9 window used to cost.

Guarantee: for a value whose magnitude lies inside its field's window, a quantile estimate ``x̂``
of the true order statistic ``x`` satisfies ``|x̂ - x| <= relative_accuracy * |x|``; exact zeros
have a bucket of their own. A non-zero value outside the window (more than ~9 decades from the
anchor) is clamped into the window's end bucket and *counted* (``clamped``): the bound does not
hold for it, the window min/max still show it exactly.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_LARGEST = float(np.finfo(np.float64).max)
_SMALLEST = 5e-324  # the smallest positive (subnormal) double
SPAN_DECADES = 18.0  # magnitudes one field's sketch resolves: anchor / 1e9 .. anchor * 1e9


def _log_gamma(relative_accuracy: float) -> float:
    if not 0 < relative_accuracy < 1:
        raise ValueError("relative_accuracy must be in (0, 1)")
    return math.log((1 + relative_accuracy) / (1 - relative_accuracy))


def keys(values: FloatArray, log_gamma: float) -> IntArray:
    """Global bucket key of each non-zero magnitude (0 for zeros; callers mask them)."""
    magnitude = np.abs(values)
    magnitude[~(magnitude > 0)] = 1.0  # zeros (and NaN) to key 0; in place: batches are big
    np.log(magnitude, out=magnitude)
    magnitude /= log_gamma
    np.ceil(magnitude, out=magnitude)
    return magnitude.astype(np.int64)


@dataclass(frozen=True)
class SketchLayout:
    """The bucket layout of one field, shared by every sketch of that field so any two add up.

    ``offset`` is the key of the lowest bucket of each sign; None centres the window on 1
    (1e-9 .. 1e9), the layout of a field that has not seen a non-zero value yet.
    """

    relative_accuracy: float = 0.01
    offset: int | None = None
    log_gamma: float = field(init=False)
    per_sign: int = field(init=False)
    k_min: int = field(init=False)

    def __post_init__(self) -> None:
        log_gamma = _log_gamma(self.relative_accuracy)
        per_sign = math.ceil(SPAN_DECADES * math.log(10) / log_gamma) + 1
        k_min = -(per_sign // 2) if self.offset is None else self.offset
        object.__setattr__(self, "log_gamma", log_gamma)
        object.__setattr__(self, "per_sign", per_sign)
        object.__setattr__(self, "k_min", k_min)

    @property
    def size(self) -> int:
        """Buckets: negatives (mirrored), one zero bucket, positives."""
        return 2 * self.per_sign + 1

    @property
    def zero_index(self) -> int:
        return self.per_sign

    def anchored_on(self, values: FloatArray) -> SketchLayout:
        """This layout with its window centred on the median magnitude of the non-zero finite
        ``values``; itself when already anchored or when there is no such value."""
        if self.offset is not None:
            return self
        magnitude = np.abs(values[np.isfinite(values)])
        magnitude = magnitude[magnitude > 0]
        if magnitude.size == 0:
            return self
        median = np.quantile(magnitude, 0.5, method="lower")  # a sample value: no overflow
        centre = int(keys(np.asarray([median]), self.log_gamma)[0])
        # Kept inside what a double can hold, so no bucket lies beyond the largest float.
        top = int(keys(np.asarray([_LARGEST]), self.log_gamma)[0])
        bottom = int(keys(np.asarray([_SMALLEST]), self.log_gamma)[0])
        offset = min(max(centre - self.per_sign // 2, bottom), top - self.per_sign + 1)
        return SketchLayout(self.relative_accuracy, offset)

    def _offsets(self, values: FloatArray) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        """Offset of each value inside its sign's window (clipped), and which were clipped."""
        raw = keys(values, self.log_gamma) - self.k_min
        outside = (values != 0) & ((raw < 0) | (raw >= self.per_sign))
        return np.clip(raw, 0, self.per_sign - 1), outside

    def index(self, values: FloatArray) -> IntArray:
        """Bucket of each value; non-zero magnitudes outside the window land in its end bucket."""
        offset, _ = self._offsets(values)
        idx = np.where(values > 0, self.zero_index + 1 + offset, self.zero_index - 1 - offset)
        return np.where(values == 0, self.zero_index, idx).astype(np.int64)

    def clamped(self, values: FloatArray) -> int:
        """How many of ``values`` lie outside the window (their bucket is not within bound)."""
        return int(np.count_nonzero(self._offsets(values)[1]))

    def bucket_values(self) -> FloatArray:
        """The estimate reported for each bucket: 2γ^k/(γ+1), within the relative error of any
        magnitude in (γ^(k-1), γ^k]. Read-only, and made once per layout: every quantile of
        every window at every scrape reads it."""
        return _bucket_values(self)

    def counts(self, values: FloatArray) -> IntArray:
        """A sketch (bucket counts) of finite ``values``."""
        return np.bincount(self.index(values), minlength=self.size).astype(np.int64)


@functools.lru_cache(maxsize=1024)
def _bucket_values(layout: SketchLayout) -> FloatArray:
    k = np.arange(layout.per_sign, dtype=np.float64) + layout.k_min
    gamma = math.exp(layout.log_gamma)
    with np.errstate(over="ignore"):  # the top bucket may reach past the largest double
        positive = np.exp(k * layout.log_gamma + math.log(2.0 / (gamma + 1.0)))
    positive = np.minimum(positive, _LARGEST)  # still closer to any value it holds
    values = np.concatenate([-positive[::-1], [0.0], positive])
    values.flags.writeable = False
    return values


@dataclass(frozen=True)
class Sketches:
    """The layouts of every numeric field of a pipeline: one accuracy and one size (so a
    summary's sketches are one [F, S] array), each field with its own window."""

    relative_accuracy: float
    fields: tuple[SketchLayout, ...]

    @classmethod
    def unanchored(cls, n_fields: int, relative_accuracy: float = 0.01) -> Sketches:
        layout = SketchLayout(relative_accuracy)
        return cls(relative_accuracy, (layout,) * n_fields)

    @property
    def size(self) -> int:
        return SketchLayout(self.relative_accuracy).size

    def __getitem__(self, f: int) -> SketchLayout:
        return self.fields[f]

    def __len__(self) -> int:
        return len(self.fields)

    def anchored_on(self, columns: Sequence[FloatArray]) -> Sketches:
        """Anchor every field not anchored yet on its column's values (itself if none changes).

        Anchors never move once set: the arrays already hold counts in that window."""
        layouts = tuple(
            layout.anchored_on(column) for layout, column in zip(self.fields, columns, strict=True)
        )
        return self if layouts == self.fields else Sketches(self.relative_accuracy, layouts)

    def counts(self, values: FloatArray) -> tuple[BucketCounts, IntArray]:
        """Sketches of the columns of ``values`` [n, F] (NaN = no value), and the number of
        clamped values per field."""
        fields_first = np.ascontiguousarray(values.T)
        return self.count_fields(fields_first, ~np.isnan(fields_first))

    def count_fields(
        self, values: FloatArray, valid: npt.NDArray[np.bool_] | None
    ) -> tuple[BucketCounts, IntArray]:
        """``counts`` of field-major ``values`` [F, n] whose ``valid`` mask is known (None:
        every value is valid).

        The bucket of every value is worked out for all fields at once, in floating point
        (the key is the same ``ceil(log|x| / log γ)`` as ``keys``, and the offsets are small
        integers, exact in a double), and all fields are counted by one ``bincount`` over
        the spans their values reach, laid end to end: a batch is a few thousand rows, and
        per-field calls cost more than the counting. The usual batch — every value positive
        and inside its field's window — skips the signs, the zero bucket and the clamping."""
        n_fields, size = len(self.fields), self.size
        result = BucketCounts(n_fields, size)
        if n_fields == 0 or values.shape[1] == 0:
            return result, np.zeros(n_fields, dtype=np.int64)
        per_sign = size // 2
        below = self._below
        with np.errstate(divide="ignore", invalid="ignore"):
            positive = not (values <= 0).any()  # NaN (no value) compares False
            key = np.log(values) if positive else np.log(np.abs(values))  # log 0 = -inf
            key /= self.fields[0].log_gamma
            np.ceil(key, out=key)
            if positive:
                first, last = np.fmin.reduce(key, axis=1), np.fmax.reduce(key, axis=1)
                # bucket = zero_index + 1 + (key − k_min) = key + per_sign − below
                to_bucket = per_sign - below[:, 0]
                # every value in its field's window (a field without a value: NaN, skipped)
                inside = (first + to_bucket > per_sign) & (last + to_bucket <= 2 * per_sign)
                if inside[~np.isnan(first)].all():
                    counts = _tally(result, key, valid, first.tolist(), last.tolist(), to_bucket)
                    return counts, np.zeros(n_fields, dtype=np.int64)
            key -= below  # 1 + the offset in the sign's window
            outside = key < 1
            outside |= key > per_sign
            np.clip(key, 1, per_sign, out=key)
            np.copysign(key, values, out=key)  # negatives count down from the zero bucket
            zero = values == 0  # -0.0 too
            if zero.any():
                key[zero] = 0
                outside &= ~zero
            first = np.fmin.reduce(key, axis=1)  # NaN (no value) is skipped
            last = np.fmax.reduce(key, axis=1)
        clamped = np.count_nonzero(outside, axis=1).astype(np.int64)
        to_bucket = np.full(n_fields, float(per_sign))
        return _tally(result, key, valid, first.tolist(), last.tolist(), to_bucket), clamped

    @functools.cached_property
    def _below(self) -> FloatArray:
        """[F, 1]: each field's lowest key, less one."""
        return np.array([[layout.k_min - 1] for layout in self.fields], dtype=np.float64)


def _tally(
    result: BucketCounts,
    key: FloatArray,
    valid: npt.NDArray[np.bool_] | None,
    first: list[float],
    last: list[float],
    to_bucket: FloatArray,
) -> BucketCounts:
    """Count ``key`` [F, n] into ``result``: whole numbers, field ``f``'s bucket is
    ``key + to_bucket[f]``; ``first``/``last`` are each field's extremes (NaN for a field
    without a value). The fields' spans are laid end to end and counted by one
    ``bincount``. ``key`` is spent."""
    n_fields = len(first)
    shift = np.zeros((n_fields, 1))
    spans = []
    end = 0
    for f in range(n_fields):
        low = first[f]
        if not math.isnan(low):  # the field has values
            width = int(last[f] - low) + 1
            shift[f, 0] = end - low
            spans.append((f, int(low + to_bucket[f]), end, end + width))
            end += width
    key += shift
    with np.errstate(invalid="ignore"):
        index = key.astype(np.int64)  # NaN casts to garbage: no value, not counted below
    if valid is not None:
        np.copyto(index, end, where=~valid)  # one bin past the spans for no value
    flat = np.bincount(index.ravel(), minlength=end + 1)
    for f, start, low_bin, high_bin in spans:
        result.starts[f] = start
        result.counts[f] = flat[low_bin:high_bin].copy()
    return result


class BucketCounts:
    """The sketches of every numeric field of one summary (``Sketches.size`` buckets each),
    each field's counts kept only over the span of buckets that hold some.

    Why spans: a dense sketch is 2 × ~2,000 counters per field at 1%, so every window bucket
    of every model version held ~200 KB for six fields, resident once touched (14 MiB for two
    model versions with three windows of 12 buckets), while a field's values sit in a few
    decades (a few hundred buckets). Adding grows a span to the union; reading a field gives
    the dense array the quantile, CDF and bin functions take.
    """

    __slots__ = ("counts", "size", "starts")

    def __init__(self, fields: int, size: int) -> None:
        self.size = size
        self.starts = [0] * fields  # bucket index of each field's first count
        self.counts: list[IntArray | None] = [None] * fields  # None: nothing counted

    def __len__(self) -> int:
        return len(self.counts)

    def span(self, f: int) -> tuple[int, IntArray]:
        """(first bucket, counts from there) of field ``f``; an empty array when it has none."""
        counts = self.counts[f]
        if counts is None:
            return 0, np.zeros(0, dtype=np.int64)
        return self.starts[f], counts

    def __getitem__(self, f: int) -> IntArray:
        """Field ``f``'s counts over every bucket (a new array)."""
        dense = np.zeros(self.size, dtype=np.int64)
        start, counts = self.span(f)
        dense[start : start + len(counts)] = counts
        return dense

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> IntArray:
        """Every field's counts over every bucket, [F, S] (so ``np.asarray`` reads it)."""
        dense = np.zeros((len(self.counts), self.size), dtype=np.int64)
        for f in range(len(self.counts)):
            start, counts = self.span(f)
            dense[f, start : start + len(counts)] = counts
        return dense if dtype is None else np.asarray(dense, dtype=dtype)

    def add(self, other: BucketCounts) -> None:
        """Add ``other``'s counts (same layout) in place."""
        for f, theirs in enumerate(other.counts):
            if theirs is None:
                continue
            start = other.starts[f]
            mine = self.counts[f]
            if mine is None:
                self.counts[f], self.starts[f] = theirs.copy(), start
                continue
            low, high = self.starts[f], self.starts[f] + len(mine)
            if low <= start and start + len(theirs) <= high:
                mine[start - low : start - low + len(theirs)] += theirs
                continue
            first, last = min(low, start), max(high, start + len(theirs))
            grown = np.zeros(last - first, dtype=np.int64)
            grown[low - first : high - first] = mine
            grown[start - first : start - first + len(theirs)] += theirs
            self.counts[f], self.starts[f] = grown, first

    def clear(self) -> None:
        self.counts = [None] * len(self.counts)
        self.starts = [0] * len(self.starts)

    def copy(self) -> BucketCounts:
        result = BucketCounts(len(self.counts), self.size)
        result.starts = list(self.starts)
        result.counts = [None if c is None else c.copy() for c in self.counts]
        return result


def quantiles(
    layout: SketchLayout, counts: npt.NDArray[np.integer], qs: Sequence[float], start: int = 0
) -> FloatArray:
    """Estimate quantiles from bucket counts (from bucket ``start`` on, as ``BucketCounts.span``
    gives them); NaN where the sketch is empty.

    Rank convention: the q-quantile is the order statistic at rank ⌊q·(n−1)⌋ (numpy's
    ``method="lower"``), the sample value the error bound is stated against.
    """
    total = int(counts.sum())
    if total == 0:
        return np.full(len(qs), np.nan)
    cumulative = np.cumsum(counts)
    ranks = np.floor(np.asarray(qs, dtype=np.float64) * (total - 1))
    positions = np.searchsorted(cumulative, ranks, side="right")
    return layout.bucket_values()[start + positions]


def cdf(layout: SketchLayout, counts: npt.NDArray[np.integer], points: FloatArray) -> FloatArray:
    """Share of values ≤ each point (to bucket resolution); NaN where the sketch is empty."""
    total = int(counts.sum())
    if total == 0:
        return np.full(len(points), np.nan)
    cumulative = np.cumsum(counts)
    return cumulative[layout.index(np.asarray(points, dtype=np.float64))] / total


def binned_counts(
    layout: SketchLayout, counts: npt.NDArray[np.integer], edges: list[float]
) -> FloatArray:
    """Counts per bin (underflow, …, overflow) from sketch bucket counts.

    A bin starts at the bucket holding its edge value, so bins are unions of whole buckets:
    the same for the reference and for every live window.
    """
    starts = layout.index(np.asarray(edges, dtype=np.float64))
    cumulative = np.concatenate([[0], np.cumsum(counts)])
    bounds = np.concatenate([[0], starts, [len(counts)]])
    result: FloatArray = np.diff(cumulative[bounds]).astype(np.float64)
    return result
