"""Drift statistics against independent computations (numpy formulas, scipy) and simulation.

The null-hypothesis tests draw a fresh reference and a fresh live window from the same
distribution for every seed: α is a probability over both samples (the 1/m term of each critical
value is there for the reference's own noise), so a fixed reference would test something else.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from exporter.stats import drift
from exporter.stats.chi2 import chi2_isf, gamma_tails

FloatArray = np.ndarray
DECILE_PROBS = np.arange(1, 10) / 10  # interior deciles: 9 edges, 10 bins
PERCENTILES = np.arange(1, 100) / 100
REF_COUNT = 10_000
SEEDS = 300
NULL_SIZES = (50, 200, 1000, 5000, 50_000)

DISTRIBUTIONS: dict[str, Callable[[np.random.Generator, int], FloatArray]] = {
    "normal": lambda rng, n: rng.normal(3.0, 2.0, n),
    "lognormal": lambda rng, n: rng.lognormal(0.0, 1.0, n),
    "exponential": lambda rng, n: rng.exponential(5.0, n),
    "uniform": lambda rng, n: rng.uniform(-1.0, 1.0, n),
    "bimodal": lambda rng, n: np.where(
        rng.random(n) < 0.3, rng.normal(-4, 1, n), rng.normal(2, 1, n)
    ),
    "integers": lambda rng, n: rng.poisson(3.0, n).astype(np.float64),
}


def ecdf(sample: FloatArray, points: FloatArray) -> FloatArray:
    return np.searchsorted(np.sort(sample), points, side="right") / sample.size


def cdf_at(points: FloatArray, edges: FloatArray, counts: np.ndarray) -> FloatArray:
    """A binned live window's CDF at ``points``, linear inside each finite bin (the underflow
    mass at e_0, the overflow just above e_K): off by at most the share of one bin."""
    below_edge = np.cumsum(counts[:-1])  # count below e_i, i = 0..K
    return np.interp(points, edges, below_edge, left=0.0, right=counts.sum()) / counts.sum()


def quantile_edges(values: FloatArray, probs: FloatArray) -> FloatArray:
    """Distinct quantiles as bin edges, plus one just above the maximum when the top edge is the
    maximum (tied data), as the profile builder does: a live value beyond anything seen in
    development lands in an overflow bin of its own."""
    edges = np.unique(np.quantile(values, probs))
    if edges[-1] >= values.max():
        edges = np.append(edges, np.nextafter(values.max(), math.inf))
    return edges


# --- χ² quantiles ----------------------------------------------------------------------------


def test_chi2_quantiles_match_scipy_across_df_and_p() -> None:
    ps = np.concatenate([np.linspace(0.5, 0.999, 40), 1.0 - np.geomspace(1e-3, 1e-6, 10)])
    dfs = np.arange(1, 201)
    ours = np.array([[chi2_isf(1.0 - float(p), int(df)) for p in ps] for df in dfs])
    ref = stats.chi2.ppf(ps[None, :], dfs[:, None])
    np.testing.assert_allclose(ours, ref, rtol=1e-9)


def test_chi2_isf_keeps_precision_for_tiny_tails() -> None:
    qs = np.geomspace(1e-12, 0.5, 25)
    dfs = np.array([1, 2, 3, 9, 19, 49, 99, 200, 1000])
    ours = np.array([[chi2_isf(float(q), int(df)) for q in qs] for df in dfs])
    np.testing.assert_allclose(ours, stats.chi2.isf(qs[None, :], dfs[:, None]), rtol=1e-9)


def test_chi2_tails_match_scipy() -> None:
    for df in (1, 2, 7, 30, 200):
        xs = np.linspace(0.01, 6 * df + 20, 40)
        lower, upper = np.array([gamma_tails(df / 2, x / 2) for x in xs]).T
        np.testing.assert_allclose(upper, stats.chi2.sf(xs, df), rtol=1e-10)
        np.testing.assert_allclose(lower, stats.chi2.cdf(xs, df), rtol=1e-10)


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, 1.5])
def test_chi2_isf_rejects_probabilities_outside_the_open_interval(q: float) -> None:
    with pytest.raises(ValueError, match="tail probability"):
        chi2_isf(q, 3)


# --- statistics against independent formulas -------------------------------------------------


def bin_counts(values: npt.ArrayLike, edges: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Counts per bin of raw values (underflow and overflow included, a value on an edge in
    the bin above it, NaN not counted): the live side of a binned test, from raw data."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), v, side="right")
    return np.bincount(idx, minlength=np.size(edges) + 1).astype(np.int64)


def test_the_binning_helper_matches_numpy_histogram() -> None:
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(size=1000), [np.nan] * 7])
    edges = np.quantile(values[:1000], DECILE_PROBS)
    values = np.concatenate([values, edges])  # values on an edge belong to the bin above it
    expected, _ = np.histogram(
        values[~np.isnan(values)], np.concatenate([[-np.inf], edges, [np.inf]])
    )
    np.testing.assert_array_equal(bin_counts(values, edges), expected)


def test_psi_matches_direct_formula_with_explicit_pseudo_counts() -> None:
    rng = np.random.default_rng(2)
    for _ in range(50):
        bins = int(rng.integers(2, 30))
        ref = rng.dirichlet(np.ones(bins) * 0.7)
        ref[rng.random(bins) < 0.2] = 0.0  # bins the reference never saw
        if ref.sum() == 0:
            continue
        counts = rng.poisson(rng.uniform(0, 40), bins)  # zeros included
        if counts.sum() == 0:
            continue
        lam, n = 0.5, counts.sum()
        refn = ref / ref.sum()
        p = (counts + lam) / (n + lam * bins)
        q = (refn * n + lam) / (n + lam * bins)
        assert drift.psi(ref, counts, pseudo_count=lam) == pytest.approx(
            np.sum((p - q) * np.log(p / q)), rel=1e-12
        )


def test_psi_without_smoothing_is_the_textbook_formula() -> None:
    rng = np.random.default_rng(3)
    ref = rng.dirichlet(np.ones(12))
    counts = rng.integers(1, 500, 12)
    p = counts / counts.sum()
    expected = np.sum((p - ref) * np.log(p / ref))
    assert drift.psi(ref, counts, pseudo_count=0.0) == pytest.approx(expected, rel=1e-12)


def test_js_distance_matches_scipy() -> None:
    rng = np.random.default_rng(4)
    for _ in range(100):
        k = int(rng.integers(1, 40))
        p, q = rng.poisson(5, k).astype(float), rng.poisson(5, k).astype(float)
        p[rng.random(k) < 0.2] = 0.0  # categories present on one side only
        if p.sum() == 0 or q.sum() == 0:
            continue
        assert drift.js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)


def test_js_distance_of_disjoint_supports_is_one() -> None:
    assert drift.js_distance([1, 0, 0], [0, 3, 2]) == pytest.approx(1.0)


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_ks_at_reference_percentiles_brackets_the_exact_two_sample_statistic(name: str) -> None:
    """Between two points both CDFs are monotone, so the exact KS statistic (scipy's ks_2samp on
    the raw samples) lies in [D_points, D_points + the largest CDF step between points]."""
    rng = np.random.default_rng(5)
    draw = DISTRIBUTIONS[name]
    for shift in (0.0, 0.3, 1.0):
        ref, live = draw(rng, 20_000), draw(rng, 5_000) + shift
        points, ref_cdf = drift.cdf_points(ref, PERCENTILES)
        live_cdf = ecdf(live, points)
        d_points = drift.ks_statistic(ref_cdf, live_cdf)
        exact = stats.ks_2samp(ref, live).statistic
        ref_step = np.diff(np.r_[0, ref_cdf, 1]).max()
        gap = max(ref_step, np.diff(np.r_[0, live_cdf, 1]).max())
        assert d_points <= exact + 1e-12
        assert exact <= d_points + gap + 1e-12
        if name != "integers":  # ties make whole percentiles coincide: steps are wide there
            assert ref_step <= 0.01 + 1e-3


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_ks_from_binned_live_data_stays_within_the_bin_tolerance(name: str) -> None:
    """cdf_at interpolates inside a bin, so each value is off by at most the share of one bin."""
    rng = np.random.default_rng(6)
    draw = DISTRIBUTIONS[name]
    ref, live = draw(rng, 20_000), draw(rng, 5_000) * 1.1
    points, ref_cdf = drift.cdf_points(ref, PERCENTILES)
    edges = np.linspace(np.quantile(live, 0.001), np.quantile(live, 0.999), 400)
    counts = bin_counts(live, edges)
    binned = cdf_at(points, edges, counts)
    widest = counts.max() / counts.sum()
    assert np.abs(binned - ecdf(live, points)).max() <= widest + 1e-12
    exact = stats.ks_2samp(ref, live).statistic
    gap = max(np.diff(np.r_[0, ref_cdf, 1]).max(), np.diff(np.r_[0, binned, 1]).max())
    d = drift.ks_statistic(ref_cdf, binned)
    assert d - widest - 1e-12 <= exact <= d + widest + gap + 1e-12


# --- critical values -------------------------------------------------------------------------


def test_psi_and_js_critical_values_follow_the_chi2_formulas() -> None:
    for n, m, cells, alpha, d in [
        (100, 1e4, 10, 0.01, 1),
        (5000, 2e5, 20, 0.05, 7),
        (300, math.inf, 3, 0.01, 40),
    ]:
        chi = stats.chi2.isf(alpha / d, cells - 1)
        inv = 1 / n + 1 / m
        assert drift.psi_critical(n, m, cells, alpha, d) == pytest.approx(inv * chi, rel=1e-9)
        assert drift.js_critical(n, m, cells, alpha, d) == pytest.approx(
            math.sqrt(inv * chi / (8 * math.log(2))), rel=1e-9
        )


def test_js_null_scaling_comes_from_its_second_order_expansion() -> None:
    """The JS critical value rests on 8·ln2·JSD_bits ≈ Σ(p−q)²/π for nearby p, q (π = mixture)."""
    rng = np.random.default_rng(8)
    for scale in (1e-2, 1e-3):
        pi = rng.dirichlet(np.ones(15))
        delta = rng.normal(size=15) * pi * scale
        delta -= pi * delta.sum()
        p, q = pi + delta / 2, pi - delta / 2
        jsd_bits = jensenshannon(p, q, base=2) ** 2
        assert 8 * math.log(2) * jsd_bits == pytest.approx(np.sum((p - q) ** 2 / pi), rel=5 * scale)


def test_ks_coefficient_is_the_asymptotic_kolmogorov_quantile() -> None:
    for a in (0.05, 0.01, 1e-3, 1e-5):
        assert drift.ks_c(a) == pytest.approx(stats.kstwobign.isf(a), rel=1e-5)
    assert drift.ks_critical(400, 1600, 0.01, 1) == pytest.approx(
        drift.ks_c(0.01) * math.sqrt(2000 / 640_000)
    )


def test_bonferroni_divisor_is_the_same_as_a_smaller_alpha() -> None:
    assert drift.psi_critical(500, 1e4, 10, 0.01, 8) == pytest.approx(
        drift.psi_critical(500, 1e4, 10, 0.00125)
    )
    assert drift.ks_critical(500, 1e4, 0.01, 8) == pytest.approx(
        drift.ks_critical(500, 1e4, 0.00125)
    )
    assert drift.psi_critical(500, 1e4, 10, 0.01, 8) > drift.psi_critical(500, 1e4, 10, 0.01, 1)


def test_effective_threshold_is_the_larger_of_floor_and_critical() -> None:
    assert drift.effective_threshold(0.1, 0.3) == 0.3
    assert drift.effective_threshold(0.1, 0.02) == 0.1


@pytest.mark.parametrize(("alpha", "d"), [(0.0, 1), (1.0, 1), (0.01, 0)])
def test_critical_values_reject_bad_alpha_and_divisor(alpha: float, d: int) -> None:
    with pytest.raises(ValueError):
        drift.ks_critical(100, 100, alpha, d)


# --- false positives under the null, power under change ---------------------------------------


@functools.cache
def null_statistics() -> dict[int, FloatArray]:
    """PSI, KS, JS (smoothed, as the verdicts compute them) for SEEDS windows per size, each with
    its own reference from the same N(0, 1)."""
    out: dict[int, FloatArray] = {}
    for n in NULL_SIZES:
        rows = []
        for seed in range(SEEDS):
            rng = np.random.default_rng([seed, n])
            ref, live = rng.standard_normal(REF_COUNT), rng.standard_normal(n)
            edges = np.quantile(ref, DECILE_PROBS)
            shares, counts = bin_counts(ref, edges) / REF_COUNT, bin_counts(live, edges)
            points, ref_cdf = drift.cdf_points(ref, PERCENTILES)
            rows.append(
                (
                    drift.psi(shares, counts),
                    drift.ks_statistic(ref_cdf, ecdf(live, points)),
                    drift.js_distance(*drift.smoothed_shares(shares, counts)),
                )
            )
        out[n] = np.array(rows)
    return out


def allowed_false_positives(alpha: float) -> int:
    """Largest count still consistent with a true rate α: binomial upper tail at 1e-3."""
    return int(stats.binom.isf(1e-3, SEEDS, alpha))


@pytest.mark.parametrize("alpha", [0.05, 0.01])
@pytest.mark.parametrize("n", NULL_SIZES)
def test_critical_values_alone_keep_false_positives_at_alpha(n: int, alpha: float) -> None:
    """No floor: the sample-size critical values alone must hold the false-positive rate."""
    psi_s, ks_s, js_s = null_statistics()[n].T
    crit = (
        drift.psi_critical(n, REF_COUNT, 10, alpha),
        drift.ks_critical(n, REF_COUNT, alpha),
        drift.js_critical(n, REF_COUNT, 10, alpha),
    )
    false_positives = [int(np.sum(s > c)) for s, c in zip((psi_s, ks_s, js_s), crit, strict=True)]
    assert max(false_positives) <= allowed_false_positives(alpha), false_positives


def test_critical_values_are_not_needlessly_conservative() -> None:
    """A critical value that is too large passes the tests above; pooled over the large windows
    (where the asymptotics hold) the rate at α = 0.05 must stay above α/2."""
    alpha = 0.05
    large = [n for n in NULL_SIZES if n >= 1000]
    pooled = np.zeros(3, dtype=int)
    for n in large:
        crit = (
            drift.psi_critical(n, REF_COUNT, 10, alpha),
            drift.ks_critical(n, REF_COUNT, alpha),
            drift.js_critical(n, REF_COUNT, 10, alpha),
        )
        pooled += np.sum(null_statistics()[n] > np.array(crit), axis=0)
    least = stats.binom.ppf(1e-3, SEEDS * len(large), alpha / 2)
    assert pooled.min() >= least, pooled


@pytest.mark.parametrize("n", NULL_SIZES)
def test_default_verdicts_keep_false_positives_at_alpha(n: int) -> None:
    """Whole verdicts with default floors, α and minimum counts (n=50 gives no verdict)."""
    rng = np.random.default_rng(n)
    alarms = np.zeros(3, dtype=int)
    for _ in range(SEEDS):
        ref, live = rng.standard_normal(REF_COUNT), rng.standard_normal(n)
        verdicts = verdicts_for(ref, live, n_tests=1)
        alarms += [v is not None and v.drifted for v in verdicts]
        assert (n >= drift.DEFAULT_MIN_COUNT) == all(v is not None for v in verdicts)
    assert alarms.max() <= allowed_false_positives(drift.DEFAULT_ALPHA), alarms


def verdicts_for(
    ref: FloatArray, live: FloatArray, n_tests: int
) -> tuple[drift.Verdict | None, ...]:
    edges = np.quantile(ref, DECILE_PROBS)
    shares, counts = bin_counts(ref, edges) / ref.size, bin_counts(live, edges)
    points, ref_cdf = drift.cdf_points(ref, PERCENTILES)
    return (
        drift.psi_verdict(shares, ref.size, counts, n_tests=n_tests),
        drift.ks_verdict(ref_cdf, ref.size, ecdf(live, points), live.size, n_tests=n_tests),
        drift.js_verdict(shares, ref.size, counts, n_tests=n_tests),
    )


@pytest.mark.parametrize("alpha", [0.05, 0.01])
@pytest.mark.parametrize("n", [100, 1000, 20_000])
def test_categorical_null_with_rare_categories_keeps_false_positives_at_alpha(
    n: int, alpha: float
) -> None:
    pi = 1.0 / np.arange(1, 21) ** 1.2  # Zipf-like: the rarest of 20 categories has 1.0 %
    pi /= pi.sum()
    rng = np.random.default_rng(n)
    refs, lives = rng.multinomial(REF_COUNT, pi, SEEDS), rng.multinomial(n, pi, SEEDS)
    alarms = np.zeros(2, dtype=int)
    for ref, live in zip(refs, lives, strict=True):
        for i, verdict in enumerate(
            (
                drift.psi_verdict(ref / REF_COUNT, REF_COUNT, live, floor=0.0, alpha=alpha),
                drift.js_verdict(ref / REF_COUNT, REF_COUNT, live, floor=0.0, alpha=alpha),
            )
        ):
            assert verdict is not None
            alarms[i] += verdict.drifted
    assert alarms.max() <= allowed_false_positives(alpha), alarms


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda z: z + 0.5, id="mean+0.5sd"),
        pytest.param(lambda z: z * 1.5, id="sd*1.5"),
    ],
)
def test_shifted_and_rescaled_windows_are_detected(
    change: Callable[[FloatArray], FloatArray],
) -> None:
    """n=5000 against m=10000, default floors, Bonferroni over 5 fields: every statistic fires."""
    rng = np.random.default_rng(9)
    detected = np.zeros(3, dtype=int)
    trials = 100
    for _ in range(trials):
        ref, live = rng.standard_normal(REF_COUNT), change(rng.standard_normal(5000))
        detected += [v is not None and v.drifted for v in verdicts_for(ref, live, n_tests=5)]
    assert detected.min() >= 0.95 * trials, detected


def test_categorical_share_change_is_detected() -> None:
    pi = np.array([0.4, 0.3, 0.2, 0.1])
    moved = np.array([0.25, 0.3, 0.2, 0.25])  # 15 points moved from the first to the last
    rng = np.random.default_rng(10)
    for _ in range(50):
        ref, live = rng.multinomial(REF_COUNT, pi), rng.multinomial(5000, moved)
        psi_v = drift.psi_verdict(ref / REF_COUNT, REF_COUNT, live)
        js_v = drift.js_verdict(ref / REF_COUNT, REF_COUNT, live)
        assert psi_v is not None
        assert psi_v.drifted
        assert js_v is not None
        assert js_v.drifted


# --- degenerate inputs ------------------------------------------------------------------------


def test_empty_window_gives_no_verdict_and_no_number() -> None:
    shares = np.full(10, 0.1)
    empty = np.zeros(10)
    assert drift.psi_verdict(shares, REF_COUNT, empty, min_count=0) is None
    assert drift.js_verdict(shares, REF_COUNT, empty, min_count=0) is None
    assert (
        drift.ks_verdict(np.linspace(0.1, 0.9, 9), REF_COUNT, np.full(9, np.nan), 0, min_count=0)
        is None
    )
    assert math.isnan(drift.psi(shares, empty))
    assert math.isnan(drift.js_distance(shares, empty))


def test_all_missing_field_gives_no_verdict() -> None:
    rng = np.random.default_rng(11)
    ref = rng.normal(size=REF_COUNT)
    live = np.full(500, np.nan)
    edges = np.quantile(ref, DECILE_PROBS)
    counts = bin_counts(live, edges)
    assert counts.sum() == 0
    assert drift.psi_verdict(bin_counts(ref, edges) / REF_COUNT, REF_COUNT, counts) is None
    points, live_cdf = drift.cdf_points(live, PERCENTILES)
    assert points.size == 0
    assert live_cdf.size == 0
    assert drift.ks_verdict(live_cdf, REF_COUNT, live_cdf, 0, min_count=0) is None


def test_missing_reference_gives_no_verdict() -> None:
    assert drift.psi_verdict(np.full(4, 0.25), 0, np.full(4, 100)) is None
    assert drift.ks_verdict([0.5], 0, [0.5], 400) is None


def test_window_below_the_minimum_count_gives_no_verdict() -> None:
    shares = np.full(10, 0.1)
    assert drift.psi_verdict(shares, REF_COUNT, np.full(10, 9)) is None  # 90 < 100
    assert drift.psi_verdict(shares, REF_COUNT, np.full(10, 10)) is not None
    many = np.full(40, 1 / 40)  # 40 cells need 5 records each: 200
    assert drift.js_verdict(many, REF_COUNT, np.full(40, 4)) is None
    assert drift.js_verdict(many, REF_COUNT, np.full(40, 5)) is not None


def test_cells_without_reference_support_are_pooled_with_their_neighbour() -> None:
    """A cell the reference never filled (an unseen category, the bins beyond its range) is
    pooled into the supported cell on its left before PSI and JS: its calm share ~1/(m+1)
    must not weigh like evidence. A large share still moves its neighbour and fires."""
    ref = np.array([0.0, 0.5, 0.5, 0.0])
    live = np.array([10, 300, 290, 400])
    q, c = drift.pool_unsupported(ref, live)
    np.testing.assert_array_equal(q, [0.5, 0.5])
    np.testing.assert_array_equal(c, [310, 690])  # the leading cell goes to the first supported
    few, many = np.array([1, 500, 498, 1]), np.array([5, 195, 200, 600])
    for live in (few, many):
        assert drift.js_distance(ref, live) == pytest.approx(jensenshannon(ref, live, base=2))
    quiet, loud = drift.psi_verdict(ref, REF_COUNT, few), drift.psi_verdict(ref, REF_COUNT, many)
    assert quiet is not None
    assert not quiet.drifted
    assert loud is not None
    assert loud.statistic == pytest.approx(drift.psi(*drift.pool_unsupported(ref, many)))
    assert loud.drifted
    loud_js = drift.js_verdict(ref, REF_COUNT, many)
    assert loud_js is not None
    assert loud_js.drifted


def test_single_bin_has_nothing_to_test() -> None:
    verdict = drift.psi_verdict([1.0], REF_COUNT, [800], floor=0.0)
    assert verdict is not None
    assert (verdict.statistic, verdict.critical, verdict.drifted) == (0.0, 0.0, False)
    js = drift.js_verdict([1.0], REF_COUNT, [800], floor=0.0)
    assert js is not None
    assert not js.drifted


def test_constant_data_compares_by_the_observed_cdf() -> None:
    """A constant reference collapses all percentiles to one point with F = 1, not p_i."""
    ref = np.full(REF_COUNT, 7.0)
    points, ref_cdf = drift.cdf_points(ref, PERCENTILES)
    np.testing.assert_array_equal(points, [7.0])
    np.testing.assert_array_equal(ref_cdf, [1.0])
    same = drift.ks_verdict(ref_cdf, REF_COUNT, ecdf(np.full(300, 7.0), points), 300)
    moved = drift.ks_verdict(ref_cdf, REF_COUNT, ecdf(np.full(300, 8.0), points), 300)
    assert same is not None
    assert same.statistic == 0.0
    assert not same.drifted
    assert moved is not None
    assert moved.statistic == 1.0
    assert moved.drifted
    edges = quantile_edges(ref, DECILE_PROBS)
    shares = bin_counts(ref, edges) / REF_COUNT
    np.testing.assert_array_equal(shares, [0.0, 1.0, 0.0])  # below, at, above the constant
    assert drift.psi(shares, bin_counts(np.full(300, 7.0), edges)) == 0.0
    for moved_to in (6.0, 8.0):
        # One supported cell: PSI has nothing to test (the empty cells are pooled into it);
        # the move is KS's to see, and out_of_range's, value by value.
        shifted = drift.psi_verdict(shares, REF_COUNT, bin_counts(np.full(300, moved_to), edges))
        assert shifted is not None
        assert (shifted.statistic, shifted.drifted) == (0.0, False)


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        drift.psi([0.5, 0.5], [1, 2, 3])
    with pytest.raises(ValueError, match="differ in length"):
        drift.js_distance([1], [1, 2])
