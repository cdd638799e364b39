"""The soak's model: a writer that appends simulated prediction lines to a log, rotates it by
rename or copytruncate, and knows exactly which line went where (tests/test_soak.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from exporter.offline.simulate import Scenario, generate
from tests.harness import WAIT, wait_until

RATE = 6_000.0  # lines per second the writer paces its steady stream at
BATCH = 100  # lines per write(2)
BLOCK = 8_192  # lines generated at a time
BURST = 2_000  # lines written at once just before a rename or an in-flight SIGTERM
KEEP = 3  # rotated generations kept: p.1 .. p.3


@dataclass(frozen=True)
class Generation:
    """One content of the log path: a file created at ``p``, or a file emptied by copytruncate."""

    first: int  # global index of its first line
    dev: int
    ino: int
    kind: str  # create | rename | copytruncate


class LogWriter:
    """Appends simulated prediction lines from its own thread with ``O_APPEND``: a steady
    stream paced at ``rate``, which holds at a given line (``run_to``) or runs on unbounded.

    Writes, bursts, rotations and pauses all take one lock, so they are atomic with respect to
    each other: a rotation never splits a batch, and ``written`` is exact while paused.
    """

    def __init__(self, path: Path, rate: float = RATE, seed: int = 0) -> None:
        self.path = path
        self.rate = rate
        self.lock = threading.Lock()
        self._go = threading.Condition(self.lock)
        self.written = 0  # every line
        self.steady = 0  # lines of the paced stream (``written`` less bursts)
        self.renames = self.copytruncates = self.burst_lines = 0
        self._streamed = 0.0  # seconds the steady stream ran (not held), up to ``_since``
        self._since: float | None = None  # when the stream last started running, while it runs
        self.error: BaseException | None = None
        self._limit: int | None = None
        self._scenario = Scenario(seed=seed)
        self._start_ts = time.time()
        self._block_index = -1
        self._block: list[bytes] = []
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        st = os.fstat(self._fd)
        self.generations = [Generation(0, st.st_dev, st.st_ino, "create")]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-writer", daemon=True)

    def start(self, hold_at: int | None = None) -> None:
        """Start the stream; with ``hold_at`` it stops there until ``run_to`` moves it on."""
        self._limit = hold_at
        self._thread.start()

    def run_to(self, steady: int) -> None:
        """Let the stream go on to ``steady`` lines and wait until it has held there."""
        with self._go:
            self._limit = steady
            self._go.notify_all()
        wait_until(
            lambda: self.check() or self.steady >= steady,
            WAIT,
            message=f"the writer to reach steady line {steady}",
        )

    def stop(self) -> None:
        with self._go:
            self._stop.set()
            self._go.notify_all()
        self._thread.join(timeout=WAIT)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self.check()

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"writer failed: {self.error!r}") from self.error

    @property
    def active_seconds(self) -> float:
        """Seconds the steady stream ran: held time (while the test does a step) left out."""
        with self.lock:
            running = 0.0 if self._since is None else time.monotonic() - self._since
            return max(1e-9, self._streamed + running)

    @property
    def paced_rate(self) -> float:
        """Lines per second of the steady stream (bursts and holds left out)."""
        return self.steady / self.active_seconds

    @contextlib.contextmanager
    def paused(self) -> Iterator[int]:
        """Hold the writer between two batches; yields the exact number of lines written."""
        with self.lock:
            yield self.written

    def _lines(self, first: int, n: int) -> bytes:
        """Lines ``first .. first+n`` of one deterministic simulated log."""
        out: list[bytes] = []
        i = first
        while i < first + n:
            block = i // BLOCK
            if block != self._block_index:
                self._block = generate(
                    BLOCK, self._start_ts, self.rate, self._scenario, block * BLOCK
                )
                self._block_index = block
            take = min(first + n, (block + 1) * BLOCK) - i
            out.extend(self._block[i - block * BLOCK : i - block * BLOCK + take])
            i += take
        return b"".join(out)

    def _run(self) -> None:
        try:
            due = self._since = time.monotonic()
            while True:
                with self._go:
                    if self._held():
                        self._streamed += time.monotonic() - self._since
                        self._since = None
                        while self._held():
                            self._go.wait()
                        due = self._since = time.monotonic()
                    if self._stop.is_set():
                        return
                    n = BATCH if self._limit is None else min(BATCH, self._limit - self.steady)
                    self._append(self._lines(self.written, n), n)
                    self.steady += n
                # Keep the pace; after a pause, catch up at most 50 ms of backlog at once.
                due = max(due + n / self.rate, time.monotonic() - 0.05)
                delay = due - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)  # pacing the load, not waiting for a condition
        except BaseException as e:
            self.error = e
        finally:
            with self.lock:
                if self._since is not None:
                    self._streamed += time.monotonic() - self._since
                    self._since = None

    def _held(self) -> bool:
        """Call with the lock held."""
        if self._stop.is_set():
            return False
        return self._limit is not None and self.steady >= self._limit

    def _append(self, data: bytes, n: int) -> None:
        wrote = os.write(self._fd, data)
        assert wrote == len(data), (wrote, len(data))
        self.written += n

    # -- call these while holding ``paused()`` ------------------------------------------------

    def burst(self, n: int = BURST) -> None:
        """``n`` lines at once, so that many are unread when the next step follows at once."""
        self._append(self._lines(self.written, n), n)
        self.burst_lines += n

    def _shift(self) -> None:
        """p.1 → p.2 → ... → p.KEEP; the oldest is deleted."""
        oldest = self._rotated(KEEP)
        if oldest.exists():
            oldest.unlink()
        for k in range(KEEP - 1, 0, -1):
            if self._rotated(k).exists():
                self._rotated(k).rename(self._rotated(k + 1))

    def _rotated(self, k: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{k}")

    def rotate_rename(self) -> None:
        """A burst just before the rename: the sidecar must drain it through its open fd."""
        self.burst()
        self._shift()
        self.path.rename(self._rotated(1))
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        os.close(self._fd)
        self._fd = fd
        st = os.fstat(fd)
        self.generations.append(Generation(self.written, st.st_dev, st.st_ino, "rename"))
        self.renames += 1

    def rotate_copytruncate(self) -> None:
        self._shift()
        shutil.copyfile(self.path, self._rotated(1))
        os.ftruncate(self._fd, 0)
        current = self.generations[-1]
        self.generations.append(Generation(self.written, current.dev, current.ino, "copytruncate"))
        self.copytruncates += 1
