"""Wake the tail loop early when the file system says a watched log changed.

Events only cut latency; correctness never depends on them. Some volumes (NFS, some overlay
and FUSE mounts) deliver no inotify events, and inotify watches run out, so the caller always
polls on a timer too, and an observer that cannot start is logged once and ignored.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from exporter.tail.fileident import is_glob

log = logging.getLogger(__name__)

Stopper = Callable[[], None]


class Waker:
    """A one-slot doorbell: ``wake`` from any thread, ``wait`` in the tail loop."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def wake(self) -> None:
        self._event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True if woken (or already woken) before ``timeout``; clears the bell either way.

        Clearing after waking is safe: a wake that lands before the clear marks a change that
        the poll which follows will see anyway.
        """
        fired = self._event.wait(timeout)
        self._event.clear()
        return fired


class _Observer(Protocol):
    def schedule(self, handler: Any, path: str, *, recursive: bool = False) -> Any: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


def watch_dirs(patterns: Iterable[str]) -> dict[str, bool]:
    """Directory to watch for each pattern -> whether it must be recursive.

    A glob in a directory part (``logs/*/pred.jsonl``) watches its fixed prefix recursively.
    """
    dirs: dict[str, bool] = {}
    for pattern in patterns:
        parent = os.path.dirname(os.path.abspath(pattern))  # noqa: PTH100, PTH120 - str paths for watchdog
        recursive = False
        while is_glob(parent):
            parent = os.path.dirname(parent)  # noqa: PTH120 - same as above
            recursive = True
        dirs[parent] = dirs.get(parent, False) or recursive
    return dirs


class _Handler:
    """Rings the bell for any event whose source or destination path matches a pattern."""

    def __init__(self, patterns: Sequence[str], waker: Waker) -> None:
        self._patterns = [os.path.abspath(p) for p in patterns]  # noqa: PTH100 - matched as str
        self._waker = waker

    def matches(self, path: str | bytes) -> bool:
        p = os.fsdecode(path)
        return any(fnmatch.fnmatchcase(p, pat) for pat in self._patterns)

    def dispatch(self, event: Any) -> None:
        paths = (getattr(event, "src_path", ""), getattr(event, "dest_path", ""))
        if any(p and self.matches(p) for p in paths):
            self._waker.wake()


def _default_observer() -> _Observer:
    from watchdog.observers import Observer  # noqa: PLC0415 - imported only when watching

    observer: _Observer = Observer()
    return observer


def start_watch(
    paths_or_globs: Sequence[str],
    waker: Waker,
    observer_factory: Callable[[], _Observer] = _default_observer,
) -> Stopper:
    """Watch the parent directories of the patterns; return a function that stops watching.

    Never raises: without events the timer poll still finds every change, only later.
    """
    handler = _Handler(paths_or_globs, waker)
    try:
        observer = observer_factory()
        scheduled = 0
        for directory, recursive in watch_dirs(paths_or_globs).items():
            if not os.path.isdir(directory):  # noqa: PTH112 - str path, like watchdog's
                log.info("not watching %s (no such directory); polling covers it", directory)
                continue
            observer.schedule(handler, directory, recursive=recursive)
            scheduled += 1
        if scheduled == 0:
            return _noop
        observer.start()
    except Exception as e:  # any failure here only costs latency, so none may escape
        log.warning("file events unavailable (%s); relying on polling alone", e)
        return _noop

    def stop() -> None:
        logging.getLogger(_INOTIFY_LOGGER).addFilter(_stopping_race)
        observer.stop()
        observer.join(timeout=5.0)

    return stop


_INOTIFY_LOGGER = "watchdog.observers.inotify"


def _stopping_race(record: logging.LogRecord) -> bool:
    """Drop watchdog's ERROR about an emitter reading an event while the observer stops.

    An inotify emitter that had read an event when ``stop`` closed its watch logs "called when
    the thread is inactive" at ERROR and drops the event (watchdog 7). At shutdown that is no
    error: the loop no longer listens, and the final drain reads the files, not the events.
    """
    return not record.getMessage().startswith("InotifyEmitter.queue_events() called when")


def _noop() -> None:
    return None
