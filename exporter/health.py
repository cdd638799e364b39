"""The sidecar's own counters, as plain data: the pipeline fills them, the collector renders
them, and neither needs the other's imports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


class SourceCounters(Protocol):
    """What the tailer reports per configured source (``source.SourceStats``)."""

    @property
    def lines(self) -> int: ...
    @property
    def bytes_read(self) -> int: ...
    @property
    def rotations(self) -> int: ...
    @property
    def truncations(self) -> int: ...
    @property
    def lines_too_long(self) -> int: ...
    @property
    def read_errors(self) -> int: ...
    @property
    def opens(self) -> int: ...
    @property
    def checkpoint_resets(self) -> int: ...
    @property
    def files_present(self) -> int: ...
    @property
    def open_files(self) -> int: ...
    @property
    def lag_bytes(self) -> int: ...
    @property
    def bytes_dropped(self) -> int: ...


@dataclass
class Health:
    """The sidecar's own counters, gathered by the pipeline at scrape time."""

    sources: Mapping[str, SourceCounters] = field(default_factory=dict)
    parse_errors: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (source, reason)
    last_read: Mapping[str, float] = field(default_factory=dict)  # source → wall time
    checkpoint_errors: int = 0
    ingest_seconds: float = 0.0
    reference_reloads: Mapping[str, int] = field(default_factory=dict)  # outcome → count
