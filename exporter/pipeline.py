"""The ingest loop: source → records → state, in one thread.

One thread on purpose: parsing is CPU work under the GIL, so a reader thread would add a queue
and no speed. Reading, decoding and updating state in one loop also makes the checkpoint
simple: a position is saved only after the lines before it have reached the state, so a
graceful stop loses and duplicates nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from exporter.clock import Clock
from exporter.collector import Health
from exporter.compare import ReferenceChecks
from exporter.config_types import DriftConfig, TailConfig
from exporter.join import LabelJoin
from exporter.records import Decoder
from exporter.reference import Reference
from exporter.reload import ReferenceFile
from exporter.source import Chunk, Tailer
from exporter.state import State
from exporter.watch import Waker

log = logging.getLogger(__name__)

POLL_BUDGET_BYTES = 8 << 20  # read at most this much per pass, then checkpoint and look again


class Pipeline:
    def __init__(
        self,
        tailer: Tailer,
        decoder: Decoder,
        state: State,
        clock: Clock,
        tail: TailConfig,
        waker: Waker | None = None,
        reference_file: ReferenceFile | None = None,
        drift: DriftConfig | None = None,
        join: LabelJoin | None = None,
    ) -> None:
        self._tailer = tailer
        self._decoder = decoder
        self._state = state
        self._clock = clock
        self._tail = tail
        self._waker = waker if waker is not None else Waker()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._parse_errors: Counter[tuple[str, str]] = Counter()
        self._last_read: dict[str, float] = {}
        self._ingest_seconds = 0.0
        self._last_flush = clock.monotonic()
        self._thread: threading.Thread | None = None
        self._failure: str | None = None
        self._reference_file = reference_file
        self._drift = drift if drift is not None else DriftConfig()
        self._checks: ReferenceChecks | None = None
        self._checked: Reference | None = None
        self._join = join
        self._install_checks()

    def _install_checks(self) -> None:
        """Per-record checks follow the state's reference (loaded, reloaded or frozen).

        Always called from the ingest thread: building the checks gives the reference's
        categories vocabulary codes, and the vocabularies belong to that thread.
        """
        reference = self._state.reference
        if reference is self._checked:
            return
        self._checked = reference
        self._checks = (
            None
            if reference is None
            else ReferenceChecks(
                reference, self._decoder.layout, self._decoder.vocabularies, self._drift
            )
        )

    def _reload_reference(self) -> None:
        if self._reference_file is not None:
            reference = self._reference_file.poll()
            if reference is not None:
                self._state.set_reference(reference)
        self._install_checks()

    # -- the loop ---------------------------------------------------------------------------

    def step(self) -> int:
        """One pass: read what is new, ingest it. Returns the number of lines handled."""
        self._reload_reference()
        lines = 0
        for chunk in self._tailer.poll_once(POLL_BUDGET_BYTES):
            self.ingest(chunk)
            lines += chunk.lines
        return lines

    def ingest(self, chunk: Chunk) -> None:
        started = time.perf_counter()
        now = self._clock.now()
        batch = self._decoder.decode(chunk.data, now)
        if self._checks is not None:
            self._checks.apply(batch)
        if self._join is not None:
            joined = self._join.process(batch, now)
            self._state.ingest(joined.predictions, now)
            self._state.add_joined(joined.joined, joined.outcomes, now)
        else:
            self._state.ingest(batch, now)
        if self._state.reference is not self._checked:
            self._install_checks()
        with self._lock:
            for reason, count in batch.parse_errors.items():
                self._parse_errors[(chunk.source, reason)] += count
            self._last_read[chunk.source] = now
            self._ingest_seconds += time.perf_counter() - started

    def flush_positions_if_due(self) -> None:
        now = self._clock.monotonic()
        if now - self._last_flush >= self._tail.positions_flush_interval:
            self._tailer.save_positions()
            self._last_flush = now

    def run(self) -> None:
        """Loop until ``stop()``; then drain what is already readable and save positions."""
        try:
            while not self._stop.is_set():
                self.step()
                self.flush_positions_if_due()
                if not self._tailer.more_pending:
                    self._waker.wait(self._tail.poll_interval)
            self._drain()
        except Exception as exc:
            self._failure = f"ingest loop failed: {exc!r}"
            log.exception("ingest loop failed")
            raise
        finally:
            self._tailer.save_positions()
            self._tailer.close()

    def _drain(self, max_passes: int = 1000) -> None:
        """Lines written before the stop signal are counted before exit (then checkpointed)."""
        for _ in range(max_passes):
            if self.step() == 0 and not self._tailer.more_pending:
                return

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="ingest", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._waker.wake()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- what the collector and /healthz see ------------------------------------------------

    def health(self) -> Health:
        with self._lock:
            return Health(
                sources=self._tailer.stats(),
                parse_errors=dict(self._parse_errors),
                last_read=dict(self._last_read),
                checkpoint_errors=self._tailer.checkpoint_errors(),
                ingest_seconds=self._ingest_seconds,
                reference_reloads=dict(self._reference_file.outcomes)
                if self._reference_file
                else {},
            )

    def healthy(self) -> tuple[bool, str]:
        if self._failure is not None:
            return False, self._failure
        if self._thread is not None and not self._thread.is_alive() and not self._stop.is_set():
            return False, "ingest loop is not running"
        return True, "ok"
