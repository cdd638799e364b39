"""TLS, mTLS and basic auth from an exporter-toolkit web config: the server in-process against
Python's own TLS client, then the real sidecar scraped by the real Prometheus over HTTPS."""

from __future__ import annotations

import base64
import http.client
import logging
import shutil
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.server import MetricsServer
from exporter.webfile import WebConfigFile
from tests.certs import Certificates, Pair, make_certificates
from tests.configs import example_config, write_config
from tests.harness import HTTP_TIMEOUT, WAIT, Prometheus, ScrapeTarget, SidecarProcess, wait_until

PASSWORD = "correct horse battery staple"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
HEADERS = {"X-Content-Type-Options": "nosniff", "Strict-Transport-Security": "max-age=60"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


class _Value(Collector):
    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("model_test_value", "A value.", value=1.0)


def _write(path: Path, web: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(web))
    return path


def _tls(certs: Certificates, **extra: Any) -> dict[str, Any]:
    return {"cert_file": str(certs.server.cert), "key_file": str(certs.server.key), **extra}


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], MetricsServer]]:
    """``serve(web_config)``: a MetricsServer on 127.0.0.1 with that web config."""
    servers: list[MetricsServer] = []

    def start(web: dict[str, Any]) -> MetricsServer:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Value())
        path = _write(tmp_path / "web.yml", web)
        server = MetricsServer(
            "127.0.0.1", 0, registry, lambda: (True, "ok"), web_config=WebConfigFile(str(path))
        )
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _client_context(
    certs: Certificates, client: Pair | None = None, max_version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs.ca.cert))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    if max_version is not None:
        context.maximum_version = max_version
    return context


def _auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _https(
    port: int,
    path: str,
    context: ssl.SSLContext,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=HTTP_TIMEOUT)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response
    finally:
        conn.close()


def _refused(port: int, context: ssl.SSLContext) -> bool:
    """The server refuses this client at the TLS level (under TLS 1.3 a refused client
    certificate shows only when the client first reads)."""
    try:
        _https(port, "/metrics", context)
    except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected):
        return True
    return False


def test_tls_and_basic_auth(
    serve: Callable[[dict[str, Any]], MetricsServer], certs: Certificates
) -> None:
    server = serve(
        {
            "tls_server_config": _tls(certs),
            "basic_auth_users": {"prometheus": HASH},
            "auth_excluded_paths": ["/healthz"],
            "http_server_config": {"headers": HEADERS},
        }
    )
    context = _client_context(certs)
    status, body, response = _https(server.port, "/metrics", context, _auth("prometheus", PASSWORD))
    assert status == 200
    assert b"model_test_value 1.0" in body
    for name, value in HEADERS.items():
        assert response.getheader(name) == value
    for headers in ({}, _auth("prometheus", "wrong"), _auth("nobody", PASSWORD)):
        status, _, response = _https(server.port, "/metrics", context, headers)
        assert status == 401
        assert response.getheader("WWW-Authenticate") == "Basic"
        assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert _https(server.port, "/healthz", context)[0] == 200  # excluded: for probes
    assert _https(server.port, "/readyz", context)[0] == 401


def test_a_plain_http_client_is_refused_on_the_tls_port(
    serve: Callable[[dict[str, Any]], MetricsServer], certs: Certificates
) -> None:
    server = serve({"tls_server_config": _tls(certs)})
    with socket.create_connection(("127.0.0.1", server.port), timeout=HTTP_TIMEOUT) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 400 Bad Request")
    assert b"Client sent an HTTP request to an HTTPS server." in answer
    assert b"model_test_value" not in answer


def test_mtls_needs_a_certificate_from_the_client_ca(
    serve: Callable[[dict[str, Any]], MetricsServer], certs: Certificates
) -> None:
    server = serve(
        {
            "tls_server_config": _tls(
                certs,
                client_auth_type="RequireAndVerifyClientCert",
                client_ca_file=str(certs.ca.cert),
            )
        }
    )
    assert _https(server.port, "/metrics", _client_context(certs, certs.client))[0] == 200
    assert _refused(server.port, _client_context(certs))  # no certificate
    assert _refused(server.port, _client_context(certs, certs.rogue_client))  # untrusted CA


