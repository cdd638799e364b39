"""The per-batch fast paths of the records (reference checks, numeric classification, rows
taken, category cells) against plain, per-field versions of the same computation.

The batches and why the paths must agree: ``tests/fast_paths.py``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.anomaly import Kind
from exporter.batch import Batch, Layout
from exporter.compare import ReferenceChecks, align
from exporter.config_types import DriftConfig, FieldsConfig, FieldSpec
from exporter.decode import Decoder
from exporter.engine import Engine
from exporter.reference import NumericReference, Reference
from exporter.stats import drift
from tests.fast_paths import (
    AWKWARD,
    F,
    FloatArray,
    anchored_sketches,
    as_field_major,
    batch_of,
    matrix,
)
from tests.test_cells import T0, jsonl
from tests.test_cells import config as cells_config
from tests.test_cells import profile as cells_profile
from tests.test_cells import records as cells_records

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
        lambda n: matrix(n, st.one_of(st.sampled_from(AWKWARD), st.floats(-40, 40)))
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
    want = batch_of(values, seed)
    got = batch_of(as_field_major(values), seed)
    got.flags = as_field_major(want.flags)
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
@given(values=st.integers(0, 30).flatmap(matrix), seed=st.integers(0, 2**32 - 1))
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
    row_major, field_major = batch_of(values, 1), batch_of(as_field_major(values), 1)
    field_major.flags = as_field_major(row_major.flags)
    field_major.categorical = as_field_major(row_major.categorical)
    for rows in (np.array([5, 0, 3]), np.array([True, False, True, False, False, True])):
        want, got = row_major.take(rows), field_major.take(rows)
        for name in ("numeric", "categorical", "flags", "timestamp", "wrong", "group"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
        assert got.numeric.T.flags.c_contiguous  # still field-major


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
    sketches = anchored_sketches()
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
    row_major = [batch_of(part, i) for i, part in enumerate(parts)]
    field_major = [batch_of(as_field_major(part), i) for i, part in enumerate(parts)]
    for batch, row in zip(field_major, row_major, strict=True):
        batch.flags = as_field_major(row.flags)
        batch.categorical = as_field_major(row.categorical)
    want, got = Batch.concat(row_major), Batch.concat(field_major)
    for name in ("numeric", "categorical", "flags", "timestamp", "wrong", "group"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    np.testing.assert_array_equal(got.numeric, values)
    assert got.numeric.T.flags.c_contiguous  # still field-major
