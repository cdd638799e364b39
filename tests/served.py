"""The ``/metrics`` body the sidecar serves, rendered in process.

The sidecar serves ``Bodies.render`` (our own exposition writer, the model part cached per
state version); prometheus_client's encoders only run in the server's fallback, which the
sidecar never takes. Tests of what a scrape holds render it here, so they check the bytes
Prometheus really receives (less the server's own few families, which tests/test_server.py
covers).
"""

from __future__ import annotations

from collections.abc import Callable

from exporter.assess import Assessment
from exporter.bodies import Bodies
from exporter.collector import ModelCollector
from exporter.health import Health
from exporter.state import Snapshot


def bodies(
    snapshot: Callable[[], Snapshot],
    health: Callable[[], Health] | None = None,
    assessment: Callable[[], Assessment] | None = None,
) -> Bodies:
    """Bodies as the sidecar wires them, re-rendering the model part at every call (a fresh
    version each time: the tests change the state between renders without a version)."""
    return Bodies(ModelCollector(snapshot, health, assessment), object)


def served(
    snapshot: Callable[[], Snapshot],
    health: Callable[[], Health] | None = None,
    assessment: Callable[[], Assessment] | None = None,
    openmetrics: bool = False,
) -> str:
    return bodies(snapshot, health, assessment).render(openmetrics).decode()
