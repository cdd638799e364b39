"""HTTP: ``/metrics``, ``/healthz`` (liveness), ``/readyz`` (readiness), the live page at ``/``
with its files under ``/static/`` (``exporter.page``) and the JSON it reads, ``/api/v1/status``
(``exporter.status``). Every path is behind the same TLS and basic auth.

Our own small server instead of prometheus_client's ``start_http_server``: it compresses with
gzip level 1 (level 9 costs ~16× the CPU for 1.7× fewer bytes, and rendering competes with
ingestion for the interpreter), shares renders between concurrent scrapes and negotiates
``Accept-Encoding`` by q-values (``exporter.scrape``), answers HEAD and bounds request heads
(``exporter.request``), speaks TLS, mTLS and basic auth from an exporter-toolkit web config
(``exporter.webconfig``, ``exporter.webfile``, ``exporter.basicauth``), and runs on a bounded
pool of workers that never wait for a client (``exporter.connections``). This module routes,
and decides TLS: the context of each new connection (the web config as of now) and whether a
client certificate's names are allowed; the connection server does the handshake.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exporter.clock import Clock, SystemClock
from exporter.connections import ConnectionServer, Limits
from exporter.deflate import Body
from exporter.errors import ConfigError
from exporter.exposition import COUNTER, GAUGE, Family
from exporter.page import load_assets, not_modified
from exporter.request import ROUTES, Handler
from exporter.scrape import Renders, accepts_gzip, content_type
from exporter.wire import Connection

if TYPE_CHECKING:
    # prometheus_client loads only for a registry (the fallback encoder); the web config's
    # modules only when a web config is given.
    from prometheus_client import CollectorRegistry

    from exporter.basicauth import BasicAuth
    from exporter.webconfig import RateLimit
    from exporter.webfile import Loaded, WebConfigFile

log = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, str]]
# (openmetrics, the server's own families) -> the body, with "# EOF" when OpenMetrics
Render = Callable[[bool, list[Family]], Body]
# (query string, gzip accepted) -> (status code, body): the /api/v1/status endpoint
Status = Callable[[str, bool], tuple[int, bytes]]


# -- the sidecar's own HTTP and reload counters ------------------------------------------------


@dataclass(frozen=True)
class ReloadCounts:
    """Config reloads (SIGHUP) by outcome, for ``model_exporter_config_reloads_total``."""

    ok: int = 0
    error: int = 0
    last_successful: bool = True


class _Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()

    def count(self, handler: str, code: int) -> None:
        with self._lock:
            self.requests[(handler, str(code))] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.requests)


class ServerFamilies:
    """The server's own families: requests answered, and config reloads."""

    def __init__(self, stats: _Stats, reloads: Callable[[], ReloadCounts] | None) -> None:
        self._stats = stats
        self._reloads = reloads

    def families(self) -> list[Family]:
        requests = Family(
            "model_exporter_http_requests",
            COUNTER,
            "HTTP requests answered, by handler (path) and status code.",
            ("handler", "code"),
        )
        for (handler, code), count in sorted(self._stats.snapshot().items()):
            requests.add((handler, code), count)
        if self._reloads is None:
            return [requests]
        counts = self._reloads()
        reloads = Family(
            "model_exporter_config_reloads",
            COUNTER,
            "Config reloads (SIGHUP) by outcome; a refused config leaves the running one.",
            ("outcome",),
        )
        reloads.add(("ok",), counts.ok)
        reloads.add(("error",), counts.error)
        last = Family(
            "model_exporter_config_last_reload_successful",
            GAUGE,
            "1 unless the last config reload (SIGHUP) was refused.",
        )
        last.add((), 1.0 if counts.last_successful else 0.0)
        return [requests, reloads, last]


class _TokenBucket:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = 0.0
        self._at = clock.monotonic()
        self._limit: RateLimit | None = None

    def allow(self, limit: RateLimit) -> bool:
        with self._lock:
            now = self._clock.monotonic()
            if limit != self._limit:
                self._limit, self._tokens = limit, float(limit.burst)
            self._tokens = min(limit.burst, self._tokens + (now - self._at) / limit.interval)
            self._at = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True


