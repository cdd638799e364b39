"""The bounds of every numeric setting, in one table, and the memory the windows may take.

Why bounds at all: a value can be a valid number and still break ``run`` — NaN as a window
empties every scrape, ``category_cap: 1e12`` fails every batch with an allocation error,
``poll_interval: .inf`` overflows the wait. Each bound is far from any sensible value and
close enough that the worst case still fits a sidecar. ``docs/configuration.md`` lists this
table (a test keeps the two equal), and the validator checks every key against it.
"""

from __future__ import annotations

from exporter.anomaly import N_KINDS
from exporter.config_types import Config
from exporter.stats.sketch import SketchLayout
from exporter.validate import Duration, Real, Whole

DAY = 86400.0
MIB = 1 << 20

# Whole numbers (counts and sizes), by documented key.
WHOLE: dict[str, Whole] = {
    "window_buckets": Whole(2, 120),
    "category_cap": Whole(1, 1000),
    "fields.*.max_categories": Whole(1, 1000),
    "max_model_versions": Whole(1, 256),
    # Room for __unknown__ and a few 4-byte characters; at most what keeps the scrape's size
    # budget (docs/metrics.md) a few MiB per model version.
    "max_label_value_bytes": Whole(16, 4096),
    "tail.max_line_bytes": Whole(256, 64 * MIB),
    "tail.read_chunk_bytes": Whole(4096, 16 * MIB),
    "drift.min_samples": Whole(1, 1_000_000_000),
    "drift.freeze_first": Whole(0, 1_000_000_000),
    "ground_truth_join.capacity": Whole(1, 1_000_000),
}

# Numbers and durations (seconds), by documented key.
REAL: dict[str, Real] = {
    "windows[]": Duration(1.0, 7 * DAY),
    "quantiles[]": Real(0.0, 1.0, open_low=True, open_high=True),
    "sketch_relative_accuracy": Real(0.001, 0.1),
    "late_after": Duration(1.0, 365 * DAY),
    "future_after": Duration(1.0, 365 * DAY),
    "tail.poll_interval": Duration(0.01, 600.0),
    "tail.rotate_wait": Duration(0.1, 3600.0),
    "tail.positions_flush_interval": Duration(0.1, 3600.0),
    "tail.positions_ttl": Duration(60.0, 365 * DAY),
    "drift.alpha": Real(0.0, 1.0, open_low=True, open_high=True),
    "drift.psi_floor": Real(0.0, 100.0),
    "drift.ks_floor": Real(0.0, 1.0),
    "drift.js_floor": Real(0.0, 1.0),
    "drift.outlier_z": Real(0.0, 1000.0, open_low=True),
    "drift.range_margin": Real(0.0, 100.0),
    "ground_truth_join.timeout": Duration(1.0, 30 * DAY),
}

# The longest lists: each entry multiplies series (windows, quantiles) or buckets.
LENGTHS: dict[str, int] = {"windows": 10, "quantiles": 20, "histograms.*": 100}

# Worst-case memory of the windows (every model version present, every bucket allocated).
WINDOW_MEMORY_BUDGET = 2 << 30


def window_memory(config: Config) -> int:
    """Bytes the window rings of ``max_model_versions`` groups, the ``__unknown__`` group of
    lines that name no model and the ``__other__`` group the rest share hold at most.

    Each bucket of each window holds a quantile sketch per numeric field — at most thousands of
    counters at 1% accuracy, when its values span the whole sketch range — plus category and
    anomaly counts. The product of these settings, not any one of them, is what exhausts memory.
    """
    fields = config.fields
    numeric, categorical = len(fields.numeric), len(fields.categorical)
    widest = max((spec.max_categories for spec in fields.categorical), default=0) + 1
    sketch = SketchLayout(relative_accuracy=config.sketch_relative_accuracy).size
    anomaly_fields = numeric + categorical + 3  # plus timestamp, label and the record
    per_bucket = 8 * (numeric * (sketch + 6) + categorical * widest + anomaly_fields * N_KINDS)
    buckets = len(config.windows) * config.window_buckets + 1  # + the running totals
    return (config.max_model_versions + 2) * buckets * per_bucket


def memory_problem(config: Config) -> str | None:
    """Why the windows of this config could exhaust memory, or None."""
    need = window_memory(config)
    if need <= WINDOW_MEMORY_BUDGET:
        return None
    return (
        f"the windows could take {need / (1 << 30):.1f} GiB (more than "
        f"{WINDOW_MEMORY_BUDGET >> 30} GiB): {config.max_model_versions} model versions x "
        f"{len(config.windows)} windows x {config.window_buckets} window_buckets x "
        f"{len(config.fields.numeric)} numeric fields at sketch_relative_accuracy "
        f"{config.sketch_relative_accuracy:g}; lower one of them"
    )
