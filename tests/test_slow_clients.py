"""Slow and stalled clients hold no worker: request heads and TLS handshakes are read, and
responses sent, by the connection server's selector thread, so a crowd of clients that stop
half-way cannot keep ``/healthz`` or other scrapers from being answered.

Every server here has two workers or one, and timeouts far longer than the tests' own bounds
(the harness's), so only the design, not a timeout expiring, can let the probes through."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.connections import Limits
from exporter.server import MetricsServer
from exporter.webfile import WebConfigFile
from tests.certs import Certificates, make_certificates
from tests.harness import HTTP_TIMEOUT, WAIT, wait_until

LONG = 600.0  # seconds: no timeout of the server's expires during a test
# A /metrics body of 12 MiB: far more than the socket buffers hold (on loopback the kernel lets
# the sender's buffer grow to net.ipv4.tcp_wmem's 4 MiB, whatever the receiver's window).
SERIES = 12
LABEL = "x" * (1 << 20)


class _Big(Collector):
    def __init__(self) -> None:
        self.calls = 0

    def collect(self) -> Iterator[Metric]:
        self.calls += 1
        family = GaugeMetricFamily("model_test_big", "Many series.", labels=["i"])
        for i in range(SERIES):
            family.add_metric([f"{i}{LABEL}"], float(i))
        yield family


def _server(limits: Limits, web_config: WebConfigFile | None = None) -> MetricsServer:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Big())
    return MetricsServer(
        "127.0.0.1", 0, registry, lambda: (True, "ok"), web_config=web_config, limits=limits
    )


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def _started(stack: ExitStack, server: MetricsServer) -> MetricsServer:
    server.start()
    stack.callback(server.stop)
    return server


def _connect(stack: ExitStack, port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    stack.callback(sock.close)
    if rcvbuf is not None:  # before connecting, so the window stays small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(HTTP_TIMEOUT)
    sock.connect(("127.0.0.1", port))
    return sock


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response with a Content-Length: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the end of the head: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(body)} of {length} body bytes"
        body += chunk
    return head, body


def _healthy(sock: socket.socket) -> None:
    """The answer to a /healthz request sent on ``sock``."""
    head, body = _read_response(sock)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == b"ok\n"


def _fetch(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _probe_answers(port: int) -> None:
    """/healthz and /metrics, on new connections, are answered whole."""
    assert _fetch(port, "/healthz") == (200, b"ok\n")
    status, body = _fetch(port, "/metrics")
    assert status == 200
    assert body.count(b"model_test_big{") == SERIES


def test_stalled_request_heads_hold_no_worker(stack: ExitStack) -> None:
    server = _started(stack, _server(Limits(workers=2, head_timeout=LONG)))
    partial = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
    stalled = [_connect(stack, server.port) for _ in range(12)]
    for sock in stalled:
        sock.sendall(partial)  # and stop before the blank line
    silent = [_connect(stack, server.port) for _ in range(4)]  # connect, send nothing
    opened = len(stalled) + len(silent)
    wait_until(lambda: server.open_connections == opened, WAIT, message="all connections open")
    _probe_answers(server.port)
    # What the stalled clients sent was kept: finishing their heads gets them their answers.
    for sock in stalled:
        sock.sendall(b"1\r\n\r\n")
    for sock in stalled:
        _healthy(sock)


def test_a_head_trickling_in_byte_by_byte_is_answered(stack: ExitStack) -> None:
    server = _started(stack, _server(Limits(workers=1, head_timeout=LONG)))
    sock = _connect(stack, server.port)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n":
        sock.sendall(bytes([byte]))
    _healthy(sock)


def test_a_client_that_does_not_read_its_response_holds_no_worker(stack: ExitStack) -> None:
    server = _started(stack, _server(Limits(workers=1, write_timeout=LONG)))
    laggards = [_connect(stack, server.port, rcvbuf=4096) for _ in range(3)]
    for sock in laggards:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")  # then read nothing
    wait_until(lambda: server.writing_responses() == 3, WAIT, message="3 responses stalled")
    for _ in range(3):
        _probe_answers(server.port)
    # The stalled responses were kept whole: a laggard that reads at last gets all of its own.
    for sock in laggards:
        head, body = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert body.count(b"model_test_big{") == SERIES


def test_a_response_not_taken_within_write_timeout_is_dropped(stack: ExitStack) -> None:
    server = _started(stack, _server(Limits(workers=1, write_timeout=0.2)))
    laggard = _connect(stack, server.port, rcvbuf=4096)
    laggard.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_until(lambda: server.timed_out == 1, WAIT, message="the laggard timed out")
    assert server.open_connections == 0
    received = 0
    with contextlib.suppress(ConnectionResetError):
        while chunk := laggard.recv(65536):
            received += len(chunk)
    assert received < SERIES * len(LABEL)  # cut short
    _probe_answers(server.port)


# -- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def _client_hello(context: ssl.SSLContext) -> bytes:
    """The first flight of a TLS client, as bytes (a real ClientHello)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


def test_stalled_tls_handshakes_hold_no_worker(
    stack: ExitStack, certs: Certificates, tmp_path: Path
) -> None:
    web = tmp_path / "web.yml"
    tls = {"cert_file": str(certs.server.cert), "key_file": str(certs.server.key)}
    web.write_text(yaml.safe_dump({"tls_server_config": tls}))
    server = _started(stack, _server(Limits(workers=2, head_timeout=LONG), WebConfigFile(str(web))))
    context = ssl.create_default_context(cafile=str(certs.ca.cert))
    hello = _client_hello(context)
    silent = [_connect(stack, server.port) for _ in range(4)]
    for _ in range(6):  # half a ClientHello, then nothing
        _connect(stack, server.port).sendall(hello[: len(hello) // 2])
    for _ in range(2):  # a whole handshake, then half a request head
        tls_sock = context.wrap_socket(_connect(stack, server.port), server_hostname="127.0.0.1")
        stack.callback(tls_sock.close)
        tls_sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    opened = len(silent) + 8
    wait_until(lambda: server.open_connections == opened, WAIT, message="all connections open")
    for _ in range(3):
        probe = context.wrap_socket(_connect(stack, server.port), server_hostname="127.0.0.1")
        stack.callback(probe.close)
        probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        _healthy(probe)
