"""Sidecar configs for tests: the documented example, pointed at a test's own files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "exporter.yaml"


def example_config(
    log_path: Path | str, positions: Path | str | None = None, **overrides: Any
) -> dict[str, Any]:
    """config/exporter.yaml as data, reading ``log_path`` from the beginning, fast polling."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    data["sources"] = [{"path": str(log_path), "start_at": "beginning"}]
    data["positions_file"] = str(positions) if positions is not None else None
    data["tail"] = {
        **data.get("tail", {}),
        "poll_interval": "200ms",
        "positions_flush_interval": "1s",
    }
    data.update(overrides)
    return data


def write_config(directory: Path, data: dict[str, Any], name: str = "exporter.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
