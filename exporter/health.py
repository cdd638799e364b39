"""The sidecar's own counters, as plain data: the pipeline fills them, the collector renders
them, and neither needs the other's imports.

Each per-source counter is defined once, in ``SourceStats``: the field the tailer increments
carries the metric it is exported as (name, help, counter or gauge), and the collector renders
``SOURCE_METRICS`` without naming any of them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Literal

PREFIX = "model_exporter_"


@dataclass(frozen=True)
class SourceMetric:
    """How one ``SourceStats`` field is exported, labelled by ``source``."""

    attribute: str
    name: str  # the family name, without PREFIX (and without _total for a counter)
    help: str
    type: Literal["counter", "gauge"]


def _counter(name: str, help_text: str) -> int:
    return field(default=0, metadata={"metric": (name, help_text, "counter")})


def _gauge(name: str, help_text: str) -> int:
    return field(default=0, metadata={"metric": (name, help_text, "gauge")})


@dataclass(slots=True)
class SourceStats:
    """Per configured source. Counters are cumulative since start and never decrease; gauges
    are refreshed after every poll.

    The tailer mutates its own instances under its lock and hands out copies (``copy``), so a
    reader on another thread never sees a half-updated set.
    """

    lines: int = _counter("lines", "Complete lines read from log files.")
    bytes_read: int = _counter("bytes_read", "Bytes read from log files.")
    rotations: int = _counter("rotations", "Rename rotations followed.")
    truncations: int = _counter("truncations", "Truncations detected.")
    lines_too_long: int = _counter("lines_too_long", "Lines over max_line_bytes, skipped.")
    bytes_dropped: int = _counter(
        "bytes_dropped",
        "Unread bytes of rotated files given up (stale handle, or unreadable for rotate_wait).",
    )
    read_errors: int = _counter("read_errors", "Errors opening or reading log files.")
    opens: int = _counter("file_opens", "Log files opened.")
    checkpoint_resets: int = _counter(
        "checkpoint_resets", "Saved positions not trusted (file changed)."
    )
    nul_bytes_skipped: int = _counter(
        "nul_bytes_skipped",
        "NUL bytes skipped (a writer without O_APPEND after copytruncate leaves a run of them).",
    )
    symlinks_refused: int = _counter(
        "symlinks_refused", "Symlinks not followed because they leave the source's directory."
    )
    # Not exported as a number: source_up is 1 while it is above 0 (see the collector).
    files_present: int = 0
    open_files: int = _gauge("open_files", "File descriptors held.")
    lag_bytes: int = _gauge("source_lag_bytes", "Bytes written but not yet read.")

    def copy(self) -> SourceStats:
        return replace(self)


SOURCE_METRICS: tuple[SourceMetric, ...] = tuple(
    SourceMetric(f.name, *f.metadata["metric"]) for f in fields(SourceStats) if f.metadata
)


@dataclass
class Health:
    """The sidecar's own counters, gathered by the pipeline at scrape time."""

    sources: Mapping[str, SourceStats] = field(default_factory=dict)
    parse_errors: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (source, reason)
    last_read: Mapping[str, float] = field(default_factory=dict)  # source → wall time
    checkpoint_errors: int = 0
    ingest_seconds: float = 0.0
    reference_reloads: Mapping[str, int] = field(default_factory=dict)  # outcome → count
    labels_cut: Mapping[str, int] = field(default_factory=dict)  # field → values cut
