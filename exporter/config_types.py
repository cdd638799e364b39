"""Frozen settings that travel from the config validator to every stage.

Kept apart from the validator (``config.py``) so stages import plain types, not the YAML logic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

StartAt = Literal["end", "beginning"]


@dataclass(frozen=True)
class SourceConfig:
    """One configured source: a file path or a glob (``*``, ``?``, ``[...]``)."""

    path: str
    format: Literal["json"] = "json"
    start_at: StartAt = "end"


@dataclass(frozen=True)
class TailConfig:
    """How files are followed; every duration is in seconds."""

    poll_interval: float = 1.0
    rotate_wait: float = 5.0
    max_line_bytes: int = 1 << 20
    read_chunk_bytes: int = 256 << 10
    positions_file: str | None = None
    positions_flush_interval: float = 5.0
    positions_ttl: float = 7 * 24 * 3600.0
    watch: bool = True
