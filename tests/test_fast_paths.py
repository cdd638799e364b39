"""The per-batch fast paths against plain, per-field versions of the same computation.

Each batch's numbers are worked out for all fields at once, field-major, with the masking
and the rare steps skipped when no value needs them (``Decoder._classify``, ``summarize``,
``Sketches.count_fields``, the histogram counts, ``ReferenceChecks.apply``). The oracles
here are the straightforward versions: one field at a time, every step always taken, on a
record-major copy. They must agree exactly — counts, bits of every float, flags — on
awkward data: NaN, ±inf, -0.0, values on bucket edges and bounds, outside the sketch window,
an empty batch and a single row.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from exporter.anomaly import N_KINDS, Kind
from exporter.batch import Batch, Layout
from exporter.compare import ReferenceChecks, align
from exporter.config_types import Config, DriftConfig, FieldsConfig, FieldSpec, WindowSpec
from exporter.decode import Decoder
from exporter.engine import Engine
from exporter.reference import NumericReference, Reference
from exporter.state import State
from exporter.stats import drift
from exporter.stats.sketch import Sketches
from exporter.stats.window import Shape, Summary, category_counts, summarize
from tests.test_cells import T0, jsonl
from tests.test_cells import config as cells_config
from tests.test_cells import profile as cells_profile
from tests.test_cells import records as cells_records

FloatArray = npt.NDArray[np.float64]
F = 4  # numeric fields of the batches below
C = 2  # categorical fields
A = F + C + 1  # anomaly columns: the fields and a timestamp

AWKWARD = (np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, 5e-324, 1e300, -1e-300)
_values = st.one_of(
    st.sampled_from(AWKWARD),
    st.floats(-1e6, 1e6),
    st.floats(allow_nan=False, allow_infinity=False),
)


def _matrix(rows: int, draw_values: st.SearchStrategy[float] = _values) -> st.SearchStrategy:
    return arrays(np.float64, (rows, F), elements=draw_values)


def _field_major(matrix: npt.NDArray) -> npt.NDArray:
    """The same values stored as a decoded batch stores them: [fields, rows], seen .T."""
    return np.ascontiguousarray(matrix.T).T


def _sketches() -> Sketches:
    """Fields anchored far apart (and one left unanchored), so values fall outside windows."""
    anchors = [np.array([1.0]), np.array([1e-6]), np.array([1e9]), np.array([0.0])]
    return Sketches.unanchored(F).anchored_on(anchors)


# -- the sketch ----------------------------------------------------------------------------


def _finite(values: FloatArray) -> st.SearchStrategy:
    return arrays(np.float64, values, elements=st.one_of(st.sampled_from(AWKWARD[3:]), _values))


@settings(max_examples=200, deadline=None)
@given(values=st.integers(0, 40).flatmap(_matrix))
def test_count_fields_equals_one_layout_per_field(values: FloatArray) -> None:
    """Every finite value lands in the bucket ``SketchLayout.index`` gives it, and each field
    is counted over exactly the span its values reach; NaN is no value."""
    _check_count_fields(np.where(np.isinf(values), np.nan, values))  # infinities: below


@settings(max_examples=200, deadline=None)
@given(
    values=st.integers(1, 40).flatmap(
        lambda n: _matrix(n, st.floats(5e-324, 1e300) | st.sampled_from([np.nan, 1.0, 1e-9]))
    )
)
def test_count_fields_of_positive_values_in_and_out_of_the_windows(values: FloatArray) -> None:
    """Positive values take a shorter path while every one is inside its field's window."""
    _check_count_fields(values)


def _check_count_fields(values: FloatArray) -> None:
    sketches = _sketches()
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
    sketches = _sketches()
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
    sketches = _sketches()
    fields = np.tile(np.array([np.inf, -np.inf, 1.0]), (F, 1))
    counts, clamped = sketches.count_fields(fields, None)
    for f in range(F):
        dense = counts[f]
        assert dense[-1] == 1
        assert dense[0] == 1
        assert clamped[f] == 2 + sketches[f].clamped(np.array([1.0]))


def test_count_fields_of_no_rows_and_one_row() -> None:
    sketches = _sketches()
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


def _shape() -> Shape:
    return Shape(numeric=F, categorical=C, categories=5, anomaly_fields=A + 1, sketch=_sketches())


