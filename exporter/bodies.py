"""The bytes ``/metrics`` serves: the collector's families written by our own exposition writer
(``exposition``), the model part kept until the state or the assessment changes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from itertools import chain

from exporter.collector import ModelCollector
from exporter.exposition import Family, Writer, encode


class Bodies:
    """``/metrics`` bodies whose model part is rendered once per version and kept.

    ``version`` must be equal between two calls only if the model part would render the same
    (a record ingested, a bucket turned, a new assessment: a new version), and is read before
    the render it names, so a change in between only costs one more render. The sidecar's
    health part (and the server's own families) is small and rendered for every body.
    """

    def __init__(self, collector: ModelCollector, version: Callable[[], Hashable]) -> None:
        self._collector = collector
        self._version = version
        self._writer = Writer()
        self._lock = threading.Lock()
        self._cached: dict[bool, tuple[Hashable, bytes]] = {}
        self.renders = 0  # model-part renders so far (the other bodies reused one)

    def render(self, openmetrics: bool, extra: Iterable[Family] = ()) -> bytes:
        with self._lock:
            key = self._version()
            cached = self._cached.get(openmetrics)
            if cached is None or cached[0] != key:
                model = self._writer.render(self._collector.model_families(), openmetrics)
                cached = self._cached[openmetrics] = (key, encode(model))
                self.renders += 1
            rest = chain(self._collector.health_families(), extra)
            tail = encode(self._writer.render(rest, openmetrics))
        return cached[1] + tail + (b"# EOF\n" if openmetrics else b"")
