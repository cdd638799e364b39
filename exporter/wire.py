"""One client connection's bytes, moved without ever blocking: the request head read into a
bounded buffer, the TLS handshake stepped, the response sent from a queue, and what a client
still sends after an error reply drained.

Each step does what the socket allows now and says what it waits for (``READ`` or ``WRITE``,
for the selector), or that it is done. Under TLS a step may wait for the other direction
(OpenSSL reading a record to write, or writing one to read), which is why every step reports
which. The socket is non-blocking for the connection's whole life: no thread ever sleeps in a
read or a write on a client's behalf, so a slow or stalled client costs a buffer, not a thread.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from exporter.httphead import HEAD_BUFFER, HeadScan

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
SEND_CHUNK = 256 << 10  # one send() at most; the same slice is retried after a "want write"
JOIN_BELOW = 64 << 10  # a response this small goes out in one send (headers and body together)
# After an error reply on a request we did not read whole, read (and drop) what the client still
# sends for this long before closing: closing with unread bytes sends a reset, and the client
# may then lose the reply (e.g. a 431) before reading it.
LINGER_SECONDS = 0.5
LINGER_BYTES = 1 << 20


class ClosedError(Exception):
    """The client closed, reset, or broke the TLS protocol: close the connection."""


class Phase(Enum):
    """What the selector does with a connection when its socket is ready."""

    HANDSHAKE = "handshake"  # TLS: waiting for a ClientHello, or stepping the handshake
    HEAD = "head"  # reading a request head (or waiting for the next one, kept alive)
    WRITE = "write"  # sending a response
    DRAIN = "drain"  # after an error reply: reading and dropping until the client closes


@dataclass(eq=False)
class Connection:
    """A client connection as it moves between the selector thread and the workers; exactly one
    of them holds it at a time.

    ``pending`` keeps what the client sent ahead (the rest of a head, a pipelined request), so
    nothing is lost between requests; ``out`` holds the response the worker wrote.
    """

    sock: socket.socket
    address: tuple[str, int]
    pending: bytearray = field(default_factory=bytearray)
    head: HeadScan = field(default_factory=HeadScan, repr=False)
    out: deque[bytes] = field(default_factory=deque, repr=False)
    phase: Phase = Phase.HEAD
    plain_on_tls: bool = False  # a plain-HTTP client on the TLS port (answered 400)
    keep: bool = False  # the last response leaves the connection open for another request
    linger: bool = False  # the reply was an error to a request not read whole
    requests: int = 0
    sent: int = 0  # bytes of out[0] already sent
    drained: int = 0

    # -- the request head -----------------------------------------------------------------

    def head_ready(self) -> bool:
        return self.head.ready(self.pending)

    def consume(self, size: int) -> None:
        """The worker parsed ``size`` bytes (a head): what follows is the next request's."""
        del self.pending[:size]
        self.head.reset()

    def read_head(self) -> int | None:
        """Read until a head can be parsed whole: None when it can, else what to wait for.
        Raises ``ClosedError`` at the end of the stream (a head never finished is not answered)."""
        while not self.head.ready(self.pending):
            want = self._recv(HEAD_BUFFER - len(self.pending))
            if isinstance(want, int):
                return want
            self.pending += want
        return None

    def _recv(self, size: int) -> bytes | int:
        try:
            data = self.sock.recv(size)
        except (BlockingIOError, ssl.SSLWantReadError):
            return READ
        except ssl.SSLWantWriteError:
            return WRITE
        except OSError as exc:
            raise ClosedError(repr(exc)) from exc
        if not data:
            raise ClosedError("end of stream")
        return data

    def first_byte(self) -> int | None:
        """The first byte the client sent, left unread, or None if none has arrived yet."""
        try:
            data = self.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise ClosedError(repr(exc)) from exc
        if not data:
            raise ClosedError("end of stream")
        return data[0]

    # -- TLS ------------------------------------------------------------------------------

    def start_tls(self, context: ssl.SSLContext) -> None:
        """Wrap the socket (it must be out of the selector: the wrapper takes over its fd)."""
        try:
            self.sock = context.wrap_socket(
                self.sock, server_side=True, do_handshake_on_connect=False
            )
        except OSError as exc:
            raise ClosedError(repr(exc)) from exc

    def handshake(self) -> int | None:
        """One handshake step: None when done, else what to wait for."""
        assert isinstance(self.sock, ssl.SSLSocket)
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            return READ
        except ssl.SSLWantWriteError:
            return WRITE
        except OSError as exc:
            raise ClosedError(repr(exc)) from exc
        return None

    # -- the response ---------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes of the response (sent by ``send``, never here)."""
        if data:
            self.out.append(data)

    def seal(self) -> None:
        """The response is complete: a small one becomes one piece, sent in one segment (before
        the first ``send``: a TLS write that waits must be retried with the same bytes)."""
        if len(self.out) > 1 and sum(map(len, self.out)) < JOIN_BELOW:
            self.out = deque([b"".join(self.out)])

    def send(self) -> int | None:
        """Send what the socket takes now: None when all is sent, else what to wait for."""
        while self.out:
            chunk = self.out[0]
            try:
                # After a wait, the same slice again: OpenSSL wants the bytes it was given.
                sent = self.sock.send(memoryview(chunk)[self.sent : self.sent + SEND_CHUNK])
            except (BlockingIOError, ssl.SSLWantWriteError):
                return WRITE
            except ssl.SSLWantReadError:
                return READ
            except OSError as exc:
                raise ClosedError(repr(exc)) from exc
            self.sent += sent
            if self.sent == len(chunk):
                self.out.popleft()
                self.sent = 0
        return None

    # -- closing --------------------------------------------------------------------------

    def start_linger(self) -> None:
        """Say we are done (FIN) and start dropping what the client still sends.

        ``socket.socket.shutdown``, not ``SSLSocket``'s, which would also drop the TLS state."""
        self.phase = Phase.DRAIN
        self.pending.clear()
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_WR)

    def drain(self) -> int:
        """Read and drop until there is nothing more now (READ), or raise ``ClosedError`` when the
        client closed or sent more than ``LINGER_BYTES``."""
        while self.drained < LINGER_BYTES:
            data = self._recv(65536)
            if isinstance(data, int):
                return data
            self.drained += len(data)
        raise ClosedError("lingered long enough")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