def _batch(values: FloatArray, seed: int, width: int = A) -> Batch:
    rng = np.random.default_rng(seed)
    n = len(values)
    codes = rng.integers(-1, 5, (n, C))
    flags = np.where(rng.random((n, width)) < 0.2, rng.integers(1, N_KINDS, (n, width)), 0)
    flags = flags.astype(np.int8)
    stamps = np.where(rng.random(n) < 0.3, np.nan, rng.random(n) * 1e9)
    wrong = rng.integers(-1, 2, n).astype(np.int8)
    return Batch([("m", "v")], np.zeros(n, np.int64), values, codes, flags, stamps, wrong)


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
        lambda n: _matrix(n, st.one_of(st.sampled_from(AWKWARD), st.floats(-1e6, 1e6)))
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_summarize_equals_a_plain_summary(values: FloatArray, seed: int) -> None:
    """Field-major or record-major, all rows or a mask of them: the plain summary's numbers."""
    values = np.where(np.isinf(values), np.nan, values)  # the decoder blanks infinities
    shape = _shape()
    row_major = _batch(values, seed)
    field_major = _batch(_field_major(values), seed)
    field_major.flags = _field_major(row_major.flags)
    field_major.categorical = _field_major(row_major.categorical)
    want = _plain_summary(row_major, shape)
    _assert_same(summarize(row_major, None, shape), want)
    _assert_same(summarize(field_major, None, shape), want)
    rows = np.random.default_rng(seed).random(len(values)) < 0.5
    _assert_same(summarize(field_major, rows, shape), _plain_summary(row_major.take(rows), shape))
    # The all-valid path and the masked path give the very same bits for the same values.
    valid_rows = ~np.isnan(values).any(axis=1)
    clean = summarize(field_major, valid_rows, shape)
    masked = summarize(_batch(_field_major(values[valid_rows]), seed), None, shape)
    np.testing.assert_array_equal(clean.total, masked.total)
    np.testing.assert_array_equal(clean.deviations, masked.deviations)


def test_category_counts_read_either_layout() -> None:
    shape = _shape()
    codes = np.array([[0, -1], [4, 4], [-1, -1], [2, 0]])
    want = np.zeros((C, shape.categories), np.int64)
    want[0, [0, 4, 2]] = 1
    want[1, [4, 0]] = 1
    np.testing.assert_array_equal(category_counts(codes, shape), want)
    np.testing.assert_array_equal(category_counts(_field_major(codes), shape), want)
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
@given(values=st.integers(0, 25).flatmap(_matrix))
def test_histogram_counts_equal_a_binary_search_per_value(
    bounds: tuple[float, ...], values: FloatArray
) -> None:
    """Values on a bound count in its bucket (``le``), ±0.0 alike, NaN nowhere, +inf in
    +Inf: as ``searchsorted`` of each value in the bounds says."""
    state = _state(bounds)
    for numeric in (values, _field_major(values)):
        batch = _batch(numeric, 0, width=state.shape.anomaly_fields - 1)
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


# -- per-record checks against the reference -----------------------------------------------


def _reference(x3: bool) -> Reference:
    def numeric(low: float, high: float, mean: float, stddev: float) -> NumericReference:
        return NumericReference(
            count=100, missing=0, mean=mean, stddev=stddev, min=low, max=high, quantiles={},
            bin_edges=[mean], bin_shares=[0.5, 0.5], cdf_points=[mean], cdf_values=[0.5],
        )  # fmt: skip

    return Reference(
        created="now",
        records=100,
        numeric={
            "x0": numeric(0.0, 1.0, 0.5, 0.1),
            "x1": numeric(-5.0, 5.0, 0.0, 0.0),  # no spread: no outliers
            "x2": numeric(10.0, 20.0, 15.0, 1.0),
            # x3: in the profile without a spread (a range check and no outliers), or not
            **({"x3": numeric(-2.0, 2.0, 0.0, 0.0)} if x3 else {}),
        },
        categorical={},
    )


def _plain_checks(checks: ReferenceChecks, batch: Batch) -> None:
    """The record-major version: every comparison always made."""
    values = batch.numeric
    low, high = checks._low, checks._high
    seen_low, seen_high = checks._seen_low, checks._seen_high
    mean, std = checks._mean, checks._std
    clean = batch.flags[:, :F] == 0
    with np.errstate(invalid="ignore"):
        outside = clean & ((values < low) | (values > high))
        beyond = (values < seen_low) | (values > seen_high)
        far = np.abs(values - mean) > checks._z * std
        outlier = clean & ~outside & beyond & far
    batch.flags[:, :F][outside] = Kind.OUT_OF_RANGE
    batch.flags[:, :F][outlier] = Kind.OUTLIER


