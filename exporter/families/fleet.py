"""The fleet's raw material: records per reference cell and the reference's side of the
drift thresholds, so recording rules can pool the replicas that share a profile."""

from __future__ import annotations

import math
from collections.abc import Iterator

from exporter.assess import Assessment
from exporter.cells import FieldCells, ReferenceCells
from exporter.compare import FleetThreshold
from exporter.exposition import COUNTER, GAUGE, Column, Family
from exporter.families import MODEL_LABELS, family
from exporter.state import Snapshot
from exporter.validate import number_label

CellNames = tuple[Column, Column, Column]  # a cell's lower, upper and value labels


def fleet_families(snapshot: Snapshot, assessment: Assessment | None) -> Iterator[Family]:
    """Records per reference cell and the reference's side of the fleet statistics, every series
    labelled with the profile's hash: recording rules add the counters of the replicas that
    share a profile and compute the fleet's PSI and JS with the sidecar's own thresholds
    (docs/drift.md, "The fleet"). A replica with another profile forms a pool of its own."""
    fh = [*MODEL_LABELS, "field", "reference_hash"]
    records = family(
        COUNTER,
        "model_field_bin_records",
        "Records per reference cell (PSI bin or kept category) since the profile was loaded.",
        labels=[*fh, "bin"],
    )
    share = family(
        GAUGE,
        "model_reference_bin_share",
        "Development share of the reference cell: [lower, upper) of a numeric field, the "
        "category (value) a categorical cell starts with.",
        labels=[*fh, "bin", "lower", "upper", "value"],
    )
    critical = family(
        GAUGE,
        "model_reference_drift_critical",
        "Chi-squared factor of the field's critical value at alpha/d: PSI's is "
        "factor*(1/n+1/m), JS's sqrt(factor*(1/n+1/m)).",
        labels=[*fh, "statistic"],
    )
    floor = family(
        GAUGE,
        "model_drift_floor",
        "Practical floor of the field's drift statistic.",
        labels=[*fh, "statistic"],
    )
    reference_samples = family(
        GAUGE,
        "model_reference_drift_samples",
        "Development values the field's shares were measured on (the m of the critical value).",
        labels=fh,
    )
    min_samples = family(
        GAUGE,
        "model_drift_min_samples",
        "Live values the field needs before a drift verdict.",
        labels=fh,
    )
    cells = snapshot.cells
    fleet = _fleet_thresholds(cells, assessment)
    if cells is not None:
        columns = [_cell_columns(field) for field in cells.fields]
        for group in snapshot.groups:
            for field, (bins, names, shares), counts in zip(
                cells.fields, columns, group.cells, strict=True
            ):
                labels = (group.model, group.version, field.name, cells.hash)
                records.add_many((*labels, bins), counts[: field.size].astype(float).tolist())
                share.add_many((*labels, bins, *names), shares)
                reference_samples.add(labels, field.reference_count)
                threshold = fleet.get(field.name)
                if threshold is not None:
                    critical.add((*labels, field.statistic), threshold.critical)
                    floor.add((*labels, field.statistic), threshold.floor)
                    min_samples.add(labels, threshold.required)
    yield records
    yield share
    yield critical
    yield floor
    yield reference_samples
    yield min_samples


def _fleet_thresholds(
    cells: ReferenceCells | None, assessment: Assessment | None
) -> dict[str, FleetThreshold]:
    """Per field, the thresholds' parts assessed for this very profile (after a reload they
    are left out until the next assessment step)."""
    if cells is None or assessment is None or assessment.reference is None:
        return {}
    if assessment.reference.hash != cells.hash:
        return {}
    return {t.field: t for t in assessment.fleet}


def _cell_columns(
    field: FieldCells,
) -> tuple[list[str], CellNames, list[float]]:
    """A field's cells as label columns: ``bin``; ``lower``, ``upper`` and ``value`` (a numeric
    field's bounds, a categorical field's first category); and the reference shares."""
    bins = [str(b) for b in range(field.size)]
    names: CellNames
    if field.statistic == "psi":
        lowers = [_bound(lower) for lower, _ in field.bounds[: field.size]]
        uppers = [_bound(upper) for _, upper in field.bounds[: field.size]]
        names = (lowers, uppers, "")
    else:
        names = ("", "", list(field.values[: field.size]))
    return bins, names, field.shares[: field.size].astype(float).tolist()


def _bound(value: float) -> str:
    """A cell bound as a label, spelled like Prometheus' ``le`` at infinity."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return number_label(value)
