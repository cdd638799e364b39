"""The HTTP endpoints, on 127.0.0.1 with a port the OS picks: routes, health, HEAD, encodings,
request-head limits, and many connections at once."""

from __future__ import annotations

import base64
import gzip
import http.client
import logging
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bcrypt
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.connections import Limits
from exporter.httphead import MAX_HEAD_BYTES, MAX_HEADERS, MAX_REQUEST_LINE
from exporter.scrape import RENDER_FAILURES_UNHEALTHY, accepts_gzip
from exporter.server import MetricsServer
from exporter.webfile import WebConfigFile
from tests.harness import HTTP_TIMEOUT, WAIT, wait_until


class _One(Collector):
    def __init__(self) -> None:
        self.broken = False
        self.calls = 0
        self.gate: threading.Event | None = None  # when set, collect() waits for it

    def collect(self) -> Iterator[Metric]:
        self.calls += 1
        call = self.calls
        if self.gate is not None:
            self.gate.wait(10)
        if self.broken:
            raise RuntimeError("state unavailable")
        yield GaugeMetricFamily("model_test_value", "A value.", value=1.0)
        yield GaugeMetricFamily("model_test_render", "Which render this is.", value=call)


class _Served:
    def __init__(self, limits: Limits | None = None) -> None:
        self.collector = _One()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector)
        self.healthy = [True]
        self.ready = [False]
        self.server = MetricsServer(
            "127.0.0.1",
            0,
            registry,
            lambda: (self.healthy[0], "ok" if self.healthy[0] else "loop died"),
            ready=lambda: (self.ready[0], "ok" if self.ready[0] else "waiting for the first poll"),
            limits=limits,
        )
        self.port = self.server.port


@pytest.fixture
def served() -> Iterator[_Served]:
    s = _Served()
    s.server.start()
    try:
        yield s
    finally:
        s.server.stop()


def _get(
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes, http.client.HTTPMessage]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers


