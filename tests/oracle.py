"""Independent numpy oracles for the fleet statistics: the reference's cells, PSI and JS as the
sidecar and the recording rules compute them, written from docs/drift.md and not from the
exporter's code.

Cells. A profile's bin starts at the sketch bucket holding its edge (docs/reference.md), so a
value belongs to bin j when its bucket is at or after edge j−1's bucket. For positive values the
bucket of x is k(x) = ⌈ln x / ln γ⌉ with γ = (1 + a)/(1 − a) at relative accuracy a; comparing
bucket keys instead of values reproduces the sketch's bins exactly. Cells with no reference share
are pooled into their left neighbour (the first cell for leading ones).
"""

from __future__ import annotations

import math

import numpy as np

PSEUDO_COUNT = 0.5


def bucket_keys(values: np.ndarray, accuracy: float) -> np.ndarray:
    """The log-bucket key of each positive value (the sketch's resolution)."""
    assert (values > 0).all(), "the oracle bins positive values only"
    log_gamma = math.log((1 + accuracy) / (1 - accuracy))
    return np.ceil(np.log(values) / log_gamma)


def sketch_bins(values: np.ndarray, edges: list[float], accuracy: float) -> np.ndarray:
    """The profile bin (0 = underflow … len(edges) = overflow) of each positive value."""
    keys = bucket_keys(values, accuracy)
    edge_keys = bucket_keys(np.asarray(edges, dtype=float), accuracy)
    return np.searchsorted(edge_keys, keys, side="right")


def pool(shares: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge zero-share cells into their left neighbour (leading ones into the first cell)."""
    keep_q: list[float] = []
    keep_c: list[float] = []
    carry = 0.0
    for q, c in zip(shares, counts, strict=True):
        if q > 0:
            keep_q.append(float(q))
            keep_c.append(float(c) + carry)
            carry = 0.0
        elif keep_c:
            keep_c[-1] += float(c)
        else:
            carry += float(c)
    return np.array(keep_q), np.array(keep_c)


def smoothed(shares: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(live, reference) shares with λ = 0.5 pseudo-records per cell on both sides, in units of
    live records (docs/drift.md, PSI)."""
    n, cells = counts.sum(), len(counts)
    denominator = n + PSEUDO_COUNT * cells
    return (counts + PSEUDO_COUNT) / denominator, (shares * n + PSEUDO_COUNT) / denominator


def psi(shares: np.ndarray, counts: np.ndarray) -> float:
    p, q = smoothed(shares, counts)
    return float(np.sum((p - q) * np.log(p / q)))


def js(shares: np.ndarray, counts: np.ndarray) -> float:
    p, q = smoothed(shares, counts)
    m = (p + q) / 2
    return math.sqrt(0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m)))
