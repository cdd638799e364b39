"""Building a reference profile from a ``Summary`` of development records (pure).

Used offline by ``baseline`` (a development log) and live when ``freeze_first`` turns the first
production records into the reference. Why everything goes through the sketch: the live side
only has sketches (exact values are never kept), so the reference's bins and CDF are computed
from a sketch of the development data with the same functions. Both sides then make the same
bucket-resolution approximation, which cancels when the distributions are equal — the case a
drift test must not alarm on.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from exporter.batch import OTHER, Layout
from exporter.reference import (
    VOCABULARY_CAP,
    Calibration,
    CategoricalReference,
    NumericReference,
    Reference,
)
from exporter.stats.sketch import Sketches, SketchLayout, binned_counts, cdf, quantiles
from exporter.stats.window import Summary
from exporter.validate import number_label

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

BINS = 10  # equal-frequency bins of a continuous field; a point mass takes ≥ 1/BINS of the data
CDF_PROBS = tuple(i / 100 for i in range(1, 100))  # percentiles for the KS statistic
# A category is kept (a cell of its own) when the selection half holds it this often: fewer, and
# its held-out share is mostly noise (Cochran's 5 expected per cell for the χ² approximation).
MIN_CATEGORY_COUNT = 5
CALIBRATED = "confidence"  # the field whose bins the calibration table uses


def calibration_counts(
    sketch: SketchLayout, confidence: FloatArray, wrong: npt.NDArray[np.integer]
) -> IntArray:
    """[2, S]: sketches of the confidence of labelled records and of wrong ones (``wrong`` is
    -1 unlabelled, 0 right, 1 wrong). Summed over a development log, ``build`` bins them into
    the calibration table."""
    labelled = (wrong >= 0) & ~np.isnan(confidence)
    return np.stack(
        [sketch.counts(confidence[labelled]), sketch.counts(confidence[labelled & (wrong == 1)])]
    )


def bin_starts(counts: npt.NDArray[np.integer], bins: int = BINS) -> list[int]:
    """Sketch buckets where the profile's bins start, the last one just past the highest value.

    A bucket holding at least 1/``bins`` of the values is a point mass and a bin of its own (the
    zeros of a zero-inflated count, each level of a flag or a small integer): equal-frequency
    edges would otherwise collapse onto it and leave one bin. The remaining mass gets
    equal-frequency bins of its own, ⌈bins · its share⌉ of them, so every bin holds about
    1/``bins`` or less. A bin starts at its first filled bucket (empty buckets join the bin on
    their left), so the profile has more than one bin whenever the values fill more than one
    bucket.
    """
    filled = np.flatnonzero(counts)
    n = int(counts.sum())
    low, high = int(filled[0]), int(filled[-1])
    heavy = filled[counts[filled] * bins >= n]
    starts = {low, high + 1}
    starts.update(int(b) for b in heavy)
    starts.update(int(b) + 1 for b in heavy)
    rest = np.array(counts, dtype=np.int64)
    rest[heavy] = 0
    remaining = int(rest.sum())
    if remaining:
        k = math.ceil(bins * remaining / n)
        ranks = np.floor(np.arange(1, k) / k * (remaining - 1))
        starts.update(int(b) for b in np.searchsorted(np.cumsum(rest), ranks, side="right"))
    # Each bin starts at its first filled bucket, so every edge is a development value (to the
    # sketch's accuracy) and no bin is empty; the last start is the bucket past the highest.
    ordered = sorted(s for s in starts if low <= s <= high)
    first_filled = sorted({int(filled[np.searchsorted(filled, s)]) for s in ordered})
    return [*first_filled, *([high + 1] if high + 1 < len(counts) else [])]


def _numeric(
    sketch: SketchLayout, summary: Summary, f: int, qs: tuple[float, ...]
) -> NumericReference | None:
    n = int(summary.count[f])
    if n == 0 or summary.sketch is None:
        return None
    counts = summary.sketch[f]
    edges = [float(v) for v in sketch.bucket_values()[bin_starts(counts)]]
    shares = binned_counts(sketch, counts, edges) / n
    points = sorted({float(v) for v in quantiles(sketch, counts, CDF_PROBS)})
    return NumericReference(
        count=n,
        missing=int(summary.records - n),
        mean=summary.mean(f),
        stddev=summary.stddev(f),
        min=float(summary.low[f]),
        max=float(summary.high[f]),
        quantiles={
            number_label(q): float(v)
            for q, v in zip(qs, quantiles(sketch, counts, qs), strict=True)
        },
        bin_edges=edges,
        bin_shares=[float(s) for s in shares],
        cdf_points=points,
        cdf_values=[float(v) for v in cdf(sketch, counts, np.asarray(points))],
    )


def _categorical(
    counts: npt.NDArray[np.integer],
    held_out: npt.NDArray[np.integer] | None,
    names: list[tuple[int, str]],
    top: int,
    records: int,
) -> CategoricalReference | None:
    """Keep the categories frequent in the selection half (all records but the held-out ones)
    and measure every share on the held-out half: choosing the top categories from the very
    counts their shares come from over-states them (the winner's curse), and with a small
    reference that alone made JS flag calm windows several times too often."""
    n = int(counts.sum())
    if n == 0:
        return None
    selection = counts if held_out is None else counts - held_out
    ranked = sorted(
        ((int(selection[code]), code, value) for code, value in names if value != OTHER),
        reverse=True,
    )
    kept = [(code, value) for count, code, value in ranked[:top] if count >= MIN_CATEGORY_COUNT]
    # When nothing was left out, nothing was chosen: every record can measure the shares.
    chose = sum(int(counts[code]) for code, _ in kept) < n
    measured = held_out if held_out is not None and chose else counts
    share_count = int(measured.sum())
    shares: dict[str, float] = {}
    if share_count:
        shares = {value: int(measured[code]) / share_count for code, value in kept}
        other = share_count - sum(int(measured[code]) for code, _ in kept)
        if other:
            shares[OTHER] = other / share_count
    seen = [value for code, value in names if value != OTHER and counts[code] > 0]
    folded_unknown = any(value == OTHER and counts[code] > 0 for code, value in names)
    complete = not folded_unknown and len(seen) <= VOCABULARY_CAP
    return CategoricalReference(
        count=n,
        missing=records - n,
        shares=shares,
        share_count=share_count,
        vocabulary=sorted(seen) if complete else None,
    )


def build(
    summary: Summary,
    layout: Layout,
    categories: list[list[tuple[int, str]]],
    sketch: Sketches,
    qs: tuple[float, ...],
    created: str,
    source: dict[str, Any] | None = None,
    regression: bool = False,
    held_out: npt.NDArray[np.integer] | None = None,
    calibration: npt.NDArray[np.integer] | None = None,
) -> Reference:
    """A profile from the summary of every development record (one pass, bounded memory).

    ``held_out`` [C, V] are the category counts of a random half of the records (see
    ``_categorical``); without it the shares come from the same counts as the choice.
    ``calibration`` [2, S] are ``calibration_counts`` summed over the records: with labels and
    a confidence field, they become the profile's calibration table (classification only).
    """
    numeric = {}
    for f, spec in enumerate(layout.numeric):
        ref = _numeric(sketch[f], summary, f, qs)
        if ref is not None:
            numeric[spec.name] = ref
    categorical = {}
    for c, spec in enumerate(layout.categorical):
        cat = _categorical(
            summary.categories[c],
            None if held_out is None else held_out[c],
            categories[c],
            spec.max_categories,
            summary.records,
        )
        if cat is not None:
            categorical[spec.name] = cat
    reference = Reference(
        created=created,
        records=summary.records,
        numeric=numeric,
        categorical=categorical,
        labelled=summary.labelled,
        error_ratio=summary.wrong / summary.labelled
        if summary.labelled and not regression
        else None,
        mae=summary.abs_error / summary.labelled if summary.labelled and regression else None,
        rmse=math.sqrt(summary.sq_error / summary.labelled)
        if summary.labelled and regression
        else None,
        sketch_relative_accuracy=sketch.relative_accuracy,
        calibration=None if regression else _calibration(numeric, layout, sketch, calibration),
        source=source or {},
    )
    return msgspec.structs.replace(reference, hash=reference.content_hash())


def _calibration(
    numeric: dict[str, NumericReference],
    layout: Layout,
    sketch: Sketches,
    counts: npt.NDArray[np.integer] | None,
) -> Calibration | None:
    """Labelled and wrong development records per bin of the confidence field: binned like the
    field's shares, so a live window's confidence falls into the same bins (through its sketch)."""
    names = [spec.name for spec in layout.numeric]
    ref = numeric.get(CALIBRATED)
    if counts is None or ref is None or CALIBRATED not in names or not counts[0].sum():
        return None
    layout_f = sketch[names.index(CALIBRATED)]
    labelled, wrong = (binned_counts(layout_f, row, ref.bin_edges) for row in counts)
    return Calibration(
        field=CALIBRATED,
        labelled=[int(v) for v in labelled],
        wrong=[int(v) for v in wrong],
    )
