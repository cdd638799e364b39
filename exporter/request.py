"""One HTTP request on a connection: the request head read within limits, then routed.

``BaseHTTPRequestHandler`` parses; we bound what it reads (``MAX_HEAD_BYTES`` and
``MAX_HEADERS``: 431 past them, 414 for a request line over ``MAX_REQUEST_LINE``; Python's own
limits are 64 KiB per line and 100 headers, 6 MB a request) and handle one request per call, so
the connection goes back to the selector between requests instead of holding a worker.
"""

from __future__ import annotations

import io
import socket
from http.client import HTTPException, LineTooLong
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

from exporter import __version__
from exporter.connections import Connection

MAX_REQUEST_LINE = 8 << 10  # longer: 414
MAX_HEAD_BYTES = 16 << 10  # request line and headers together; more: 431
MAX_HEADERS = 64  # header lines; more: 431
ROUTES = (
    "/metrics",
    "/healthz",
    "/readyz",
    "/",
    "/api/v1/status",
    "/static/app.js",
    "/static/app.css",
    "/static/favicon.svg",
)


class App(Protocol):
    def route(self, handler: Handler, head: bool) -> None: ...


class HeadBudget:
    """Reads the request line and headers within a byte and line budget (431 past it)."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        self._raw = raw
        self._left = MAX_HEAD_BYTES
        self._lines = 0

    def readline(self, limit: int = -1) -> bytes:
        self._lines += 1
        if self._lines > MAX_HEADERS + 2:  # the request line, the headers, the blank line
            raise HTTPException(f"more than {MAX_HEADERS} header lines")
        want = self._left + 1 if limit < 0 else min(limit, self._left + 1)
        line = self._raw.readline(want)
        self._left -= len(line)
        if self._left < 0:
            raise LineTooLong(f"request head over {MAX_HEAD_BYTES} bytes")
        return line


class SocketWriter(io.BufferedIOBase):
    """Every write is sent whole (``sendall``), as socketserver's own writer does."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._sock.sendall(data)
        return len(data)


class Handler(BaseHTTPRequestHandler):
    """One request on a connection; the server decides what happens to the connection next."""

    protocol_version = "HTTP/1.1"
    server_version = f"model-exporter/{__version__}"
    error_message_format = "%(code)d %(message)s: %(explain)s\n"
    error_content_type = "text/plain; charset=utf-8"
    default_request_version = "HTTP/1.0"  # a malformed request line still gets a status line

    def __init__(self, conn: Connection, app: App) -> None:  # no super(): no setup()
        assert conn.rfile is not None
        assert conn.wfile is not None
        self.conn = conn
        self.app = app
        self.connection = self.request = conn.sock
        self.client_address = conn.address
        self.rfile = conn.rfile
        self.wfile = conn.wfile
        self.close_connection = True
        self.extra_headers: tuple[tuple[str, str], ...] = ()
        self.route_path = ""  # the path without its query
        self.handler_label = "other"  # the route_path if it is one of ours: a bounded label
        self.code = 0

    def handle_one_request(self) -> None:
        raw = self.rfile
        self.rfile = HeadBudget(raw)  # type: ignore[assignment]
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
        except (LineTooLong, HTTPException):
            self.raw_requestline = b"x" * (MAX_REQUEST_LINE + 1)
        if len(self.raw_requestline) > MAX_REQUEST_LINE:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            self.conn.linger = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        parsed = self.parse_request()
        self.rfile = raw
        self.conn.head_done()
        if not parsed:  # parse_request answered (400, 431, 505) and asked to close
            self.conn.linger = True
            return
        if self.headers.get("Content-Length", "0").strip() not in ("", "0") or self.headers.get(
            "Transfer-Encoding"
        ):
            # We never read a request body, so the connection cannot carry another request.
            self.close_connection = True
            self.conn.linger = True
        self.route_path = self.path.split("?", 1)[0]
        if self.route_path in ROUTES:
            self.handler_label = self.route_path
        method = getattr(self, f"do_{self.command}", None)
        if method is None:
            self.send_error(501, f"Unsupported method ({self.command!r})")
            return
        method()

    def do_GET(self) -> None:
        self.app.route(self, head=False)

    def do_HEAD(self) -> None:
        self.app.route(self, head=True)

    def _not_allowed(self) -> None:
        self.reply(405, b"method not allowed: GET or HEAD\n", {"Allow": "GET, HEAD"})

    # BaseHTTPRequestHandler dispatches on these names (an unknown method gets a 501).
    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed  # noqa: N815

    def send_response(self, code: int, message: str | None = None) -> None:
        self.code = code
        super().send_response(code, message)

    def end_headers(self) -> None:
        for key, value in self.extra_headers:
            self.send_header(key, value)
        super().end_headers()

    def reply(
        self,
        code: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "text/plain; charset=utf-8",
        head: bool = False,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are frequent and unremarkable: no per-request log lines."""
