"""Compare a live window with the development reference: PSI, KS and Jensen–Shannon.

Pure functions on numpy arrays (no I/O, no clock). Each statistic comes with a critical value that
shrinks with the sample sizes, so a small window is not called drifted for sampling noise alone,
and a practical floor, so a huge window is not called drifted for a change nobody cares about.
The derivations and the reasons for the defaults are in docs/drift.md.

Bin layout shared by every function here: edges e_0 < … < e_K give K + 2 bins,
(-inf, e_0), [e_0, e_1), …, [e_{K-1}, e_K), [e_K, +inf) — underflow and overflow included.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from exporter.config_types import DriftConfig
from exporter.stats.chi2 import chi2_isf
from exporter.stats.pooling import pooled_cells

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

# The defaults are the config's (``drift:`` keys), so a caller that passes none judges as the
# sidecar does; DriftConfig says why each value.
_CONFIGURED = DriftConfig()
DEFAULT_ALPHA = _CONFIGURED.alpha
DEFAULT_PSI_FLOOR = _CONFIGURED.psi_floor
DEFAULT_KS_FLOOR = _CONFIGURED.ks_floor
DEFAULT_JS_FLOOR = _CONFIGURED.js_floor
DEFAULT_MIN_COUNT = _CONFIGURED.min_samples
MIN_MEAN_PER_CELL = 5.0
DEFAULT_PSEUDO_COUNT = 0.5


def _as_float(a: ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _pair(a: ArrayLike, b: ArrayLike, names: tuple[str, str]) -> tuple[FloatArray, FloatArray]:
    x, y = _as_float(a, names[0]), _as_float(b, names[1])
    if x.shape != y.shape:
        raise ValueError(f"{names[0]} and {names[1]} differ in length: {x.size} != {y.size}")
    return x, y


# --- binning helpers -------------------------------------------------------------------------


def cdf_points(values: ArrayLike, probs: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Points (the values' quantiles at ``probs``, deduplicated) and the exact ECDF there.

    The reference must store F(x_i) as observed, not the nominal p_i: for discrete or constant
    data many quantiles coincide and F(x_i) can be far above p_i; using p_i would make a live
    window identical to the reference look maximally drifted.
    """
    v = np.sort(_as_float(values, "values"))
    v = v[~np.isnan(v)]
    if v.size == 0:
        return np.empty(0), np.empty(0)
    points = np.unique(np.quantile(v, _as_float(probs, "probs")))
    return points, np.searchsorted(v, points, side="right") / v.size


