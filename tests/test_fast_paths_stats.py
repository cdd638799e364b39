"""The per-batch fast paths of the statistics (sketch counts, summaries, histogram counts,
merged summaries) against plain, per-field versions of the same computation.

The batches and why the paths must agree: ``tests/fast_paths.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from exporter.anomaly import Kind
from exporter.batch import Batch, Layout
from exporter.config_types import Config, FieldsConfig, FieldSpec, WindowSpec
from exporter.state import State
from exporter.stats.window import Shape, Summary, category_counts, summarize
from tests.fast_paths import (
    AWKWARD,
    VALUES,
    C,
    F,
    FloatArray,
    anchored_sketches,
    as_field_major,
    batch_of,
    matrix,
    summary_shape,
)

# -- the sketch ----------------------------------------------------------------------------


def _finite(values: FloatArray) -> st.SearchStrategy:
    return arrays(np.float64, values, elements=st.one_of(st.sampled_from(AWKWARD[3:]), VALUES))


@settings(max_examples=200, deadline=None)
@given(values=st.integers(0, 40).flatmap(matrix))
def test_count_fields_equals_one_layout_per_field(values: FloatArray) -> None:
    """Every finite value lands in the bucket ``SketchLayout.index`` gives it, and each field
    is counted over exactly the span its values reach; NaN is no value."""
    _check_count_fields(np.where(np.isinf(values), np.nan, values))  # infinities: below


@settings(max_examples=200, deadline=None)
@given(
    values=st.integers(1, 40).flatmap(
        lambda n: matrix(n, st.floats(5e-324, 1e300) | st.sampled_from([np.nan, 1.0, 1e-9]))
    )
)
def test_count_fields_of_positive_values_in_and_out_of_the_windows(values: FloatArray) -> None:
    """Positive values take a shorter path while every one is inside its field's window."""
    _check_count_fields(values)


def _check_count_fields(values: FloatArray) -> None:
    sketches = anchored_sketches()
    fields = np.ascontiguousarray(values.T)
    valid = ~np.isnan(fields)
    counts, clamped = sketches.count_fields(fields, valid)
    for f in range(F):
        present = fields[f][valid[f]]
        start, span = counts.span(f)
        if not len(present):
            assert counts.counts[f] is None
            assert clamped[f] == 0
            continue
        index = sketches[f].index(present)
        assert start == index.min()
        np.testing.assert_array_equal(span, np.bincount(index - index.min()), strict=True)
        assert clamped[f] == sketches[f].clamped(present)
    if valid.all():  # told that every value is valid: the same counts
        again, clamped_again = sketches.count_fields(fields, None)
        np.testing.assert_array_equal(np.asarray(again), np.asarray(counts))
        np.testing.assert_array_equal(clamped_again, clamped)


def test_count_fields_puts_zeros_edges_and_far_values_where_the_layout_does() -> None:
    sketches = anchored_sketches()
    layout = sketches[0]
    edges = np.exp(np.arange(-5, 6) * layout.log_gamma)  # bucket boundaries γ^k, ± rounding
    column = np.concatenate(
        [[0.0, -0.0, 1e-300, -1e-300, 1e300, -1e300, 5e-324], edges, -edges, np.nextafter(edges, 0)]
    )
    fields = np.tile(column, (F, 1))
    counts, clamped = sketches.count_fields(fields, np.ones_like(fields, dtype=bool))
    for f in range(F):
        dense = np.bincount(sketches[f].index(column), minlength=sketches.size)
        np.testing.assert_array_equal(counts[f], dense)
        assert clamped[f] == sketches[f].clamped(column) > 0


def test_count_fields_puts_infinities_in_the_end_buckets_and_counts_them_clamped() -> None:
    """An infinity has no key; it sorts past every value, so it is counted in the end bucket
    of its sign, as clamped (its quantiles are not within the bound)."""
    sketches = anchored_sketches()
    fields = np.tile(np.array([np.inf, -np.inf, 1.0]), (F, 1))
    counts, clamped = sketches.count_fields(fields, None)
    for f in range(F):
        dense = counts[f]
        assert dense[-1] == 1
        assert dense[0] == 1
        assert clamped[f] == 2 + sketches[f].clamped(np.array([1.0]))


def test_count_fields_of_no_rows_and_one_row() -> None:
    sketches = anchored_sketches()
    counts, clamped = sketches.count_fields(np.zeros((F, 0)), None)
    assert counts.counts == [None] * F
    assert clamped.tolist() == [0] * F
    one = np.array([[2.5], [np.nan], [-3.0], [0.0]])
    counts, clamped = sketches.count_fields(one, ~np.isnan(one))
    assert counts.counts[1] is None
    for f in (0, 2, 3):
        assert counts[f].sum() == 1
        assert counts[f][sketches[f].index(one[f])[0]] == 1


