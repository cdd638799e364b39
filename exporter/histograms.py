"""Histogram bucket bounds: the configured ones, or defaults that follow the reference profile.

Why the profile: the fixed defaults fit a probability (0.1 steps over 0..1) and a web service's
latency (1 ms … 10 s). A regression model's prediction in the hundreds lands entirely in ``+Inf``
with them, and a confidence that never drops below 0.5 uses five of ten buckets. When a profile is
loaded at start, a histogram the config leaves at its default gets bounds from the development
range instead. Bounds are decided once, at start: Prometheus sums histograms bucket by bucket, so
a sidecar whose bounds changed while running (on a profile reload) would make its own history
and its replicas' series disagree.

Pure: the config's bounds and a profile in, bounds out.
"""

from __future__ import annotations

import math

from exporter.reference import NumericReference, Reference

LATENCY = "latency_seconds"
MARGIN = 0.1  # the development range is widened by this share of its span on each side
TARGET_BUCKETS = 10  # linear bounds: the nice step nearest span / TARGET_BUCKETS
NICE = (1.0, 2.0, 2.5, 5.0)
LATENCY_RANGE = (0.001, 10.0)  # the default latency bounds' span, never narrowed
LATENCY_HEADROOM = 10.0  # the top latency bound is at least this many times the slowest seen
LATENCY_LIMITS = (1e-6, 1e5)  # and no bound outside 1 µs .. about a day, whatever development saw
# The most bounds a derived histogram can have (the size budget counts them): linear steps are
# the nice number nearest a tenth of the span, at most √2 below it, so ≤ 10·√2 + 2 bounds; the
# latency series has three bounds a decade over at most LATENCY_LIMITS.
MAX_BOUNDS = {"prediction": 16, "confidence": 16, LATENCY: 34}


def most_bounds(name: str, configured: tuple[float, ...], explicit: frozenset[str]) -> int:
    """The most bounds the histogram can have once a profile is loaded (for the size budget)."""
    if name in explicit:
        return len(configured)
    return max(len(configured), MAX_BOUNDS.get(name, 0))


def histogram_bounds(
    configured: tuple[tuple[str, tuple[float, ...]], ...],
    explicit: frozenset[str],
    reference: Reference | None,
) -> tuple[tuple[str, tuple[float, ...]], ...]:
    """Every histogram's bounds: as configured when ``explicit`` names it, else following the
    profile's range for the field when the profile has it, else the default."""
    result = []
    for name, bounds in configured:
        ref = None if reference is None or name in explicit else reference.numeric.get(name)
        derived: tuple[float, ...] = ()
        if ref is not None:
            derived = latency_bounds(ref) if name == LATENCY else linear_bounds(ref)
        result.append((name, derived or bounds))
    return tuple(result)


def _clean(value: float) -> float:
    """k·step without binary noise (0.30000000000000004 → 0.3), so ``le`` labels read well."""
    return float(f"{value:.12g}")


def nice_step(rough: float) -> float:
    """The 1, 2, 2.5 or 5 × 10^k nearest to ``rough`` (in ratio)."""
    exponent = math.floor(math.log10(rough))
    candidates = [m * 10.0**e for e in (exponent - 1, exponent, exponent + 1) for m in NICE]
    return min(candidates, key=lambda c: abs(math.log(c / rough)))


def linear_bounds(ref: NumericReference) -> tuple[float, ...]:
    """Equal steps over the development range widened by ``MARGIN`` on each side (kept inside
    0..1 when the development values are), so about ``TARGET_BUCKETS`` buckets cover what
    development saw and a moderate shift still lands in a finite bucket. Empty for a constant
    field (the default bounds are kept)."""
    low, high = ref.min, ref.max
    span = high - low
    if span <= 0:
        return ()
    low, high = low - MARGIN * span, high + MARGIN * span
    if ref.min >= 0.0 and ref.max <= 1.0:
        low, high = max(low, 0.0), min(high, 1.0)
    step = nice_step((high - low) / TARGET_BUCKETS)
    first, last = math.floor(low / step) + 1, math.ceil(high / step)
    return tuple(_clean(k * step) for k in range(first, last + 1))


def latency_bounds(ref: NumericReference) -> tuple[float, ...]:
    """The 1–2.5–5 series from the step at or below the faster of 1 ms and the fastest
    development latency to the step at or above the slower of 10 s and ``LATENCY_HEADROOM``
    times the slowest: the default for a usual service, wider for one whose latencies fall
    outside it. Never narrower than the default, so a latency SLO between 1 ms and 10 s always
    falls inside a finite bucket."""
    low = min(LATENCY_RANGE[0], ref.min) if ref.min > 0 else LATENCY_RANGE[0]
    high = max(LATENCY_RANGE[1], LATENCY_HEADROOM * ref.max)
    low, high = max(low, LATENCY_LIMITS[0]), min(high, LATENCY_LIMITS[1])
    exponents = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    steps = [_clean(m * 10.0**e) for e in exponents for m in (1.0, 2.5, 5.0)]
    first = max(i for i, v in enumerate(steps) if v <= low * (1 + 1e-9))
    last = min(i for i, v in enumerate(steps) if v >= high * (1 - 1e-9))
    return tuple(steps[first : last + 1])
