"""Batches and layouts of awkward numbers for the fast-path tests (``test_fast_paths_*``).

Each batch's numbers are worked out for all fields at once, field-major, with the masking
and the rare steps skipped when no value needs them (``Decoder._classify``, ``summarize``,
``Sketches.count_fields``, the histogram counts, ``ReferenceChecks.apply``). The oracles
in the tests are the straightforward versions: one field at a time, every step always taken,
on a record-major copy. They must agree exactly — counts, bits of every float, flags — on
awkward data: NaN, ±inf, -0.0, values on bucket edges and bounds, outside the sketch window,
an empty batch and a single row.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from exporter.anomaly import N_KINDS
from exporter.batch import Batch
from exporter.stats.sketch import Sketches
from exporter.stats.window import Shape

FloatArray = npt.NDArray[np.float64]
F = 4  # numeric fields of the batches below
C = 2  # categorical fields
A = F + C + 1  # anomaly columns: the fields and a timestamp

AWKWARD = (np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, 5e-324, 1e300, -1e-300)
VALUES = st.one_of(
    st.sampled_from(AWKWARD),
    st.floats(-1e6, 1e6),
    st.floats(allow_nan=False, allow_infinity=False),
)


def matrix(rows: int, draw_values: st.SearchStrategy[float] = VALUES) -> st.SearchStrategy:
    return arrays(np.float64, (rows, F), elements=draw_values)


def as_field_major(matrix: npt.NDArray) -> npt.NDArray:
    """The same values stored as a decoded batch stores them: [fields, rows], seen .T."""
    return np.ascontiguousarray(matrix.T).T


def anchored_sketches() -> Sketches:
    """Fields anchored far apart (and one left unanchored), so values fall outside windows."""
    anchors = [np.array([1.0]), np.array([1e-6]), np.array([1e9]), np.array([0.0])]
    return Sketches.unanchored(F).anchored_on(anchors)


def summary_shape() -> Shape:
    return Shape(
        numeric=F, categorical=C, categories=5, anomaly_fields=A + 1, sketch=anchored_sketches()
    )


def batch_of(values: FloatArray, seed: int, width: int = A) -> Batch:
    rng = np.random.default_rng(seed)
    n = len(values)
    codes = rng.integers(-1, 5, (n, C))
    flags = np.where(rng.random((n, width)) < 0.2, rng.integers(1, N_KINDS, (n, width)), 0)
    flags = flags.astype(np.int8)
    stamps = np.where(rng.random(n) < 0.3, np.nan, rng.random(n) * 1e9)
    wrong = rng.integers(-1, 2, n).astype(np.int8)
    return Batch([("m", "v")], np.zeros(n, np.int64), values, codes, flags, stamps, wrong)
