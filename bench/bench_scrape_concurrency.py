"""Many concurrent scrapers against the real sidecar while its log grows: latency, errors, and
whether ingestion keeps up.

    .venv/bin/python bench/bench_scrape_concurrency.py [--scrapers 200] [--seconds 30]
        [--rate 2000] [--stalled 0] [--source DIR]

Starts ``model-exporter run`` on 127.0.0.1 with the example config, a writer appending a
realistic prediction log (the simulator) at ``--rate`` lines/s, and ``--scrapers`` clients that
each keep one connection open (as Prometheus does) and GET /metrics (gzip) in a loop, all at
once. ``--stalled N`` adds N clients that each send half a request head and stop (reconnecting
when the server closes them at its head timeout), as a slow or hostile client does. Prints scrape
latency percentiles, errors, scrapes/s, the sidecar's CPU and memory, and the
lines it had counted when the scrapers stopped against the lines written by then.
``--source DIR`` runs the sidecar from another checkout (e.g. the main branch) to compare.
The machine is shared: compare figures from runs made one after the other, not across days.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import yaml

from exporter.offline.simulate import Scenario, generate

ROOT = Path(__file__).resolve().parent.parent
REQUEST = b"GET /metrics HTTP/1.1\r\nHost: bench\r\nAccept-Encoding: gzip\r\n\r\n"
HALF_A_HEAD = b"GET /metrics HTTP/1.1\r\nHost: bench\r\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return int(r.status), r.read().decode()
    except OSError:
        return 0, ""


def _lines_counted(url: str, log: Path) -> int | None:
    status, text = _get(f"{url}/metrics")
    if status != 200:
        return None
    match = re.search(rf'^model_exporter_lines_total{{source="{re.escape(str(log))}"}} (\S+)$',
                      text, re.M)  # fmt: skip
    return int(float(match.group(1))) if match else 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Writer(threading.Thread):
    """Appends simulated predictions at ``rate`` lines/s in 100 ms batches."""

    def __init__(self, log: Path, rate: float) -> None:
        super().__init__(daemon=True)
        self.log, self.rate = log, rate
        self.written = 0
        self.stop = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        with self.log.open("ab") as f:
            while not self.stop.is_set():
                due = int((time.monotonic() - started) * self.rate)
                if due > self.written:
                    n = due - self.written
                    f.write(b"".join(generate(n, time.time(), self.rate, Scenario(seed=1),
                                              self.written)))  # fmt: skip
                    f.flush()
                    self.written += n
                self.stop.wait(0.1)


async def _scraper(port: int, until: float, latencies: list[float], errors: dict[str, int]) -> None:
    reader = writer = None
    while time.monotonic() < until:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            started = time.monotonic()
            writer.write(REQUEST)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            status = head.split(b" ", 2)[1]
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            await asyncio.wait_for(reader.readexactly(length), 30)
            if status != b"200":
                errors[f"HTTP {status.decode()}"] = errors.get(f"HTTP {status.decode()}", 0) + 1
            else:
                latencies.append(time.monotonic() - started)
            if b"connection: close" in head.lower():
                writer.close()
                reader = writer = None
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _stalled(port: int, until: float) -> None:
    """Half a request head, then nothing until the server gives up on it; again."""
    while (left := until - time.monotonic()) > 0:
        writer = None
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(HALF_A_HEAD)
            await asyncio.wait_for(reader.read(), left)
        except (TimeoutError, OSError):
            await asyncio.sleep(0.1)
        finally:
            if writer is not None:
                writer.close()


async def _scrape_all(
    port: int, scrapers: int, seconds: float, stalled: int
) -> tuple[list[float], dict[str, int]]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    until = time.monotonic() + seconds
    await asyncio.gather(
        *(_stalled(port, until) for _ in range(stalled)),
        *(_scraper(port, until, latencies, errors) for _ in range(scrapers)),
    )
    return latencies, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="log lines per second")
    parser.add_argument("--stalled", type=int, default=0, help="clients stalled mid-head")
    parser.add_argument(
        "--source", type=Path, default=ROOT, help="checkout to run the sidecar from"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        log = directory / "predictions.jsonl"
        log.touch()
        config = yaml.safe_load((ROOT / "config" / "exporter.yaml").read_text())
        config["sources"] = [{"path": str(log), "start_at": "beginning"}]
        config["positions_file"] = str(directory / "positions.json")
        config.pop("reference", None)
        config_path = directory / "exporter.yaml"
        config_path.write_text(yaml.safe_dump(config))
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(args.source.resolve())}
        sidecar = subprocess.Popen(
            [sys.executable, "-m", "exporter", "run", "--config", str(config_path),
             "--web.listen-address", f"127.0.0.1:{port}"],
            cwd=args.source, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while _get(f"{url}/healthz")[0] != 200:
                if time.monotonic() > deadline or sidecar.poll() is not None:
                    raise SystemExit("the sidecar did not start")
                time.sleep(0.1)
            writer = Writer(log, args.rate)
            writer.start()
            time.sleep(2.0)  # the log grows and the windows fill before the crowd arrives
            cpu0, own0, wall0 = _cpu_seconds(sidecar.pid), time.process_time(), time.monotonic()
            latencies, errors = asyncio.run(
                _scrape_all(port, args.scrapers, args.seconds, args.stalled)
            )
            wall = time.monotonic() - wall0
            cpu = (_cpu_seconds(sidecar.pid) - cpu0) / wall
            own = (time.process_time() - own0) / wall
            written_at_end = writer.written
            counted_at_end = _lines_counted(url, log) or 0
            writer.stop.set()
            writer.join()
            caught_up = None
            started = time.monotonic()
            while time.monotonic() - started < 60:
                if _lines_counted(url, log) == writer.written:
                    caught_up = time.monotonic() - started
                    break
                time.sleep(0.1)
            rss = _rss_mib(sidecar.pid)
        finally:
            sidecar.terminate()
            sidecar.wait(30)

    ms = np.asarray(latencies) * 1000
    total_errors = sum(errors.values())
    # A request stuck past the end keeps its scraper (and the phase) going: rates use the wall.
    stalled = f", {args.stalled} clients stalled mid-head" if args.stalled else ""
    print(f"source {args.source.resolve()}: {args.scrapers} scrapers{stalled} for {wall:.0f} s, "
          f"log at {args.rate:g} lines/s")  # fmt: skip
    if len(ms):
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        print(f"  scrapes answered 200: {len(ms):,} ({len(ms) / wall:,.0f}/s); "
              f"latency p50 {p50:,.0f} ms, p90 {p90:,.0f} ms, p99 {p99:,.0f} ms, "
              f"max {ms.max():,.0f} ms")  # fmt: skip
    print(f"  errors: {total_errors:,} {dict(sorted(errors.items())) if errors else ''}")
    print(f"  sidecar CPU {cpu:.0%} of a core, peak RSS {rss:.0f} MiB "
          f"(the scrapers and the writer: {own:.0%})")  # fmt: skip
    after = (
        f"all {writer.written:,} counted {caught_up:.1f} s after the writer stopped"
        if caught_up is not None
        else "not caught up 60 s after the writer stopped"
    )
    print(f"  ingestion: {counted_at_end:,} of {written_at_end:,} lines counted when the "
          f"scrapers stopped ({counted_at_end / max(written_at_end, 1):.1%}); {after}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
