"""Soak: a paced writer, rotations of both kinds and restarts of the real sidecar; every line is
counted exactly once over all runs. Also the kill -9 bound and the idle cost.

The writer runs in this process and knows exactly what it wrote; the sidecar's own counters
(scraped from /metrics) and its checkpoint are what is checked against that. ``SOAK_SECONDS``
makes the soak longer (``bench/soak.py`` runs it and prints the figures); the default is short
enough for CI.

The scenario is a schedule in lines, not in seconds: the writer streams at a steady pace and
holds at each scheduled line until the step there (a rotation or a restart) is done. A slow,
busy machine therefore runs the very same scenario as a fast one, only more slowly; nothing
depends on how far the writer got while the test was doing something else.

Rules the writer follows, because no path-based tailer can do better (docs/tailing.md):

- A copytruncate happens only once the sidecar has counted everything written so far: lines
  not yet read when the file is truncated live only in the copy, which the source path does not
  match. The writer is paused from the copy to the truncate, so no line falls in between.
- A rename rotation happens only once the running sidecar has read a line of the current file
  (it then holds the file open and drains it through its fd after the rename). Lines may be in
  flight: a burst is written just before the rename.
- Nothing is rotated while the sidecar is down: a file renamed away while it is stopped is no
  longer at the configured path and cannot be found by design. Lines *are* written while it is
  down; the restarted run resumes from the checkpoint.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from exporter.offline.simulate import Scenario, generate
from tests.configs import example_config, write_config
from tests.harness import WAIT, SidecarProcess, wait_until
from tests.soak_writer import BURST, RATE, LogWriter

pytestmark = [pytest.mark.e2e, pytest.mark.soak]

DOWN = 1_000  # lines written at once while the sidecar is stopping or stopped
ROTATE_EVERY = 2_500  # steady lines between rotations, alternating rename and copytruncate
SHORT_LINES = 30_000
SHORT_RESTARTS = 3
SECONDS_PER_RESTART = 20.0  # long runs restart about this often (at the writer's pace)
QUIET = 1.0  # a count must stay put this long (5 polls) with no lag to be final


def soak_seconds() -> float | None:
    value = os.environ.get("SOAK_SECONDS")
    return float(value) if value else None


# --- the schedule ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    line: int  # steady lines written before the step (bursts not included)
    action: str  # rename | copytruncate | restart


def schedule(lines: int, restarts: int) -> list[Step]:
    """A rotation every ``ROTATE_EVERY`` steady lines, rename and copytruncate in turn, and
    ``restarts`` restarts spread evenly, each halfway between two rotations (so every step
    follows the one before it by at least ``ROTATE_EVERY / 2`` lines)."""
    kinds = itertools.cycle(("rename", "copytruncate"))
    steps = [Step(line, next(kinds)) for line in range(ROTATE_EVERY, lines, ROTATE_EVERY)]
    at = {lines * k // (restarts + 1) for k in range(1, restarts + 1)}
    halfway = {a - a % ROTATE_EVERY + ROTATE_EVERY // 2 for a in at}
    if len(halfway) != restarts or max(halfway) >= lines:
        raise ValueError(f"{restarts} restarts do not fit between the rotations of {lines} lines")
    steps += [Step(line, "restart") for line in halfway]
    return sorted(steps, key=lambda s: s.line)


# --- what the sidecar says ---------------------------------------------------------------------


@dataclass(frozen=True)
class Scrape:
    predictions: int  # model_predictions_total summed over models
    lines: int  # model_exporter_lines_total
    lag_bytes: int
    rotations: int
    truncations: int


def scrape(sidecar: SidecarProcess) -> Scrape:
    sums: dict[str, float] = {}
    for line in sidecar.metrics_text().splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        name = series.split("{", 1)[0]
        sums[name] = sums.get(name, 0.0) + float(value)
    p = "model_exporter_"
    return Scrape(
        int(sums.get("model_predictions_total", 0)),
        int(sums.get(f"{p}lines_total", 0)),
        int(sums.get(f"{p}source_lag_bytes", 0)),
        int(sums.get(f"{p}rotations_total", 0)),
        int(sums.get(f"{p}truncations_total", 0)),
    )


def settle(sidecar: SidecarProcess, at_least: int) -> Scrape:
    """The run's final count while nothing is being written.

    First the count must reach ``at_least`` (fewer means lines were lost: the wait times out);
    then it must stay the same, with no lag, for ``QUIET`` seconds, so a late duplicate shows.
    """
    wait_until(
        lambda: sidecar.assert_running() or scrape(sidecar).predictions >= at_least,
        WAIT,
        message=f"the sidecar to count {at_least} lines in this run (fewer: lines were lost)",
    )
    steady: list[tuple[Scrape, float]] = []

    def unchanged() -> Scrape | None:
        now, t = scrape(sidecar), time.monotonic()
        if not steady or now.predictions != steady[0][0].predictions or now.lag_bytes:
            steady[:] = [(now, t)]
            return None
        return now if t - steady[0][1] >= QUIET else None

    return wait_until(unchanged, WAIT, interval=0.1, message="a steady count")


def checkpointed_lines(positions: Path, writer: LogWriter) -> int:
    """Lines the checkpoint says were handed out: all files before the current one (each was
    drained before the next rotation), plus whole lines before the current file's offset."""
    doc = json.loads(positions.read_bytes())
    current = writer.generations[-1]
    entries = [e for e in doc["files"] if (e["dev"], e["ino"]) == (current.dev, current.ino)]
    assert len(entries) == 1, f"checkpoint has no single entry for the current file: {doc}"
    offset = entries[0]["offset"]
    with writer.path.open("rb") as f:
        head = f.read(offset)
    assert len(head) == offset, f"checkpoint offset {offset} beyond the file ({len(head)} bytes)"
    assert offset == 0 or head.endswith(b"\n"), f"checkpoint offset {offset} is mid-line"
    return current.first + head.count(b"\n")


