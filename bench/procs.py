"""Processes under measurement for ``bench_sidecar.py``: start the real CLI pinned to a core,
read its CPU time and peak RSS from /proc, scrape it like Prometheus, and feed it a live log.

Peak RSS is ``VmHWM`` of /proc/PID/status, read while the process lives: the rusage of a
waited child is no good here, because Linux carries ``ru_maxrss`` across exec (a child
started from this benchmark would report this process's size).
"""

from __future__ import annotations

import gzip
import http.client
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def pinned(command: Sequence[str], cpu: str | None) -> list[str]:
    if cpu is None or shutil.which("taskset") is None:
        return list(command)
    return ["taskset", "-c", cpu, *command]


@dataclass
class Proc:
    """A started process and what /proc says about it."""

    popen: subprocess.Popen[bytes]
    started: float
    hwm_kib: int = 0
    cpu_at_exit: float = float("nan")  # user + system seconds, from wait4 once it exited

    @classmethod
    def start(
        cls, command: Sequence[str], cpu: str | None, stderr: Path, stdout: Path | None = None
    ) -> Proc:
        with open(stderr, "ab") as err, open(stdout or os.devnull, "wb") as out:
            started = time.perf_counter()
            popen = subprocess.Popen(pinned(command, cpu), stdout=out, stderr=err)
        return cls(popen, started)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time so far (all threads)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return math_nan()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def waited_seconds(self) -> float:
        """Time its threads spent runnable but waiting for a CPU (/proc/PID/schedstat): on a
        shared machine, what the pinned core was busy with for others."""
        total = 0
        try:
            for task in Path(f"/proc/{self.pid}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[1])
        except OSError:
            return math_nan()
        return total / 1e9

    def peak_rss_mib(self) -> float:
        """VmHWM, remembered: it is unreadable once the process has exited."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.hwm_kib = max(self.hwm_kib, int(line.split()[1]))
        except OSError:
            pass
        return self.hwm_kib / 1024

    def wait_sampling(self, timeout: float) -> float:
        """Wait for exit, sampling peak RSS every 10 ms; returns the wall time from start.
        The CPU time comes from wait4 (exact, unlike the peak RSS it also reports)."""
        deadline = time.perf_counter() + timeout
        while True:
            self.peak_rss_mib()
            pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            if pid:
                seconds = time.perf_counter() - self.started
                self.popen.returncode = os.waitstatus_to_exitcode(status)
                self.cpu_at_exit = usage.ru_utime + usage.ru_stime
                return seconds
            if time.perf_counter() > deadline:
                self.stop()
                raise TimeoutError(f"{self.popen.args} did not finish in {timeout:.0f} s")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def math_nan() -> float:
    return float("nan")


def write_config(
    template: Path,
    path: Path,
    log: Path,
    port: int,
    start_at: str,
    reference: Path | None = None,
    **extra: object,
) -> Path:
    """The template config pointed at this run's log, checkpoint file and port."""
    config = yaml.safe_load(template.read_text())
    config["listen_address"] = f"127.0.0.1:{port}"
    config["sources"] = [{"path": str(log), "start_at": start_at}]
    config["positions_file"] = str(path.with_suffix(".positions.json"))
    if reference is not None:
        config["reference"] = str(reference)
    config.update(extra)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Scrape:
    status: int
    body: bytes  # decompressed
    wire_bytes: int
    seconds: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def scrape(
    port: int, path: str = "/metrics", openmetrics: bool = True, timeout: float = 30.0
) -> Scrape:
    """One request as Prometheus sends it (OpenMetrics preferred, gzip accepted)."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Accept-Encoding": "gzip"}
    headers["Accept"] = PROMETHEUS_ACCEPT if openmetrics else "text/plain;version=0.0.4"
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        body = gzip.decompress(raw) if response.getheader("Content-Encoding") == "gzip" else raw
        return Scrape(response.status, body, len(raw), time.perf_counter() - started)
    finally:
        connection.close()


def try_scrape(port: int, path: str = "/metrics") -> Scrape | None:
    try:
        return scrape(port, path)
    except OSError:
        return None


def metric_sum(text: str, name: str) -> float:
    """Sum of every sample of one metric (all label sets)."""
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^\n]*\}})? (\S+)", re.MULTILINE)
    return sum(float(m.group(1)) for m in pattern.finditer(text))


def baseline_command(cli: str | Path, config: Path, log: Path, profile: Path) -> list[str]:
    """``model-exporter baseline``: the profile of ``log`` written to ``profile``."""
    return [
        str(cli),
        "baseline",
        "--config",
        str(config),
        "--input",
        str(log),
        "--output",
        str(profile),
    ]


def metric_max(text: str, name: str) -> float | None:
    """The largest sample of one metric (all label sets); None when it has none."""
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^\n]*\}})? (\S+)", re.MULTILINE)
    return max((float(m.group(1)) for m in pattern.finditer(text)), default=None)


def series_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def wait_ready(port: int, proc: Proc, timeout: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"sidecar exited with {proc.popen.returncode}")
        reply = try_scrape(port, "/healthz")
        if reply is not None and reply.status == 200:
            return
        time.sleep(0.05)
    raise TimeoutError("sidecar not ready")


# -- a live writer ------------------------------------------------------------------------


@dataclass
class WriterResult:
    lines: int = 0
    seconds: float = 0.0
    behind: bool = False  # wrote under 95% of the asked rate


@dataclass
class Writer:
    """Appends lines of a source log to ``target`` at ``rate`` lines/s for ``seconds``,
    cycling through the source, in 10 ms steps. Runs in a thread of this process; pin this
    process away from the sidecar's core."""

    source: bytes
    target: Path
    rate: float
    seconds: float
    result: WriterResult = field(default_factory=WriterResult)

    def __post_init__(self) -> None:
        ends = np.flatnonzero(np.frombuffer(self.source, dtype=np.uint8) == 10) + 1
        self._ends = np.concatenate([[0], ends]).tolist()
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self) -> WriterResult:
        self._thread.join()
        return self.result

    def _run(self) -> None:
        total = len(self._ends) - 1
        written = 0
        started = time.perf_counter()
        with open(self.target, "ab", buffering=0) as f:
            while True:
                elapsed = time.perf_counter() - started
                if elapsed >= self.seconds:
                    break
                due = int(self.rate * elapsed)
                while written < due:
                    first = written % total
                    last = min(total, first + (due - written))
                    f.write(self.source[self._ends[first] : self._ends[last]])
                    written += last - first
                time.sleep(0.01)
        self.result.lines = written
        self.result.seconds = time.perf_counter() - started
        # Behind only if the rate itself was missed (a stall of this process is caught up).
        self.result.behind = written < 0.95 * self.rate * self.seconds
