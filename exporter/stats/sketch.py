"""A mergeable quantile sketch with a relative-error guarantee (DDSketch-style log buckets).

Why this shape: a window is a ring of buckets, and a scrape merges the buckets of a window.
Dense, fixed-layout count arrays make "merge" a plain numpy sum and "insert a batch" one
``np.bincount``, with memory fixed by the layout rather than by the event rate.

Guarantee: for values whose magnitude lies in ``[min_value, max_value]``, a quantile estimate
``x̂`` of the true order statistic ``x`` satisfies ``|x̂ - x| <= relative_accuracy * |x|``.
Magnitudes below ``min_value`` are stored as 0; above ``max_value`` they are clamped into the
last bucket (the bound does not hold for them; the window min/max still show them exactly).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SketchLayout:
    """The bucket layout shared by every sketch of a field, so any two can be added."""

    relative_accuracy: float = 0.01
    min_value: float = 1e-9
    max_value: float = 1e9
    log_gamma: float = field(init=False)
    k_min: int = field(init=False)
    per_sign: int = field(init=False)

    def __post_init__(self) -> None:
        if not 0 < self.relative_accuracy < 1:
            raise ValueError("relative_accuracy must be in (0, 1)")
        gamma = (1 + self.relative_accuracy) / (1 - self.relative_accuracy)
        log_gamma = math.log(gamma)
        k_min = math.floor(math.log(self.min_value) / log_gamma)
        k_max = math.ceil(math.log(self.max_value) / log_gamma)
        object.__setattr__(self, "log_gamma", log_gamma)
        object.__setattr__(self, "k_min", k_min)
        object.__setattr__(self, "per_sign", k_max - k_min + 1)

    @property
    def size(self) -> int:
        """Buckets: negatives (mirrored), one zero bucket, positives."""
        return 2 * self.per_sign + 1

    @property
    def zero_index(self) -> int:
        return self.per_sign

    def index(self, values: FloatArray) -> IntArray:
        """Bucket of each value. Bucket k of a sign holds magnitudes in (γ^(k-1), γ^k]."""
        magnitude = np.abs(values)
        small = magnitude < self.min_value
        with np.errstate(divide="ignore"):
            k = np.ceil(np.log(np.where(small, 1.0, magnitude)) / self.log_gamma)
        offset = np.clip(k.astype(np.int64) - self.k_min, 0, self.per_sign - 1)
        idx = np.where(values > 0, self.zero_index + 1 + offset, self.zero_index - 1 - offset)
        return np.where(small, self.zero_index, idx).astype(np.int64)

    def bucket_values(self) -> FloatArray:
        """The estimate reported for each bucket: 2γ^k/(γ+1), within the relative error of any
        magnitude in (γ^(k-1), γ^k]."""
        k = np.arange(self.per_sign, dtype=np.float64) + self.k_min
        gamma = math.exp(self.log_gamma)
        positive = 2.0 * np.exp(k * self.log_gamma) / (gamma + 1.0)
        return np.concatenate([-positive[::-1], [0.0], positive])

    def counts(self, values: FloatArray) -> IntArray:
        """A sketch (bucket counts) of finite ``values``."""
        return np.bincount(self.index(values), minlength=self.size).astype(np.int64)

    def counts_per_row(self, index: IntArray, row: IntArray, rows: int) -> IntArray:
        """Sketches of several fields at once: ``index[i]`` lands in the sketch ``row[i]``."""
        flat = np.bincount(row * self.size + index, minlength=rows * self.size)
        return flat.reshape(rows, self.size).astype(np.int64)


def quantiles(
    layout: SketchLayout, counts: npt.NDArray[np.integer], qs: Sequence[float]
) -> FloatArray:
    """Estimate quantiles from bucket counts; NaN where the sketch is empty.

    Rank convention: the q-quantile is the order statistic at rank ⌊q·(n−1)⌋ (numpy's
    ``method="lower"``), the sample value the error bound is stated against.
    """
    total = int(counts.sum())
    if total == 0:
        return np.full(len(qs), np.nan)
    cumulative = np.cumsum(counts)
    ranks = np.floor(np.asarray(qs, dtype=np.float64) * (total - 1))
    positions = np.searchsorted(cumulative, ranks, side="right")
    return layout.bucket_values()[positions]


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
