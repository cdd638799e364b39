"""Throughput of the ingest path: parse + anomalies + windows, on a generated prediction log.

Prints lines/s for each stage in one run, with a stdlib-json baseline measured in the same run
(the machine is shared: compare ratios, not absolute numbers across runs).

    .venv/bin/python bench/bench_pipeline.py --lines 1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from exporter.clock import ManualClock
from exporter.compare import compare, gaps
from exporter.config import load_config
from exporter.config_types import SourceConfig
from exporter.decode import Decoder
from exporter.engine import Engine
from exporter.offline.baseline import ProfileBuilder
from exporter.offline.simulate import Scenario, write_log
from exporter.pipeline import Pipeline
from exporter.state import State
from exporter.tail.tailer import Tailer

ROOT = Path(__file__).resolve().parent.parent


def chunks_of(data: bytes, size: int) -> list[bytes]:
    out, start = [], 0
    while start < len(data):
        stop = data.rfind(b"\n", start, start + size) + 1 if start + size < len(data) else len(data)
        out.append(data[start:stop])
        start = stop
    return out


def timed(label: str, lines: int, fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    seconds = time.perf_counter() - started
    rate = lines / seconds
    print(f"  {label:<46} {rate:>12,.0f} lines/s  ({seconds:.2f} s)", flush=True)
    return rate


def tail_only(log: Path) -> None:
    """Child process: tail a whole log through the pipeline and report the peak RSS, so the
    figure is the sidecar's own memory, not the benchmark's copies of the log."""
    config = load_config(ROOT / "config" / "exporter.yaml")
    engine = Engine(config)
    clock = ManualClock(1_764_000_000.0)
    tailer = Tailer([SourceConfig(str(log), start_at="beginning")], config.tail, clock)
    loop = Pipeline(tailer, engine, clock, config.tail)
    while loop.step():
        clock.advance(0.25)
    tailer.close()
    records = sum(g.totals.records for g in engine.state.snapshot(clock.now()).groups)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child forked from this
    # benchmark (which holds the whole log) would report the parent's size.
    status = Path("/proc/self/status").read_text()
    hwm_kib = next(
        int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")
    )
    print(f"{records} {hwm_kib / 1024:.1f}")


def memory(tmp: Path, sizes: list[int]) -> None:
    """Peak RSS of the tailing pipeline for logs of different sizes: it must not grow."""
    for n in sizes:
        log = tmp / f"memory-{n}.jsonl"
        write_log(
            log, n, start_ts=1_764_000_000.0, rate=1000.0, scenario=Scenario(malformed_ratio=0.001)
        )
        out = subprocess.run(
            [sys.executable, __file__, "--tail-only", str(log)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        print(
            f"  peak RSS tailing {n:>10,} lines: {float(out[1]):6.1f} MiB ({int(out[0]):,} records)"
        )
        log.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--chunk-bytes", type=int, default=256 << 10)
    parser.add_argument("--malformed-ratio", type=float, default=0.001)
    parser.add_argument(
        "--memory", action="store_true", help="also measure peak RSS at 1x and 3x --lines"
    )
    parser.add_argument("--tail-only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tail_only:
        tail_only(Path(args.tail_only))
        return 0

    config = load_config(ROOT / "config" / "exporter.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "predictions.jsonl"
        scenario = Scenario(malformed_ratio=args.malformed_ratio, drift_start=None)
        write_log(log, args.lines, start_ts=1_764_000_000.0, rate=1000.0, scenario=scenario)
        data = log.read_bytes()
        n = data.count(b"\n")
        print(f"log: {n:,} lines, {len(data) / n:.0f} bytes/line, {len(data) / 2**20:.0f} MiB")
        chunks = chunks_of(data, args.chunk_bytes)

        baseline_lines = min(n, 200_000)

        def stdlib() -> None:
            for line in data.splitlines()[:baseline_lines]:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                features = record.get("features") or {}
                for key in ("amount", "age", "merchant_risk"):
                    value = features.get(key)
                    if not isinstance(value, int | float):
                        continue

        base = timed("stdlib json.loads + dict access (baseline)", baseline_lines, stdlib)

        decoder = Decoder(config.fields)

        def decode() -> None:
            for chunk in chunks:
                decoder.decode(chunk, 1_764_000_000.0)

        decode_rate = timed("decode to columns + classify anomalies", n, decode)

        decoder = Decoder(config.fields)
        state = State(config, decoder.layout, [v.values for v in decoder.vocabularies])

        def pipeline() -> None:
            now = 1_764_000_000.0
            for chunk in chunks:
                now += 0.25
                state.ingest(decoder.decode(chunk, now), now)

        full = timed("decode + windows + sketches + histograms", n, pipeline)

        builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
        builder.add(b"".join(chunks[: max(1, len(chunks) // 10)]))
        reference = builder.build("bench")
        engine = Engine(config, reference)
        clock = ManualClock(1_764_000_000.0)
        tail = config.tail
        tailer = Tailer([SourceConfig(str(log), start_at="beginning")], tail, clock)
        loop = Pipeline(tailer, engine, clock, tail)

        def tailed() -> None:
            while loop.step():
                clock.advance(0.25)

        end_to_end = timed("tail + all of the above + reference checks", n, tailed)
        tailer.close()
        state = engine.state

        started = time.perf_counter()
        for _ in range(20):
            state.snapshot(clock.now())
        snapshot_ms = (time.perf_counter() - started) / 20 * 1000
        started = time.perf_counter()
        for _ in range(20):
            snapshot = state.snapshot(clock.now())
            for group in snapshot.groups:  # what every scrape computed before assess.py
                for view in group.windows:
                    compare(view.summary, reference, snapshot.layout, snapshot.categories,
                            state.shape.sketch, config.drift)  # fmt: skip
                    gaps(view.summary, reference, snapshot.layout)
        scrape_drift_ms = (time.perf_counter() - started) / 20 * 1000
        started = time.perf_counter()
        for i in range(20):
            # A new step with changed windows judges every window again (a fresh reference
            # object forces that): what one step costs under traffic.
            state.set_reference(msgspec.structs.replace(reference))
            engine.advance(clock.now() + i * engine.assessor.step)
        assess_ms = (time.perf_counter() - started) / 20 * 1000
        started = time.perf_counter()
        for _ in range(20):
            engine.advance(clock.now() + 20 * engine.assessor.step)
        cached_ms = (time.perf_counter() - started) / 20 * 1000

        counted = sum(g.totals.records for g in state.snapshot(clock.now()).groups)
        print(f"  snapshot (all windows, quantiles): {snapshot_ms:.1f} ms")
        print(
            f"  snapshot + drift of every window (per scrape until now): {scrape_drift_ms:.1f} ms"
        )
        print(
            f"  drift assessment of all windows: {assess_ms:.1f} ms per step with new data, "
            f"{cached_ms:.3f} ms within a step (every {engine.assessor.step:g}s)"
        )
        print(f"  records counted: {counted:,}")
        if args.memory:
            memory(Path(tmp), [args.lines, 3 * args.lines])
        print(
            f"result: {end_to_end:,.0f} lines/s end to end "
            f"({end_to_end / base:.1f}x the stdlib-json baseline; decode alone {decode_rate:,.0f}, "
            f"decode+state {full:,.0f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