def test_client_allowed_sans(
    serve: Callable[[dict[str, Any]], MetricsServer], certs: Certificates
) -> None:
    server = serve(
        {
            "tls_server_config": _tls(
                certs,
                client_auth_type="RequireAndVerifyClientCert",
                client_ca_file=str(certs.ca.cert),
                client_allowed_sans=["prometheus"],
            )
        }
    )
    assert _https(server.port, "/metrics", _client_context(certs, certs.client))[0] == 200
    assert _refused(server.port, _client_context(certs, certs.other_client))  # DNS:intruder


def test_min_version(serve: Callable[[dict[str, Any]], MetricsServer], certs: Certificates) -> None:
    server = serve({"tls_server_config": _tls(certs, min_version="TLS13")})
    assert _https(server.port, "/metrics", _client_context(certs))[0] == 200
    old = _client_context(certs, max_version=ssl.TLSVersion.TLSv1_2)
    assert _refused(server.port, old)


def test_cipher_suites_are_the_servers_choice(
    serve: Callable[[dict[str, Any]], MetricsServer], certs: Certificates
) -> None:
    chosen = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
    server = serve({"tls_server_config": _tls(certs, max_version="TLS12", cipher_suites=[chosen])})
    context = _client_context(certs)
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=HTTP_TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == "TLSv1.2"
        assert tls.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"


def test_rate_limit_and_headers_without_tls(
    serve: Callable[[dict[str, Any]], MetricsServer],
) -> None:
    server = serve(
        {
            "rate_limit": {"interval": "1h", "burst": 2},
            "http_server_config": {"headers": {"X-Frame-Options": "deny"}},
        }
    )
    statuses = []
    for _ in range(3):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=HTTP_TIMEOUT)
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        response.read()
        statuses.append(response.status)
        assert response.getheader("X-Frame-Options") == "deny"
        conn.close()
    assert statuses == [200, 200, 429]