def _raw(port: int, request: bytes) -> bytes:
    """Send raw bytes, return everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT) as sock:
        sock.sendall(request)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
        return b"".join(chunks)


def test_metrics_landing_page_health_and_not_found(served: _Served) -> None:
    status, body, _ = _get(served.port, "/metrics")
    assert status == 200
    assert b"model_test_value 1.0" in body
    assert _get(served.port, "/")[0] == 200
    assert _get(served.port, "/healthz")[:2] == (200, b"ok\n")
    served.healthy[0] = False
    assert _get(served.port, "/healthz")[:2] == (503, b"loop died\n")
    assert _get(served.port, "/nope")[0] == 404


def test_readyz_waits_for_the_first_poll_and_follows_liveness(served: _Served) -> None:
    assert _get(served.port, "/readyz")[:2] == (503, b"waiting for the first poll\n")
    assert _get(served.port, "/healthz")[0] == 200  # alive while not ready yet
    served.ready[0] = True
    assert _get(served.port, "/readyz")[:2] == (200, b"ok\n")
    served.healthy[0] = False
    assert _get(served.port, "/readyz")[:2] == (503, b"loop died\n")


def test_readyz_says_stopping_while_draining_and_scrapes_still_work(served: _Served) -> None:
    served.ready[0] = True
    served.server.draining()
    assert _get(served.port, "/readyz")[:2] == (503, b"stopping\n")
    assert _get(served.port, "/metrics")[0] == 200
    assert _get(served.port, "/healthz")[0] == 200


def test_a_failing_scrape_gets_a_500_and_the_server_keeps_serving(
    served: _Served, caplog: pytest.LogCaptureFixture
) -> None:
    served.collector.broken = True
    with caplog.at_level(logging.ERROR):
        status, body, _ = _get(served.port, "/metrics")
    assert status == 500
    # The type of the error, not its message: that stays in the log.
    assert body == b"error rendering metrics (RuntimeError): see the log\n"
    assert "state unavailable" in caplog.text
    served.collector.broken = False
    assert _get(served.port, "/metrics")[0] == 200


def test_healthz_fails_when_rendering_keeps_failing(
    served: _Served, caplog: pytest.LogCaptureFixture
) -> None:
    served.collector.broken = True
    with caplog.at_level(logging.CRITICAL):
        for _ in range(RENDER_FAILURES_UNHEALTHY - 1):
            assert _get(served.port, "/metrics")[0] == 500
        assert _get(served.port, "/healthz")[0] == 200  # a failure or two is not death
        assert _get(served.port, "/metrics")[0] == 500
    status, body, _ = _get(served.port, "/healthz")
    assert status == 503
    assert b"RuntimeError" in body
    assert b"state unavailable" not in body
    assert _get(served.port, "/readyz")[0] == 503
    served.collector.broken = False
    assert _get(served.port, "/metrics")[0] == 200
    assert _get(served.port, "/healthz")[0] == 200


def test_head_has_the_headers_of_get_and_no_body(served: _Served) -> None:
    served.ready[0] = True
    for path in ("/metrics", "/healthz", "/readyz", "/", "/nope"):
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=HTTP_TIMEOUT)
        conn.request("GET", path)
        got = conn.getresponse()
        body = got.read()
        conn.request("HEAD", path)  # on the same kept-alive connection
        head = conn.getresponse()
        assert head.read() == b""
        assert head.status == got.status, path
        assert head.getheader("Content-Type") == got.getheader("Content-Type")
        if path != "/metrics":  # the metrics body changes between renders; the others do not
            assert head.getheader("Content-Length") == str(len(body)), path
        else:
            assert int(head.getheader("Content-Length") or 0) > 0
        conn.close()


def test_other_methods_are_refused(served: _Served) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=HTTP_TIMEOUT)
    conn.request("POST", "/metrics", body=b"x")
    answer = conn.getresponse()
    assert answer.status == 405
    assert answer.getheader("Allow") == "GET, HEAD"
    conn.close()


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("deflate, gzip;q=0.8", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("identity", False),
        ("identity;q=1, gzip;q=0.5", False),
        ("*;q=0", False),
        ("br", False),
        ("gzip;q=0.5, identity;q=0.2", True),
        ("", False),
    ],
)
def test_accept_encoding_is_negotiated_by_q_values(
    served: _Served, accept_encoding: str, gzipped: bool
) -> None:
    assert accepts_gzip([accept_encoding]) is gzipped
    status, body, headers = _get(served.port, "/metrics", {"Accept-Encoding": accept_encoding})
    assert status == 200
    assert (headers.get("Content-Encoding") == "gzip") is gzipped
    text = gzip.decompress(body) if gzipped else body
    assert b"model_test_value 1.0" in text


def test_an_accept_header_with_a_version_that_does_not_compare_gets_the_text_format(
    served: _Served,
) -> None:
    status, body, headers = _get(served.port, "/metrics", {"Accept": "text/plain;version=1.x"})
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert b"model_test_value 1.0" in body


def test_too_many_header_lines_get_431(served: _Served) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADERS + 1))
    answer = _raw(served.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")
    # Exactly at the limit is fine (Host, Connection and the rest).
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADERS - 2))
    answer = _raw(
        served.port,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_request_head_over_the_byte_limit_gets_431(served: _Served) -> None:
    big = b"X-Big: " + b"a" * MAX_HEAD_BYTES + b"\r\n"
    answer = _raw(served.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_a_long_request_line_gets_414_and_garbage_400(served: _Served) -> None:
    line = b"GET /" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1\r\n\r\n"
    assert _raw(served.port, line).startswith(b"HTTP/1.1 414 ")
    assert _raw(served.port, b"NOT HTTP AT ALL\r\n\r\n").split(b" ")[1] == b"400"


def test_pipelined_requests_on_one_connection_are_all_answered(served: _Served) -> None:
    one = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = _raw(served.port, one * 4 + last)
    assert answer.count(b"HTTP/1.1 200 OK") == 5


def test_scrapes_during_a_render_share_the_next_render(served: _Served) -> None:
    """Four scrapes, two renders: the first scrape's, and one shared by the three that arrived
    while it ran (it starts after they arrived, so their numbers are not older)."""
    gate = threading.Event()
    served.collector.gate = gate
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(_get, served.port, "/metrics")
        wait_until(lambda: served.collector.calls == 1, WAIT, message="the first render to start")
        others = [pool.submit(_get, served.port, "/metrics") for _ in range(3)]
        wait_until(lambda: served.server.waiting_scrapes() == 3, WAIT, message="3 waiting")
        gate.set()
        answers = [first.result(), *(f.result() for f in others)]
    assert [status for status, _, _ in answers] == [200] * 4
    assert served.collector.calls == 2
    assert b"model_test_render 1.0" in answers[0][1]
    for _, body, _ in answers[1:]:
        assert b"model_test_render 2.0" in body


def test_many_simultaneous_connections_are_all_answered() -> None:
    """More clients than workers and than max_connections: each gets its answer (idle
    keep-alive connections make room; the rest wait in the listen backlog)."""
    s = _Served(Limits(workers=2, max_connections=16))
    s.server.start()
    clients = 200
    try:
        socks = [
            socket.create_connection(("127.0.0.1", s.port), timeout=HTTP_TIMEOUT) for _ in range(8)
        ]
        for sock in socks:  # 8 kept-alive, idle connections
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        with ThreadPoolExecutor(clients) as pool:
            answers = list(pool.map(lambda _: _get(s.port, "/metrics")[0], range(clients)))
        assert answers == [200] * clients
        for sock in socks:
            sock.close()
    finally:
        s.server.stop()


def test_a_slow_client_does_not_hold_the_only_worker() -> None:
    s = _Served(Limits(workers=1, head_timeout=1.0))
    s.server.start()
    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=HTTP_TIMEOUT) as slow:
            slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            # The head waits in the selector thread, not on the worker: the next client is
            # served, and the slow one is closed once head_timeout passes.
            assert _get(s.port, "/healthz")[0] == 200
            assert slow.recv(65536) == b""  # closed by the server
    finally:
        s.server.stop()


def test_idle_connections_are_evicted_to_make_room() -> None:
    s = _Served(Limits(workers=2, max_connections=4))
    s.server.start()
    try:
        idle = []
        for _ in range(4):
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=HTTP_TIMEOUT)
            conn.request("GET", "/healthz")
            assert conn.getresponse().read() == b"ok\n"
            idle.append(conn)
        assert _get(s.port, "/healthz")[0] == 200  # a fifth connection
        assert s.server.evicted >= 1
        for conn in idle:
            conn.close()
    finally:
        s.server.stop()


def test_stop_without_start_returns() -> None:
    server = MetricsServer(
        "127.0.0.1", 0, CollectorRegistry(auto_describe=False), lambda: (True, "ok")
    )
    server.stop()


# -- the live page and its JSON ------------------------------------------------------------------


class _Status:
    def __init__(self) -> None:
        self.queries: list[tuple[str, bool]] = []

    def __call__(self, query: str, gzipped: bool) -> tuple[int, bytes]:
        self.queries.append((query, gzipped))
        if query == "bad":
            return 400, b"unknown parameter\n"
        body = b'{"api_version":1}'
        return 200, gzip.compress(body) if gzipped else body


def _page_server(web_config: WebConfigFile | None = None) -> tuple[MetricsServer, _Status]:
    status = _Status()
    registry = CollectorRegistry(auto_describe=False)
    server = MetricsServer(
        "127.0.0.1", 0, registry, lambda: (True, "ok"), web_config=web_config, status=status
    )
    server.start()
    return server, status


def test_the_page_its_files_and_the_status_json_are_served_with_their_headers() -> None:
    server, status = _page_server()
    try:
        code, body, headers = _get(server.port, "/")
        assert code == 200
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert b'<script src="/static/app.js" defer></script>' in body
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        for path, kind in (
            ("/static/app.js", "text/javascript"),
            ("/static/app.css", "text/css"),
            ("/static/favicon.svg", "image/svg+xml"),
        ):
            code, body, headers = _get(server.port, path)
            assert (code, headers["Content-Type"].split(";")[0]) == (200, kind)
            assert body
            etag = headers["ETag"]
            code, body, headers = _get(server.port, path, {"If-None-Match": etag})
            assert (code, body) == (304, b"")
            assert headers["ETag"] == etag
            # A 304 stands for the cached body: no length (or type) of its own.
            assert "Content-Length" not in headers
            assert "Content-Type" not in headers
        code, body, headers = _get(server.port, "/api/v1/status?history=none")
        assert (code, body) == (200, b'{"api_version":1}')
        assert headers["Content-Type"] == "application/json"
        assert headers["Cache-Control"] == "no-store"
        code, body, headers = _get(server.port, "/api/v1/status", {"Accept-Encoding": "gzip"})
        assert headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(body) == b'{"api_version":1}'
        assert _get(server.port, "/api/v1/status?bad")[:2] == (400, b"unknown parameter\n")
        assert status.queries == [("history=none", False), ("", True), ("bad", False)]
        assert _get(server.port, "/static/nope.js")[0] == 404
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=HTTP_TIMEOUT)
        conn.request("POST", "/api/v1/status", body=b"{}")
        assert conn.getresponse().status == 405
        conn.close()
    finally:
        server.stop()


def test_the_page_and_the_api_are_behind_the_same_password_as_metrics(tmp_path: Path) -> None:
    password = "s3cret"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  viewer: '{hashed}'\n")
    server, status = _page_server(WebConfigFile(str(web)))
    token = base64.b64encode(f"viewer:{password}".encode()).decode()
    try:
        for path in ("/", "/api/v1/status", "/static/app.js", "/static/app.css", "/metrics"):
            assert _get(server.port, path)[0] == 401, path
            assert _get(server.port, path, {"Authorization": f"Basic {token}"})[0] == 200, path
        assert len(status.queries) == 1  # only the authorised request reached the endpoint
    finally:
        server.stop()
