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

from exporter.stats.sketch import SketchLayout, cdf, quantiles

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
}


def assert_within_bound(
    layout: SketchLayout, values: FloatArray, qs: tuple[float, ...] = QS
) -> None:
    counts = layout.counts(values)
    estimates = quantiles(layout, counts, qs)
    truth = np.quantile(values, qs, method="lower")
    for q, estimate, exact in zip(qs, estimates, truth, strict=True):
        if abs(exact) < layout.min_value:
            assert estimate == 0.0, (q, exact, estimate)
        else:
            error = abs(estimate - exact)
            bound = layout.relative_accuracy * abs(exact) * (1 + SLACK)
            assert error <= bound, f"q={q}: exact {exact!r}, estimate {estimate!r}"


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("accuracy", [0.01, 0.001, 0.05])
def test_quantiles_within_relative_accuracy(name: str, accuracy: float) -> None:
    values = DISTRIBUTIONS[name](_rng())
    assert_within_bound(SketchLayout(relative_accuracy=accuracy), values)


@settings(max_examples=200, deadline=None)
@given(
    values=arrays(
        np.float64,
        st.integers(1, 300),
        elements=st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False),
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
    assert counts[layout.zero_index] == np.count_nonzero(np.abs(values) < layout.min_value)


def test_buckets_are_ordered_like_the_values() -> None:
    """Quantiles read buckets left to right, so bucket order must follow value order."""
    layout = SketchLayout()
    values = np.sort(np.concatenate([-DISTRIBUTIONS["wide_range"](_rng()), [0.0], [1e-12]]))
    assert np.all(np.diff(layout.index(values)) >= 0)
    assert np.all(np.diff(layout.bucket_values()) > 0)


@settings(max_examples=100, deadline=None)
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


def test_counts_per_row_equal_separate_sketches() -> None:
    rng = _rng()
    layout = SketchLayout()
    rows = [rng.normal(i * 10.0, 1.0 + i, 500 + 100 * i) for i in range(4)]
    index = np.concatenate([layout.index(r) for r in rows])
    row = np.repeat(np.arange(4), [len(r) for r in rows])
    per_row = layout.counts_per_row(index, row, 4)
    for i, values in enumerate(rows):
        np.testing.assert_array_equal(per_row[i], layout.counts(values))


@pytest.mark.parametrize("name", ["normal", "lognormal_sigma_4", "mixture_with_zeros", "pareto"])
def test_cdf_matches_empirical_within_one_bucket(name: str) -> None:
    """A point p in bucket (γ^(k−1), γ^k] counts every value up to γ^k: the sketch CDF lies
    between the empirical CDF at p/γ and at p·γ (mirrored for negatives)."""
    values = np.sort(DISTRIBUTIONS[name](_rng()))
    layout = SketchLayout()
    gamma = math.exp(layout.log_gamma) * (1 + SLACK)
    points = np.concatenate([np.quantile(values, np.linspace(0, 1, 41)), [0.0, -1.0, 1.0]])
    estimate = cdf(layout, layout.counts(values), points)
    low = np.minimum(points / gamma, points * gamma) - layout.min_value
    high = np.maximum(points / gamma, points * gamma) + layout.min_value

    def empirical(x: FloatArray) -> FloatArray:
        return np.searchsorted(values, x, side="right") / len(values)

    assert np.all(estimate >= empirical(low)), points[estimate < empirical(low)]
    assert np.all(estimate <= empirical(high)), points[estimate > empirical(high)]


def test_empty_sketch_gives_nan() -> None:
    layout = SketchLayout()
    empty = np.zeros(layout.size, dtype=np.int64)
    assert np.isnan(quantiles(layout, empty, QS)).all()
    assert np.isnan(cdf(layout, empty, np.array([0.0, 1.0]))).all()


def test_magnitudes_below_min_value_are_zero() -> None:
    layout = SketchLayout(min_value=1e-6)
    values = np.array([1e-9, -1e-8, 5e-7])
    estimates = quantiles(layout, layout.counts(values), (0.0, 0.5, 1.0))
    np.testing.assert_array_equal(estimates, np.zeros(3))


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_values_beyond_max_value_are_clamped_to_the_last_bucket(sign: float) -> None:
    """Documented: above max_value the bound does not hold; the estimate saturates near
    max_value (it neither wraps nor overflows into another bucket)."""
    layout = SketchLayout(max_value=1e6)
    huge = sign * np.array([1e7, 1e12, 1e300])
    counts = layout.counts(huge)
    edge = 0 if sign < 0 else layout.size - 1
    assert counts[edge] == len(huge)
    estimate = quantiles(layout, counts, (0.5,))[0]
    assert abs(abs(estimate) - 1e6) <= 2 * layout.relative_accuracy * 1e6 * (1 + SLACK)
    assert np.sign(estimate) == sign


@pytest.mark.parametrize("accuracy", [0.0, 1.0, -0.1, 1.5])
def test_layout_refuses_accuracy_outside_open_unit_interval(accuracy: float) -> None:
    with pytest.raises(ValueError, match="relative_accuracy"):
        SketchLayout(relative_accuracy=accuracy)


def test_layout_size_is_fixed_by_its_parameters() -> None:
    """Memory per sketch depends on the layout only: γ-buckets spanning min..max per sign."""
    layout = SketchLayout(relative_accuracy=0.01, min_value=1e-9, max_value=1e9)
    gamma = (1 + 0.01) / (1 - 0.01)
    per_sign = math.ceil(math.log(1e9, gamma)) - math.floor(math.log(1e-9, gamma)) + 1
    assert layout.size == 2 * per_sign + 1
    assert len(layout.bucket_values()) == layout.size
