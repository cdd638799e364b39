"""The largest exposition a config can produce: series count and bytes, from the config alone.

Why: label values come from the log, so without bounds one log could make ``/metrics`` any
size (16 model names of 10 KB and 50 class values of 100 KB once made it 302 MB). Every count
below is capped by a setting (model versions, category caps, windows, quantiles, histogram
bounds) and every label value from the log by ``max_label_value_bytes``, so the product is a
budget that no log can exceed. docs/metrics.md states the same formula; the tests render a
hostile log and a fully populated state and check the scrape against it.

Assumes the reference profile was built for this config (``baseline``: the same fields,
quantiles and category caps); a profile is trusted input, like the config.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.anomaly import (
    CATEGORICAL_KINDS,
    LABEL_KINDS,
    NAME_KINDS,
    NUMERIC_KINDS,
    PARSE_ERROR_REASONS,
    RECORD_KINDS,
    TIMESTAMP_KINDS,
)
from exporter.batch import Layout
from exporter.config_types import Config
from exporter.histograms import most_bounds

NAME_BYTES = 64  # the longest metric name with its suffix (_total, _bucket), rounded up
LINE_BYTES = 192  # label names, quotes, separators, short fixed values (kind, q, le), value
FAMILY_BYTES = 320  # one family's # HELP and # TYPE lines
FAMILIES = 80  # families rendered, at most (every model, drift, reference and sidecar family)
SOURCE_SERIES = 15  # per-source sidecar series (lines, bytes, rotations, ..., last read)
GROUP_COUNTERS = 7  # predictions, ground truth, errors, last timestamp, 3 join outcomes
WINDOW_LABELLED = 4  # ground truth, error ratio or MAE and RMSE, label delay
WINDOW_GAPS = 3  # error ratio, confidence gap, estimate (classification); or confidence, MAE, RMSE
REFERENCE_SCALARS = 5  # info, samples, error ratio, MAE, RMSE
# Fleet cells (model_field_bin_records_total, model_reference_bin_share): a numeric field's
# profile has at most 20 cells (10 equal-frequency bins plus one per point mass, each holding a
# tenth of the data: profile.bin_starts), a categorical one its kept categories and "other".
NUMERIC_CELLS = 20
FIELD_CELL_SERIES = 4  # per field: critical value, floor, minimum count, m
CELL_LINE_BYTES = 96  # a cell series' extra labels: reference_hash, bin, lower, upper


@dataclass(frozen=True)
class Budget:
    series: int
    bytes: int


def exposition_budget(config: Config) -> Budget:
    """Upper bounds of the series and bytes one scrape of this config can hold."""
    layout = Layout.from_fields(config.fields)
    groups = config.max_model_versions + 2  # __unknown__ and __other__ come on top
    numeric = len(layout.numeric)
    values = [spec.max_categories + 1 for spec in layout.categorical]  # with __other__
    q, windows = len(config.quantiles), len(config.windows)
    anomalies = _anomaly_pairs(layout)
    numeric_names = {spec.name for spec in layout.numeric}
    histograms = sum(
        most_bounds(name, b, config.explicit_histograms) + 3
        for name, b in config.histograms
        if name in numeric_names
    )

    per_window = 1 + numeric * (5 + q) + sum(1 + v for v in values) + anomalies
    per_window += WINDOW_LABELLED if layout.has_ground_truth else 0
    drift = 6 * numeric + 3 * len(values) + WINDOW_GAPS
    reference = REFERENCE_SCALARS + numeric * (4 + q) + sum(values)
    per_field = numeric + len(values)  # sketch clamps, category overflows
    per_group = GROUP_COUNTERS + per_field + anomalies + histograms
    per_group += windows * (per_window + drift)
    per_group += reference
    cells = numeric * (2 * NUMERIC_CELLS + FIELD_CELL_SERIES)
    cells += sum(2 * v + FIELD_CELL_SERIES for v in values)
    model_series = groups * per_group
    cell_series = groups * cells

    sources = len(config.sources)
    sidecar_series = 6 + len(layout.categorical) + 2  # build info, errors, reloads; fields cut
    sidecar_series += sources * (SOURCE_SERIES + len(PARSE_ERROR_REASONS))

    limit = config.fields.label_value_bytes
    field = max((len(name.encode()) for name in layout.anomaly_fields), default=0)
    window = max(len(w.name.encode()) for w in config.windows)
    source = max((len(s.path.encode()) for s in config.sources), default=0)
    # Escaping (\\, \", \n) at most doubles a label value: model, version and a category value.
    model_line = NAME_BYTES + LINE_BYTES + 2 * 3 * limit + 2 * (field + window)
    sidecar_line = NAME_BYTES + LINE_BYTES + 2 * max(source, field)
    cell_line = model_line + CELL_LINE_BYTES
    return Budget(
        series=model_series + cell_series + sidecar_series,
        bytes=model_series * model_line
        + cell_series * cell_line
        + sidecar_series * sidecar_line
        + FAMILIES * FAMILY_BYTES,
    )


def _anomaly_pairs(layout: Layout) -> int:
    """(field, kind) pairs exported per model version, as the collector lists them."""
    pairs = len(layout.numeric) * len(NUMERIC_KINDS)
    pairs += len(layout.categorical) * len(CATEGORICAL_KINDS) + len(RECORD_KINDS)
    pairs += len(TIMESTAMP_KINDS) if layout.has_timestamp else 0
    pairs += len(LABEL_KINDS) if layout.has_ground_truth else 0
    pairs += len(NAME_KINDS) * (layout.has_model + layout.has_version)
    return pairs