@pytest.mark.parametrize("x3", [False, True])
@settings(max_examples=150, deadline=None)
@given(
    values=st.integers(0, 30).flatmap(
        lambda n: _matrix(n, st.one_of(st.sampled_from(AWKWARD), st.floats(-40, 40)))
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_reference_checks_flag_as_the_record_major_checks(
    x3: bool, values: FloatArray, seed: int
) -> None:
    fields = FieldsConfig(
        features=(
            FieldSpec("x0", ("x0",)),
            FieldSpec("x1", ("x1",), minimum=-1.0),  # configured bounds: no margin check
            FieldSpec("x2", ("x2",)),
            FieldSpec("x3", ("x3",)),
        )
    )
    checks = ReferenceChecks(
        _reference(x3), Layout.from_fields(fields), [], DriftConfig(outlier_z=3.0)
    )
    want = _batch(values, seed)
    got = _batch(_field_major(values), seed)
    got.flags = _field_major(want.flags)
    _plain_checks(checks, want)
    checks.apply(got)
    np.testing.assert_array_equal(got.flags, want.flags)


# -- the decoder's numeric classification ----------------------------------------------------


def _plain_classify(specs: tuple[FieldSpec, ...], numeric: FloatArray, flags: npt.NDArray) -> None:
    """One field at a time, every step always taken, on record-major arrays."""
    for j, spec in enumerate(specs):
        column = numeric[:, j]
        if spec.scale != 1.0:
            column *= spec.scale
        kind = flags[:, j]
        missing = np.isnan(column)
        kind[missing & (kind == 0)] = Kind.MISSING
        infinite = np.isinf(column)
        kind[infinite] = Kind.NOT_A_NUMBER
        column[infinite] = np.nan
        bad = np.zeros(len(column), dtype=bool)
        with np.errstate(invalid="ignore"):
            if spec.minimum is not None:
                bad |= column < spec.minimum * spec.scale
            if spec.maximum is not None:
                bad |= column > spec.maximum * spec.scale
        kind[bad] = Kind.OUT_OF_RANGE
        column[bad] = np.nan


@pytest.mark.parametrize(
    "specs",
    [
        (
            FieldSpec("a", ("a",), minimum=0.0, maximum=1.0),
            FieldSpec("b", ("b",), scale=0.001, minimum=0.0),
            FieldSpec("c", ("c",)),
            FieldSpec("d", ("d",), maximum=-0.0, scale=1e-300),
        ),
        tuple(FieldSpec(name, (name,)) for name in "abcd"),  # no scale, no bounds
    ],
)
@settings(max_examples=100, deadline=None)
@given(values=st.integers(0, 30).flatmap(_matrix), seed=st.integers(0, 2**32 - 1))
def test_numeric_classification_equals_the_per_field_loop(
    specs: tuple[FieldSpec, ...], values: FloatArray, seed: int
) -> None:
    decoder = Decoder(FieldsConfig(features=specs))
    rng = np.random.default_rng(seed)
    preset = np.where(rng.random(values.shape) < 0.2, Kind.TYPE_MISMATCH, 0).astype(np.int8)
    want_values, want_flags = values.copy(), preset.copy()
    _plain_classify(specs, want_values, want_flags)
    got_values = np.ascontiguousarray(values.T)
    got_flags = np.ascontiguousarray(preset.T)
    decoder._classify_numeric(got_values, got_flags)
    np.testing.assert_array_equal(got_values.T, want_values)  # NaN where blanked, bits alike
    np.testing.assert_array_equal(got_flags.T, want_flags)


# -- taking rows ----------------------------------------------------------------------------


def test_take_keeps_the_rows_and_the_layout() -> None:
    values = np.arange(24, dtype=np.float64).reshape(6, F)
    row_major, field_major = _batch(values, 1), _batch(_field_major(values), 1)
    field_major.flags = _field_major(row_major.flags)
    field_major.categorical = _field_major(row_major.categorical)
    for rows in (np.array([5, 0, 3]), np.array([True, False, True, False, False, True])):
        want, got = row_major.take(rows), field_major.take(rows)
        for name in ("numeric", "categorical", "flags", "timestamp", "wrong", "group"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
        assert got.numeric.T.flags.c_contiguous  # still field-major


# -- merging summaries ----------------------------------------------------------------------


def test_a_summary_of_no_records_adds_only_its_anomalies() -> None:
    """Parse errors come as a summary of no records: merging it changes the anomaly counts
    and nothing else, also for values so large that δ² overflows. (Merging with an empty side
    used to compute δ²·0 = inf·0 = NaN there: a field whose mean was past 1e154 never had a
    stddev.)"""
    shape = _shape()
    values = np.array([[1e155, 2.0, np.nan, -3.0], [1e155, 4.0, 5.0, -0.0]])  # (δ²: 1e310)
    window = Summary.empty(shape)
    window.add(summarize(_batch(values, 3), None, shape))
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
    left=st.integers(0, 12).flatmap(lambda n: _matrix(n, st.floats(-1e6, 1e6) | st.just(np.nan))),
    right=st.integers(0, 12).flatmap(lambda n: _matrix(n, st.floats(-1e6, 1e6) | st.just(np.nan))),
)
def test_merged_moments_equal_the_formula_term_by_term(left: FloatArray, right: FloatArray) -> None:
    """Chan's update, M2 = M2a + M2b + δ²·na·nb/n, to the bit, as written out plainly."""
    shape = _shape()
    mine = summarize(_batch(left, 1), None, shape)
    theirs = summarize(_batch(right, 2), None, shape)
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


# -- reference cells --------------------------------------------------------------------------


def test_category_cells_follow_a_growing_vocabulary() -> None:
    """The cells of a categorical column are looked up once per length of its names: as new
    values get codes batch after batch, each batch still counts as ``compare.align`` lines
    the window's categories up, kept values, folded ones and ones never seen alike."""
    cfg = cells_config()
    rng = np.random.default_rng(5)
    engine = Engine(cfg, cells_profile(cfg, cells_records(rng, 3_000)))
    for step, extra in enumerate([[], ["new-1"], ["new-2", "new-3", "a"], []]):
        live = cells_records(rng, 300)
        for i, value in enumerate(extra):
            live[i]["c"] = value
        engine.ingest(jsonl(live), T0 + step)
        snapshot = engine.state.snapshot(T0 + step)
        assert snapshot.cells is not None
        (group,) = snapshot.groups
        window = group.windows[-1].summary  # 1h: every record so far
        for cells, counts in zip(snapshot.cells.fields, group.cells, strict=True):
            if cells.statistic != "js":
                continue
            c = cells.column
            reference = engine.state.reference
            assert reference is not None
            aligned = align(
                reference.categorical[cells.name].shares,
                window.categories[c],
                snapshot.categories[c],
            )
            _, expected = drift.pool_unsupported(*aligned)
            np.testing.assert_array_equal(counts, expected)


@pytest.mark.parametrize("edge", ["lowest", "highest"])
@pytest.mark.parametrize("beyond", [False, True])
def test_count_fields_at_the_ends_of_each_window(edge: str, beyond: bool) -> None:
    """A positive value in the end bucket of its field's window, or one bucket past it."""
    sketches = _sketches()
    rows = []
    for layout in sketches.fields:
        k = layout.k_min if edge == "lowest" else layout.k_min + layout.per_sign - 1
        k += (-1 if edge == "lowest" else 1) if beyond else 0
        rows.append(np.exp((k - np.array([0.5, 0.25, 0.75])) * layout.log_gamma))
    fields = np.array(rows)
    counts, clamped = sketches.count_fields(fields, None)
    for f, layout in enumerate(sketches.fields):
        assert layout.clamped(fields[f]) == (3 if beyond else 0)  # the values are where meant
        np.testing.assert_array_equal(
            counts[f], np.bincount(layout.index(fields[f]), minlength=sketches.size)
        )
        assert clamped[f] == layout.clamped(fields[f])


def test_concat_keeps_the_rows_and_the_layout() -> None:
    values = np.arange(24, dtype=np.float64).reshape(6, F)
    parts = [values[:2], values[2:3], values[3:]]
    row_major = [_batch(part, i) for i, part in enumerate(parts)]
    field_major = [_batch(_field_major(part), i) for i, part in enumerate(parts)]
    for batch, row in zip(field_major, row_major, strict=True):
        batch.flags = _field_major(row.flags)
        batch.categorical = _field_major(row.categorical)
    want, got = Batch.concat(row_major), Batch.concat(field_major)
    for name in ("numeric", "categorical", "flags", "timestamp", "wrong", "group"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    np.testing.assert_array_equal(got.numeric, values)
    assert got.numeric.T.flags.c_contiguous  # still field-major
