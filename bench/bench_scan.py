"""CPU cost of the native scanner alone (exporter/_scan.c), in nanoseconds per line.

The scanner is the first per-line cost of ingestion: this reads a realistic log (bench/realistic.py,
mapped by bench/realistic.yaml) in the tailer's chunks (``tail.read_chunk_bytes``) and times, in
CPU seconds, the compiled ``scan`` call by itself and the whole ``NativeScanner.scan`` (with the
numpy views and the merge of lines left to the exact path). The best of a few rounds is printed,
since the machine may be shared: compare figures of one run, not across runs.

    .venv/bin/python bench/bench_scan.py                      # a generated 1M-line log
    .venv/bin/python bench/bench_scan.py --log /tmp/realistic-2000000.jsonl --rounds 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pipeline import chunks_of  # noqa: E402
from bench.realistic import Shape, write_log  # noqa: E402
from exporter import decode  # noqa: E402
from exporter.config import load_config  # noqa: E402
from exporter.config_types import TailConfig  # noqa: E402
from exporter.decode import Decoder  # noqa: E402


def best(rounds: int, chunks: list[bytes], scan: Callable[[bytes], object]) -> float:
    """The least CPU seconds of ``rounds`` passes over the chunks. Each chunk is read once
    before its timed call (the tailer counts its lines), so it is in the cache as the sidecar's
    is, and the result is dropped inside the timed part (freeing it is part of the cost)."""
    times = []
    for _ in range(rounds):
        total = 0.0
        for chunk in chunks:
            chunk.count(b"\n")
            started = time.process_time()
            result = scan(chunk)
            del result
            total += time.process_time() - started
        times.append(total)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--log", type=Path, help="a log of bench/realistic.py's shape")
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines to generate")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--chunk", type=int, default=TailConfig().read_chunk_bytes, help="bytes a scan call reads"
    )
    args = parser.parse_args()

    config = load_config(ROOT / "bench" / "realistic.yaml")
    decoder = Decoder(config.fields)
    native = decoder._native
    if native is None:
        print("the native scanner is not available (not compiled, or turned off)")
        return 1
    if args.log is None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "realistic.jsonl"
            write_log(path, args.lines, Shape())
            data = path.read_bytes()
    else:
        data = args.log.read_bytes()
    chunks = chunks_of(data, args.chunk)
    lines = data.count(b"\n")
    del data
    scanner = native._scanner

    def exact(view: memoryview, out: list[object]) -> None:
        decoder._decode_piece(view, out, [], Counter())

    def whole(chunk: bytes) -> object:
        return native.scan(chunk, exact, decode.PIECE_BYTES)

    rows = sum(scanner.scan(chunk)[0] for chunk in chunks)
    print(f"{lines:,} lines in {len(chunks)} chunks of {args.chunk:,} bytes; {rows:,} scanned")
    for label, scan in (("compiled scan", scanner.scan), ("NativeScanner.scan", whole)):
        seconds = best(args.rounds, chunks, scan)
        rate = lines / seconds
        print(f"  {label:<20} {seconds * 1e9 / lines:7.1f} ns/line  {rate:>12,.0f} lines/cpu-s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
