"""The HTTP endpoints, on 127.0.0.1 with a port the OS picks."""

from __future__ import annotations

import gzip
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.server import MetricsServer


class _One(Collector):
    def __init__(self) -> None:
        self.broken = False

    def collect(self) -> Iterator[Metric]:
        if self.broken:
            raise RuntimeError("state unavailable")
        yield GaugeMetricFamily("model_test_value", "A value.", value=1.0)


@pytest.fixture
def served() -> Iterator[tuple[MetricsServer, _One, list[bool]]]:
    collector = _One()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    healthy = [True]
    server = MetricsServer(
        "127.0.0.1", 0, registry, lambda: (healthy[0], "ok" if healthy[0] else "loop died")
    )
    server.start()
    try:
        yield server, collector, healthy
    finally:
        server.stop()


def _get(
    server: MetricsServer, path: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read(), response.headers.get("Content-Encoding", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), ""


def test_metrics_landing_page_health_and_not_found(
    served: tuple[MetricsServer, _One, list[bool]],
) -> None:
    server, _, healthy = served
    status, body, _ = _get(server, "/metrics")
    assert status == 200
    assert b"model_test_value 1.0" in body
    status, body, encoding = _get(server, "/metrics", {"Accept-Encoding": "gzip"})
    assert (status, encoding) == (200, "gzip")
    assert b"model_test_value 1.0" in gzip.decompress(body)
    assert _get(server, "/")[0] == 200
    assert _get(server, "/healthz")[:2] == (200, b"ok\n")
    healthy[0] = False
    assert _get(server, "/healthz")[:2] == (503, b"loop died\n")
    assert _get(server, "/nope")[0] == 404


def test_a_failing_scrape_gets_a_500_and_the_server_keeps_serving(
    served: tuple[MetricsServer, _One, list[bool]], caplog: pytest.LogCaptureFixture
) -> None:
    server, collector, _ = served
    collector.broken = True
    with caplog.at_level(logging.ERROR):
        status, body, _ = _get(server, "/metrics")
    assert status == 500
    assert b"state unavailable" in body
    collector.broken = False
    assert _get(server, "/metrics")[0] == 200


def test_stop_without_start_returns() -> None:
    server = MetricsServer(
        "127.0.0.1", 0, CollectorRegistry(auto_describe=False), lambda: (True, "ok")
    )
    server.stop()
