"""Which cells of a reference vector the drift tests pool together (pure, numpy only).

Kept apart from ``drift`` so the store can count records per pooled cell (``exporter.cells``)
without loading the statistics: both sides then use this one rule.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def pooled_cells(ref_shares: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """The cell each reference cell is pooled into by ``drift.pool_unsupported``: cells with a
    share keep their own (numbered in order), one without goes to the nearest on its left, or
    to the first one for leading cells. All zeros: every cell is its own."""
    q = np.asarray(ref_shares, dtype=np.float64)
    if q.ndim != 1:
        raise ValueError(f"ref_shares must be one-dimensional, got shape {q.shape}")
    supported = q > 0
    if not supported.any():
        return np.arange(q.size, dtype=np.int64)
    rank = np.cumsum(supported) - 1  # the cell number of each supported cell, and of its right
    cells: npt.NDArray[np.int64] = np.maximum(rank, 0).astype(np.int64)
    return cells