# -- summaries -----------------------------------------------------------------------------


def _plain_summary(batch: Batch, shape: Shape) -> Summary:
    """Every step always taken: the moments with every value masked (field-major, as the
    numbers must match to the bit), the rest field by field on a record-major copy."""
    summary = Summary.empty(shape)
    n = batch.size
    if n == 0:
        return summary
    summary.records = n
    values = np.ascontiguousarray(batch.numeric.T)
    valid = ~np.isnan(values)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        summary.count = np.count_nonzero(valid, axis=1).astype(np.int64)
        zeroed = np.where(valid, values, 0.0)
        summary.total = zeroed.sum(axis=1)
        means = np.where(summary.count > 0, summary.total / np.maximum(summary.count, 1), 0.0)
        centred = (zeroed - means[:, None]) * valid
        summary.deviations = np.einsum("ij,ij->i", centred, centred)
    for f in range(F):
        column = np.array(batch.numeric[:, f])
        present = column[~np.isnan(column)]
        summary.low[f] = present.min() if len(present) else np.inf
        summary.high[f] = present.max() if len(present) else -np.inf
    assert summary.sketch is not None
    sketch, summary.clamped = shape.sketch.count_fields(
        np.ascontiguousarray(batch.numeric.T), ~np.isnan(batch.numeric.T)
    )
    summary.sketch.add(sketch)
    for c in range(C):
        codes = batch.categorical[:, c]
        summary.categories[c] = np.bincount(codes[codes >= 0], minlength=shape.categories)
    for r, a in zip(*np.nonzero(batch.flags), strict=True):
        summary.anomalies[a, batch.flags[r, a]] += 1
    summary.labelled = int((batch.wrong >= 0).sum())
    summary.wrong = int((batch.wrong == 1).sum())
    stamps = batch.timestamp[~np.isnan(batch.timestamp)]
    summary.latest = float(stamps.max()) if len(stamps) else -math.inf
    return summary


