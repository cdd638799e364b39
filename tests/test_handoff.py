"""The HTTP workers' hand-off: items in arrival order, the most recently idle thread first."""

from __future__ import annotations

import threading

from exporter.handoff import Handoff
from tests.harness import wait_until


def _parked(handoff: Handoff[str], name: str, taken: dict[str, str]) -> threading.Thread:
    before = handoff.idle
    thread = threading.Thread(target=lambda: taken.update({handoff.get(): name}), daemon=True)
    thread.start()
    wait_until(lambda: handoff.idle == before + 1, timeout=10)
    return thread


def test_the_thread_that_went_idle_last_takes_the_next_item() -> None:
    handoff: Handoff[str] = Handoff()
    taken: dict[str, str] = {}
    first = _parked(handoff, "first", taken)
    second = _parked(handoff, "second", taken)
    handoff.put("a")
    second.join(10)
    assert taken == {"a": "second"}
    assert handoff.idle == 1
    handoff.put("b")
    first.join(10)
    assert taken == {"a": "second", "b": "first"}


def test_items_come_out_in_arrival_order_and_drain_takes_the_rest() -> None:
    handoff: Handoff[int] = Handoff()
    for i in range(5):
        handoff.put(i)
    assert [handoff.get(), handoff.get()] == [0, 1]
    assert handoff.drain() == [2, 3, 4]
    assert handoff.drain() == []


def test_every_item_is_taken_once_by_many_threads() -> None:
    handoff: Handoff[int | None] = Handoff()
    got: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        while (item := handoff.get()) is not None:
            with lock:
                got.append(item)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    for i in range(2000):
        handoff.put(i)
    for _ in threads:
        handoff.put(None)
    for thread in threads:
        thread.join(30)
    assert sorted(got) == list(range(2000))
