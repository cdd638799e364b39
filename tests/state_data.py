"""A small config, the State built from it, and random records with every kind of bad value:
what the state, collector and exposition tests ingest, with the values the spec counts as valid
(for numpy to check against), and the sidecar health the collector renders beside them."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from typing import Any

import numpy as np

from exporter.config import parse_config
from exporter.config_types import Config
from exporter.decode import Decoder
from exporter.health import Health, SourceStats
from exporter.state import State

T0 = 1_717_000_000.0
QUANTILES = [0.1, 0.5, 0.9, 0.99]
CLASSES = ["cat", "dog", "bird"]

CONFIG: dict[str, Any] = {
    "sources": ["/var/log/p.jsonl"],
    "windows": ["1m", "1h"],
    "quantiles": QUANTILES,
    "fields": {
        "timestamp": "ts",
        "model": "model",
        "version": "version",
        "prediction": {"path": "p", "min": 0, "max": 1},
        "predicted_class": "cls",
        "confidence": {"path": "conf", "min": 0, "max": 1},
        "latency": {"path": "lat_ms", "unit": "ms", "min": 0},
        "ground_truth": "truth",
        "features": [
            {"name": "amount", "path": "f.amount"},
            {"name": "country", "path": "f.country", "type": "categorical", "max_categories": 2},
        ],
    },
}


def build(**overrides: Any) -> tuple[Config, Decoder, State]:
    config = parse_config({**CONFIG, **overrides})
    decoder = Decoder(config.fields, config.late_after, config.future_after)
    state = State(config, decoder.layout, [v.values for v in decoder.vocabularies])
    return config, decoder, state


def make_records(
    rng: np.random.Generator, n: int, now: float, models: tuple[str, ...] = ("fraud",)
) -> list[dict[str, Any]]:
    """Mostly good records with a share of every kind of bad value."""
    records = []
    for _ in range(n):
        record: dict[str, Any] = {
            "ts": now - rng.uniform(0, 30),
            "model": str(rng.choice(models)),
            "version": "v1",
            "p": float(rng.uniform(-0.05, 1.05)),
            "conf": float(rng.beta(5, 2)),
            "lat_ms": float(rng.lognormal(3.0, 1.0)),
            "cls": str(rng.choice(CLASSES, p=[0.5, 0.3, 0.2])),
            "f": {
                "amount": float(rng.lognormal(4.0, 2.0)),
                "country": str(rng.choice(["DE", "FR", "IT", "ES"])),
            },
        }
        roll = rng.random()
        if roll < 0.05:
            record["p"] = "abc"
        elif roll < 0.10:
            del record["conf"]
        elif roll < 0.13:
            record["lat_ms"] = None
        elif roll < 0.16:
            record["f"]["amount"] = True
        if rng.random() < 0.6:
            record["truth"] = str(rng.choice(CLASSES))
        if rng.random() < 0.02:
            record["ts"] = now - 10_000  # late
        records.append(record)
    return records


def encode(records: list[dict[str, Any]], junk: int = 0) -> bytes:
    lines = [json.dumps(r) for r in records] + ["{not json"] * junk
    return ("\n".join(lines) + "\n").encode()


def valid(records: list[dict[str, Any]], field: str) -> np.ndarray:
    """The values the spec counts as valid for a field, in its base unit."""
    out = []
    for r in records:
        value = r["f"].get("amount") if field == "amount" else r.get(field)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            continue
        if field in ("p", "conf") and not 0 <= value <= 1:
            continue
        if field == "lat_ms":
            if value < 0:
                continue
            value = value / 1000
        out.append(value)
    return np.array(out)


FIELD_OF = {
    "prediction": "p",
    "confidence": "conf",
    "latency_seconds": "lat_ms",
    "amount": "amount",
}


# Every counter a different value, so a field rendered under another's name shows.
SOURCE = SourceStats(*range(10, 10 + len(fields(SourceStats))))


def health() -> Health:
    return Health(
        sources={"/var/log/*.jsonl": SOURCE},
        parse_errors={("/var/log/*.jsonl", "invalid_json"): 3},
        last_read={"/var/log/*.jsonl": T0},
        checkpoint_errors=0,
        ingest_seconds=0.25,
        labels_cut={"predicted_class": 0, "country": 2},
    )