def test_tls_added_to_a_plain_listener_is_reported_not_silently_ignored(
    serve: Callable[[dict[str, Any]], MetricsServer],
    certs: Certificates,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The listener's protocol is fixed at start: a web config that gains tls_server_config
    keeps plain HTTP (the clients' URLs do not change under them) and says so, once."""
    server = serve({"http_server_config": {"headers": {"X-Frame-Options": "deny"}}})
    _write(tmp_path / "web.yml", {"tls_server_config": _tls(certs)})
    with caplog.at_level(logging.WARNING, logger="exporter.server"):
        for _ in range(3):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=HTTP_TIMEOUT)
            conn.request("GET", "/metrics")
            response = conn.getresponse()
            response.read()
            conn.close()
            assert response.status == 200
    warned = [r for r in caplog.records if "restart to serve HTTPS" in r.getMessage()]
    assert len(warned) == 1
    assert warned[0].levelno == logging.WARNING


def _served_certificate(port: int, certs: Certificates) -> bytes:
    context = _client_context(certs)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_a_renewed_certificate_is_served_without_restart(
    serve: Callable[[dict[str, Any]], MetricsServer], certs: Certificates, tmp_path: Path
) -> None:
    live = Pair(tmp_path / "live.crt", tmp_path / "live.key")
    shutil.copy(certs.server.cert, live.cert)
    shutil.copy(certs.server.key, live.key)
    live_web = {"tls_server_config": {"cert_file": "live.crt", "key_file": "live.key"}}
    server = serve(live_web)
    first = _served_certificate(server.port, certs)

    renewed = certs.ca.issue("renewed", "IP:127.0.0.1", "serverAuth")
    # As a Secret update would: a new file put in place by rename, key first.
    for source, target in ((renewed.key, live.key), (renewed.cert, live.cert)):
        staged = target.with_suffix(".new")
        shutil.copy(source, staged)
        staged.replace(target)
    second = _served_certificate(server.port, certs)
    assert second != first
    assert second == ssl.PEM_cert_to_DER_cert(renewed.cert.read_text())

    # A broken version of the files is refused (fail closed), then a good one is used again.
    (tmp_path / "web.yml").write_text("tls_server_config: [\n")
    assert _refused(server.port, _client_context(certs))
    _write(tmp_path / "web.yml", live_web)
    assert _https(server.port, "/metrics", _client_context(certs))[0] == 200


# -- the real sidecar, scraped by the real Prometheus ---------------------------------------------


def _start_tls_sidecar(
    tmp_path: Path,
    start_sidecar: Callable[..., SidecarProcess],
    certs: Certificates,
    web: dict[str, Any],
    client: Pair | None = None,
) -> SidecarProcess:
    log = tmp_path / "predictions.jsonl"
    log.write_text('{"ts": 1, "prediction": 0.5}\n')
    config = write_config(tmp_path, example_config(log, tmp_path / "positions.json"))
    web_path = _write(tmp_path / "web.yml", web)
    context = _client_context(certs, client)

    def ready(proc: SidecarProcess) -> bool:
        try:
            return _https(proc.port, "/readyz", context)[0] == 200
        except (OSError, http.client.HTTPException):
            return False

    return start_sidecar(config, extra_args=["--web.config.file", str(web_path)], ready=ready)


def _target(job: str, sidecar: SidecarProcess, **settings: Any) -> ScrapeTarget:
    return ScrapeTarget(job, f"127.0.0.1:{sidecar.port}", settings=settings)


def _health(prometheus: Prometheus, job: str) -> tuple[str, str] | None:
    mine = [t for t in prometheus.targets() if t["labels"]["job"] == job]
    if not mine or mine[0]["health"] == "unknown":
        return None
    return mine[0]["health"], mine[0]["lastError"]


@pytest.mark.e2e
def test_prometheus_scrapes_over_tls_with_basic_auth(
    tmp_path: Path,
    start_sidecar: Callable[..., SidecarProcess],
    start_prometheus: Callable[..., Prometheus],
    certs: Certificates,
) -> None:
    web = {
        "tls_server_config": _tls(certs),
        "basic_auth_users": {"prometheus": HASH},
        "auth_excluded_paths": ["/healthz", "/readyz"],
    }
    sidecar = _start_tls_sidecar(tmp_path, start_sidecar, certs, web)
    tls = {"ca_file": str(certs.ca.cert)}
    prometheus = start_prometheus(
        [
            _target(
                "tls",
                sidecar,
                scheme="https",
                tls_config=tls,
                basic_auth={"username": "prometheus", "password": PASSWORD},
            ),
            _target(
                "wrong-password",
                sidecar,
                scheme="https",
                tls_config=tls,
                basic_auth={"username": "prometheus", "password": "guess"},
            ),
            _target("plain-http", sidecar),
        ]
    )
    prometheus.wait_for_target_up("tls")
    value = prometheus.wait_for_query('model_exporter_build_info{job="tls"}')
    assert value[0]["value"][1] == "1"
    wrong = wait_until(lambda: _health(prometheus, "wrong-password"), WAIT, message="a scrape")
    assert wrong[0] == "down"
    assert "401" in wrong[1]
    plain = wait_until(lambda: _health(prometheus, "plain-http"), WAIT, message="a scrape")
    assert plain[0] == "down"
    assert "400" in plain[1]


@pytest.mark.e2e
def test_prometheus_scrapes_with_a_client_certificate(
    tmp_path: Path,
    start_sidecar: Callable[..., SidecarProcess],
    start_prometheus: Callable[..., Prometheus],
    certs: Certificates,
) -> None:
    web = {
        "tls_server_config": _tls(
            certs, client_auth_type="RequireAndVerifyClientCert", client_ca_file=str(certs.ca.cert)
        )
    }
    sidecar = _start_tls_sidecar(tmp_path, start_sidecar, certs, web, client=certs.client)
    ca = {"ca_file": str(certs.ca.cert)}
    with_cert = {**ca, "cert_file": str(certs.client.cert), "key_file": str(certs.client.key)}
    prometheus = start_prometheus(
        [
            _target("mtls", sidecar, scheme="https", tls_config=with_cert),
            _target("no-client-cert", sidecar, scheme="https", tls_config=ca),
        ]
    )
    prometheus.wait_for_target_up("mtls")
    refused = wait_until(lambda: _health(prometheus, "no-client-cert"), WAIT, message="a scrape")
    assert refused[0] == "down"
