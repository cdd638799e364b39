"""The bytes ``/metrics`` serves: the collector's families written by our own exposition writer
(``exposition``), the model part kept (compressed, ``deflate``) until the state or the
assessment changes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from itertools import chain

from exporter.collector import ModelCollector
from exporter.deflate import Body, Deflated
from exporter.exposition import Family, Writer


class Bodies:
    """``/metrics`` bodies whose model part is rendered once per version and kept.

    ``version`` must be equal between two calls only if the model part would render the same
    (a record ingested, a bucket turned, a new assessment: a new version), and is read before
    the render it names, so a change in between only costs one more render. The sidecar's
    health part (and the server's own families) is small and rendered for every body.

    What is kept is the model part of each format asked for at the current version, deflated
    as it is written: the text of the page never exists whole, and a gzip body is put together
    from the kept stream without compressing it again. A format's part is dropped as soon as
    the version moves on (a Prometheus that asks for OpenMetrics never keeps an old text body
    alive, nor the other way round).
    """

    def __init__(self, collector: ModelCollector, version: Callable[[], Hashable]) -> None:
        self._collector = collector
        self._version = version
        self._writer = Writer()
        self._lock = threading.Lock()
        self._cached: dict[bool, tuple[Hashable, Deflated]] = {}
        self.renders = 0  # model-part renders so far (the other bodies reused one)

    def body(self, openmetrics: bool, extra: Iterable[Family] = ()) -> Body:
        """The body (what the server sends, gzipped or plain)."""
        with self._lock:
            key = self._version()
            cached = self._cached.get(openmetrics)
            if cached is None or cached[0] != key:
                # Let go of every stale part before writing the new one (not both at once).
                self._cached = {f: c for f, c in self._cached.items() if c[0] == key}
                model = self._writer.chunks(self._collector.model_families(), openmetrics)
                cached = self._cached[openmetrics] = (key, Deflated(model))
                self.renders += 1
            rest = chain(self._collector.health_families(), extra)
            tail = list(self._writer.chunks(rest, openmetrics))
        if openmetrics:
            tail.append(b"# EOF\n")
        return Body(cached[1], tail)

    def chunks(self, openmetrics: bool, extra: Iterable[Family] = ()) -> tuple[bytes, ...]:
        """The body as plain pieces."""
        return self.body(openmetrics, extra).plain()

    def kept(self) -> list[bool]:
        """The formats whose model part is kept (``True``: OpenMetrics), for tests."""
        with self._lock:
            return sorted(self._cached)

    def render(self, openmetrics: bool, extra: Iterable[Family] = ()) -> bytes:
        """The body as one piece."""
        return b"".join(self.chunks(openmetrics, extra))