def config_for(tmp_path: Path, log: Path, positions: Path, **tail: Any) -> Path:
    data = example_config(log, positions)
    data["tail"].update(tail)
    return write_config(tmp_path, data)


# --- the soak ----------------------------------------------------------------------------------


@dataclass
class Run:
    counted: int  # observed final count, or what the checkpoint says when stopped in flight
    stop: str  # paused | in_flight | final
    last_scrape: int  # the last count read while it ran
    rotations: int  # the sidecar's own counters, read once it had seen this run's rotations
    truncations: int


@dataclass
class Figures:
    mode: str
    written: int = 0
    rate: float = 0.0  # paced lines/s of the steady stream (bursts, holds and pauses left out)
    burst_lines: int = 0
    active_seconds: float = 0.0
    wall_seconds: float = 0.0
    renames: int = 0
    copytruncates: int = 0
    restarts: int = 0
    counted: int = 0
    runs: list[Run] = field(default_factory=list)


class Soak:
    def __init__(
        self, tmp_path: Path, start_sidecar: Callable[..., SidecarProcess], in_flight: bool
    ) -> None:
        self.log = tmp_path / "predictions.jsonl"
        self.positions = tmp_path / "positions.json"
        self.config = config_for(tmp_path, self.log, self.positions)
        self.start_sidecar = start_sidecar
        self.in_flight = in_flight
        self.writer = LogWriter(self.log)
        self.sidecar = start_sidecar(self.config)
        self.base = 0  # lines counted by the runs before the current one
        self.rotated_before = (0, 0)  # the writer's (renames, copytruncates) when this run began
        self.figures = Figures("in_flight" if in_flight else "paused")

    def run_count(self) -> int:
        return scrape(self.sidecar).predictions

    def run(self, lines: int, steps: list[Step]) -> Figures:
        began = time.monotonic()
        self.writer.start(hold_at=0)
        try:
            for step in steps:
                self.writer.run_to(step.line)
                self.sidecar.assert_running()
                if step.action == "restart":
                    self.restart()
                else:
                    self.rotate(step.action)
            self.writer.run_to(lines)
        finally:
            self.writer.stop()
        self.stop_paused("final")
        f = self.figures
        f.written, f.rate = self.writer.written, self.writer.paced_rate
        f.burst_lines = self.writer.burst_lines
        f.active_seconds = self.writer.active_seconds
        f.renames, f.copytruncates = self.writer.renames, self.writer.copytruncates
        f.counted = sum(r.counted for r in f.runs)
        f.wall_seconds = time.monotonic() - began
        return f

    def rotate(self, kind: str) -> None:
        w = self.writer
        if kind == "rename":
            first = w.generations[-1].first
            wait_until(
                lambda: self.has_read_current_file(first),
                WAIT,
                message="this run to read a line of the current file before it is renamed",
            )
            with w.paused():
                w.rotate_rename()
        else:
            with w.paused() as written:
                wait_until(
                    lambda: (
                        self.sidecar.assert_running() or self.base + self.run_count() >= written
                    ),
                    WAIT,
                    message=f"the sidecar to count all {written} lines before a copytruncate",
                )
                w.rotate_copytruncate()

    def has_read_current_file(self, first: int) -> bool:
        """This run has counted a line of the current file, so it holds the file open.

        "The count is past ``first``" alone is not enough: right after a restart the checkpoint
        may already be past it while the new run has not opened the file yet.
        """
        self.sidecar.assert_running()
        count = self.run_count()
        return count > 0 and self.base + count > first

    def restart(self) -> None:
        if self.in_flight and len(self.figures.runs) % 2 == 0:
            self.stop_in_flight()
        else:
            self.stop_paused()
            with self.writer.paused():
                self.writer.burst(DOWN)  # written while the sidecar is down
        self.sidecar = self.start_sidecar(self.config)
        self.rotated_before = (self.writer.renames, self.writer.copytruncates)
        self.figures.restarts += 1

    def rotations_this_run(self) -> tuple[int, int]:
        renames, copytruncates = self.rotated_before
        return self.writer.renames - renames, self.writer.copytruncates - copytruncates

    def stop_paused(self, kind: str = "paused") -> None:
        with self.writer.paused() as written:
            final = settle(self.sidecar, written - self.base)
            assert self.base + final.predictions == written, self.describe(final, written)
            assert final.lines == final.predictions, final
            seen = (final.rotations, final.truncations)
            assert seen == self.rotations_this_run(), (seen, self.rotations_this_run())
            code = self.sidecar.stop()
            assert code == 0, self.sidecar.output()
            assert checkpointed_lines(self.positions, self.writer) == written
        self.base = written
        self.figures.runs.append(
            Run(final.predictions, kind, final.predictions, final.rotations, final.truncations)
        )

    def stop_in_flight(self) -> None:
        """SIGTERM right after a burst, and more lines while it drains: the drain must count
        the burst. The final count is not observable any more (the port closes), so the
        checkpoint says what the run handed out, and the next run, stopped with the writer
        paused, proves that resume point exact (``stop_paused`` checks the sum)."""
        expected = self.rotations_this_run()
        last = wait_until(
            lambda: self.rotations_seen(expected),
            WAIT,
            message=f"the sidecar to see this run's (renames, copytruncates) {expected}",
        )
        with self.writer.paused():
            self.writer.burst()
            written_before = self.writer.written
            os.kill(self.sidecar.pid, signal.SIGTERM)
            self.writer.burst(DOWN)  # the model goes on writing while the sidecar stops
        code = self.sidecar.stop()
        assert code == 0, self.sidecar.output()
        handed = checkpointed_lines(self.positions, self.writer)
        assert handed >= written_before, "lines written before SIGTERM were not drained"
        assert last.predictions <= handed - self.base, (last, handed, self.base)
        self.figures.runs.append(
            Run(handed - self.base, "in_flight", last.predictions, last.rotations, last.truncations)
        )
        self.base = handed

    def rotations_seen(self, expected: tuple[int, int]) -> Scrape | None:
        self.sidecar.assert_running()
        now = scrape(self.sidecar)
        return now if (now.rotations, now.truncations) == expected else None

    def describe(self, final: Scrape, written: int) -> str:
        return (
            f"runs so far counted {self.base}, this run {final.predictions}, written {written}: "
            f"{self.base + final.predictions - written:+d}; {self.figures.runs}"
        )

    def restart_counts_nothing_more(self) -> None:
        """After the last graceful stop, a new run must find nothing left to count."""
        self.sidecar = self.start_sidecar(self.config)
        final = settle(self.sidecar, 0)
        assert final.predictions == 0, final
        assert self.sidecar.stop() == 0


