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

import numpy as np
import numpy.typing as npt

from exporter.batch import OTHER, Layout
from exporter.reference import CategoricalReference, NumericReference, Reference
from exporter.stats.sketch import SketchLayout, binned_counts, cdf, quantiles
from exporter.stats.window import Summary
from exporter.validate import number_label

BIN_PROBS = tuple(i / 10 for i in range(1, 10))  # deciles: 10 equal-frequency bins
CDF_PROBS = tuple(i / 100 for i in range(1, 100))  # percentiles for the KS statistic


def _numeric(
    sketch: SketchLayout, summary: Summary, f: int, qs: tuple[float, ...]
) -> NumericReference | None:
    n = int(summary.count[f])
    if n == 0 or summary.sketch is None:
        return None
    counts = summary.sketch[f]
    mean = summary.mean(f)
    values = sketch.bucket_values()
    inner = quantiles(sketch, counts, BIN_PROBS)
    top = int(sketch.index(np.asarray([summary.high[f]]))[0])
    above_max = float(values[min(top + 1, len(values) - 1)])
    edges = sorted({float(summary.low[f]), *map(float, inner)})
    # Distinct buckets only (ties collapse bins); then one edge past the max, so a live value
    # beyond anything seen in development lands in the overflow bin.
    by_bucket: dict[int, float] = {}
    for edge in [*edges, above_max]:
        by_bucket.setdefault(int(sketch.index(np.asarray([edge]))[0]), edge)
    edges = [by_bucket[k] for k in sorted(by_bucket)]
    shares = binned_counts(sketch, counts, edges) / n
    points = sorted({float(v) for v in quantiles(sketch, counts, CDF_PROBS)})
    return NumericReference(
        count=n,
        missing=int(summary.records - n),
        mean=mean,
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
    counts: npt.NDArray[np.integer], names: list[tuple[int, str]], top: int, records: int
) -> CategoricalReference | None:
    n = int(counts.sum())
    if n == 0:
        return None
    named = sorted(
        ((int(counts[code]), value) for code, value in names if value != OTHER), reverse=True
    )
    kept = [(c, v) for c, v in named[:top] if c > 0]
    other = n - sum(c for c, _ in kept)
    shares = {v: c / n for c, v in kept}
    if other:
        shares[OTHER] = other / n
    return CategoricalReference(count=n, missing=records - n, shares=shares)


def build(
    summary: Summary,
    layout: Layout,
    categories: list[list[tuple[int, str]]],
    sketch: SketchLayout,
    qs: tuple[float, ...],
    created: str,
    source: dict[str, Any] | None = None,
    regression: bool = False,
) -> Reference:
    """A profile from the summary of every development record (one pass, bounded memory)."""
    numeric = {}
    for f, spec in enumerate(layout.numeric):
        ref = _numeric(sketch, summary, f, qs)
        if ref is not None:
            numeric[spec.name] = ref
    categorical = {}
    for c, spec in enumerate(layout.categorical):
        cat = _categorical(
            summary.categories[c], categories[c], spec.max_categories, summary.records
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
        source=source or {},
    )
    return Reference(**{**reference.__dict__, "hash": reference.content_hash()})
