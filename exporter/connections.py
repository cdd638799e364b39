"""Connections for the HTTP server: a real listen backlog, one selector thread that does all the
waiting on clients, and a bounded pool of worker threads that only ever get a request whose head
has arrived whole.

Why not ``ThreadingHTTPServer``: its backlog is 5 (200 simultaneous connects overflow it and
stall on SYN retransmits) and it starts one thread per connection with no cap, each blocked
for the whole keep-alive idle time. Here one thread accepts connections and, on non-blocking
sockets (``exporter.wire``), steps TLS handshakes, reads request heads into a bounded buffer,
watches idle keep-alive connections, sends the part of a response a client is slow to take, and
drains what a client still sends after an error reply. A connection goes to a worker only when
its head can be parsed without waiting for another byte (``exporter.httphead``); the worker
parses, routes and renders, queues the response, sends what the socket takes at once and gives
the connection back. A worker never waits for a client, so slow heads, stalled handshakes,
request bodies and clients that do not read their response cannot take the workers away from
``/healthz`` or from other scrapers; workers are busy only with requests' own work. Requests
are served in arrival order, each by the most recently idle worker (``exporter.handoff``).
What a waiting client costs is memory, bounded: ``HEAD_BUFFER`` bytes of head, or the rest of
its response. The price is that TLS handshakes (a millisecond or so of CPU each) are done one
at a time, on the selector thread.

Limits (``Limits``): at most ``max_connections`` open at once. Past that the longest-idle
keep-alive connection is closed to make room (a client reconnects cheaply), and when none is
idle, new connections wait in the kernel's backlog until one closes. A new connection that
sends nothing is closed after ``head_timeout``; an idle keep-alive one after ``idle_timeout``; a
request head (with the TLS handshake) must arrive within ``head_timeout`` of its first byte,
however slowly it trickles in; a response must be taken within ``write_timeout``; what a client
sends after an error reply is drained for ``LINGER_SECONDS`` at most. Past each, the connection
is closed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import socket
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from exporter.clock import Clock, SystemClock
from exporter.handoff import Handoff
from exporter.wire import LINGER_SECONDS, READ, ClosedError, Connection, Phase

log = logging.getLogger(__name__)

# accept() failing for lack of descriptors or memory: wait a little rather than spin on it.
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_ACCEPT_PAUSE = 0.1
_TLS_HANDSHAKE_RECORD = 0x16  # the first byte a TLS client sends


@dataclass(frozen=True)
class Limits:
    """The documented bounds of the HTTP server (docs/deploy.md, "HTTP limits")."""

    # Workers mostly wait for a render they share (exporter.scrape): a render serves at most
    # this many scrapes, so more workers mean fewer renders under a crowd of scrapers. 8 workers
    # gave half the throughput and twice the p99 of 32 with 200 scrapers, for 9 MiB less RSS
    # (bench/bench_scrape_concurrency.py).
    workers: int = 32
    max_connections: int = 256
    backlog: int = 1024  # the kernel caps it at net.core.somaxconn (4096 on current kernels)
    head_timeout: float = 10.0
    idle_timeout: float = 30.0
    write_timeout: float = 30.0  # a whole response, however slowly the client takes it


Serve = Callable[[Connection], bool]
"""Handle the request whose head is in ``conn.pending``, queueing the response on the
connection; True keeps the connection open for another request. Runs on a worker."""


class TLSPolicy(Protocol):
    """What the server decides about TLS; the selector thread does the handshake itself."""

    def tls_context(self) -> ssl.SSLContext | None:
        """The context for a new connection (as of now); None refuses the connection."""

    def tls_admit(self, sock: ssl.SSLSocket, address: tuple[str, int]) -> bool:
        """After the handshake: whether this client may send requests."""


class _Wait:
    """Connections waiting for one kind of thing, each for the same time: in arrival order,
    which is deadline order (the first one expires first)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadlines: OrderedDict[Connection, float] = OrderedDict()


