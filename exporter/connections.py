"""Connections for the HTTP server: a real listen backlog, a bounded pool of worker threads, and
idle connections parked in one selector instead of each holding a thread.

Why not ``ThreadingHTTPServer``: its backlog is 5 (200 simultaneous connects overflow it and
stall on SYN retransmits) and it starts one thread per connection with no cap, each blocked
for the whole keep-alive idle time. Here one thread accepts connections and watches the idle
ones; a connection goes to a worker only when it has bytes to read, for one request, and comes
back to the selector after it. A worker is therefore busy only while a request is actually
being read, handled or written, so a few workers serve hundreds of keep-alive scrapers fairly,
in arrival order.

Limits (``Limits``): at most ``max_connections`` open at once. Past that the oldest idle one
is closed to make room (a client reconnects cheaply), and when none is idle, new connections
wait in the kernel's backlog until one finishes. A connection that sends nothing is closed
after ``head_timeout``; an idle keep-alive one after ``idle_timeout``; a request head (and the
TLS handshake) must arrive within ``head_timeout`` of its first byte, however slowly it
trickles in, or the socket is shut down under the worker (so a slow client cannot pin one).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import logging
import select
import selectors
import socket
import ssl
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from exporter.clock import Clock, SystemClock

log = logging.getLogger(__name__)
T = TypeVar("T")

# accept() failing for lack of descriptors or memory: wait a little rather than spin on it.
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_ACCEPT_PAUSE = 0.1
# After an error reply on a request we did not read whole, read (and drop) what the client still
# sends for this long before closing: closing with unread bytes sends a reset, and the client
# may then lose the reply (e.g. a 431) before reading it.
LINGER_SECONDS = 0.5
_LINGER_BYTES = 1 << 20


class Handoff(Generic[T]):
    """A FIFO of work for a pool of threads that wakes the most recently idle thread first.

    Why not ``queue.SimpleQueue``: its waiters take turns, so a single Prometheus scraping
    every few seconds is served by every worker in rotation, and each thread's first large
    allocation gives it a malloc arena of its own that stays resident (glibc keeps up to 8 per
    core). Waking the last thread to go idle keeps a light load on one or two threads and
    their arenas; a crowd of scrapers still gets every worker.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: deque[T] = deque()
        self._idle: list[threading.Lock] = []  # a parked thread waits on its own lock

    def put(self, item: T) -> None:
        with self._lock:
            self._items.append(item)
            if self._idle:
                self._idle.pop().release()

    def get(self) -> T:
        waiter = threading.Lock()
        waiter.acquire()
        while True:
            with self._lock:
                if self._items:
                    return self._items.popleft()
                self._idle.append(waiter)
            # Released by ``put`` (after popping it): another thread may take that item
            # first, and then this one parks again.
            waiter.acquire()

    @property
    def idle(self) -> int:
        """Threads parked in ``get``."""
        with self._lock:
            return len(self._idle)

    def drain(self) -> list[T]:
        """Take every item still waiting."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
            return items


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
    io_timeout: float = 30.0  # one blocking read or one whole response write


@dataclass(eq=False)
class Connection:
    """One client connection as it moves between the selector and the workers.

    ``rfile`` lives as long as the connection, so bytes a client sent ahead (a pipelined
    request) are not lost when the connection goes back to the selector between requests.
    """

    sock: socket.socket
    address: tuple[str, int]
    rfile: io.BufferedReader | None = None
    wfile: io.BufferedIOBase | None = None
    tls: bool = False  # the TLS handshake is done
    linger: bool = False  # the reply was an error to a request not read whole
    requests: int = 0
    head_done: Callable[[], None] = field(default=lambda: None, repr=False)

    def buffered(self) -> bool:
        """Whether a next request is already readable without waiting (pipelined, or held in
        the TLS layer where the selector cannot see it)."""
        if self.rfile is None:
            return False
        timeout = self.sock.gettimeout()
        try:
            self.sock.settimeout(0.0)
            return bool(self.rfile.peek(1))
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        except (OSError, ValueError):
            return True  # let the handler meet the error (or EOF) and close
        finally:
            with contextlib.suppress(OSError):
                self.sock.settimeout(timeout)

    def close(self) -> None:
        if self.linger:
            self._linger()
        for f in (self.rfile, self.wfile):
            if f is not None:
                with contextlib.suppress(OSError, ValueError):
                    f.close()
        with contextlib.suppress(OSError):
            self.sock.close()

    def _linger(self) -> None:
        clock = SystemClock()
        deadline = clock.monotonic() + LINGER_SECONDS
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_WR)
            drained = 0
            while drained < _LINGER_BYTES and (left := deadline - clock.monotonic()) > 0:
                self.sock.settimeout(left)
                data = self.sock.recv(65536)
                if not data:
                    break
                drained += len(data)


Serve = Callable[[Connection], bool]
"""Handle the next request on a connection; True keeps it open for another."""


class ConnectionServer:
    """Accepts on one socket and runs ``serve`` for each request on a bounded pool."""

    def __init__(
        self,
        host: str,
        port: int,
        serve: Serve,
        limits: Limits | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Binds at once, so a taken port fails here, before any thread starts."""
        self.limits = limits if limits is not None else Limits()
        self._serve = serve
        self._clock = clock if clock is not None else SystemClock()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server(
            (host, port), family=family, backlog=self.limits.backlog
        )
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._work: Handoff[Connection | None] = Handoff()
        self._lock = threading.Lock()
        self._open = 0
        self._returned: list[Connection] = []  # from workers, to park again
        self._reading: OrderedDict[Connection, float] = OrderedDict()  # head deadlines
        self._planned_wake = 0.0  # when the accept loop will look at deadlines next
        # Parked connections by the time they went idle (oldest first): new ones wait for a
        # first byte, kept-alive ones for a next request.
        self._fresh: OrderedDict[Connection, float] = OrderedDict()
        self._idle: OrderedDict[Connection, float] = OrderedDict()
        self._selector = selectors.DefaultSelector()
        self._listening = False
        self._paused_until = 0.0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.evicted = 0  # idle connections closed to make room for new ones

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def open_connections(self) -> int:
        with self._lock:
            return self._open

    def start(self) -> None:
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._listen(True)
        self._threads = [
            threading.Thread(target=self._loop, name="http-accept", daemon=True),
            *(
                threading.Thread(target=self._worker, name=f"http-worker-{i}", daemon=True)
                for i in range(self.limits.workers)
            ),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close idle connections, let requests in progress finish (bounded)."""
        self._stopping.set()
        self._wake()
        for _ in range(self.limits.workers):
            self._work.put(None)
        deadline = self._clock.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - self._clock.monotonic()))
        self._threads = []
        with self._lock:
            leftovers = [*self._returned, *self._fresh, *self._idle]
            self._returned.clear()
        # Requests queued behind the workers' stop markers are not served.
        leftovers += [queued for queued in self._work.drain() if queued is not None]
        for conn in leftovers:
            conn.close()
        self._fresh.clear()
        self._idle.clear()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the accepting and parking thread ---------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # a full pipe already means "wake up"
            self._wake_w.send(b"\0")

    def _listen(self, on: bool) -> None:
        if on != self._listening:
            if on:
                self._selector.register(self._listener, selectors.EVENT_READ)
            else:
                self._selector.unregister(self._listener)
            self._listening = on

    def _loop(self) -> None:
        try:
            while not self._stopping.is_set():
                for key, _ in self._selector.select(self._timeout()):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                    elif self._unpark(key.data):  # not already evicted or dispatched
                        self._dispatch(key.data)
                self._take_returned()
                self._expire()
        except Exception:  # the server must not die silently: /healthz cannot say it
            log.critical("HTTP accept loop failed", exc_info=True)
            raise

    def _timeout(self) -> float:
        """Sleep until the next deadline; a worker starting a request with an earlier one wakes
        the loop (``_planned_wake``)."""
        now = self._clock.monotonic()
        soonest = now + self.limits.idle_timeout
        for deadlines in (self._fresh, self._idle):
            if deadlines:
                soonest = min(soonest, next(iter(deadlines.values())))
        if not self._listening and self._paused_until:
            soonest = min(soonest, self._paused_until)
        with self._lock:
            if self._reading:
                soonest = min(soonest, next(iter(self._reading.values())))
            self._planned_wake = soonest
        return max(0.0, soonest - now)

    def _accept(self) -> None:
        while True:
            with self._lock:
                full = self._open >= self.limits.max_connections
            if full and not self._evict_one():
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
            conn.head_done = functools.partial(self._head_done, conn)
            self._park(conn, self._fresh, self.limits.head_timeout)

    def _evict_one(self) -> bool:
        """Close the longest-idle keep-alive connection to make room for a new one.

        Never a new connection (its client would not retry a request on it), nor an idle one
        whose next request already arrived (that one is served instead: no room is made, but
        a worker will free one)."""
        while self._idle:
            conn, _ = self._idle.popitem(last=False)
            self._selector.unregister(conn.sock)
            try:  # bytes (a request, or the end) waiting?
                waiting = bool(select.select([conn.sock], [], [], 0)[0])
            except (OSError, ValueError):
                waiting = True  # let a worker meet the error
            if waiting:
                self._dispatch(conn)
                continue
            self._close(conn)
            self.evicted += 1
            return True
        return False

    def _park(self, conn: Connection, where: OrderedDict[Connection, float], wait: float) -> None:
        try:
            self._selector.register(conn.sock, selectors.EVENT_READ, conn)
        except (ValueError, OSError):  # closed meanwhile
            self._close(conn)
            return
        where[conn] = self._clock.monotonic() + wait

    def _unpark(self, conn: Connection) -> bool:
        """Take a connection out of the selector; False if it was not parked (any more)."""
        if self._fresh.pop(conn, None) is None and self._idle.pop(conn, None) is None:
            return False
        self._selector.unregister(conn.sock)
        return True

    def _dispatch(self, conn: Connection) -> None:
        self._work.put(conn)

    def _take_returned(self) -> None:
        with self._lock:
            returned, self._returned = self._returned, []
        for conn in returned:
            self._park(conn, self._idle, self.limits.idle_timeout)

    def _expire(self) -> None:
        now = self._clock.monotonic()
        for deadlines in (self._fresh, self._idle):
            while deadlines:
                conn, deadline = next(iter(deadlines.items()))
                if deadline > now:
                    break
                del deadlines[conn]
                self._selector.unregister(conn.sock)
                self._close(conn)
        late = []
        with self._lock:
            while self._reading:
                conn, deadline = next(iter(self._reading.items()))
                if deadline > now:
                    break
                del self._reading[conn]
                late.append(conn)
        for conn in late:
            # The worker is blocked reading from it: shutting the socket down wakes it with
            # EOF. socket.socket.shutdown, not SSLSocket's, which would also drop the TLS state
            # from under the worker.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)
        if not self._listening and not self._stopping.is_set():
            with self._lock:
                room = self._open < self.limits.max_connections
            if room and now >= self._paused_until:
                self._paused_until = 0.0
                self._listen(True)

    # -- workers ----------------------------------------------------------------------------

    def _head_done(self, conn: Connection) -> None:
        with self._lock:
            self._reading.pop(conn, None)

    def _worker(self) -> None:
        while True:
            conn = self._work.get()
            if conn is None:
                return
            with self._lock:  # the clock is read under the lock, so deadlines stay in order
                deadline = self._clock.monotonic() + self.limits.head_timeout
                self._reading[conn] = deadline
                sooner = deadline < self._planned_wake
            if sooner:  # the accept loop sleeps past this deadline: it must enforce it
                self._wake()
            keep = False
            try:
                conn.sock.settimeout(self.limits.io_timeout)
                keep = self._serve(conn)
            except (OSError, ValueError) as exc:  # the client went away, timed out, or was cut
                log.debug("connection from %s ended: %r", conn.address[0], exc)
            except Exception:
                log.exception("unexpected error serving a connection from %s", conn.address[0])
            finally:
                self._head_done(conn)
            if not keep or self._stopping.is_set():
                self._close(conn)
            elif conn.buffered():
                self._dispatch(conn)  # a pipelined request: back in line behind the others
            else:
                with self._lock:
                    self._returned.append(conn)
                self._wake()

    def _close(self, conn: Connection) -> None:
        conn.close()
        with self._lock:
            self._open -= 1
        if not self._listening:  # the accept loop paused at max_connections: room again
            self._wake()
