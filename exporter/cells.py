"""The reference's cells as counts: what PSI and JS compare, for Prometheus to add up.

A drift statistic cannot be added across replicas, but the counts it is computed from can. A
cell is one bin of a numeric field's profile, or one kept category (plus one "other" cell) of a
categorical field, after the cells development never filled are pooled into their neighbour
(``stats.pooling``) — exactly the vector ``compare`` hands to PSI and JS. Each sidecar counts its
records per cell since the profile was loaded; Prometheus sums the counters of every replica
with the same profile and computes the fleet's PSI and JS with the same smoothing and the same
sample-size threshold (docs/drift.md, "The fleet"). The store counts; the threshold's parts that
need the statistics (the χ² factor at α/d, the floor, the minimum) are ``compare``'s.

The confidence field's cells also carry the profile's calibration table: the development error
ratio of each cell, from which a window's confidence distribution implies an error ratio before
its labels arrive (confidence-based performance estimation).

Pure: a profile, the column layout and the sketch layouts in; cell vectors out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from exporter.batch import OTHER, Layout
from exporter.reference import Calibration, Reference
from exporter.stats.pooling import pooled_cells
from exporter.stats.sketch import BucketCounts, Sketches, SketchLayout
from exporter.stats.window import Summary

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class FieldCells:
    """One field's cells: their reference shares and how live values fall into them."""

    name: str
    statistic: str  # "psi" for a numeric field, "js" for a categorical one
    column: int  # the field's numeric or categorical column
    shares: FloatArray  # [B] reference share of each cell, every one > 0
    reference_count: int  # m: the development values the shares were measured on
    # numeric: the first sketch bucket of each cell (0 for the first) and its [lower, upper)
    # between the profile's edges, ±inf at the ends (to the sketch's bucket resolution)
    starts: IntArray
    bounds: tuple[tuple[float, float], ...]
    # categorical: kept value → cell; every other value counts in ``other``. ``values`` names
    # each cell by the category it starts with.
    categories: dict[str, int]
    other: int
    values: tuple[str, ...]
    cell_of_bin: IntArray  # the cell of each profile bin (numeric) or aligned category
    # numeric: ``starts`` and the sketch's size after them, each cell's buckets [edges[k],
    # edges[k + 1]); categorical: empty
    edges: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def size(self) -> int:
        return len(self.shares)


