"""Our metric families as prometheus_client sees them: a ``Collector`` for a
``CollectorRegistry`` and its encoders.

The sidecar writes its own bodies (``exposition``) and never loads prometheus_client (~7 ms of
CPU at every start, for ``http.server``, ``email`` and the rest it imports); this view is for
the HTTP server's fallback (no renderer given) and for the tests that hold our writer to
prometheus_client's output. ``collector`` and ``server`` load it when asked for a registry.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from exporter.exposition import Family
from exporter.labels import label_text


class FamiliesCollector(Collector):
    """A prometheus_client collector of the families ``families`` builds at each collection."""

    def __init__(self, families: Callable[[], Iterable[Family]]) -> None:
        self._families = families

    def describe(self) -> list[Metric]:
        # Returning nothing keeps registration from calling collect() (which would take a
        # snapshot at import or start-up time).
        return []

    def collect(self) -> Iterator[Metric]:
        return as_metrics(self._families())


def as_metrics(families: Iterable[Family]) -> Iterator[Metric]:
    """prometheus_client's ``Metric`` for each family.

    prometheus_client's encoders fail the whole scrape on a label value that is not valid
    UTF-8 (our own writer never does): values that ingestion did not repair are repaired here
    with the ingest's ``label_text``."""
    for rendered in families:
        metric = Metric(rendered.name, rendered.help, rendered.type)
        for suffix, names, values, value in rendered.samples():
            labels = dict(zip(names, map(_valid_text, values), strict=True))
            metric.add_sample(rendered.name + suffix, labels, value)
        yield metric


def _valid_text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return label_text(value, sys.maxsize)[0]
    return value
