"""The ingest loop: source → records → state, in one thread.

One thread on purpose: parsing is CPU work under the GIL, so a reader thread would add a queue
and no speed. Reading, decoding and updating state in one loop also makes the checkpoint
simple: a position is saved only after the lines before it have reached the state, so a
graceful stop loses and duplicates nothing.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable

from exporter.anomaly import UNPROCESSABLE
from exporter.clock import Clock
from exporter.compare import ReferenceChecks
from exporter.config_types import DriftConfig, TailConfig
from exporter.decode import Decoder
from exporter.health import Health
from exporter.join import LabelJoin
from exporter.reference import Reference
from exporter.reload import ReferenceFile
from exporter.state import State
from exporter.tail.tailer import Chunk, Tailer
from exporter.tail.watch import Waker

log = logging.getLogger(__name__)

DRAIN_SECONDS = 20.0  # at stop, read what was written before the signal for at most this long


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
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        """``on_failure`` is called (from the ingest thread) if the loop dies, so the process
        can exit non-zero instead of serving frozen numbers."""
        self._tailer = tailer
        self._on_failure = on_failure
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
        self._polled = threading.Event()  # every source polled once: /readyz
        self._reload_asked = False  # SIGHUP: read the reference again at the next pass ...
        self._new_drift: DriftConfig | None = None  # ... and use these thresholds
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
            prepared: list[ReferenceChecks] = []

            def accept(reference: Reference) -> None:
                prepared.append(
                    ReferenceChecks(
                        reference, self._decoder.layout, self._decoder.vocabularies, self._drift
                    )
                )

            reference = self._reference_file.poll(accept)
            if reference is not None:
                self._state.set_reference(reference)
                self._checks, self._checked = prepared[0], reference
        self._install_checks()

    # -- the loop ---------------------------------------------------------------------------

    def step(self) -> int:
        """One pass: read what is new, ingest it. Returns the number of lines handled."""
        self._apply_reload()
        self._reload_reference()
        lines = 0
        for chunk in self._tailer.poll_once():
            self.ingest(chunk)
            lines += chunk.lines
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
            self._drift = drift
            self._state.set_drift(drift)
            self._checked = None  # rebuild the per-record checks with the new thresholds
            self._install_checks()
        if self._reference_file is not None:
            self._reference_file.invalidate()

    def ingest(self, chunk: Chunk) -> None:
        started = self._clock.monotonic()
        now = self._clock.now()
        try:
            errors = self._ingest_data(chunk.data, now)
        except Exception:
            # Malformed input is counted, never fatal: a chunk that trips an unexpected error is
            # ingested line by line, and only the lines that still fail are lost (and counted).
            log.exception(
                "unexpected error ingesting %d lines of %s; retrying line by line",
                chunk.lines,
                chunk.source,
            )
            errors = self._ingest_lines(chunk.data, now)
        with self._lock:
            for reason, count in errors.items():
                self._parse_errors[(chunk.source, reason)] += count
            self._last_read[chunk.source] = now
            self._ingest_seconds += self._clock.monotonic() - started

    def _ingest_data(self, data: bytes, now: float) -> Counter[str]:
        batch = self._decoder.decode(data, now)
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
        return batch.parse_errors

    def _ingest_lines(self, data: bytes, now: float) -> Counter[str]:
        errors: Counter[str] = Counter()
        for line in data.splitlines(keepends=True):
            try:
                errors.update(self._ingest_data(line, now))
            except Exception:
                errors[UNPROCESSABLE] += 1
        return errors

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
        within a deadline well inside the stop timeout; what is left is read after a restart."""
        deadline = self._clock.monotonic() + DRAIN_SECONDS
        while self._clock.monotonic() < deadline:
            if self.step() == 0 and not self._tailer.more_pending:
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
            )

    def ready(self) -> tuple[bool, str]:
        """Readiness: every source polled once (``start_at: end`` is fixed then, so a line
        written after this is counted) and the reference profile, if one is configured, in
        use."""
        if not self._polled.is_set():
            return False, "waiting for the first poll of the sources"
        if self._reference_file is not None and self._state.reference is None:
            return False, "reference profile not loaded"
        return True, "ok"

    def healthy(self) -> tuple[bool, str]:
        if self._failure is not None:
            return False, self._failure
        if self._thread is not None and not self._thread.is_alive() and not self._stop.is_set():
            return False, "ingest loop is not running"
        return True, "ok"
