"""The sidecar's own families: what it read, what it could not parse, what it cut, how its
reference reloads went, and its build."""

from __future__ import annotations

import platform
from collections.abc import Iterator

from exporter import __version__
from exporter.exposition import COUNTER, GAUGE, Family
from exporter.families import family
from exporter.health import PREFIX, SOURCE_METRICS, Health


def build_info() -> Iterator[Family]:
    info = family(
        GAUGE,
        "model_exporter_build_info",
        "Build information of the model-exporter sidecar.",
        labels=["version", "python_version"],
    )
    info.add([__version__, platform.python_version()], 1.0)
    yield info


def health_families(health: Health) -> Iterator[Family]:
    p = PREFIX
    for metric in SOURCE_METRICS:
        per_source = family(metric.type, p + metric.name, metric.help, labels=["source"])
        for source, stats in health.sources.items():
            per_source.add([source], float(getattr(stats, metric.attribute)))
        yield per_source
    up = family(
        GAUGE,
        f"{p}source_up",
        "1 when a file of the source is present and readable.",
        labels=["source"],
    )
    for source, stats in health.sources.items():
        up.add([source], 1.0 if stats.files_present > 0 else 0.0)
    yield up
    parse = family(
        COUNTER,
        f"{p}parse_errors",
        "Lines that did not become a record, by reason: invalid_json, not_an_object, "
        "invalid_utf8, unprocessable (lost to an unexpected error).",
        labels=["source", "reason"],
    )
    for (source, reason), count in sorted(health.parse_errors.items()):
        parse.add([source, reason], count)
    yield parse
    last = family(
        GAUGE,
        f"{p}last_read_timestamp_seconds",
        "Wall time the last line was read.",
        labels=["source"],
    )
    for source, when in health.last_read.items():
        last.add([source], when)
    yield last
    yield family(
        COUNTER,
        f"{p}checkpoint_errors",
        "Corrupt or unwritable positions file.",
        value=float(health.checkpoint_errors),
    )
    yield family(
        COUNTER,
        f"{p}ingest_seconds",
        "Time spent parsing lines and updating state.",
        value=float(health.ingest_seconds),
    )
    cut = family(
        COUNTER,
        f"{p}label_values_truncated",
        "Values from the log cut to max_label_value_bytes before becoming a label value.",
        labels=["field"],
    )
    for name, count in health.labels_cut.items():
        cut.add([name], count)
    yield cut
    reloads = family(
        COUNTER, f"{p}reference_reloads", "Reference profile loads by outcome.", labels=["outcome"]
    )
    for outcome in ("ok", "error"):
        reloads.add([outcome], health.reference_reloads.get(outcome, 0))
    yield reloads
