"""A live window against the reference: drift verdicts, gaps, and per-record reference checks.

Pure: a window ``Summary`` and a ``Reference`` in, numbers out. The statistics and their
thresholds are ``drift``'s; this module only lines the two sides up.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from exporter.anomaly import Kind
from exporter.batch import OTHER, Batch, Layout, Vocabulary
from exporter.cells import FieldCells, ReferenceCells
from exporter.config_types import DriftConfig
from exporter.reference import Reference
from exporter.stats import drift
from exporter.stats.sketch import Sketches, binned_counts, cdf
from exporter.stats.window import Summary


@dataclass(frozen=True)
class FieldDrift:
    field: str
    statistic: str  # "psi", "ks" or "js"
    verdict: drift.Verdict


@dataclass(frozen=True)
class Gaps:
    """Production ÷ development; None where either side has nothing to say."""

    error_ratio: float | None  # classification
    confidence: float | None
    mae: float | None = None  # regression
    rmse: float | None = None  # regression


GAP_NAMES = tuple(f.name for f in dataclasses.fields(Gaps))  # as the status page and API name them


def n_tests(reference: Reference, layout: Layout) -> int:
    """The Bonferroni divisor: the tests run per window, PSI and KS for every numeric field and
    JS for every categorical field the profile and the config share."""
    numeric = sum(1 for spec in layout.numeric if spec.name in reference.numeric)
    categorical = sum(1 for spec in layout.categorical if spec.name in reference.categorical)
    return max(2 * numeric + categorical, 1)


@dataclass(frozen=True)
class FleetThreshold:
    """What the fleet rules need, besides the cell counts, to apply a field's test to the
    pooled counts exactly as a window would be judged: threshold max(floor, K·(1/n + 1/m)) for
    PSI, max(floor, sqrt(K·(1/n + 1/m))) for JS, no verdict below ``required`` values."""

    field: str
    statistic: str  # "psi" or "js"
    critical: float  # K: drift.psi_critical_factor or drift.js_critical_factor at α/d
    floor: float
    required: float  # drift.required_count: max(min_samples, 5 per cell)


def fleet_thresholds(
    cells: ReferenceCells, reference: Reference, layout: Layout, settings: DriftConfig
) -> tuple[FleetThreshold, ...]:
    """The threshold's parts for every field of ``cells`` (the profile's, at these settings)."""
    tests = n_tests(reference, layout)
    result = []
    for field in cells.fields:
        if field.statistic == "psi":
            critical = drift.psi_critical_factor(field.size, settings.alpha, tests)
            floor = settings.psi_floor
        else:
            critical = drift.js_critical_factor(field.size, settings.alpha, tests)
            floor = settings.js_floor
        required = drift.required_count(settings.min_samples, field.size)
        result.append(FleetThreshold(field.name, field.statistic, critical, floor, required))
    return tuple(result)


def fleet_verdict(
    cells: FieldCells, threshold: FleetThreshold, counts: npt.ArrayLike
) -> drift.Verdict | None:
    """The fleet rules' test (config/prometheus/rules/fleet.yml) on pooled cell counts: the
    field's statistic on the smoothed shares, max(floor, critical value at the pool's n), and
    no verdict below the minimum. What Prometheus computes, for ``replay`` to mirror."""
    c = np.asarray(counts, dtype=np.float64)
    n, m = float(c.sum()), float(cells.reference_count)
    if n <= 0 or m <= 0 or n < threshold.required:
        return None
    if threshold.statistic == "psi":
        statistic = drift.psi(cells.shares, c)
        critical = threshold.critical * (1 / n + 1 / m)
    else:
        statistic = drift.js_distance(*drift.smoothed_shares(cells.shares, c))
        critical = math.sqrt(threshold.critical * (1 / n + 1 / m))
    return drift.Verdict(statistic, critical, drift.effective_threshold(threshold.floor, critical))


def compare(
    summary: Summary,
    reference: Reference,
    layout: Layout,
    categories: list[list[tuple[int, str]]],
    sketch: Sketches,
    settings: DriftConfig,
) -> list[FieldDrift]:
    """Every statistic for every field the reference knows; fields without a verdict (too few
    samples) are left out, so no series says "no drift" when it cannot know."""
    numeric = [
        (f, spec.name) for f, spec in enumerate(layout.numeric) if spec.name in reference.numeric
    ]
    categorical = [
        (c, spec.name)
        for c, spec in enumerate(layout.categorical)
        if spec.name in reference.categorical
    ]
    # The Bonferroni divisor counts tests, not fields: each numeric field runs PSI and KS.
    tests = n_tests(reference, layout)
    alpha, min_count = settings.alpha, settings.min_samples
    results: list[FieldDrift] = []
    for f, name in numeric:
        ref = reference.numeric[name]
        if summary.sketch is None or summary.count[f] == 0:
            continue
        counts = summary.sketch[f]
        live_bins = binned_counts(sketch[f], counts, ref.bin_edges)
        verdict = drift.psi_verdict(
            ref.bin_shares,
            ref.count,
            live_bins,
            floor=settings.psi_floor,
            alpha=alpha,
            n_tests=tests,
            min_count=min_count,
        )
        if verdict is not None:
            results.append(FieldDrift(name, "psi", verdict))
        live_cdf = cdf(sketch[f], counts, np.asarray(ref.cdf_points))
        verdict = drift.ks_verdict(
            ref.cdf_values,
            ref.count,
            live_cdf,
            float(summary.count[f]),
            floor=settings.ks_floor,
            alpha=alpha,
            n_tests=tests,
            min_count=min_count,
        )
        if verdict is not None:
            results.append(FieldDrift(name, "ks", verdict))
    for c, name in categorical:
        ref_cat = reference.categorical[name]
        ref_shares, live_counts = align(ref_cat.shares, summary.categories[c], categories[c])
        verdict = drift.js_verdict(
            ref_shares,
            ref_cat.share_count,  # the records the shares were measured on
            live_counts,
            floor=settings.js_floor,
            alpha=alpha,
            n_tests=tests,
            min_count=min_count,
        )
        if verdict is not None:
            results.append(FieldDrift(name, "js", verdict))
    return results


def align(
    ref_shares: dict[str, float], live: npt.NDArray[np.integer], names: list[tuple[int, str]]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Vectors over the reference's categories plus one "other" cell, last.

    The other cell takes the reference's ``__other__`` share and every live value the
    reference does not name: folded development values, values past the live cap and values
    never seen (those are also counted one by one as ``unseen_category``).
    """
    known = [value for value in ref_shares if value != OTHER]
    position = {value: i for i, value in enumerate(known)}
    ref = np.array([*(ref_shares[v] for v in known), ref_shares.get(OTHER, 0.0)])
    counts = np.zeros(len(known) + 1)
    for code, value in names:
        counts[position.get(value, len(known))] += float(live[code])
    return ref, counts


