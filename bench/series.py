"""Series one sidecar exports for one model version: the example config with a profile.

Prints the series count per metric family and the share the fleet cell series add, for the
cardinality budget in docs/metrics.md. The simulator's model (config/exporter.yaml's fields)
writes the development log and the production log; nothing is timed.

    .venv/bin/python bench/series.py [--categories K]

``--categories K`` gives the `country` feature K distinct values (default: the simulator's),
to show the worst case the category cap allows.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.bodies import Bodies
from exporter.collector import ModelCollector
from exporter.config import parse_config
from exporter.engine import Engine
from exporter.offline.baseline import ProfileBuilder
from exporter.offline.simulate import Scenario, generate

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_764_000_000.0
FLEET = (
    "model_field_bin_records",
    "model_reference_bin_share",
    "model_reference_drift_critical",
    "model_reference_drift_samples",
    "model_drift_floor",
    "model_drift_min_samples",
)


def with_categories(lines: list[bytes], k: int) -> list[bytes]:
    out = []
    for i, line in enumerate(lines):
        record = json.loads(line)
        if isinstance(record, dict) and isinstance(record.get("features"), dict):
            record["features"]["country"] = f"c{i % k}"
        out.append(json.dumps(record).encode() + b"\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--categories", type=int, default=0)
    args = parser.parse_args()
    raw = yaml.safe_load((ROOT / "config" / "exporter.yaml").read_text())
    raw["sources"] = ["/dev/null"]
    raw["positions_file"] = None
    config = parse_config(raw)
    dev = generate(20_000, T0, 50.0, Scenario(seed=1))
    live = generate(20_000, T0 + 400, 50.0, Scenario(seed=2))
    if args.categories:
        dev, live = with_categories(dev, args.categories), with_categories(live, args.categories)
    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    builder.add(b"".join(dev))
    reference = builder.build("2026-01-01T00:00:00+00:00")
    engine = Engine(config, reference)
    engine.ingest(b"".join(live), T0 + 800)
    assessment = engine.advance(T0 + 800 + engine.assessor.step)
    snapshot = engine.state.snapshot(T0 + 800)
    collector = ModelCollector(lambda: snapshot, None, lambda: assessment)
    text = Bodies(collector, object).render(False).decode()  # what the sidecar serves
    per_family: Counter[str] = Counter()
    cells: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            per_family[family.name] += 1
            if family.name in FLEET:
                cells[sample.labels.get("field", "")] += 1
    total = sum(per_family.values())
    fleet = sum(per_family[f] for f in FLEET)
    for name, count in sorted(per_family.items()):
        print(f"{count:6d}  {name}")
    print(f"\n{total} series; the fleet cell series: {fleet} ({fleet / total:.0%})")
    for field, count in sorted(cells.items()):
        print(f"  {field}: {count}")


if __name__ == "__main__":
    main()