def _assert_same(got: Summary, want: Summary) -> None:
    assert (got.records, got.labelled, got.wrong, got.latest) == (
        want.records,
        want.labelled,
        want.wrong,
        want.latest,
    )
    for name in ("count", "total", "deviations", "low", "high", "categories", "anomalies"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    np.testing.assert_array_equal(got.clamped, want.clamped)
    assert got.sketch is not None
    assert want.sketch is not None
    np.testing.assert_array_equal(np.asarray(got.sketch), np.asarray(want.sketch))


@settings(max_examples=150, deadline=None)
@given(
    values=st.integers(0, 30).flatmap(
        lambda n: matrix(n, st.one_of(st.sampled_from(AWKWARD), st.floats(-1e6, 1e6)))
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_summarize_equals_a_plain_summary(values: FloatArray, seed: int) -> None:
    """Field-major or record-major, all rows or a mask of them: the plain summary's numbers."""
    values = np.where(np.isinf(values), np.nan, values)  # the decoder blanks infinities
    shape = summary_shape()
    row_major = batch_of(values, seed)
    field_major = batch_of(as_field_major(values), seed)
    field_major.flags = as_field_major(row_major.flags)
    field_major.categorical = as_field_major(row_major.categorical)
    want = _plain_summary(row_major, shape)
    _assert_same(summarize(row_major, None, shape), want)
    _assert_same(summarize(field_major, None, shape), want)
    rows = np.random.default_rng(seed).random(len(values)) < 0.5
    _assert_same(summarize(field_major, rows, shape), _plain_summary(row_major.take(rows), shape))
    # The all-valid path and the masked path give the very same bits for the same values.
    valid_rows = ~np.isnan(values).any(axis=1)
    clean = summarize(field_major, valid_rows, shape)
    masked = summarize(batch_of(as_field_major(values[valid_rows]), seed), None, shape)
    np.testing.assert_array_equal(clean.total, masked.total)
    np.testing.assert_array_equal(clean.deviations, masked.deviations)


def test_category_counts_read_either_layout() -> None:
    shape = summary_shape()
    codes = np.array([[0, -1], [4, 4], [-1, -1], [2, 0]])
    want = np.zeros((C, shape.categories), np.int64)
    want[0, [0, 4, 2]] = 1
    want[1, [4, 0]] = 1
    np.testing.assert_array_equal(category_counts(codes, shape), want)
    np.testing.assert_array_equal(category_counts(as_field_major(codes), shape), want)
    np.testing.assert_array_equal(
        category_counts(codes[[1, 3]], shape), want - [[1, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    )


# -- histograms ----------------------------------------------------------------------------


def _state(bounds: tuple[float, ...]) -> State:
    fields = FieldsConfig(features=tuple(FieldSpec(f"x{f}", (f"x{f}",)) for f in range(F)))
    config = Config(
        fields=fields,
        windows=(WindowSpec("1m", 60.0),),
        histograms=(("x0", bounds), ("x2", (0.0,)), ("x3", ())),
    )
    return State(config, Layout.from_fields(fields), [])


@pytest.mark.parametrize("bounds", [(-1.0, -0.0, 0.5, 1.0, 1e300), (0.0,), (1.0, 2.0, 2.0, 3.0)])
@settings(max_examples=60, deadline=None)
@given(values=st.integers(0, 25).flatmap(matrix))
def test_histogram_counts_equal_a_binary_search_per_value(
    bounds: tuple[float, ...], values: FloatArray
) -> None:
    """Values on a bound count in its bucket (``le``), ±0.0 alike, NaN nowhere, +inf in
    +Inf: as ``searchsorted`` of each value in the bounds says."""
    state = _state(bounds)
    for numeric in (values, as_field_major(values)):
        batch = batch_of(numeric, 0, width=state.shape.anomaly_fields - 1)
        batch.categorical = batch.categorical[:, :0]
        summary = summarize(batch, None, state.shape)
        counts, sums = state._histogram_counts(numeric, summary)
        for h, histogram in enumerate(state._histograms):
            column = values[:, histogram.column]
            present = column[~np.isnan(column)]
            edges = np.asarray(histogram.bounds, dtype=np.float64)
            want = np.bincount(np.searchsorted(edges, present), minlength=len(edges) + 1)
            np.testing.assert_array_equal(counts[h, : len(edges) + 1], want)
            assert not counts[h, len(edges) + 1 :].any()
            np.testing.assert_array_equal(sums[h], summary.total[histogram.column])


# -- merging summaries ----------------------------------------------------------------------


def test_a_summary_of_no_records_adds_only_its_anomalies() -> None:
    """Parse errors come as a summary of no records: merging it changes the anomaly counts
    and nothing else, also for values so large that δ² overflows. (Merging with an empty side
    used to compute δ²·0 = inf·0 = NaN there: a field whose mean was past 1e154 never had a
    stddev.)"""
    shape = summary_shape()
    values = np.array([[1e155, 2.0, np.nan, -3.0], [1e155, 4.0, 5.0, -0.0]])  # (δ²: 1e310)
    window = Summary.empty(shape)
    window.add(summarize(batch_of(values, 3), None, shape))
    before = Summary.empty(shape)
    before.add(window)
    errors = Summary.empty(shape)
    errors.anomalies[-1, Kind.PARSE_ERROR] = 7
    window.add(errors)
    for name in ("count", "total", "deviations", "low", "high", "categories", "clamped"):
        np.testing.assert_array_equal(getattr(window, name), getattr(before, name), err_msg=name)
    assert np.isfinite(window.deviations[0])
    assert window.stddev(0) == 0.0
    want = before.anomalies.copy()
    want[-1, Kind.PARSE_ERROR] += 7
    np.testing.assert_array_equal(window.anomalies, want)
    assert window.records == before.records
    np.testing.assert_array_equal(np.asarray(window.sketch), np.asarray(before.sketch))


@settings(max_examples=200, deadline=None)
@given(
    left=st.integers(0, 12).flatmap(lambda n: matrix(n, st.floats(-1e6, 1e6) | st.just(np.nan))),
    right=st.integers(0, 12).flatmap(lambda n: matrix(n, st.floats(-1e6, 1e6) | st.just(np.nan))),
)
def test_merged_moments_equal_the_formula_term_by_term(left: FloatArray, right: FloatArray) -> None:
    """Chan's update, M2 = M2a + M2b + δ²·na·nb/n, to the bit, as written out plainly."""
    shape = summary_shape()
    mine = summarize(batch_of(left, 1), None, shape)
    theirs = summarize(batch_of(right, 2), None, shape)
    a, b = mine.count.copy(), theirs.count.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = np.where(b > 0, theirs.total / b, 0.0) - np.where(a > 0, mine.total / a, 0.0)
        cross = np.where(a + b > 0, delta * delta * a * b / (a + b), 0.0)
    want = mine.deviations + (theirs.deviations + cross)
    total = mine.total + theirs.total
    mine.add(theirs)
    np.testing.assert_array_equal(mine.deviations, want)
    np.testing.assert_array_equal(mine.total, total)
    np.testing.assert_array_equal(mine.count, a + b)
