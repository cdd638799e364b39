"""How fast the tailer reads, and what an idle poll costs.

    .venv/bin/python bench/bench_tail.py [--lines 1000000] [--line-bytes 300] [--repeat 3]

Writes a JSON-lines file of ``--lines`` lines of about ``--line-bytes`` bytes to a temp dir
(page cache warm after writing), then times ``poll_once`` until the file is drained, with the
default TailConfig (256 KiB pieces, default per-call budget). Also times idle polls of an
unchanged file, the cost a sidecar pays every ``poll_interval`` when nothing happens.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from exporter.clock import SystemClock
from exporter.config_types import SourceConfig, TailConfig
from exporter.tail.tailer import Tailer


def make_log(path: Path, lines: int, line_bytes: int) -> int:
    template = {
        "ts": "2024-05-01T12:00:00.000Z",
        "model": "fraud-detector",
        "version": "v3",
        "request_id": "",
        "prediction": 0.123456,
        "confidence": 0.9,
        "latency_ms": 12.5,
        "features": {"amount": 123.45, "country": "DE"},
    }
    base = len(json.dumps(template)) + 1
    pad = max(0, line_bytes - base - len('"r-00000000"'))
    block = []
    for i in range(10_000):
        template["request_id"] = f"r-{i:08d}" + "x" * pad
        block.append(json.dumps(template))
    data = ("\n".join(block) + "\n").encode()
    with path.open("wb") as f:
        for _ in range(lines // len(block)):
            f.write(data)
        rest = lines % len(block)
        if rest:
            f.write(("\n".join(block[:rest]) + "\n").encode())
    return path.stat().st_size


def drain(path: Path, tail: TailConfig) -> tuple[float, float, int, int, int]:
    tailer = Tailer([SourceConfig(str(path), start_at="beginning")], tail, SystemClock())
    lines = nbytes = polls = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while True:
        for chunk in tailer.poll_once():
            lines += chunk.lines
            nbytes += len(chunk.data)
        polls += 1
        if not tailer.more_pending and tailer.stats()[str(path)].lag_bytes == 0:
            break
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    tailer.close()
    return wall, cpu, lines, nbytes, polls


def idle_cost(path: Path, tail: TailConfig, polls: int) -> float:
    tailer = Tailer([SourceConfig(str(path), start_at="end")], tail, SystemClock())
    tailer.poll_once()
    tailer.poll_once()
    t0 = time.perf_counter()
    for _ in range(polls):
        assert not tailer.poll_once()
    elapsed = time.perf_counter() - t0
    tailer.close()
    return elapsed / polls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--line-bytes", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--read-chunk-kib", type=int, default=256)
    args = ap.parse_args()
    tail = TailConfig(read_chunk_bytes=args.read_chunk_kib << 10)
    with tempfile.TemporaryDirectory(prefix="bench-tail-") as d:
        path = Path(d) / "predictions.jsonl"
        size = make_log(path, args.lines, args.line_bytes)
        print(f"file: {args.lines} lines, {size / 1e6:.1f} MB, {size / args.lines:.0f} B/line")
        print(f"read_chunk_bytes={tail.read_chunk_bytes}, pid {os.getpid()}")
        for run in range(1, args.repeat + 1):
            wall, cpu, lines, nbytes, polls = drain(path, tail)
            assert lines == args.lines, (lines, args.lines)
            print(
                f"run {run}: {lines / wall / 1e6:.2f} M lines/s, {nbytes / wall / 1e6:.0f} MB/s "
                f"(wall {wall:.3f} s, cpu {cpu:.3f} s, {polls} polls)"
            )
        per_poll = idle_cost(path, tail, 20_000)
        print(
            f"idle poll of an unchanged file: {per_poll * 1e6:.1f} us "
            f"(= {per_poll * 100:.4f} % of one core at poll_interval 1 s)"
        )


if __name__ == "__main__":
    main()