class MetricsServer:
    """The HTTP server: routes, auth and TLS here, connections in ``ConnectionServer``."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry | None,
        healthy: Check,
        ready: Check | None = None,
        web_config: WebConfigFile | None = None,
        limits: Limits | None = None,
        reloads: Callable[[], ReloadCounts] | None = None,
        clock: Clock | None = None,
        render: Render | None = None,
        status: Status | None = None,
    ) -> None:
        """``healthy``: is ingestion alive; ``ready``: has every source been polled once.
        ``render``, when given, writes the body (see ``bodies.Bodies``), with the server's
        own families passed in; otherwise prometheus_client encodes ``registry``, to which
        the server adds its own families (the sidecar gives a renderer and no registry, so
        it never loads prometheus_client).
        ``status``: the JSON status endpoint (without it, /api/v1/status is 404 and the page
        has nothing to show). Binds the port at once (a taken port fails here)."""
        if render is None and registry is None:
            raise ValueError("a server without a renderer needs a registry to encode")
        self._registry = registry
        self._render = render
        self._status = status
        self._assets = load_assets()
        self._healthy = healthy
        self._ready = ready
        self._web = web_config
        self._stats = _Stats()
        self._renders = Renders()
        self._auth = _basic_auth() if web_config is not None else None
        self._clock = clock if clock is not None else SystemClock()
        self._bucket = _TokenBucket(self._clock)
        self._web_error_logged: object = None
        self._tls_added_logged: object = None
        self._stopping = False
        self._draining = False
        self._own = ServerFamilies(self._stats, reloads)
        if registry is not None:
            from exporter.registry_view import FamiliesCollector  # noqa: PLC0415

            registry.register(FamiliesCollector(self._own.families))
        self._connections = ConnectionServer(
            host, port, self._serve, limits, self._clock, tls=self if self.tls else None
        )

    @property
    def port(self) -> int:
        return self._connections.port

    @property
    def tls(self) -> bool:
        return self._web is not None and self._web.tls

    @property
    def evicted(self) -> int:
        """Idle connections closed to make room (max_connections reached)."""
        return self._connections.evicted

    @property
    def timed_out(self) -> int:
        """Connections closed past one of their timeouts (head, idle, write, linger)."""
        return self._connections.timed_out

    @property
    def open_connections(self) -> int:
        return self._connections.open_connections

    def writing_responses(self) -> int:
        """Responses the clients are slow to take, being sent by the selector thread."""
        return self._connections.writing

    def waiting_scrapes(self) -> int:
        return self._renders.waiting

    def start(self) -> None:
        self._connections.start()

    def stop(self) -> None:
        self._stopping = True
        self._connections.stop()

    def draining(self) -> None:
        """From now on /readyz says 503: the process is stopping (and still serving)."""
        self._draining = True

    def count(self, path: str, code: int) -> None:
        self._stats.count(path if path in ROUTES else "other", code)

    # -- health ----------------------------------------------------------------------------

    def live(self) -> tuple[bool, str]:
        ok, detail = self._healthy()
        if not ok:
            return ok, detail
        return self._renders.healthy()

    def readiness(self) -> tuple[bool, str]:
        ok, detail = self.live()
        if not ok:
            return ok, detail
        if self._draining or self._stopping:
            return False, "stopping"
        return self._ready() if self._ready is not None else (True, "ok")

    # -- connections -----------------------------------------------------------------------

    def _serve(self, conn: Connection) -> bool:
        """One request whose head has arrived (on a worker); True keeps the connection."""
        if conn.plain_on_tls:
            conn.write(
                b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
            )
            self.count("other", 400)
            conn.linger = True
            return False
        handler = Handler(conn, self)
        try:
            handler.handle_one_request()
        finally:
            if handler.code:
                self.count(handler.handler_label, handler.code)
        return not handler.close_connection and not self._stopping

    def _web_now(self) -> Loaded | None:
        """The web config as of now; None if it is broken (logged by WebConfigFile)."""
        assert self._web is not None
        try:
            return self._web.current()
        except ConfigError:
            return None

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context for a new connection, from the web config as of now (so a renewed
        certificate is served without a restart); None refuses the connection."""
        loaded = self._web_now()
        if loaded is None:
            return None
        if loaded.context is None:
            if self._web_error_logged is not loaded:
                self._web_error_logged = loaded
                log.error("the web config no longer has tls_server_config: restart to serve HTTP")
            return None
        return loaded.context

    def tls_admit(self, sock: ssl.SSLSocket, address: tuple[str, int]) -> bool:
        """After the handshake: a client certificate must carry one of client_allowed_sans."""
        loaded = self._web_now()
        if loaded is None:
            return False
        sans = loaded.config.tls.client_allowed_sans if loaded.config.tls else ()
        if sans and not _san_allowed(sock.getpeercert(), sans):
            log.info("client certificate of %s has none of client_allowed_sans", address[0])
            return False
        return True

    # -- requests --------------------------------------------------------------------------

    def route(self, handler: Handler, head: bool) -> None:
        path = handler.route_path
        if self._web is not None:
            loaded = self._web_now()
            if loaded is None:
                handler.close_connection = True
                handler.reply(500, b"web config error: see the sidecar's log\n", head=head)
                return
            web = loaded.config
            if loaded.context is not None and not self.tls and self._tls_added_logged is not loaded:
                self._tls_added_logged = loaded
                log.warning(
                    "the web config now has tls_server_config, but the listener was started "
                    "without TLS: still serving plain HTTP; restart to serve HTTPS"
                )
            handler.extra_headers = web.headers
            if web.rate_limit is not None and not self._bucket.allow(web.rate_limit):
                handler.reply(429, b"too many requests\n", head=head)
                return
            if web.users and path not in web.auth_excluded_paths:
                header = handler.headers.get("Authorization")
                assert self._auth is not None  # made with the web config
                if not self._auth.allowed(web.users, header):
                    handler.reply(401, b"unauthorized\n", {"WWW-Authenticate": "Basic"}, head=head)
                    return
        if path == "/metrics":
            self._metrics(handler, head)
        elif path in ("/healthz", "/readyz"):
            ok, detail = self.live() if path == "/healthz" else self.readiness()
            handler.reply(200 if ok else 503, f"{detail}\n".encode(), head=head)
        elif path == "/api/v1/status" and self._status is not None:
            self._status_json(handler, head)
        elif path in self._assets:
            asset = self._assets[path]
            if not_modified(asset, handler.headers.get("If-None-Match")):
                handler.reply(304, b"", asset.headers(), asset.content_type, head=True)
            else:
                handler.reply(200, asset.body, asset.headers(), asset.content_type, head=head)
        else:
            handler.reply(404, b"not found\n", head=head)

    def _metrics(self, handler: Handler, head: bool) -> None:
        answer_type = content_type(handler.headers.get("Accept", ""))
        result = self._renders.get(answer_type, lambda: self._body(answer_type))
        if result.error is not None:
            # What went wrong is in the log; the body names the error's type only, so no log
            # content or internal detail reaches a client.
            kind = type(result.error).__name__
            message = f"error rendering metrics ({kind}): see the log\n"
            handler.reply(500, message.encode(), head=head)
            return
        headers = {"Vary": "Accept, Accept-Encoding"}
        assert result.body is not None
        body: bytes | tuple[bytes, ...]
        if accepts_gzip(handler.headers.get_all("Accept-Encoding") or []):
            body = result.body.gzipped()
            headers["Content-Encoding"] = "gzip"
        else:
            body = result.body.plain()
        handler.reply(200, body, headers, answer_type, head=head)

    def _body(self, answer_type: str) -> Body:
        if self._render is None:
            from prometheus_client.exposition import choose_encoder  # noqa: PLC0415

            assert self._registry is not None, "a server without a renderer needs a registry"
            encoder, _ = choose_encoder(answer_type)  # the type, negotiated and well formed
            return Body(None, [encoder(self._registry)])
        openmetrics = answer_type.startswith("application/openmetrics-text")
        return self._render(openmetrics, self._own.families())

    def _status_json(self, handler: Handler, head: bool) -> None:
        assert self._status is not None
        query = handler.path.partition("?")[2]
        gzipped = accepts_gzip(handler.headers.get_all("Accept-Encoding") or [])
        try:
            code, body = self._status(query, gzipped)
        except Exception as exc:  # an answer, never a dropped connection
            log.exception("error building the status document")
            kind = type(exc).__name__
            message = f"error building the status ({kind}): see the log\n"
            handler.reply(500, message.encode(), head=head)
            return
        if code != 200:
            handler.reply(code, body, head=head)
            return
        headers = {"Cache-Control": "no-store", "Vary": "Accept-Encoding"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        handler.reply(200, body, headers, "application/json", head=head)


def _basic_auth() -> BasicAuth:
    """The password checker, for a server with a web config (bcrypt loads only then)."""
    from exporter.basicauth import BasicAuth  # noqa: PLC0415

    return BasicAuth()


def _san_allowed(cert: Any, allowed: Sequence[str]) -> bool:
    """Whether a verified client certificate has a subjectAltName in ``allowed`` (exact match;
    IP addresses compared as addresses)."""

    def normal(value: str) -> str:
        with contextlib.suppress(ValueError):
            return ipaddress.ip_address(value.strip()).compressed
        return value.strip()

    wanted = {normal(v) for v in allowed}
    names = cert.get("subjectAltName", ()) if isinstance(cert, dict) else ()
    return any(normal(str(value)) in wanted for _, value in names)