def pool_unsupported(
    ref_shares: ArrayLike, live_counts: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Merge every cell the reference gives no share into its nearest supported neighbour on
    the left (the first supported cell for leading ones); cells stay in their order.

    Why: a cell with reference share exactly 0 (the underflow and overflow bins, an "other"
    category nothing was folded into) is not evidence that the value is impossible, only that
    a sample of m records did not hold it — under the null such a cell still receives about
    n/(m+1) live values. Any smoothing makes ln(p/q) there depend on the smoothing and not on
    the data, and in live units it made calm 10 000-record windows against a 500-row reference
    alarm six times too often. Pooled, every cell is estimated by both samples and the χ²
    approximation behind the critical values holds. Values beyond the reference's range and
    categories it never saw are still counted, record by record, by the ``out_of_range`` and
    ``unseen_category`` anomalies: that is their separate test.
    """
    q, c = _pair(ref_shares, live_counts, ("ref_shares", "live_counts"))
    supported = q > 0
    if supported.all() or not supported.any():
        return q, c
    cell = pooled_cells(q)
    pooled_q = np.bincount(cell, weights=q).astype(np.float64)
    pooled_c = np.bincount(cell, weights=c, minlength=pooled_q.size).astype(np.float64)
    return pooled_q, pooled_c


# --- statistics ------------------------------------------------------------------------------


def smoothed_shares(
    ref_shares: ArrayLike, live_counts: ArrayLike, pseudo_count: float = DEFAULT_PSEUDO_COUNT
) -> tuple[FloatArray, FloatArray]:
    """(reference, live) shares with the same ``pseudo_count`` added to every bin on both sides.

    Why: an empty bin makes ln(p/q) infinite, and in a small window an empty bin is ordinary
    sampling noise (10 equal bins, 50 records: 0.5 % per bin). Flooring shares at a tiny eps
    turns that noise into PSI ≈ q·ln(q/eps) ≈ 0.7, a false alarm. Adding λ pseudo-records per
    bin to both sides, in units of live records, p' = (c + λ)/(n + λB) and
    q' = (q·n + λ)/(n + λB), keeps equal sides exactly equal, keeps a bin the reference never saw
    (underflow, overflow, an unseen category) finite but large when live data lands in it, and
    fades as 1/n. λ = 0.5 is the Jeffreys / Krichevsky–Trofimov prior for multinomial shares; it
    also pulls JS's small-sample false-positive rate back to α (docs/drift.md).
    Returns NaN arrays when either side is empty.
    """
    q, c = _pair(ref_shares, live_counts, ("ref_shares", "live_counts"))
    n, ref_total = float(c.sum()), float(q.sum())
    if n <= 0.0 or ref_total <= 0.0:
        nan = np.full(q.shape, math.nan)
        return nan, nan.copy()
    denom = n + pseudo_count * c.size
    return (q / ref_total * n + pseudo_count) / denom, (c + pseudo_count) / denom


def psi(
    ref_shares: ArrayLike, live_counts: ArrayLike, pseudo_count: float = DEFAULT_PSEUDO_COUNT
) -> float:
    """Population stability index Σ (p − q)·ln(p / q) over the reference bins, on
    :func:`smoothed_shares`. NaN when either side is empty."""
    q_s, p_s = smoothed_shares(ref_shares, live_counts, pseudo_count)
    return float(np.sum((p_s - q_s) * np.log(p_s / q_s)))


def ks_statistic(ref_cdf: ArrayLike, live_cdf: ArrayLike) -> float:
    """max |F_ref − F_live| over the reference's CDF points.

    Between two points both CDFs are monotone, so this misses the continuous supremum by at most
    the larger CDF step between neighbouring points: with 99 reference percentiles, ~0.01 plus
    the live side's own step.
    """
    r, live = _pair(ref_cdf, live_cdf, ("ref_cdf", "live_cdf"))
    if r.size == 0 or np.isnan(live).any():
        return math.nan
    return float(np.max(np.abs(r - live)))


def js_distance(p: ArrayLike, q: ArrayLike) -> float:
    """Jensen–Shannon distance, base 2, in [0, 1], between two aligned count or share vectors.

    A category present on one side only is a zero on the other; JS stays finite there (the
    mixture is never zero where either side is positive), which is why it suits categories.
    """
    a, b = _pair(p, q, ("p", "q"))
    sa, sb = float(a.sum()), float(b.sum())
    if sa <= 0.0 or sb <= 0.0:
        return math.nan
    a, b = a / sa, b / sb
    m = (a + b) / 2.0
    jsd = 0.5 * (_kl_bits(a, m) + _kl_bits(b, m))
    return math.sqrt(min(max(jsd, 0.0), 1.0))


def _kl_bits(a: FloatArray, m: FloatArray) -> float:
    pos = a > 0.0
    return float(np.sum(a[pos] * np.log2(a[pos] / m[pos])))


# --- critical values -------------------------------------------------------------------------


def _tail(alpha: float, n_tests: int) -> float:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if n_tests < 1:
        raise ValueError(f"n_tests must be at least 1, got {n_tests}")
    return alpha / n_tests


def _inv_sizes(n: float, m: float) -> float:
    if n <= 0.0 or m <= 0.0:
        raise ValueError(f"sample sizes must be positive, got n={n}, m={m}")
    return 1.0 / n + 1.0 / m


def psi_critical_factor(n_bins: int, alpha: float = DEFAULT_ALPHA, n_tests: int = 1) -> float:
    """χ²_{B−1}(1 − α/d), the part of the PSI critical value that does not depend on the sample
    sizes (exported for the fleet rules, which supply their own n); 0 for a single bin."""
    tail = _tail(alpha, n_tests)
    return 0.0 if n_bins <= 1 else chi2_isf(tail, n_bins - 1)


def psi_critical(
    n: float, m: float, n_bins: int, alpha: float = DEFAULT_ALPHA, n_tests: int = 1
) -> float:
    """(1/n + 1/m)·χ²_{B−1}(1 − α/d): under equal distributions n·m/(n+m)·PSI → χ²_{B−1}.

    ``m`` may be ``math.inf`` when the reference is taken as exact. B counts bins with mass on
    either side; with one bin there is nothing to test and the critical value is 0.
    """
    factor, inv = psi_critical_factor(n_bins, alpha, n_tests), _inv_sizes(n, m)
    return inv * factor


def ks_c(a: float) -> float:
    """c(a) = sqrt(−ln(a/2)/2), the asymptotic two-sample KS coefficient."""
    return math.sqrt(-math.log(a / 2.0) / 2.0)


def ks_critical(n: float, m: float, alpha: float = DEFAULT_ALPHA, n_tests: int = 1) -> float:
    """c(α/d)·sqrt((n + m)/(n·m)); conservative for discrete data and for finite n."""
    tail, inv = _tail(alpha, n_tests), _inv_sizes(n, m)
    return ks_c(tail) * math.sqrt(inv)


def js_critical_factor(n_categories: int, alpha: float = DEFAULT_ALPHA, n_tests: int = 1) -> float:
    """χ²_{k−1}(1 − α/d) / (8·ln 2): the JS critical value is sqrt((1/n + 1/m) · this)."""
    return psi_critical_factor(n_categories, alpha, n_tests) / (8.0 * math.log(2.0))


def js_critical(
    n: float, m: float, n_categories: int, alpha: float = DEFAULT_ALPHA, n_tests: int = 1
) -> float:
    """sqrt((1/n + 1/m)·χ²_{k−1}(1 − α/d) / (8·ln 2)).

    Second-order expansion of JSD around equal shares gives JSD_nats ≈ Σ(p−q)²/(8π), and
    Σ(p̂−q̂)²/π·nm/(n+m) → χ²_{k−1}; the distance is the square root of JSD in bits.
    """
    factor, inv = js_critical_factor(n_categories, alpha, n_tests), _inv_sizes(n, m)
    return math.sqrt(inv * factor)


def effective_threshold(floor: float, critical: float) -> float:
    """The larger of the practical floor and the sample-size critical value."""
    return max(floor, critical)


# --- verdicts --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """One field's comparison: the statistic, its sample-size critical value, and the threshold
    actually applied (the larger of the critical value and the practical floor)."""

    statistic: float
    critical: float
    threshold: float

    @property
    def drifted(self) -> bool:
        return self.statistic > self.threshold


def required_count(min_count: int, n_cells: int) -> float:
    """Live records needed before a binned verdict: ``min_count``, and at least
    ``MIN_MEAN_PER_CELL`` per reference cell so the χ² approximation holds."""
    return max(float(min_count), MIN_MEAN_PER_CELL * n_cells)


def psi_verdict(
    ref_shares: ArrayLike,
    ref_count: float,
    live_counts: ArrayLike,
    *,
    floor: float = DEFAULT_PSI_FLOOR,
    alpha: float = DEFAULT_ALPHA,
    n_tests: int = 1,
    min_count: int = DEFAULT_MIN_COUNT,
    pseudo_count: float = DEFAULT_PSEUDO_COUNT,
) -> Verdict | None:
    """PSI with its threshold, or None when either side has too little data to judge. Cells
    without reference support are pooled first (:func:`pool_unsupported`)."""

    def statistic(q: FloatArray, c: FloatArray) -> float:
        return psi(q, c, pseudo_count)

    counts = (ref_shares, ref_count, live_counts, min_count)
    return _binned_verdict(*counts, statistic, psi_critical, floor, alpha, n_tests)


def ks_verdict(
    ref_cdf: ArrayLike,
    ref_count: float,
    live_cdf: ArrayLike,
    live_count: float,
    *,
    floor: float = DEFAULT_KS_FLOOR,
    alpha: float = DEFAULT_ALPHA,
    n_tests: int = 1,
    min_count: int = DEFAULT_MIN_COUNT,
) -> Verdict | None:
    """KS statistic over the reference's CDF points with its threshold, or None."""
    if ref_count <= 0 or live_count <= 0 or live_count < min_count:
        return None
    stat = ks_statistic(ref_cdf, live_cdf)
    if math.isnan(stat):
        return None
    crit = ks_critical(live_count, ref_count, alpha, n_tests)
    return Verdict(stat, crit, effective_threshold(floor, crit))


def js_verdict(
    ref_shares: ArrayLike,
    ref_count: float,
    live_counts: ArrayLike,
    *,
    floor: float = DEFAULT_JS_FLOOR,
    alpha: float = DEFAULT_ALPHA,
    n_tests: int = 1,
    min_count: int = DEFAULT_MIN_COUNT,
    pseudo_count: float = DEFAULT_PSEUDO_COUNT,
) -> Verdict | None:
    """Jensen–Shannon distance on :func:`smoothed_shares` with its threshold, or None.

    Smoothed because unsmoothed JS exceeds its χ² approximation when cells empty out: at 100
    records in 10 cells its false-positive rate is 1.6 % for α = 1 %; smoothed, 0.6 %.
    Cells without reference support are pooled first (:func:`pool_unsupported`).
    """

    def statistic(q: FloatArray, c: FloatArray) -> float:
        return js_distance(*smoothed_shares(q, c, pseudo_count))

    counts = (ref_shares, ref_count, live_counts, min_count)
    return _binned_verdict(*counts, statistic, js_critical, floor, alpha, n_tests)


def _binned_verdict(
    ref_shares: ArrayLike,
    ref_count: float,
    live_counts: ArrayLike,
    min_count: int,
    statistic: Callable[[FloatArray, FloatArray], float],
    critical: Callable[[float, float, int, float, int], float],
    floor: float,
    alpha: float,
    n_tests: int,
) -> Verdict | None:
    """PSI and JS judge binned counts alike: unsupported cells pooled, the same minimum count,
    the critical value at the cells either side fills; only the statistic and its critical
    value differ."""
    q, c = pool_unsupported(ref_shares, live_counts)
    n = float(c.sum())
    if ref_count <= 0 or n <= 0 or n < required_count(min_count, int(np.count_nonzero(q))):
        return None
    cells = int(np.count_nonzero((q > 0) | (c > 0)))
    crit = critical(n, ref_count, cells, alpha, n_tests)
    return Verdict(statistic(q, c), crit, effective_threshold(floor, crit))
