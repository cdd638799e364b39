"""The log-bucket sketch against numpy order statistics on named distributions.

The oracle is ``np.quantile(..., method="lower")``: the sample value at rank ⌊q·(n−1)⌋, which is
what the relative-error guarantee is stated against.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from exporter.stats.sketch import SPAN_DECADES, Sketches, SketchLayout, cdf, quantiles

FloatArray = npt.NDArray[np.float64]
QS = (0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)
SLACK = 1e-9  # floating-point rounding at bucket edges, far below any accuracy we configure


def _rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


DISTRIBUTIONS: dict[str, Callable[[np.random.Generator], FloatArray]] = {
    "normal": lambda r: r.normal(100.0, 15.0, 20_000),
    "normal_around_zero": lambda r: r.normal(0.0, 1.0, 20_000),
    "lognormal_sigma_4": lambda r: r.lognormal(0.0, 4.0, 20_000),
    "exponential": lambda r: r.exponential(0.05, 20_000),
    "uniform": lambda r: r.uniform(0.0, 1.0, 20_000),
    "pareto": lambda r: r.pareto(1.1, 20_000) + 1.0,
    "negative_lognormal": lambda r: -r.lognormal(2.0, 1.5, 20_000),
    "mixture_with_zeros": lambda r: np.concatenate(
        [np.zeros(5_000), r.exponential(3.0, 5_000), -r.exponential(0.2, 2_000)]
    ),
    "constant": lambda r: np.full(1_000, 42.125),
    "single": lambda r: np.array([3.5]),
    "two": lambda r: np.array([-1.0, 7.0]),
    "tiny_n": lambda r: r.normal(0.0, 10.0, 5),
    "huge_n": lambda r: r.lognormal(1.0, 2.0, 1_000_000),
    "integers": lambda r: r.integers(0, 50, 10_000).astype(np.float64),
    "wide_range": lambda r: 10.0 ** r.uniform(-8.0, 8.5, 20_000),
    # Beyond the old fixed window of 1e-9 .. 1e9: each field's window sits where its values are.
    "epoch_seconds": lambda r: r.normal(1.7e9, 1e6, 20_000),
    "epoch_nanoseconds": lambda r: r.normal(1.7e18, 1e15, 20_000),
    "around_1e10": lambda r: r.lognormal(math.log(1e10), 1.0, 20_000),
    "around_1e-10": lambda r: r.lognormal(math.log(1e-10), 1.0, 20_000),
    "tiny_probabilities": lambda r: 10.0 ** r.uniform(-15.0, -1.0, 20_000),
    "near_the_largest_double": lambda r: r.uniform(1e307, 1.7e308, 2_000),
    "near_the_smallest_double": lambda r: r.uniform(1e-320, 1e-300, 2_000),
}


def window(layout: SketchLayout) -> tuple[float, float]:
    """The smallest and largest magnitudes inside the layout's window (the lower end of its
    first bucket, the upper end of its last, at most the largest double)."""
    largest = float(np.finfo(np.float64).max)
    low = math.exp((layout.k_min - 1) * layout.log_gamma)
    try:
        high = min(math.exp((layout.k_min + layout.per_sign - 1) * layout.log_gamma), largest)
    except OverflowError:
        high = largest
    return low, high


def outside_window(
    layout: SketchLayout, values: FloatArray, slack: float = -SLACK
) -> npt.NDArray[np.bool_]:
    """Independent of the sketch's own bookkeeping: non-zero magnitudes outside the window
    (``slack`` > 0: only those clearly outside; < 0: also those within rounding of an end)."""
    magnitude = np.abs(values)
    smallest, largest = window(layout)
    low, high = smallest * (1 - slack), largest * (1 + slack)
    return (magnitude > 0) & ((magnitude < low) | (magnitude > high))


def assert_within_bound(
    layout: SketchLayout, values: FloatArray, qs: tuple[float, ...] = QS
) -> None:
    """The bound holds for every quantile whose exact value the window holds; the rest are
    counted as clamped."""
    layout = layout.anchored_on(values)
    counts = layout.counts(values)
    estimates = quantiles(layout, counts, qs)
    truth = np.quantile(values, qs, method="lower")
    assert layout.clamped(values) >= int(outside_window(layout, values, SLACK).sum())
    for q, estimate, exact in zip(qs, estimates, truth, strict=True):
        if outside_window(layout, np.asarray([exact]))[0]:
            continue
        error = abs(estimate - exact)
        bound = layout.relative_accuracy * abs(exact) * (1 + SLACK)
        assert error <= bound, f"q={q}: exact {exact!r}, estimate {estimate!r}"


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("accuracy", [0.01, 0.001, 0.05])
def test_quantiles_within_relative_accuracy(name: str, accuracy: float) -> None:
    """Every named distribution spans less than the window, so nothing may be clamped."""
    values = DISTRIBUTIONS[name](_rng())
    layout = SketchLayout(relative_accuracy=accuracy).anchored_on(values)
    assert layout.clamped(values) == 0
    assert_within_bound(layout, values)


@settings(max_examples=200)
@given(
    values=arrays(
        np.float64,
        st.integers(1, 300),
        elements=st.floats(allow_nan=False, allow_infinity=False),
    ),
    q=st.floats(0.0, 1.0),
)
def test_quantile_bound_holds_for_any_sample(values: FloatArray, q: float) -> None:
    assert_within_bound(SketchLayout(), values, (q,))


def test_counts_hold_every_value() -> None:
    values = DISTRIBUTIONS["mixture_with_zeros"](_rng())
    layout = SketchLayout()
    counts = layout.counts(values)
    assert counts.shape == (layout.size,)
    assert int(counts.sum()) == len(values)
    assert counts[layout.zero_index] == np.count_nonzero(values == 0)


def test_buckets_are_ordered_like_the_values() -> None:
    """Quantiles read buckets left to right, so bucket order must follow value order."""
    layout = SketchLayout()
    values = np.sort(np.concatenate([-DISTRIBUTIONS["wide_range"](_rng()), [0.0], [1e-12]]))
    assert np.all(np.diff(layout.index(values)) >= 0)
    assert np.all(np.diff(layout.bucket_values()) > 0)


@settings(max_examples=100)
@given(
    a=arrays(np.float64, st.integers(0, 200), elements=st.floats(-1e6, 1e6)),
    b=arrays(np.float64, st.integers(0, 200), elements=st.floats(-1e6, 1e6)),
)
def test_merge_is_exact(a: FloatArray, b: FloatArray) -> None:
    layout = SketchLayout()
    merged = layout.counts(a) + layout.counts(b)
    union = layout.counts(np.concatenate([a, b]))
    np.testing.assert_array_equal(merged, union)
    np.testing.assert_array_equal(
        quantiles(layout, merged, QS), quantiles(layout, union, QS), strict=True
    )


def test_sketches_of_columns_equal_separate_sketches() -> None:
    rng = _rng()
    columns = [rng.normal(i * 10.0, 1.0 + i, 500) for i in range(3)] + [rng.normal(1.7e9, 1e6, 500)]
    values = np.column_stack(columns)
    values[::7, 1] = np.nan  # no value
    sketches = Sketches.unanchored(4).anchored_on(list(values.T))
    counts, clamped = sketches.counts(values)
    for f, column in enumerate(values.T):
        present = column[~np.isnan(column)]
        np.testing.assert_array_equal(counts[f], sketches[f].counts(present))
        assert clamped[f] == sketches[f].clamped(present) == 0


@settings(max_examples=100, deadline=None)
@given(
    parts=st.lists(
        arrays(
            np.float64,
            st.tuples(st.integers(0, 60), st.just(2)),
            elements=st.one_of(st.floats(-1e12, 1e12), st.just(np.nan), st.just(0.0)),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_bucket_counts_add_up_like_dense_arrays(parts: list[FloatArray]) -> None:
    """Spans that overlap, nest, sit apart or are empty add up to the dense sum, in any order,
    and the quantiles read from a span equal those of the dense counts."""
    sketches = Sketches.unanchored(2)
    total = sketches.counts(np.zeros((0, 2)))[0]
    dense = np.zeros((2, sketches.size), dtype=np.int64)
    for part in parts:
        counts, _ = sketches.counts(part)
        dense += np.asarray(counts)
        total.add(counts)
    np.testing.assert_array_equal(np.asarray(total), dense)
    copy = total.copy()
    total.clear()
    assert not np.asarray(total).any()
    np.testing.assert_array_equal(np.asarray(copy), dense)
    for f in range(2):
        start, span = copy.span(f)
        if span.sum():
            np.testing.assert_array_equal(
                quantiles(sketches[f], span, QS, start), quantiles(sketches[f], dense[f], QS)
            )


def test_a_window_is_anchored_once_and_never_moves() -> None:
    sketches = Sketches.unanchored(2)
    zeros_only = sketches.anchored_on([np.zeros(5), np.array([np.nan])])
    assert zeros_only is sketches  # nothing to anchor on yet
    first = sketches.anchored_on([np.array([1.7e9]), np.array([0.0])])
    assert first[0].offset is not None
    assert first[1].offset is None
    again = first.anchored_on([np.array([1e-12]), np.array([3.0])])
    assert again[0] == first[0]
    assert again[1].offset is not None


@pytest.mark.parametrize("name", ["normal", "lognormal_sigma_4", "mixture_with_zeros", "pareto"])
def test_cdf_matches_empirical_within_one_bucket(name: str) -> None:
    """A point p in bucket (γ^(k−1), γ^k] counts every value up to γ^k: the sketch CDF lies
    between the empirical CDF at p/γ and at p·γ (mirrored for negatives)."""
    values = np.sort(DISTRIBUTIONS[name](_rng()))
    layout = SketchLayout()
    gamma = math.exp(layout.log_gamma) * (1 + SLACK)
    points = np.concatenate([np.quantile(values, np.linspace(0, 1, 41)), [0.0, -1.0, 1.0]])
    estimate = cdf(layout, layout.counts(values), points)
    smallest = window(layout)[0]
    low = np.minimum(points / gamma, points * gamma) - smallest
    high = np.maximum(points / gamma, points * gamma) + smallest

    def empirical(x: FloatArray) -> FloatArray:
        return np.searchsorted(values, x, side="right") / len(values)

    assert np.all(estimate >= empirical(low)), points[estimate < empirical(low)]
    assert np.all(estimate <= empirical(high)), points[estimate > empirical(high)]


def test_empty_sketch_gives_nan() -> None:
    layout = SketchLayout()
    empty = np.zeros(layout.size, dtype=np.int64)
    assert np.isnan(quantiles(layout, empty, QS)).all()
    assert np.isnan(cdf(layout, empty, np.array([0.0, 1.0]))).all()


def test_values_outside_the_window_are_counted_and_saturate() -> None:
    """Documented: outside a field's window (≈ 9 decades either side of its anchor) the bound
    does not hold; such values land in the window's end bucket (they neither wrap nor overflow
    into another bucket) and are counted."""
    layout = SketchLayout().anchored_on(np.array([1.7e9]))
    inside = np.array([2.0, 1e9, 1.7e9, 1e17, -5e3])
    beyond = np.array([1e-12, -1e-300, 1e20, -1e300])
    assert layout.clamped(inside) == 0
    assert layout.clamped(beyond) == len(beyond)
    assert layout.clamped(np.zeros(3)) == 0  # zeros have their own bucket
    for value, sign in ((1e300, 1.0), (-1e300, -1.0)):
        estimate = quantiles(layout, layout.counts(np.array([value])), (0.5,))[0]
        assert np.sign(estimate) == sign
        largest = window(layout)[1]
        assert abs(abs(estimate) - largest) <= 0.02 * largest


def test_the_window_stays_inside_the_doubles() -> None:
    """Anchored on the largest or the smallest magnitudes, the window is moved inward: every
    bucket value is a finite double."""
    for value in (1.5e308, 5e-324):
        layout = SketchLayout().anchored_on(np.array([value]))
        assert np.isfinite(layout.bucket_values()).all()
        assert layout.clamped(np.array([value])) == 0


@pytest.mark.parametrize("accuracy", [0.0, 1.0, -0.1, 1.5])
def test_layout_refuses_accuracy_outside_open_unit_interval(accuracy: float) -> None:
    with pytest.raises(ValueError, match="relative_accuracy"):
        SketchLayout(relative_accuracy=accuracy)


def test_layout_size_is_fixed_by_its_parameters() -> None:
    """Memory per sketch depends on the layout only: γ-buckets spanning SPAN_DECADES per sign,
    wherever the window is anchored."""
    gamma = (1 + 0.01) / (1 - 0.01)
    per_sign = math.ceil(SPAN_DECADES * math.log(10) / math.log(gamma)) + 1
    for layout in (SketchLayout(0.01), SketchLayout(0.01).anchored_on(np.array([1e12]))):
        assert layout.size == 2 * per_sign + 1
        assert len(layout.bucket_values()) == layout.size
        smallest, largest = window(layout)
        assert largest / smallest >= 10**SPAN_DECADES