class ConnectionServer:
    """Accepts on one socket and runs ``serve`` for each request on a bounded pool."""

    def __init__(
        self,
        host: str,
        port: int,
        serve: Serve,
        limits: Limits | None = None,
        clock: Clock | None = None,
        tls: TLSPolicy | None = None,
    ) -> None:
        """Binds at once, so a taken port fails here, before any thread starts. With ``tls``,
        every connection starts with a TLS handshake."""
        self.limits = lim = limits if limits is not None else Limits()
        self._serve = serve
        self._tls = tls
        self._clock = clock if clock is not None else SystemClock()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family, backlog=lim.backlog)
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._work: Handoff[Connection | None] = Handoff()  # to the most recently idle worker
        self._lock = threading.Lock()  # _open, _busy, _returned, and stopping vs. dispatching
        self._open = 0
        self._busy = 0  # connections with the workers (queued or being served)
        self._returned: list[Connection] = []  # from workers, for the selector
        # Connections in the selector thread's hands, by what they wait for.
        self._fresh = _Wait(lim.head_timeout)  # accepted, no byte yet
        self._idle = _Wait(lim.idle_timeout)  # kept alive, no byte of a next request yet
        self._head = _Wait(lim.head_timeout)  # a head (or handshake) under way: from 1st byte
        self._writing = _Wait(lim.write_timeout)
        self._draining = _Wait(LINGER_SECONDS)
        self._waits = (self._fresh, self._idle, self._head, self._writing, self._draining)
        self._timer: dict[Connection, _Wait] = {}
        self._events: dict[Connection, int] = {}  # registered with the selector
        self._selector = selectors.DefaultSelector()
        self._listening = False
        self._paused_until = 0.0
        self._stopping = threading.Event()
        self._stop_by = 0.0
        self._threads: list[threading.Thread] = []
        self.evicted = 0  # idle connections closed to make room for new ones
        self.timed_out = 0  # connections closed past one of their timeouts

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def open_connections(self) -> int:
        with self._lock:
            return self._open

    @property
    def writing(self) -> int:
        """Connections whose response the selector thread is sending (the client is slow)."""
        return len(self._writing.deadlines)  # read from other threads: one atomic len()

    def start(self) -> None:
        self._selector.register(self._wake_r, READ)
        self._listen(True)
        self._threads = [
            *(
                threading.Thread(target=self._worker, name=f"http-worker-{i}", daemon=True)
                for i in range(self.limits.workers)
            ),
            threading.Thread(target=self._loop, name="http-accept", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close connections waiting for a request, let requests in progress
        finish and their responses go out (bounded by ``timeout``)."""
        with self._lock:  # no dispatch after the workers' stop markers
            self._stop_by = self._clock.monotonic() + timeout
            self._stopping.set()
            for _ in range(self.limits.workers):
                self._work.put(None)
        self._wake()
        for thread in self._threads:  # the workers, then the selector thread
            # The selector thread gives up by itself at the deadline: a moment more for that.
            grace = 1.0 if thread is self._threads[-1] else 0.0
            thread.join(max(0.0, self._stop_by - self._clock.monotonic()) + grace)
        self._threads = []
        with self._lock:
            leftovers = {*self._returned, *self._timer, *self._events}
            self._returned.clear()
        # Requests queued behind the workers' stop markers are not served.
        leftovers.update(queued for queued in self._work.drain() if queued is not None)
        for conn in leftovers:
            conn.close()
        self._timer.clear()
        self._events.clear()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the selector thread ------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # a full pipe already means "wake up"
            self._wake_w.send(b"\0")

    def _listen(self, on: bool) -> None:
        if on != self._listening:
            if on:
                self._selector.register(self._listener, READ)
            else:
                self._selector.unregister(self._listener)
            self._listening = on

    def _loop(self) -> None:
        try:
            while not self._finished():
                for key, _ in self._selector.select(self._timeout()):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                    elif key.data in self._events:  # not closed or dispatched meanwhile
                        self._step(key.data)
                self._take_returned()
                self._expire()
        except Exception:  # the server must not die silently: /healthz cannot say it
            log.critical("HTTP accept loop failed", exc_info=True)
            raise

    def _timeout(self) -> float:
        now = self._clock.monotonic()
        soonest = now + self.limits.idle_timeout
        for wait in self._waits:
            if wait.deadlines:
                soonest = min(soonest, next(iter(wait.deadlines.values())))
        if not self._listening and self._paused_until:
            soonest = min(soonest, self._paused_until)
        if self._stopping.is_set():
            soonest = min(soonest, self._stop_by)
        return max(0.0, soonest - now)

    def _accept(self) -> None:
        while True:
            with self._lock:
                full = self._open >= self.limits.max_connections
            if full and not self._make_room():
                self._listen(False)  # the backlog holds them until a connection closes
                return
            try:
                sock, address = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRNOS:
                    log.warning("cannot accept connections for now: %s", exc.strerror)
                    self._listen(False)
                    self._paused_until = self._clock.monotonic() + _ACCEPT_PAUSE
                    return
                raise
            with self._lock:
                self._open += 1
            conn = Connection(sock, (str(address[0]), int(address[1])))
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                self._close(conn)
                continue
            conn.phase = Phase.HANDSHAKE if self._tls is not None else Phase.HEAD
            self._step(conn)

    def _make_room(self) -> bool:
        """Deal with the longest-idle keep-alive connection: close it (evicted), unless its
        next request (or its end) has arrived, which is then read. False if none is idle.

        Never a new connection or one sending a head (its client would not retry the
        request), nor one with a worker."""
        if not self._idle.deadlines:
            return False
        conn = next(iter(self._idle.deadlines))
        self._step(conn)  # reads what arrived, if anything: the socket never blocks
        if self._timer.get(conn) is self._idle:  # nothing arrived (or only part of a record)
            self._close(conn)
            self.evicted += 1
        return True

    def _step(self, conn: Connection) -> None:
        """Move a connection on as far as its socket allows now."""
        try:
            if conn.phase is Phase.HANDSHAKE:
                self._handshake(conn)
            elif conn.phase is Phase.HEAD:
                self._read(conn)
            elif conn.phase is Phase.WRITE:
                self._send(conn)
            else:
                self._drain(conn)
        except ClosedError as exc:
            log.debug("connection from %s closed: %s", conn.address[0], exc)
            self._close(conn)
        except Exception:  # one connection's bug must not take the server down
            log.exception("unexpected error on a connection from %s", conn.address[0])
            self._close(conn)

    def _handshake(self, conn: Connection) -> None:
        assert self._tls is not None
        if not isinstance(conn.sock, ssl.SSLSocket):
            first = conn.first_byte()
            if first is None:
                self._wait(conn, self._fresh, READ)
                return
            self._unwatch(conn)  # the TLS wrapper takes the descriptor over
            self._time(conn, self._head)
            if first != _TLS_HANDSHAKE_RECORD:  # a plain-HTTP client: a worker answers 400
                conn.plain_on_tls = True
                self._dispatch(conn)
                return
            context = self._tls.tls_context()
            if context is None:
                raise ClosedError("no TLS context")
            conn.start_tls(context)
        want = conn.handshake()
        if want is not None:
            self._wait(conn, self._head, want)
            return
        assert isinstance(conn.sock, ssl.SSLSocket)
        if not self._tls.tls_admit(conn.sock, conn.address):
            raise ClosedError("refused after the TLS handshake")
        conn.phase = Phase.HEAD
        self._read(conn)

    def _read(self, conn: Connection) -> None:
        want = conn.read_head()
        if want is None:
            self._dispatch(conn)
        elif conn.pending or self._timer.get(conn) is self._head:
            self._wait(conn, self._head, want)  # the head's deadline runs from its first byte
        else:
            self._wait(conn, self._idle if conn.requests else self._fresh, want)

    def _send(self, conn: Connection) -> None:
        want = conn.send()
        if want is not None:
            self._wait(conn, self._writing, want)
            return
        if conn.keep and not self._stopping.is_set():
            conn.phase = Phase.HEAD
            self._read(conn)
        elif conn.linger and not self._stopping.is_set():
            conn.start_linger()
            self._drain(conn)
        else:
            self._close(conn)

    def _drain(self, conn: Connection) -> None:
        self._wait(conn, self._draining, conn.drain())

    # Where a connection is: registered with the selector for some events, under one timer.

    def _wait(self, conn: Connection, wait: _Wait, events: int) -> None:
        registered = self._events.get(conn)
        try:
            if registered is None:
                self._selector.register(conn.sock, events, conn)
            elif registered != events:
                self._selector.modify(conn.sock, events, conn)
        except (OSError, ValueError) as exc:
            raise ClosedError(repr(exc)) from exc
        self._events[conn] = events
        self._time(conn, wait)

    def _time(self, conn: Connection, wait: _Wait) -> None:
        """Put the connection under ``wait``'s timer, unless it already is (the deadline runs
        from when it started waiting for that)."""
        current = self._timer.get(conn)
        if current is not wait:
            if current is not None:
                del current.deadlines[conn]
            wait.deadlines[conn] = self._clock.monotonic() + wait.timeout
            self._timer[conn] = wait

    def _unwatch(self, conn: Connection) -> None:
        if self._events.pop(conn, None) is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(conn.sock)

    def _release(self, conn: Connection) -> None:
        """Out of the selector thread's hands: no events, no timer."""
        self._unwatch(conn)
        current = self._timer.pop(conn, None)
        if current is not None:
            del current.deadlines[conn]

    def _dispatch(self, conn: Connection) -> None:
        self._release(conn)
        with self._lock:
            if not self._stopping.is_set():
                self._busy += 1
                self._work.put(conn)
                return
        self._close(conn)

    def _close(self, conn: Connection) -> None:
        self._release(conn)
        conn.close()
        with self._lock:
            self._open -= 1

    def _take_returned(self) -> None:
        with self._lock:
            returned, self._returned = self._returned, []
        for conn in returned:
            conn.phase = Phase.WRITE
            self._step(conn)

    def _expire(self) -> None:
        now = self._clock.monotonic()
        for wait in self._waits:
            while wait.deadlines:
                conn, deadline = next(iter(wait.deadlines.items()))
                if deadline > now:
                    break
                log.debug("connection from %s timed out (%s)", conn.address[0], conn.phase.value)
                self._close(conn)
                self.timed_out += 1
        if not self._listening and not self._stopping.is_set():
            with self._lock:
                room = self._open < self.limits.max_connections
            if room and now >= self._paused_until:
                self._paused_until = 0.0
                self._listen(True)

    def _finished(self) -> bool:
        """When stopping: close what waits for a request, and finish once every request in
        progress got its response out (or the stop timeout passed)."""
        if not self._stopping.is_set():
            return False
        self._listen(False)
        for wait in (self._fresh, self._idle, self._head, self._draining):
            for conn in list(wait.deadlines):
                self._close(conn)
        with self._lock:
            busy = self._busy + len(self._returned)
        if busy or self._writing.deadlines:
            return self._clock.monotonic() >= self._stop_by
        return True

    # -- workers ------------------------------------------------------------------------------

    def _worker(self) -> None:
        while True:
            conn = self._work.get()
            if conn is None:
                return
            try:
                conn.keep = self._serve(conn)
            except Exception:
                log.exception("unexpected error serving a connection from %s", conn.address[0])
                conn.keep = False
            self._respond(conn)

    def _respond(self, conn: Connection) -> None:
        """Send what the socket takes now; give the rest, and the connection, back to the
        selector thread. A pipelined request already here goes back in line."""
        conn.requests += 1
        conn.seal()
        try:
            sent = conn.send() is None
        except ClosedError:
            sent, conn.keep, conn.linger = True, False, False
        if sent and not conn.keep and not conn.linger:
            conn.close()
            with self._lock:
                self._busy -= 1
                self._open -= 1
            self._wake()  # the selector may be waiting for room (max_connections) or for stop
            return
        with self._lock:
            if sent and conn.keep and conn.head_ready() and not self._stopping.is_set():
                self._work.put(conn)  # stays busy, behind the requests already waiting
                return
            self._busy -= 1
            self._returned.append(conn)
        self._wake()
