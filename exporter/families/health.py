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
    sources = health.sources.items()
    for metric in SOURCE_METRICS:
        yield family(
            metric.type,
            p + metric.name,
            metric.help,
            labels=["source"],
            samples=(([s], float(getattr(stats, metric.attribute))) for s, stats in sources),
        )
    yield family(
        GAUGE,
        f"{p}source_up",
        "1 when a file of the source is present and readable.",
        labels=["source"],
        samples=(([s], 1.0 if stats.files_present > 0 else 0.0) for s, stats in sources),
    )
    yield family(
        COUNTER,
        f"{p}parse_errors",
        "Lines that did not become a record, by reason: invalid_json, not_an_object, "
        "invalid_utf8, unprocessable (lost to an unexpected error).",
        labels=["source", "reason"],
        samples=((list(key), count) for key, count in sorted(health.parse_errors.items())),
    )
    yield family(
        GAUGE,
        f"{p}last_read_timestamp_seconds",
        "Wall time the last line was read.",
        labels=["source"],
        samples=(([s], when) for s, when in health.last_read.items()),
    )
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
    yield family(
        COUNTER,
        f"{p}label_values_truncated",
        "Values from the log cut to max_label_value_bytes before becoming a label value.",
        labels=["field"],
        samples=(([name], count) for name, count in health.labels_cut.items()),
    )
    yield family(
        COUNTER,
        f"{p}reference_reloads",
        "Reference profile loads by outcome.",
        labels=["outcome"],
        samples=(([o], health.reference_reloads.get(o, 0)) for o in ("ok", "error")),
    )
