"""The ingest loop: source → engine, in one thread.

One thread on purpose: parsing is CPU work under the GIL, so a reader thread would add a queue
and no speed. Reading, decoding and updating state in one loop also makes the checkpoint
simple: a position is saved only after the lines before it have reached the state, so a
graceful stop loses and duplicates nothing. What happens to the bytes is the ``Engine``'s, the
same as in ``replay``; this loop adds the clock (every record arrives at now), the files and
the reference file's reloads.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from exporter.clock import Clock
from exporter.config_types import DriftConfig, TailConfig
from exporter.engine import Engine
from exporter.health import Health
from exporter.reload import ReferenceFile
from exporter.tail.tailer import Chunk, Tailer
from exporter.tail.watch import Waker

log = logging.getLogger(__name__)

DRAIN_SECONDS = 20.0  # at stop, read what was written before the signal for at most this long


def _runs(polled: list[Chunk]) -> list[list[Chunk]]:
    """A poll's chunks as runs read from one source each, in the order read."""
    runs: list[list[Chunk]] = []
    for chunk in polled:
        if runs and runs[-1][0].source == chunk.source:
            runs[-1].append(chunk)
        else:
            runs.append([chunk])
    return runs


def _taken(run: list[Chunk]) -> Iterator[bytes]:
    """The bytes of a run's chunks in turn, each removed from the run as it is taken: a poll
    reads up to 2 MiB, and the engine decodes one chunk at a time, so only one chunk is held
    while the others are decoded and the batch is applied."""
    run.reverse()
    while run:
        yield run.pop().data


class Pipeline:
    def __init__(
        self,
        tailer: Tailer,
        engine: Engine,
        clock: Clock,
        tail: TailConfig,
        waker: Waker | None = None,
        reference_file: ReferenceFile | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        """``on_failure`` is called (from the ingest thread) if the loop dies, so the process
        can exit non-zero instead of serving frozen numbers."""
        self._tailer = tailer
        self._on_failure = on_failure
        self._engine = engine
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
        self._polled = threading.Event()  # every source polled once: /readyz
        self._reload_asked = False  # SIGHUP: read the reference again at the next pass ...
        self._new_drift: DriftConfig | None = None  # ... and use these thresholds

    # -- the loop ---------------------------------------------------------------------------

    def step(self) -> int:
        """One pass: apply a reload, reload a changed reference, move drift assessment on, read
        what is new, ingest it. Returns the number of lines handled."""
        self._apply_reload()
        if self._reference_file is not None:
            # A changed, valid profile goes to the engine; one it cannot use is refused and
            # counted like a file that does not parse, and the profile in use stays.
            self._reference_file.poll(self._engine.reload)
        self._engine.advance(self._clock.now())
        lines = 0
        for run in _runs(self._tailer.poll_once()):
            source = run[0].source
            lines += sum(chunk.lines for chunk in run)
            self.ingest(source, _taken(run))
        self._polled.set()
        return lines

    def reload(self, drift: DriftConfig | None = None) -> None:
        """SIGHUP, from another thread: at the start of the next pass, read the reference
        profile again (even if its file looks unchanged) and use ``drift``'s thresholds."""
        with self._lock:
            self._reload_asked = True
            self._new_drift = drift
        self._waker.wake()

    def _apply_reload(self) -> None:
        with self._lock:
            asked, drift = self._reload_asked, self._new_drift
            self._reload_asked, self._new_drift = False, None
        if not asked:
            return
        if drift is not None:
            self._engine.set_drift(drift)
        if self._reference_file is not None:
            self._reference_file.invalidate()

    def ingest(self, source: str, chunks: Iterable[bytes]) -> None:
        """Chunks read in turn from one source, applied as one batch."""
        started = self._clock.monotonic()
        now = self._clock.now()
        counts = self._engine.ingest_all(chunks, now)
        with self._lock:
            for reason, count in counts.parse_errors.items():
                self._parse_errors[(source, reason)] += count
            self._last_read[source] = now
            self._ingest_seconds += self._clock.monotonic() - started

    def flush_positions_if_due(self) -> None:
        now = self._clock.monotonic()
        if now - self._last_flush >= self._tail.positions_flush_interval:
            self._tailer.save_positions()
            self._last_flush = now

    def run(self) -> None:
        """Loop until ``stop()``; then drain what is already readable and save positions.

        If the loop dies, positions are *not* saved: chunks read but not ingested would be
        skipped after a restart. The last periodic checkpoint stays, so a restart re-reads
        (at most) what came after it, as after ``kill -9``.
        """
        try:
            while not self._stop.is_set():
                self.step()
                self.flush_positions_if_due()
                if not self._tailer.more_pending:
                    self._waker.wait(self._tail.poll_interval)
            self._drain()
            self._tailer.save_positions()
        except Exception as exc:
            self._failure = f"ingest loop failed: {exc!r}"
            log.critical(
                "ingest loop failed; positions not saved past the last checkpoint", exc_info=True
            )
            if self._on_failure is not None:
                self._on_failure()
        finally:
            self._tailer.close()

    def _drain(self) -> None:
        """Lines written before the stop signal are counted before exit (then checkpointed),
        within a deadline well inside the stop timeout; what is left is read after a restart.

        "Before the signal" to within one poll: the first pass after the stop reads what is
        there (up to the poll's byte budget), and the bytes it left unread (the sources' lag
        then) are the rest of the backlog. Once those are read the drain ends, even if the
        writer is still writing: a model server that keeps logging through its own shutdown
        must not hold the exit for the whole deadline, and what it wrote after the signal is
        read after a restart, from the checkpoint saved next.
        """
        deadline = self._clock.monotonic() + DRAIN_SECONDS
        backlog_end: int | None = None  # bytes read, in total, once the backlog is read
        while self._clock.monotonic() < deadline:
            lines = self.step()
            stats = self._tailer.stats().values()
            read = sum(s.bytes_read for s in stats)
            if backlog_end is None:
                backlog_end = read + sum(s.lag_bytes for s in stats)
            if (lines == 0 and not self._tailer.more_pending) or read >= backlog_end:
                return
            self.flush_positions_if_due()

    @property
    def failed(self) -> bool:
        return self._failure is not None

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
                labels_cut=self._engine.decoder.labels_cut(),
            )

    def ready(self) -> tuple[bool, str]:
        """Readiness: every source polled once (``start_at: end`` is fixed then, so a line
        written after this is counted) and the reference profile, if one is configured, in
        use."""
        if not self._polled.is_set():
            return False, "waiting for the first poll of the sources"
        if self._reference_file is not None and self._engine.state.reference is None:
            return False, "reference profile not loaded"
        return True, "ok"

    def healthy(self) -> tuple[bool, str]:
        if self._failure is not None:
            return False, self._failure
        if self._thread is not None and not self._thread.is_alive() and not self._stop.is_set():
            return False, "ingest loop is not running"
        return True, "ok"
