"""Put the metric families together for one scrape, each part rendered on its own.

Follows prometheus_client's custom-collector pattern: the store knows nothing of Prometheus;
the ``families`` modules walk one ``Snapshot`` (and the latest drift ``Assessment``) and build
families from them, computing nothing. This module decides which parts a scrape holds and keeps
one broken part from failing the others; ``bodies`` writes and caches the text the sidecar
serves. ``collect``/``registry`` are the prometheus_client view of the same families
(``registry_view``, loaded only when asked: the sidecar never loads prometheus_client): the
registry is where the server adds its own few families, and prometheus_client only encodes it
in the server's fallback (no renderer given), which the sidecar never takes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from exporter.assess import Assessment
from exporter.exposition import COUNTER, Family
from exporter.families import family
from exporter.families.drift import drift_families
from exporter.families.fleet import fleet_families
from exporter.families.health import build_info, health_families
from exporter.families.model import model_families
from exporter.families.reference import reference_families
from exporter.health import Health
from exporter.state import Snapshot

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

log = logging.getLogger(__name__)


class ModelCollector:
    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        health: Callable[[], Health] | None = None,
        assessment: Callable[[], Assessment] | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._health = health
        self._assessment = assessment
        self._lock = threading.Lock()
        self._render_errors = 0
        self._logged: set[str] = set()

    def describe(self) -> list[Metric]:
        # Returning nothing keeps registration from calling collect() (which would take a
        # snapshot at import or start-up time).
        return []

    def collect(self) -> Iterator[Metric]:
        """The prometheus_client view of ``families`` (for a registry and its encoders; see
        ``registry_view.as_metrics``)."""
        from exporter.registry_view import as_metrics  # noqa: PLC0415

        return as_metrics(self.families())

    def registry(self) -> CollectorRegistry:
        """A registry holding only this collector (no process or platform collectors: the
        sidecar's own health metrics are the ones that say something about it)."""
        from prometheus_client import CollectorRegistry  # noqa: PLC0415

        from exporter.registry_view import FamiliesCollector  # noqa: PLC0415

        result = CollectorRegistry(auto_describe=False)
        result.register(FamiliesCollector(self.families))
        return result

    def families(self) -> Iterator[Family]:
        yield from self.model_families()
        yield from self.health_families()

    def model_families(self) -> Iterator[Family]:
        """Everything the state and the assessment decide: unchanged until a record arrives,
        a bucket turns or the windows are judged again.

        Rendering is total: a part whose families fail to build is left out of this scrape
        (counted in model_exporter_render_errors_total, logged once), never the whole scrape.
        """
        snapshot = self._snapshot()
        parts: list[tuple[str, Callable[[], Iterable[Family]]]] = [
            ("model", lambda: model_families(snapshot)),
            ("reference", lambda: reference_families(snapshot)),
            ("build_info", build_info),
        ]
        latest = None
        if self._assessment is not None:
            latest = self._assessment()
            assessed = latest
            parts.insert(1, ("drift", lambda: drift_families(assessed)))
        parts.insert(-1, ("fleet", lambda: fleet_families(snapshot, latest)))
        yield from self._parts(parts)

    def health_families(self) -> Iterator[Family]:
        """The sidecar's own counters (rendered for every body, never cached)."""
        if self._health is not None:
            health = self._health
            yield from self._parts([("health", lambda: health_families(health()))])
        with self._lock:
            errors = self._render_errors
        yield family(
            COUNTER,
            "model_exporter_render_errors",
            "Parts of a scrape left out because they failed to render.",
            value=errors,
        )

    def _parts(self, parts: list[tuple[str, Callable[[], Iterable[Family]]]]) -> Iterator[Family]:
        for name, build in parts:
            try:
                families = list(build())
            except Exception:
                self._failed(name)
                continue
            # Handed over one by one and not kept: a family's rows (a few MiB for the whole
            # page at the caps) are freed as soon as the writer is done with it.
            families.reverse()
            while families:
                yield families.pop()

    def _failed(self, part: str) -> None:
        with self._lock:
            self._render_errors += 1
            first = part not in self._logged
            self._logged.add(part)
        if first:  # once per part: a broken value fails every scrape until it leaves the window
            log.exception("cannot render the %s metrics; leaving them out of the scrape", part)
