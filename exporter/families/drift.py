"""How the windows were judged at the last assessment step: drift statistics beside their
thresholds, and the production-over-development gaps."""

from __future__ import annotations

from collections.abc import Iterator

from exporter.assess import Assessment
from exporter.exposition import GAUGE, Family
from exporter.families import MODEL_LABELS, family


def drift_families(assessment: Assessment) -> Iterator[Family]:
    """Drift statistics beside their thresholds, so alerts compare the two series directly;
    as assessed at the last step (``assess``), not recomputed per scrape."""
    fwl = [*MODEL_LABELS, "field", "window"]
    families: dict[str, Family] = {}
    for statistic, help_text in (
        ("psi", "Population stability index against the reference bins."),
        ("ks", "Kolmogorov-Smirnov statistic against the reference CDF."),
        ("js", "Jensen-Shannon distance (base 2) of category shares."),
    ):
        families[statistic] = family(
            GAUGE, f"model_window_drift_{statistic}", help_text, labels=fwl
        )
        families[f"{statistic}_threshold"] = family(
            GAUGE,
            f"model_window_drift_{statistic}_threshold",
            f"Threshold for model_window_drift_{statistic}: max(floor, critical value at alpha/d).",
            labels=fwl,
        )
    detected = family(
        GAUGE,
        "model_window_drift_detected",
        "1 when the statistic exceeds its threshold (exported only with enough samples).",
        labels=[*fwl, "statistic"],
    )
    error_gap = family(
        GAUGE,
        "model_window_error_ratio_gap",
        "Production error ratio divided by the development error ratio.",
        labels=[*MODEL_LABELS, "window"],
    )
    mae_gap = family(
        GAUGE,
        "model_window_mae_gap",
        "Regression: production MAE divided by the development MAE.",
        labels=[*MODEL_LABELS, "window"],
    )
    rmse_gap = family(
        GAUGE,
        "model_window_rmse_gap",
        "Regression: production RMSE divided by the development RMSE.",
        labels=[*MODEL_LABELS, "window"],
    )
    confidence_gap = family(
        GAUGE,
        "model_window_confidence_gap",
        "Production mean confidence divided by the development mean confidence.",
        labels=[*MODEL_LABELS, "window"],
    )
    estimated = family(
        GAUGE,
        "model_window_estimated_error_ratio",
        "Error ratio implied by the window's confidence under the development calibration.",
        labels=[*MODEL_LABELS, "window"],
    )
    for window in assessment.windows.values():
        mvw = [window.model, window.version, window.window]
        for found in window.drift:
            labels = [window.model, window.version, found.field, window.window]
            families[found.statistic].add(labels, found.verdict.statistic)
            families[f"{found.statistic}_threshold"].add(labels, found.verdict.threshold)
            detected.add([*labels, found.statistic], 1.0 if found.verdict.drifted else 0.0)
        for target, value in (
            (error_gap, window.gaps.error_ratio),
            (confidence_gap, window.gaps.confidence),
            (mae_gap, window.gaps.mae),
            (rmse_gap, window.gaps.rmse),
            (estimated, window.estimated_error_ratio),  # needs no label: that is its point
        ):
            if value is not None:
                target.add(mvw, value)
    yield from families.values()
    yield detected
    yield error_gap
    yield mae_gap
    yield rmse_gap
    yield confidence_gap
    yield estimated
