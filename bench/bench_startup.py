"""What ``model-exporter run`` costs to start: CPU from exec until it serves, and its first scrape.

    .venv/bin/python bench/bench_startup.py [--runs 20] [--cpu 1|none]
    .venv/bin/python bench/bench_startup.py --against /path/to/other/checkout

The sidecar runs on the realistic config (``realistic.yaml``, with a reference profile that
``baseline`` builds once from a small realistic log) and an empty log. Each run: start the real
CLI (pinned to ``--cpu``; ``none`` leaves it unpinned), wait until it listens (read from
/proc/PID/net/tcp: no request is sent) and its CPU stops moving (the first poll is done), then
scrape once as Prometheus does. CPU is the sum over its threads of /proc/PID/task/*/schedstat
(nanoseconds; /proc/PID/stat counts 10 ms ticks, too coarse for a 150 ms start). Threads that
exited before the reading are not counted; ``run`` keeps every thread it starts.

``--against`` runs another checkout's ``.venv/bin/model-exporter`` alternately with this one
(same config, same log) and prints the paired difference: on a shared machine, compare figures
taken in one run, never across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procs import ROOT, baseline_command, free_port, pinned, scrape, write_config
from realistic import Shape, write_log

TEMPLATE = Path(__file__).resolve().parent / "realistic.yaml"
PROFILE_LINES = 20_000
IDLE_STEP = 0.05  # seconds between CPU readings while waiting for the start-up to settle
IDLE_NS = 300_000  # CPU in one step below which the process counts as idle


def cpu_ns(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread ended
            total += int((task / "schedstat").read_text().split()[0])
    return total


def listening(pid: int, port: int) -> bool:
    wanted = f":{port:04X}"
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(wanted) and fields[3] == "0A":  # local address, state LISTEN
            return True
    return False


def one_start(
    cli: Path, config: Path, port: int, cpu: str | None, bytecode: Path
) -> tuple[float, float]:
    """(CPU ms to serving and idle, CPU ms of the first scrape) of one start of ``run``.

    Bytecode is read from (and the first start writes it to) ``bytecode``, as an installed
    package has it, whatever PYTHONDONTWRITEBYTECODE says here."""
    Path(config.with_suffix(".positions.json")).unlink(missing_ok=True)
    unset = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["PYTHONPYCACHEPREFIX"] = str(bytecode)
    proc = subprocess.Popen(
        pinned([str(cli), "run", "--config", str(config)], cpu),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not listening(proc.pid, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{cli} run did not start listening")
            time.sleep(0.005)
        before = cpu_ns(proc.pid)
        while True:
            time.sleep(IDLE_STEP)
            now = cpu_ns(proc.pid)
            if now - before < IDLE_NS:
                break
            before = now
        started = cpu_ns(proc.pid)
        reply = scrape(port)
        if reply.status != 200:
            raise RuntimeError(f"first scrape answered {reply.status}")
        scraped = cpu_ns(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    return started / 1e6, (scraped - started) / 1e6


def reference(workdir: Path, cli: Path) -> Path:
    log = workdir / "profile.jsonl"
    write_log(log, PROFILE_LINES, Shape())
    config = write_config(TEMPLATE, workdir / "baseline.yaml", log, free_port(), "beginning")
    profile = workdir / "reference.json"
    subprocess.run(
        baseline_command(cli, config, log, profile),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return profile


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cpu", default="1", help="core to pin to (taskset -c), or none")
    parser.add_argument("--against", type=Path, help="another checkout with its own .venv")
    args = parser.parse_args()
    cpu = None if args.cpu == "none" else args.cpu
    checkouts = [ROOT] + ([args.against.resolve()] if args.against else [])
    clis = [c / ".venv" / "bin" / "model-exporter" for c in checkouts]
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        log = workdir / "empty.jsonl"
        log.write_text("")
        config = write_config(
            TEMPLATE, workdir / "run.yaml", log, port, "beginning", reference(workdir, clis[0])
        )
        bytecode = {cli: workdir / f"bytecode-{n}" for n, cli in enumerate(clis)}
        for cli in clis:  # warm the page cache, and write the bytecode of each
            one_start(cli, config, port, cpu, bytecode[cli])
        results: dict[Path, list[tuple[float, float]]] = {cli: [] for cli in clis}
        for i in range(args.runs):
            for cli in clis if i % 2 == 0 else clis[::-1]:
                results[cli].append(one_start(cli, config, port, cpu, bytecode[cli]))
    pin = f"pinned to core {cpu}" if cpu is not None else "unpinned"
    print(f"model-exporter run: CPU to serving and idle, and of the first scrape ({pin})")
    for checkout, cli in zip(checkouts, clis, strict=True):
        start = [r[0] for r in results[cli]]
        first = [r[1] for r in results[cli]]
        print(
            f"  {checkout}: start median {statistics.median(start):.1f} ms "
            f"(min {min(start):.1f}), first scrape median {statistics.median(first):.1f} ms"
        )
    if len(clis) == 2:
        diffs = [a[0] - b[0] for a, b in zip(results[clis[0]], results[clis[1]], strict=True)]
        print(
            f"  paired, this checkout minus the other: median {statistics.median(diffs):+.1f} ms, "
            f"mean {statistics.mean(diffs):+.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
