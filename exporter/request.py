"""One HTTP request on a connection: its head, already received whole, parsed within limits, then
routed; the response queued on the connection.

``BaseHTTPRequestHandler`` parses; ``HeadBudget`` bounds what it reads (431 past
``MAX_HEAD_BYTES`` or ``MAX_HEADERS``, 414 for a request line over ``MAX_REQUEST_LINE``,
``exporter.httphead``). The selector thread hands a connection over only once its head can be
parsed without waiting, so this never reads from the socket, and the response is written to the
connection's queue (``Outbox``), which the connection server sends without blocking: a worker
is never held by a slow client, in either direction.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from http.client import HTTPException, LineTooLong
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

from exporter import __version__
from exporter.httphead import MAX_REQUEST_LINE, HeadBudget
from exporter.page import FILES
from exporter.wire import Connection

ROUTES = ("/metrics", "/healthz", "/readyz", "/api/v1/status", *FILES)


class App(Protocol):
    def route(self, handler: Handler, head: bool) -> None: ...


class Outbox(io.BufferedIOBase):
    """The handler's ``wfile``: every write is queued on the connection, sent by its server."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = data if isinstance(data, bytes) else bytes(data)
        self._conn.write(chunk)
        return len(chunk)


class Handler(BaseHTTPRequestHandler):
    """One request on a connection; the server decides what happens to the connection next."""

    protocol_version = "HTTP/1.1"
    server_version = f"model-exporter/{__version__}"
    error_message_format = "%(code)d %(message)s: %(explain)s\n"
    error_content_type = "text/plain; charset=utf-8"
    default_request_version = "HTTP/1.0"  # a malformed request line still gets a status line

    def __init__(self, conn: Connection, app: App) -> None:  # no super(): no setup()
        self.conn = conn
        self.app = app
        self.connection = self.request = conn.sock
        self.client_address = conn.address
        self.rfile = io.BytesIO()
        self.wfile = Outbox(conn)
        self.close_connection = True
        self.extra_headers: tuple[tuple[str, str], ...] = ()
        self.route_path = ""  # the path without its query
        self.handler_label = "other"  # the route_path if it is one of ours: a bounded label
        self.code = 0

    def handle_one_request(self) -> None:
        """Parse the head in ``conn.pending`` and answer; what follows the head stays there."""
        head = io.BytesIO(bytes(self.conn.pending))
        try:
            self._handle(head)
        finally:
            self.conn.consume(head.tell())

    def _handle(self, head: io.BytesIO) -> None:
        self.rfile = HeadBudget(head)  # type: ignore[assignment]
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
        self.rfile = io.BytesIO()  # a request body is never read
        if not parsed:  # parse_request answered (400, 431, 505) and asked to close
            self.conn.linger = True
            return
        if self.headers.get("Content-Length", "0").strip() not in ("", "0") or self.headers.get(
            "Transfer-Encoding"
        ):
            # We never read a request body, so the connection cannot carry another request:
            # after the answer, what the client still sends is drained (bounded) and dropped.
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
        body: bytes | Sequence[bytes],
        headers: dict[str, str] | None = None,
        content_type: str = "text/plain; charset=utf-8",
        head: bool = False,
    ) -> None:
        self.send_response(code)
        if code != 304:  # a 304 describes the cached body: no length of its own (RFC 9110)
            self.send_header("Content-Type", content_type)
            length = len(body) if isinstance(body, bytes) else sum(map(len, body))
            self.send_header("Content-Length", str(length))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:  # a body in pieces is queued as it is: no joined copy of it
            for piece in (body,) if isinstance(body, bytes) else body:
                self.wfile.write(piece)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are frequent and unremarkable: no per-request log lines."""
