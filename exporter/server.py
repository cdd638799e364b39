"""HTTP: ``/metrics`` (Prometheus text or OpenMetrics), ``/healthz`` and a landing page.

Our own small handler instead of prometheus_client's ``start_http_server``: it compresses with
gzip level 1 (level 9 costs ~16× the CPU for 1.7× fewer bytes, and rendering competes with
ingestion for the interpreter) and serves the health and landing pages from the same port.
"""

from __future__ import annotations

import gzip
import html
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter import __version__

log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        healthy: Callable[[], tuple[bool, str]],
    ) -> None:
        self.registry = registry
        self.healthy = healthy
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection must not hold a thread forever

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._metrics()
        elif path == "/healthz":
            ok, detail = self.server.healthy()
            self._send(200 if ok else 503, "text/plain; charset=utf-8", f"{detail}\n".encode())
        elif path == "/":
            self._send(200, "text/html; charset=utf-8", _LANDING.encode())
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _metrics(self) -> None:
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        try:
            body = encoder(self.server.registry)
        except Exception as exc:  # a scrape must get an answer, never a dropped connection
            log.exception("error rendering metrics")
            self._send(
                500, "text/plain; charset=utf-8", f"error rendering metrics: {exc}\n".encode()
            )
            return
        headers = {}
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        self._send(200, content_type, body, headers)

    def _send(
        self, code: int, content_type: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are frequent and unremarkable: no per-request log lines."""


_LANDING = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>model-exporter</title></head>
<body>
<h1>model-exporter {html.escape(__version__)}</h1>
<p>A Prometheus exporter sidecar for ML models.</p>
<ul>
<li><a href="/metrics">/metrics</a> — model and sidecar metrics</li>
<li><a href="/healthz">/healthz</a> — liveness of the ingest loop</li>
</ul>
</body></html>
"""


class MetricsServer:
    """The HTTP server in a daemon thread; ``stop()`` closes the socket."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        healthy: Callable[[], tuple[bool, str]],
    ) -> None:
        self._server = _Server((host, port), registry, healthy)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() would wait forever for a loop never started
            self._server.shutdown()
            self._thread.join(timeout=5.0)
        self._server.server_close()
