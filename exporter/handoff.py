"""The HTTP workers' hand-off: connections in arrival order, to the most recently idle worker.

Why not ``queue.SimpleQueue``: its waiters take turns, so a single Prometheus scraping every few
seconds is served by every worker in rotation, and each thread's first large allocation gives it
a malloc arena of its own that stays resident (glibc keeps up to 8 per core). Waking the last
thread to go idle keeps a light load on one or two threads and their arenas (catch-up of 2M
lines with a scrape every 0.5 s: peak RSS 65-66 MiB instead of 83-85); a crowd of scrapers still
gets every worker.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """A FIFO of work for a pool of threads that wakes the most recently idle thread first."""

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
