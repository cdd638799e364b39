"""Sidecar configs for tests: the documented example pointed at a test's own files, and the small
field mappings that many tests share (a classifier, a regression model), with the records they
read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from exporter.config import parse_config
from exporter.config_types import Config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "exporter.yaml"
# The source of a config whose log is never read: the test hands the records in itself.
UNREAD = "/unused"


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


def empty_log_config(directory: Path, listen_address: str) -> Path:
    """The example config written to ``directory``, tailing an empty log there: a sidecar that
    starts, serves on ``listen_address`` and has nothing to read."""
    log = directory / "model.jsonl"
    log.write_text("")
    data = example_config(log, directory / "positions.json", listen_address=listen_address)
    return write_config(directory, data)


def unread_data(fields: Mapping[str, Any], **settings: Any) -> dict[str, Any]:
    """A config as data whose log is never read (records are handed to the engine or the state
    directly): ``fields`` and any other top-level ``settings``."""
    return {"sources": [UNREAD], "fields": dict(fields), **settings}


def unread_config(fields: Mapping[str, Any], **settings: Any) -> Config:
    """``unread_data``, parsed and validated."""
    return parse_config(unread_data(fields, **settings))


def tailed_data(log: Path | str, fields: Mapping[str, Any], **settings: Any) -> dict[str, Any]:
    """A config as data tailing ``log`` from its beginning with fast polling (a running
    sidecar's test: it sees each append within a fraction of a second)."""
    return {
        "sources": [{"path": str(log), "start_at": "beginning"}],
        "tail": {"poll_interval": "200ms"},
        "fields": dict(fields),
        **settings,
    }


def classifier_fields(**roles: Any) -> dict[str, Any]:
    """Model ``m`` version ``v`` (named in the config), a score, a predicted class and its label
    under short paths; ``roles`` add to them or replace them (features, request_id, ...)."""
    return {
        "timestamp": "ts",
        "model_name": "m",
        "model_version": "v",
        "prediction": "score",
        "predicted_class": "cls",
        "ground_truth": "label",
        **roles,
    }


def regression_fields(**roles: Any) -> dict[str, Any]:
    """A regression model: a numeric prediction ``y_hat`` and its numeric label ``y``, no class;
    model ``m`` version ``v`` unless ``roles`` say otherwise."""
    return {
        "model_name": "m",
        "model_version": "v",
        "prediction": "y_hat",
        "ground_truth": "y",
        **roles,
    }


def regression_lines(rng: np.random.Generator, n: int, noise: float) -> bytes:
    """``n`` records for ``regression_fields``: labels ~ N(100, 10), predictions off by
    N(0, ``noise``), so the MAE and RMSE grow with ``noise``."""
    truth = rng.normal(100.0, 10.0, n)
    guess = truth + rng.normal(0.0, noise, n)
    return b"".join(
        json.dumps({"y_hat": float(p), "y": float(y)}).encode() + b"\n"
        for p, y in zip(guess, truth, strict=True)
    )