def report(figures: Figures) -> None:
    doc = asdict(figures)
    print(f"\nsoak figures: {json.dumps(doc)}")
    target = os.environ.get("SOAK_REPORT")
    if target:
        with Path(target).open("a") as f:
            f.write(json.dumps(doc) + "\n")


@pytest.mark.parametrize("in_flight", [False, True], ids=["paused-stops", "in-flight-stops"])
def test_soak_counts_every_line_exactly_once(
    tmp_path: Path, start_sidecar: Callable[..., SidecarProcess], in_flight: bool
) -> None:
    seconds = soak_seconds()
    lines = int(RATE * seconds) if seconds else SHORT_LINES
    restarts = SHORT_RESTARTS
    if seconds:
        restarts = max(SHORT_RESTARTS, int(seconds / SECONDS_PER_RESTART))
    steps = schedule(lines, restarts)
    soak = Soak(tmp_path, start_sidecar, in_flight)
    figures = soak.run(lines, steps)
    report(figures)

    assert figures.counted == figures.written
    assert figures.restarts == restarts
    assert figures.renames == sum(s.action == "rename" for s in steps) >= 2
    assert figures.copytruncates == sum(s.action == "copytruncate" for s in steps) >= 2
    # Each run's counters were checked against the rotations it went through; together:
    assert sum(r.rotations for r in figures.runs) == figures.renames
    assert sum(r.truncations for r in figures.runs) == figures.copytruncates
    soak.restart_counts_nothing_more()


