"""The wake-up side: events ring the waker for matched paths only; failure means polling."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from tail_harness import SilentObserver

from exporter.tail.watch import Waker, start_watch, watch_dirs
from tests.harness import WAIT


def test_waker_rings_once_and_clears() -> None:
    w = Waker()
    assert not w.wait(0)
    w.wake()
    w.wake()
    assert w.wait(0)
    assert not w.wait(0)


def test_waker_wakes_a_waiting_thread() -> None:
    w = Waker()
    woke: list[bool] = []
    t = threading.Thread(target=lambda: woke.append(w.wait(WAIT)))
    t.start()
    w.wake()
    t.join(WAIT)
    assert woke == [True]


def test_watch_dirs_for_files_and_globs(tmp_path: Path) -> None:
    d = str(tmp_path)
    assert watch_dirs([f"{d}/p.jsonl", f"{d}/*.jsonl", f"{d}/*/x.jsonl"]) == {d: True}
    assert watch_dirs([f"{d}/a/p.jsonl"]) == {f"{d}/a": False}


def test_events_on_matched_paths_ring_the_waker(tmp_path: Path) -> None:
    observer = SilentObserver()
    w = Waker()
    stop = start_watch([str(tmp_path / "*.jsonl")], w, observer_factory=lambda: observer)
    assert observer.started
    ((handler, path, recursive),) = observer.scheduled
    assert (path, recursive) == (str(tmp_path), False)
    handler.dispatch(SimpleNamespace(src_path=str(tmp_path / "other.txt")))
    assert not w.wait(0)
    handler.dispatch(SimpleNamespace(src_path=str(tmp_path / "a.jsonl")))
    assert w.wait(0)
    moved = SimpleNamespace(src_path=str(tmp_path / "x.tmp"), dest_path=str(tmp_path / "a.jsonl"))
    handler.dispatch(moved)
    assert w.wait(0)
    stop()
    assert observer.stopped


def test_observer_that_cannot_start_means_polling_alone(tmp_path: Path) -> None:
    class Broken(SilentObserver):
        def start(self) -> None:
            raise OSError(28, "inotify watch limit reached")

    stop = start_watch([str(tmp_path / "p.jsonl")], Waker(), observer_factory=Broken)
    stop()  # a no-op, and it must not raise


def test_missing_directory_is_left_to_polling(tmp_path: Path) -> None:
    observer = SilentObserver()
    start_watch([str(tmp_path / "absent" / "p.jsonl")], Waker(), observer_factory=lambda: observer)
    assert observer.scheduled == []
    assert not observer.started


def test_stopping_hides_watchdogs_inactive_emitter_error_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An inotify emitter that read an event as the observer stopped logs "called when the
    thread is inactive" at ERROR (watchdog 7; seen at most shutdowns of a busy sidecar): not an
    error of ours, so it is not shown. Watchdog's other errors still are."""
    inotify = logging.getLogger("watchdog.observers.inotify")

    class Racing(SilentObserver):
        def stop(self) -> None:  # what the emitter thread logs while being stopped
            inotify.error("InotifyEmitter.queue_events() called when the thread is inactive")
            inotify.error("something else went wrong")

    caplog.set_level(logging.ERROR)
    stop = start_watch([str(tmp_path / "p.jsonl")], Waker(), observer_factory=Racing)
    stop()
    assert [r.getMessage() for r in caplog.records] == ["something else went wrong"]


def test_real_observer_reports_an_append(tmp_path: Path) -> None:
    """The one real wait: bounded, and it returns as soon as inotify delivers."""
    target = tmp_path / "p.jsonl"
    target.touch()
    w = Waker()
    stop = start_watch([str(target)], w)
    try:
        with target.open("ab") as f:
            f.write(b"{}\n")
        assert w.wait(WAIT)
    finally:
        stop()