def gaps(summary: Summary, reference: Reference, layout: Layout) -> Gaps:
    error = None
    if summary.labelled and reference.error_ratio:
        error = (summary.wrong / summary.labelled) / reference.error_ratio
    confidence = None
    f = layout.confidence_column
    if f is not None and "confidence" in reference.numeric:
        ref_mean = reference.numeric["confidence"].mean
        if summary.count[f] and ref_mean:
            confidence = float(summary.total[f] / summary.count[f]) / ref_mean
    mae = rmse = None
    if reference.mae and summary.labelled:
        mae = (summary.abs_error / summary.labelled) / reference.mae
    if reference.rmse and summary.labelled:
        rmse = math.sqrt(summary.sq_error / summary.labelled) / reference.rmse
    return Gaps(error, confidence, mae, rmse)


class ReferenceChecks:
    """Per-record anomalies judged against the reference: values outside its range (plus a
    margin), outliers, and categories it never saw.

    An ``outlier`` is more than ``outlier_z`` reference standard deviations from the reference
    mean *and* outside the range of development values: a value the reference itself holds is
    not surprising, however many σ away — every 1 of a rare 0/1 flag, the long tail of a
    lognormal. So on calm data only values beyond everything seen in development can be
    outliers, at most about 1/(m+1) of them for a reference of m values.

    ``unseen_category`` is a value absent from the development vocabulary (the reference's
    ``vocabulary``), installed on the decoder's vocabularies here; without one nothing is
    unseen. Unlike configured bounds, flagged values stay in the statistics: they are
    surprising, not invalid, and hiding them would hide the drift they are evidence of.
    """

    def __init__(
        self,
        reference: Reference,
        layout: Layout,
        vocabularies: list[Vocabulary],
        settings: DriftConfig,
    ) -> None:
        n = len(layout.numeric)
        self._low = np.full(n, -np.inf)
        self._high = np.full(n, np.inf)
        self._seen_low = np.full(n, np.inf)  # the development range; moot while std is inf
        self._seen_high = np.full(n, -np.inf)
        self._mean = np.zeros(n)
        self._std = np.full(n, np.inf)
        self._z = settings.outlier_z
        for f, spec in enumerate(layout.numeric):
            ref = reference.numeric.get(spec.name)
            if ref is None:
                continue
            if spec.minimum is None and spec.maximum is None:
                margin = settings.range_margin * (ref.max - ref.min)
                self._low[f], self._high[f] = ref.min - margin, ref.max + margin
            if ref.stddev > 0:
                self._mean[f], self._std[f] = ref.mean, ref.stddev
                self._seen_low[f], self._seen_high[f] = ref.min, ref.max
        for spec, vocabulary in zip(layout.categorical, vocabularies, strict=True):
            ref_cat = reference.categorical.get(spec.name)
            if ref_cat is not None:
                for value in ref_cat.shares:  # kept categories get codes first, for JS
                    if value != OTHER:
                        vocabulary.code(value)
            vocabulary.set_development(None if ref_cat is None else ref_cat.vocabulary)
        self._n_numeric = n
        # Where no check can flag a value ([F, 1] columns): inside the range, and inside the
        # development range where outliers are judged (a finite spread).
        judged = np.isfinite(self._std)
        safe_low = np.maximum(self._low, np.where(judged, self._seen_low, -np.inf))
        safe_high = np.minimum(self._high, np.where(judged, self._seen_high, np.inf))
        self._safe_low, self._safe_high = safe_low[:, None], safe_high[:, None]

    def apply(self, batch: Batch) -> None:
        """Flag in place; a value keeps the first kind it was given.

        One pass over the values finds the few that could be flagged at all: those outside
        the range every check leaves alone (``_safe_low`` .. ``_safe_high``). Only those are
        judged, each against its field's settings; the rest of the batch is never touched."""
        n = batch.size
        if not self._n_numeric or not n:
            return
        values = batch.numeric.T  # field-major: contiguous for a decoded batch
        kinds = batch.flags.T[: self._n_numeric]
        with np.errstate(invalid="ignore"):  # NaN (no value) is never a candidate
            candidate = values < self._safe_low
            candidate |= values > self._safe_high
        at = np.flatnonzero(candidate)
        if not len(at):
            return
        f, r = np.divmod(at, n)
        v = values[f, r]
        clean = kinds[f, r] == 0
        with np.errstate(invalid="ignore"):
            outside = clean & ((v < self._low[f]) | (v > self._high[f]))
            beyond = (v < self._seen_low[f]) | (v > self._seen_high[f])
            far = np.abs(v - self._mean[f]) > self._z * self._std[f]
            outlier = clean & ~outside & beyond & far
        kinds[f[outside], r[outside]] = Kind.OUT_OF_RANGE
        kinds[f[outlier], r[outlier]] = Kind.OUTLIER