# --- kill -9 -----------------------------------------------------------------------------------


Stamp = tuple[int, int, bytes]


def stamp(path: Path) -> Stamp | None:
    """Identifies one saved checkpoint (each save replaces the file)."""
    try:
        st = path.stat()
        return st.st_ino, st.st_mtime_ns, path.read_bytes()
    except FileNotFoundError:
        return None


def process_state(pid: int) -> str:
    """The one-letter state in /proc/<pid>/stat (``T``: stopped by a signal)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def freeze_after_a_scrape(sidecar: SidecarProcess, positions: Path) -> tuple[int, Stamp]:
    """SIGSTOP the sidecar at a moment when no checkpoint was saved between a scrape and the
    stop; returns that scrape's count and the checkpoint in effect.

    A stopped process saves nothing more, so that checkpoint is the one a kill -9 leaves, and it
    was saved before the scrape: it can claim no line the scrape did not count. When a save did
    fall in between, the sidecar is continued and the next try follows at once.
    """

    def attempt() -> tuple[int, Stamp] | None:
        saved = stamp(positions)
        count = scrape(sidecar).predictions
        os.kill(sidecar.pid, signal.SIGSTOP)
        wait_until(lambda: process_state(sidecar.pid) == "T", WAIT, message="a stopped sidecar")
        if saved is not None and stamp(positions) == saved:
            return count, saved
        os.kill(sidecar.pid, signal.SIGCONT)
        return None

    return wait_until(attempt, WAIT, message="a scrape with no checkpoint save before the stop")


def test_kill_9_loses_nothing_and_recounts_at_most_since_the_last_flush(
    tmp_path: Path, start_sidecar: Callable[..., SidecarProcess]
) -> None:
    """kill -9 mid-stream. The ingest thread saves the checkpoint after ingesting, so a save
    covers every line counted before it: the checkpoint left by the kill must cover what was
    counted before the last save the test saw (so at most what was read since then is counted
    twice), and must claim nothing beyond a scrape taken after it (so nothing is lost)."""
    log, positions = tmp_path / "predictions.jsonl", tmp_path / "positions.json"
    config = config_for(tmp_path, log, positions, positions_flush_interval="2s")
    writer = LogWriter(log)
    sidecar = start_sidecar(config)
    writer.start()
    try:
        wait_until(lambda: writer.check() or writer.written >= RATE, WAIT, message="lines")
        covered = scrape(sidecar).predictions
        before = stamp(positions)
        wait_until(
            lambda: stamp(positions) not in (None, before),
            WAIT,
            message="a checkpoint saved after the scrape, while lines stream in",
        )
        last, saved = freeze_after_a_scrape(sidecar, positions)
        os.kill(sidecar.pid, signal.SIGKILL)
        written_at_kill = writer.written  # read after the kill: at least what came before it
        assert sidecar.stop() == -signal.SIGKILL
        assert stamp(positions) == saved
        handed = checkpointed_lines(positions, writer)
        assert covered <= handed, "the checkpoint is older than the last save seen"
        assert handed <= last, "the checkpoint claims lines that were not counted"

        wait_until(
            lambda: writer.check() or writer.written >= written_at_kill + BURST,
            WAIT,
            message="more lines while the sidecar is down",
        )
        sidecar = start_sidecar(config)
    finally:
        writer.stop()
    written = writer.written
    second = settle(sidecar, written - handed).predictions
    assert second == written - handed, "the restart did not resume exactly at the checkpoint"
    # The first run counted c1 lines, last <= c1 <= written_at_kill.
    assert last + second >= written, "lines lost"
    print(
        f"\nkill -9: written {written}, checkpoint {handed}, counted between {last + second} "
        f"and {written_at_kill + second}; recounted at most {written_at_kill - handed} (bound: "
        f"{written_at_kill - covered} lines written after the scrape before the last save seen)"
    )


# --- idle cost ---------------------------------------------------------------------------------

IDLE_SECONDS = 5.0
# An idle sidecar sleeps between polls: about 0.2-0.4 % of a core here (docs/tailing.md). A
# loop that stopped sleeping takes most of a core. The bound sits far from both, so a machine
# many times slower still passes and a spinning loop still fails.
IDLE_MAX_SHARE = 0.10


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_idle_sidecar_sleeps_between_polls(
    tmp_path: Path, start_sidecar: Callable[..., SidecarProcess]
) -> None:
    log = tmp_path / "predictions.jsonl"
    log.write_bytes(b"".join(generate(1_000, time.time(), RATE, Scenario())))
    sidecar = start_sidecar(config_for(tmp_path, log, tmp_path / "positions.json"))
    settle(sidecar, 1_000)
    cpu0, t0 = cpu_seconds(sidecar.pid), time.monotonic()
    time.sleep(IDLE_SECONDS)  # the measurement interval itself, not a wait for a condition
    cpu1, t1 = cpu_seconds(sidecar.pid), time.monotonic()
    share = (cpu1 - cpu0) / (t1 - t0)
    print(f"\nidle: {cpu1 - cpu0:.3f} s CPU over {t1 - t0:.2f} s = {100 * share:.3f}% of a core")
    sidecar.assert_running()
    assert share < IDLE_MAX_SHARE