@dataclass(frozen=True)
class ReferenceCells:
    """Every field's cells for one profile (``hash``), and the calibration of its confidence."""

    hash: str
    fields: tuple[FieldCells, ...]
    # Development error ratio per cell of the confidence field (``confidence`` names the field).
    error_ratios: FloatArray | None = None
    confidence: int | None = None  # index into ``fields``
    # (column, names, last name) → (codes, cells) of a categorical column (``count``)
    _cache: dict[tuple[int, int, str | None], tuple[IntArray, IntArray]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def build(cls, reference: Reference, layout: Layout, sketch: Sketches) -> ReferenceCells:
        numeric = [
            (f, spec.name)
            for f, spec in enumerate(layout.numeric)
            if spec.name in reference.numeric
        ]
        categorical = [
            (c, spec.name)
            for c, spec in enumerate(layout.categorical)
            if spec.name in reference.categorical
        ]
        fields = [_numeric(reference, f, name, sketch[f]) for f, name in numeric]
        fields += [_categorical(reference, c, name) for c, name in categorical]
        # A field whose shares were measured on nothing can have no verdict (as in compare).
        kept = tuple(f for f in fields if f.reference_count > 0 and f.shares.sum() > 0)
        cells = cls(reference.hash, kept)
        if reference.calibration is not None:
            return cells.with_calibration(reference.calibration)
        return cells

    def with_calibration(self, calibration: Calibration) -> ReferenceCells:
        """Each confidence cell's development error ratio, shrunk towards the overall one by
        one record's weight: a cell with few labels borrows from the rest, one without labels
        (never in a built profile, possible in a sparse one) takes the overall ratio."""
        index = next((i for i, f in enumerate(self.fields) if f.name == calibration.field), None)
        labelled = np.asarray(calibration.labelled, dtype=np.float64)
        if index is None or labelled.sum() == 0:
            return self
        wrong = np.asarray(calibration.wrong, dtype=np.float64)
        overall = wrong.sum() / labelled.sum()
        cell = self.fields[index].cell_of_bin
        pooled_labelled = np.bincount(cell, weights=labelled, minlength=self.fields[index].size)
        pooled_wrong = np.bincount(cell, weights=wrong, minlength=self.fields[index].size)
        ratios = (pooled_wrong + overall) / (pooled_labelled + 1.0)
        return ReferenceCells(self.hash, self.fields, ratios, index)

    def count(self, summary: Summary, names: list[list[tuple[int, str]]]) -> list[IntArray]:
        """Records per cell of each field in ``summary`` (its sketch and category counts);
        ``names`` are the (code, value) pairs of each categorical column."""
        result = []
        for cells in self.fields:
            if cells.statistic == "psi":
                result.append(_cells_of(summary.sketch, cells))
            else:
                codes, cell = self._category_cells(cells, names[cells.column])
                live = summary.categories[cells.column][codes]
                counted = np.bincount(cell, weights=live, minlength=cells.size)
                result.append(counted.astype(np.int64))  # counts: exact in a double
        return result

    def _category_cells(
        self, cells: FieldCells, names: list[tuple[int, str]]
    ) -> tuple[IntArray, IntArray]:
        """The codes of a column's names and the cell each one counts in, made once per
        length of the names: they are a prefix of an append-only vocabulary, and its last
        name (before ``__other__``) tells two prefixes of one length apart."""
        key = (cells.column, len(names), names[-2][1] if len(names) > 1 else None)
        found = self._cache.get(key)
        if found is None:
            codes = np.array([code for code, _ in names], dtype=np.int64)
            cell = [cells.categories.get(value, cells.other) for _, value in names]
            found = self._cache[key] = (codes, np.array(cell, dtype=np.int64))
        return found

    def estimated_error_ratio(self, summary: Summary) -> float | None:
        """The error ratio the window's confidence distribution implies under the development
        calibration: Σ n_c · e_c / Σ n_c over the confidence cells. None without a calibration
        or without a confidence value in the window."""
        if self.error_ratios is None or self.confidence is None or summary.sketch is None:
            return None
        field = self.fields[self.confidence]
        counts = _cells_of(summary.sketch, field)
        n = int(counts.sum())
        return float(counts @ self.error_ratios / n) if n else None


def _cells_of(sketch: BucketCounts | None, cells: FieldCells) -> IntArray:
    """A numeric field's sketch counts summed per cell, read from the span of buckets the
    sketch holds (no dense array per field and batch)."""
    if sketch is None:
        return np.zeros(cells.size, dtype=np.int64)
    start, counts = sketch.span(cells.column)
    cumulative = np.empty(len(counts) + 1, dtype=np.int64)
    cumulative[0] = 0
    counts.cumsum(out=cumulative[1:])
    at = np.maximum(cells.edges - start, 0)
    picked = cumulative[np.minimum(at, len(counts), out=at)]
    result: IntArray = picked[1:] - picked[:-1]
    return result


def _numeric(reference: Reference, column: int, name: str, layout: SketchLayout) -> FieldCells:
    ref = reference.numeric[name]
    shares = np.asarray(ref.bin_shares, dtype=np.float64)
    cell = pooled_cells(shares)
    size = int(cell.max()) + 1
    # Bin j (j ≥ 1) starts at the sketch bucket of edge j−1, as in sketch.binned_counts.
    bin_starts = np.concatenate([[0], layout.index(np.asarray(ref.bin_edges, dtype=np.float64))])
    first_bin = np.searchsorted(cell, np.arange(size), side="left")  # the first bin of each cell
    starts = bin_starts[first_bin].astype(np.int64)
    starts[0] = 0  # leading bins without support pool into the first cell
    edges = [-math.inf, *ref.bin_edges, math.inf]  # bin j is [edges[j], edges[j + 1])
    last_bin = np.searchsorted(cell, np.arange(size), side="right")  # one past each cell's last
    bounds = tuple(
        (edges[int(a)] if k else -math.inf, edges[int(b)])
        for k, (a, b) in enumerate(zip(first_bin, last_bin, strict=True))
    )
    pooled = np.bincount(cell, weights=shares, minlength=size).astype(np.float64)
    return FieldCells(
        name=name,
        statistic="psi",
        column=column,
        shares=pooled,
        reference_count=ref.count,
        starts=starts,
        bounds=bounds,
        categories={},
        other=-1,
        values=(),
        cell_of_bin=cell,
        edges=np.append(starts, layout.size),
    )


def _categorical(reference: Reference, column: int, name: str) -> FieldCells:
    """Cells as ``compare.align`` lines the categories up: the kept values in the profile's
    order, then one "other" cell; then pooled like every other cell vector."""
    ref = reference.categorical[name]
    known = [value for value in ref.shares if value != OTHER]
    aligned = np.array([*(ref.shares[v] for v in known), ref.shares.get(OTHER, 0.0)])
    cell = pooled_cells(aligned)
    size = int(cell.max()) + 1
    labels = [*known, OTHER]
    first = np.searchsorted(cell, np.arange(size), side="left")
    return FieldCells(
        name=name,
        statistic="js",
        column=column,
        shares=np.bincount(cell, weights=aligned, minlength=size).astype(np.float64),
        reference_count=ref.share_count,
        starts=np.zeros(0, dtype=np.int64),
        bounds=(),
        categories={value: int(cell[i]) for i, value in enumerate(known)},
        other=int(cell[-1]),
        values=tuple(labels[int(i)] for i in first),
        cell_of_bin=cell,
    )
