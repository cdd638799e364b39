"""A prediction log with a drift episode, for the live page and the replay report.

The simulated fraud model (``exporter.offline.simulate``) over four hours of log time ending
now: calm for an hour, then drifted (``amount``, ``merchant_risk``, ``country``, the score
and the labels move; ``age`` and ``device`` do not). Written in two parts so a test can show
the live page before and after the drift; ``replay`` reads the same file with the records' own
time, so its 1h window sees the episode unfold and the drift alerts fire. ``late_after`` is a
day, so the sidecar does not count four-hour-old timestamps as late.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exporter.config import parse_config
from exporter.offline.baseline import ProfileBuilder
from exporter.offline.simulate import Scenario, generate
from tests.configs import example_config, write_config

SPAN = 4 * 3600.0  # seconds of log time
RATE = 2.0  # records per second of log time
DRIFT_AT = SPAN / 4
DRIFTED = ("amount", "merchant_risk", "country")  # drift in every window, by a wide margin
CALM = ("age", "device")


@dataclass(frozen=True)
class Episode:
    config: Path
    reference: Path
    log: Path
    start: float
    calm: list[bytes]
    drifted: list[bytes]


def make(directory: Path, config_overrides: dict[str, Any] | None = None) -> Episode:
    start = float(int(time.time() - SPAN))
    scenario = Scenario(drift_start=DRIFT_AT, malformed_ratio=0.003)
    n = int(SPAN * RATE)
    lines = generate(n, start, RATE, scenario)
    half = int(DRIFT_AT * RATE)
    log = directory / "predictions.jsonl"
    log.touch()
    reference = directory / "reference.json"
    data = example_config(
        log.name,  # relative to the config's directory, where the sidecar runs: short on screen
        reference=str(reference),
        windows=["1m", "5m"],
        window_buckets=20,  # steps of 3 s: the page's numbers move quickly
        late_after="1d",
        future_after="1m",
        **(config_overrides or {}),
    )
    config = write_config(directory, data)
    parsed = parse_config(data)
    builder = ProfileBuilder(parsed.fields, parsed.quantiles, parsed.sketch_relative_accuracy)
    builder.add(b"".join(generate(20_000, start - 86_400, 10.0, Scenario(seed=99))))
    created = datetime.fromtimestamp(start - 3600, UTC).isoformat(timespec="seconds")
    reference.write_text(builder.build(created, {"simulated_development_log": 20_000}).to_json())
    return Episode(config, reference, log, start, lines[:half], lines[half:])


def append(path: Path, lines: list[bytes]) -> None:
    with path.open("ab") as f:
        f.write(b"".join(lines))
