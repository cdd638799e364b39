"""Run the soak test for longer and print its figures.

    .venv/bin/python bench/soak.py [--seconds 300] [--mode both|paused|in-flight]

Runs ``tests/test_soak.py::test_soak_counts_every_line_exactly_once`` with ``SOAK_SECONDS``:
``--seconds`` x 6,000 lines of steady writing (about that many seconds at the writer's pace), a
rotation every 2,500 of them (rename and copytruncate alternately) and a graceful restart every
~120,000 (~20 s). The test itself asserts that the lines counted over all runs equal the lines
written; this script prints what it measured, including whether the writer kept the pace the
soak is meant to apply (at least 5,000 lines/s), which the test does not assert.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/test_soak.py::test_soak_counts_every_line_exactly_once"
MODES = {"paused": "paused-stops", "in-flight": "in-flight-stops"}
MIN_RATE = 5_000.0  # lines/s of steady writing the soak is meant to sustain


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--mode", choices=["both", *MODES], default="both")
    args = parser.parse_args()
    modes = list(MODES) if args.mode == "both" else [args.mode]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "soak.jsonl"
        env = {**os.environ, "SOAK_SECONDS": f"{args.seconds:g}", "SOAK_REPORT": str(report)}
        ids = [f"{TEST}[{MODES[m]}]" for m in modes]
        done = subprocess.run(
            # --timeout=0: a long soak runs past the suite's per-test limit by design.
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout=0", *ids],
            cwd=ROOT,
            env=env,
            check=False,
        )
        lines = report.read_text().splitlines() if report.exists() else []
    for line in lines:
        f = json.loads(line)
        runs = f["runs"]
        print(
            f"{f['mode']:>9}: written {f['written']:,} lines ({f['burst_lines']:,} in bursts) "
            f"in {f['wall_seconds']:.0f} s, paced rate {f['rate']:,.0f} lines/s; "
            f"{f['renames']} rename + {f['copytruncates']} copytruncate rotations; "
            f"{f['restarts']} restarts ({sum(r['stop'] == 'in_flight' for r in runs)} in flight); "
            f"counted {f['counted']:,}, difference {f['counted'] - f['written']:+d}"
        )
        if f["rate"] < MIN_RATE:
            print(
                f"{f['mode']:>9}: the writer stayed below {MIN_RATE:,.0f} lines/s (busy machine?)"
            )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
