"""Frozen settings that travel from the config validator to every stage.

Kept apart from the validator (``config.py``) so stages import plain types, not the YAML logic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

StartAt = Literal["end", "beginning"]
LABEL_VALUE_BYTES = 128  # default of max_label_value_bytes: room for any sensible name
FieldKind = Literal["numeric", "categorical"]


# Defaults that more than the dataclasses below use (the config parser, the decoder).
CATEGORY_CAP = 50  # ``category_cap``: values exported per categorical field
LATE_AFTER = 300.0  # ``late_after``: a record's timestamp this far behind now is late
FUTURE_AFTER = 60.0  # ``future_after``: this far ahead, it is in the future


@dataclass(frozen=True)
class SourceConfig:
    """One configured source: a file path or a glob (``*``, ``?``, ``[...]``)."""

    path: str
    format: Literal["json"] = "json"
    start_at: StartAt = "end"
    follow_symlinks: bool = False  # also symlinks that leave the source's directory


@dataclass(frozen=True)
class TailConfig:
    """How files are followed; every duration is in seconds."""

    poll_interval: float = 1.0
    rotate_wait: float = 5.0
    max_line_bytes: int = 1 << 20
    # Also one decode, and the poll budget (tailer.POLL_BUDGET_BYTES): a poll reads one chunk.
    read_chunk_bytes: int = 2 << 20
    positions_file: str | None = None
    positions_flush_interval: float = 5.0
    positions_ttl: float = 7 * 24 * 3600.0
    watch: bool = True


@dataclass(frozen=True)
class FieldSpec:
    """A value pulled from each record by a dotted path.

    ``name`` is what appears in the ``field`` label; ``scale`` converts to base units
    (latency in ms becomes seconds); ``minimum``/``maximum`` bound what counts as valid.
    """

    name: str
    path: tuple[str, ...]
    kind: FieldKind = "numeric"
    minimum: float | None = None
    maximum: float | None = None
    scale: float = 1.0
    max_categories: int = CATEGORY_CAP


@dataclass(frozen=True)
class FieldsConfig:
    """The record mapping. A role is ``None`` when the log does not carry it."""

    timestamp: tuple[str, ...] | None = ("ts",)
    timestamp_scale: float = 1.0
    # False when the config names no timestamp (the default path ``ts`` is only tried): a
    # record without one is then not a ``missing`` timestamp anomaly.
    timestamp_required: bool = True
    model_path: tuple[str, ...] | None = None
    model_value: str = "unknown"
    version_path: tuple[str, ...] | None = None
    version_value: str = "unknown"
    prediction: FieldSpec | None = None
    predicted_class: FieldSpec | None = None
    confidence: FieldSpec | None = None
    latency: FieldSpec | None = None
    ground_truth: tuple[str, ...] | None = None
    request_id: tuple[str, ...] | None = None
    features: tuple[FieldSpec, ...] = ()
    # Model and version names and category values become label values: longer ones are cut.
    label_value_bytes: int = LABEL_VALUE_BYTES

    @property
    def regression(self) -> bool:
        """A label beside a score and no class is a regression target: its errors are
        residuals (MAE, RMSE), not right-or-wrong."""
        return (
            self.ground_truth is not None
            and self.predicted_class is None
            and self.prediction is not None
        )

    @property
    def numeric(self) -> tuple[FieldSpec, ...]:
        """Numeric fields in export order: built-in roles first, then features."""
        roles = (self.prediction, self.confidence, self.latency)
        return tuple(f for f in roles if f is not None) + tuple(
            f for f in self.features if f.kind == "numeric"
        )

    @property
    def categorical(self) -> tuple[FieldSpec, ...]:
        role = (self.predicted_class,) if self.predicted_class is not None else ()
        return role + tuple(f for f in self.features if f.kind == "categorical")


@dataclass(frozen=True)
class WindowSpec:
    name: str
    seconds: float


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds for drift verdicts; see docs/drift.md for why these defaults."""

    alpha: float = 0.01
    min_samples: int = 100
    psi_floor: float = 0.1
    ks_floor: float = 0.05
    # The Jensen-Shannon distance of the same practical effect size as the PSI floor: for small
    # changes PSI ≈ 8·ln2·JSD_bits (docs/drift.md).
    js_floor: float = math.sqrt(psi_floor / (8 * math.log(2)))
    outlier_z: float = 4.0
    range_margin: float = 0.1
    freeze_first: int = 0


@dataclass(frozen=True)
class Config:
    listen_address: str = ":10027"
    sources: tuple[SourceConfig, ...] = ()
    tail: TailConfig = field(default_factory=TailConfig)
    fields: FieldsConfig = field(default_factory=FieldsConfig)
    windows: tuple[WindowSpec, ...] = (
        WindowSpec("1m", 60.0),
        WindowSpec("5m", 300.0),
        WindowSpec("1h", 3600.0),
    )
    window_buckets: int = 12
    quantiles: tuple[float, ...] = (0.5, 0.9, 0.99)
    sketch_relative_accuracy: float = 0.01
    histograms: tuple[tuple[str, tuple[float, ...]], ...] = ()
    # The histograms the config sets; the others follow the reference profile when one is
    # loaded at start (``histograms.histogram_bounds``).
    explicit_histograms: frozenset[str] = frozenset()
    late_after: float = LATE_AFTER
    future_after: float = FUTURE_AFTER
    reference: str | None = None
    max_model_versions: int = 16
    drift: DriftConfig = field(default_factory=DriftConfig)
    label_join: bool = False
    label_join_timeout: float = 3600.0
    label_join_capacity: int = 100_000
