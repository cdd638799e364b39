"""The loaded reference profile's own values, labelled like each live model version."""

from __future__ import annotations

from collections.abc import Iterator

from exporter.exposition import GAUGE, Family
from exporter.families import MODEL_LABELS, family
from exporter.state import Snapshot


def reference_families(snapshot: Snapshot) -> Iterator[Family]:
    """The reference values themselves, labelled like each live model version, so Grafana
    draws development and production side by side and PromQL can divide one by the other."""
    reference = snapshot.reference
    fl = [*MODEL_LABELS, "field"]
    info = family(
        GAUGE,
        "model_reference_info",
        "The loaded reference profile.",
        labels=[*MODEL_LABELS, "hash", "created"],
    )
    samples = family(
        GAUGE,
        "model_reference_samples",
        "Records the reference was built from.",
        labels=MODEL_LABELS,
    )
    moments = {
        name: family(GAUGE, f"model_reference_{name}", f"Reference {name} of the field.", labels=fl)
        for name in ("mean", "stddev", "min", "max")
    }
    quantile = family(
        GAUGE, "model_reference_quantile", "Reference quantile of the field.", labels=[*fl, "q"]
    )
    ratio = family(
        GAUGE,
        "model_reference_category_ratio",
        "Reference share of each category.",
        labels=[*fl, "value"],
    )
    error = family(
        GAUGE, "model_reference_error_ratio", "Development error ratio.", labels=MODEL_LABELS
    )
    residuals = {
        name: family(
            GAUGE,
            f"model_reference_{name}",
            f"Regression: development {name.upper()}.",
            labels=MODEL_LABELS,
        )
        for name in ("mae", "rmse")
    }
    if reference is not None:
        for group in snapshot.groups:
            mv = [group.model, group.version]
            info.add([*mv, reference.hash, reference.created], 1.0)
            samples.add(mv, reference.records)
            for name, numeric in reference.numeric.items():
                for moment, target in moments.items():
                    target.add([*mv, name], getattr(numeric, moment))
                for q, q_value in numeric.quantiles.items():
                    quantile.add([*mv, name, q], q_value)
            for name, categorical in reference.categorical.items():
                for category, share in categorical.shares.items():
                    ratio.add([*mv, name, category], share)
            if reference.error_ratio is not None:
                error.add(mv, reference.error_ratio)
            for name, target in residuals.items():
                value = getattr(reference, name)
                if value is not None:
                    target.add(mv, value)
    yield info
    yield samples
    yield from moments.values()
    yield quantile
    yield ratio
    yield error
    yield from residuals.values()
