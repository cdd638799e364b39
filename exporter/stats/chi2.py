"""Chi-square tail quantiles with the standard library only.

Drift thresholds need χ²_df(1 − α/d) at run time, and the sidecar must not depend on scipy. The
regularised incomplete gamma function is evaluated by its power series below ``a + 1`` and by a
Lentz continued fraction above (both converge fast there), then inverted by Newton steps on the
logarithm of the smaller tail, kept inside a shrinking bracket so a bad step falls back to
bisection. Accuracy against ``scipy.stats.chi2`` is a relative error below 1e-9 for df 1..200 and
upper-tail probabilities from 0.5 down to 1e-12 (tests/test_drift.py).
"""

from __future__ import annotations

import math
from functools import lru_cache

_EPS = 1e-15
_TINY = 1e-300
_MAX_TERMS = 10_000


def _log_prefactor(a: float, x: float) -> float:
    """log(x^a e^-x / Γ(a)), shared by the series and the continued fraction."""
    return a * math.log(x) - x - math.lgamma(a)


def _lower_series(a: float, x: float) -> float:
    """P(a, x) by its power series; converges quickly when x < a + 1."""
    term = 1.0 / a
    total = term
    ap = a
    for _ in range(_MAX_TERMS):
        ap += 1.0
        term *= x / ap
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(_log_prefactor(a, x))


def _upper_fraction(a: float, x: float) -> float:
    """Q(a, x) by the modified Lentz continued fraction; converges quickly when x >= a + 1."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_TERMS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h * math.exp(_log_prefactor(a, x))


def gamma_tails(a: float, x: float) -> tuple[float, float]:
    """(P(a, x), Q(a, x)), each computed directly where it is small so neither loses digits."""
    if x <= 0.0:
        return 0.0, 1.0
    if x < a + 1.0:
        p = _lower_series(a, x)
        return p, 1.0 - p
    q = _upper_fraction(a, x)
    return 1.0 - q, q


def _start(q: float, a: float) -> float:
    """Starting y for Γ(a) with upper tail q.

    Wilson–Hilferty (χ²_df ≈ df·(1 − 2/(9df) + z·sqrt(2/(9df)))³) in the body; near zero, where
    it goes negative, P(a, y) ≈ y^a / Γ(a + 1) inverts exactly.
    """
    df = 2.0 * a
    h = 2.0 / (9.0 * df)
    wh = df * (1.0 - h + _normal_isf(q) * math.sqrt(h)) ** 3 / 2.0
    small = math.exp((math.log1p(-q) + math.lgamma(a + 1.0)) / a) if q > 0.5 else 0.0
    return wh if wh > small else max(small, _TINY)


def _normal_isf(q: float) -> float:
    """Upper-tail normal quantile, good to ~1e-3 (only a starting point for Newton)."""
    p = min(q, 1.0 - q)
    t = math.sqrt(-2.0 * math.log(p))
    z = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (
        1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t**3
    )
    return z if q < 0.5 else -z


@lru_cache(maxsize=1024)
def chi2_isf(q: float, df: float) -> float:
    """x with P(χ²_df > x) = q.

    Takes the upper-tail probability itself, because thresholds use q = α/d, which can be far
    smaller than the spacing of floats near 1 (1 − q would round). Cached: a scrape asks for the
    same few (q, df) pairs again and again.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"tail probability must be in (0, 1), got {q}")
    if df <= 0.0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    a = df / 2.0
    use_upper = q < 0.5
    target = math.log(q if use_upper else 1.0 - q)
    # Newton on log(tail) as a function of u = log(y): nearly linear in u for the lower tail
    # (log P ≈ a·u) and smooth for the upper one, so a handful of steps reach full precision.
    lo, hi, stride = -math.inf, math.inf, 0.5
    u = math.log(_start(q, a))
    for _ in range(200):
        y = math.exp(u)
        p_low, q_up = gamma_tails(a, y)
        tail = q_up if use_upper else p_low
        # The lower tail grows with u, the upper one shrinks.
        err = (math.log(tail) if tail > 0.0 else -math.inf) - target
        if (err > 0.0) != use_upper:
            hi = min(hi, u)
        else:
            lo = max(lo, u)
        nxt = math.nan
        if tail > 0.0:
            slope = math.exp(_log_prefactor(a, y)) / tail  # d log(tail) / du, up to sign
            if slope > 0.0:
                nxt = u + err / slope if use_upper else u - err / slope
        if not lo < nxt < hi:
            if math.isinf(lo) or math.isinf(hi):
                stride *= 2.0  # not bracketed yet: walk outward, faster each time
                nxt = u + (stride if math.isinf(hi) else -stride)
            else:
                nxt = (lo + hi) / 2.0
        if abs(nxt - u) <= 1e-14:
            u = nxt
            break
        u = nxt
    return 2.0 * math.exp(u)
