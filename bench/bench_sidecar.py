"""The speed of the real sidecar, as a user runs it: one command, one table.

Every figure comes from the real ``model-exporter`` processes (``run``, ``replay``,
``baseline``) pinned to one core with ``taskset``, on a realistic log (``realistic.py``: ISO
timestamps, request ids, ground truth on a third of the lines, five features, 0.1% malformed):

- catch-up: ``run`` with ``start_at: beginning`` on a pre-written log, scraped every 0.5 s like
  a busy Prometheus; the time from process start until ``model_exporter_lines_total`` reaches
  the line count (interpolated between the two scrapes around it), and the peak RSS;
- mtail ``-one_shot`` on the same file in the same run, extracting three metrics with a regex
  (the ratio is the figure to compare: the machine is shared and drifts);
- idle: CPU share of the caught-up sidecar with no writes and no scrapes;
- live ladder: a writer (on another core) appends at increasing rates while a scrape comes
  every second; the lag (``model_exporter_source_lag_bytes``) must stay bounded;
- scrape cost: CPU time of the sidecar per scrape at about 1k / 10k / 50k series, for a fresh
  render (a line was ingested since the last scrape), a repeat (nothing changed) and a pair of
  concurrent scrapes (two Prometheus replicas);
- ``replay`` and ``baseline`` of the log: lines/s from start to exit, and peak RSS.

Setup: ``apt-get install -y mtail`` (the mtail column is skipped, with a message, without it).
Run from the repository root after ``pip install -e .``::

    .venv/bin/python bench/bench_sidecar.py                  # the full run, ~10 minutes
    .venv/bin/python bench/bench_sidecar.py --quick          # smaller sizes, ~1-2 minutes
    .venv/bin/python bench/bench_sidecar.py --only catchup,mtail --lines 4000000
    .venv/bin/python bench/bench_sidecar.py --only catchup,mtail,replay --compare-exact

Logs are cached under ``--workdir`` (generation takes ~10 s per million lines).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from procs import (
    ROOT,
    Proc,
    Writer,
    baseline_command,
    free_port,
    metric_max,
    metric_sum,
    scrape,
    series_count,
    try_scrape,
    wait_ready,
    write_config,
)
from realistic import Shape, write_log

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "realistic.yaml"
NATIVE = "MODEL_EXPORTER_NATIVE"  # exporter/scan.py: "0" turns the native scanner off
SECTIONS = ("catchup", "mtail", "idle", "unique", "ladder", "scrape", "replay", "baseline")
# Three metrics from the realistic log, as a regex-based log exporter would take them.
MTAIL_PROGRAM = r"""counter predictions_total
counter predictions_by_class by class
counter latency_ms_sum

/"predicted_class": "(?P<class>[a-z]+)", "confidence": [0-9.e-]+, /  +
/"latency_ms": (?P<latency>[0-9.]+)/ {
  predictions_total++
  predictions_by_class[$class]++
  latency_ms_sum += $latency
}
"""


@dataclass
class Row:
    what: str
    value: str
    target: str = ""
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, what: str, value: str, target: str = "", note: str = "") -> None:
        self.rows.append(Row(what, value, target, note))
        print(f"  {what}: {value} {note}", file=sys.stderr, flush=True)

    def render(self) -> str:
        head = ("measure", "result", "target", "note")
        cells = [head, *((r.what, r.value, r.target, r.note) for r in self.rows)]
        widths = [max(len(c[i]) for c in cells) for i in range(4)]
        lines = [
            "| " + " | ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) + " |"
            for cell in cells
        ]
        lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(lines)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    import msgspec  # noqa: PLC0415
    import numpy  # noqa: PLC0415

    load = os.getloadavg()[0]
    return (
        f"{model}, {os.cpu_count()} cores (load {load:.1f} at start), "
        f"Python {platform.python_version()}, numpy {numpy.__version__}, "
        f"msgspec {msgspec.__version__}, {platform.system()} {platform.release()}"
    )


def compiled_modules(workdir: Path, cli: str) -> None:
    """The measured processes load compiled modules, as an installed package does (pip
    compiles at install time). An environment with ``PYTHONDONTWRITEBYTECODE`` and an
    editable checkout would otherwise compile ~130 modules at every start (~0.1 s of CPU
    counted against catch-up and replay). The bytecode goes under the work directory, never
    into the checkout measured."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    python = Path(cli).parent / "python"
    if python.exists():
        compile_all = "import compileall, exporter; compileall.compile_dir(exporter.__path__[0])"
        subprocess.run([str(python), "-c", compile_all], check=True, stdout=subprocess.DEVNULL)


def cached_log(workdir: Path, lines: int, shape: Shape) -> Path:
    name = (
        f"realistic-{lines}-{shape.ts_format}-s{shape.seed}-v{shape.versions}"
        f"-c{shape.countries}{'-unique' if shape.unique else ''}.jsonl"
    )
    path = workdir / name
    if not path.exists():
        say(f"writing {path} ({lines:,} lines)")
        partial = path.with_suffix(".partial")
        write_log(partial, lines, shape)
        partial.replace(path)
    return path


def rate(lines: int, wall: float, cpu: float) -> tuple[str, str]:
    """(lines/s from start to end, a note with the rate per CPU second of the process): on a
    shared machine the second drifts less."""
    return f"{lines / wall:,.0f}", f"{wall:.2f} s; {lines / cpu:,.0f} lines per CPU second"


def whole_line_errors(text: str) -> float:
    return metric_sum(text, "model_exporter_parse_errors_total")


# -- sections ---------------------------------------------------------------------------------


def run_baseline(
    args: argparse.Namespace, log: Path, lines: int, tmp: Path, report: Report
) -> Path:
    config = write_config(TEMPLATE, tmp / "baseline.yaml", log, free_port(), "beginning")
    profile = tmp / "reference.json"
    command = baseline_command(args.cli, config, log, profile)
    run_offline(args, "baseline", command, lines, tmp, report if "baseline" in args.only else None)
    return profile


def run_offline(
    args: argparse.Namespace,
    name: str,
    command: list[str],
    lines: int,
    tmp: Path,
    report: Report | None,
) -> None:
    """One offline command (``replay``, ``baseline``) to its exit: its rate and peak RSS."""
    stderr = tmp / f"{name}.stderr"
    proc = Proc.start(command, args.cpu, stderr)
    seconds = proc.wait_sampling(900)
    if proc.popen.returncode != 0:
        raise RuntimeError(f"{name} failed: {stderr.read_text()[-2000:]}")
    if report is not None:
        value, note = rate(lines, seconds, proc.cpu_at_exit)
        report.add(f"{name}: lines/s", value, ">= 500k", note)
        report.add(f"{name}: peak RSS", f"{proc.peak_rss_mib():.0f} MiB", "<= 96 MiB")


def run_replay(
    args: argparse.Namespace,
    log: Path,
    lines: int,
    reference: Path | None,
    tmp: Path,
    report: Report,
    name: str = "replay",
) -> None:
    config = write_config(TEMPLATE, tmp / "replay.yaml", log, free_port(), "beginning", reference)
    command = [args.cli, "replay", "--config", str(config), str(log)]
    run_offline(args, name, command, lines, tmp, report)


@contextmanager
def exact_path() -> Iterator[None]:
    """The processes started inside decode every line on the exact Python path (the native
    scanner off), for the comparison in the same run."""
    os.environ[NATIVE] = "0"
    try:
        yield
    finally:
        del os.environ[NATIVE]


def run_catchup(
    args: argparse.Namespace,
    log: Path,
    lines: int,
    reference: Path | None,
    tmp: Path,
    report: Report,
    title: str = "catch-up",
) -> tuple[float, float]:
    """Returns the catch-up rate (lines per second, and per CPU second); the plain catch-up
    also measures the idle cost on the same process when asked."""
    port = free_port()
    config = write_config(TEMPLATE, tmp / "catchup.yaml", log, port, "beginning", reference)
    stderr = tmp / f"{title}.stderr"
    proc = Proc.start([args.cli, "run", "--config", str(config)], args.cpu, stderr)
    try:
        previous = proc.started
        finished = None
        first_answer = None
        text = ""
        tick = proc.started
        while finished is None:
            tick += 0.5
            time.sleep(max(0.0, tick - time.perf_counter()))
            if proc.popen.poll() is not None:
                raise RuntimeError(f"sidecar exited: {stderr.read_text()[-2000:]}")
            reply = try_scrape(port)
            now = time.perf_counter()
            if reply is None or reply.status != 200:
                continue
            text = reply.text
            if first_answer is None:
                first_answer = now
            done = metric_sum(text, "model_exporter_lines_total")
            if done >= lines:
                finished = read_the_last_line(text, previous, now)
                cpu = proc.cpu_seconds()
            previous = now
            if now - proc.started > 900:
                raise TimeoutError("catch-up took more than 15 minutes")
        seconds = finished - proc.started
        value, note = rate(lines, seconds, cpu)
        if title != "catch-up":
            report.add(f"{title} (run, 1 core): lines/s", value, "", note)
            report.add(f"{title}: peak RSS", f"{proc.peak_rss_mib():.0f} MiB", "<= 64 MiB")
            return lines / seconds, lines / cpu
        report.add("catch-up (run, 1 core): lines/s", value, ">= 600k (goal 1M)", note)
        if first_answer is not None and finished > first_answer:
            say(
                f"  (start-up until the first scrape answered: {first_answer - proc.started:.2f} s)"
            )
        time.sleep(1.0)
        final = scrape(port).text
        predictions = metric_sum(final, "model_predictions_total")
        errors = whole_line_errors(final)
        report.add(
            "catch-up: records + parse errors",
            f"{predictions + errors:,.0f}",
            f"= {lines:,}",
            f"{series_count(final):,} series exported",
        )
        report.add("catch-up: peak RSS", f"{proc.peak_rss_mib():.0f} MiB", "<= 64 MiB")
        cpu_before = proc.cpu_seconds()
        fresh = scrape(port)
        report.add(
            "catch-up: one scrape, CPU",
            f"{(proc.cpu_seconds() - cpu_before) * 1000:.0f} ms",
            "",
            f"{series_count(fresh.text):,} series, OpenMetrics + gzip",
        )
        if "idle" in args.only:
            time.sleep(3.0)
            cpu0, wall0 = proc.cpu_seconds(), time.perf_counter()
            time.sleep(args.idle_seconds)
            share = (proc.cpu_seconds() - cpu0) / (time.perf_counter() - wall0)
            report.add(
                "idle CPU (no writes, no scrapes)",
                f"{share * 100:.2f}%",
                "<= 0.5%",
                f"over {args.idle_seconds:.0f} s",
            )
        return lines / seconds, lines / cpu
    finally:
        proc.stop()


def run_unique(
    args: argparse.Namespace,
    workdir: Path,
    reference: Path | None,
    tmp: Path,
    report: Report,
    ours: tuple[float, float] | None,
) -> None:
    """The cardinality attack: every line a new model, version, class and country. The caps
    send the excess to ``__other__``, so the rate and the memory should stay near the plain
    catch-up's (the target: at least half its rate, peak RSS within 64 MiB)."""
    lines = args.unique_lines
    log = cached_log(workdir, lines, Shape(ts_format=args.ts, unique=True))
    _, per_cpu = run_catchup(args, log, lines, reference, tmp, report, "unique keys catch-up")
    if ours is not None:
        report.add(
            "unique keys ÷ plain catch-up, per CPU second",
            f"{per_cpu / ours[1]:.2f}",
            ">= 0.5",
            f"{lines:,} lines with a new model, version, class and country each",
        )


def read_the_last_line(text: str, previous: float, now: float) -> float:
    """When the count reached the log's lines, on the ``perf_counter`` clock: the sidecar's
    ``model_exporter_last_read_timestamp_seconds`` (wall time of the read that brought the last
    lines; the count goes up at that read), between the scrape before and this one. The scrape
    times alone would round every catch-up up to the 0.5 s grid: a run done at 1.3 s would read
    as 1.5 s, and interpolating between the two scrapes gives the later one, as the count stops
    at the log's end. Without the gauge, this scrape's time."""
    stamp = metric_max(text, "model_exporter_last_read_timestamp_seconds")
    if stamp is None:
        return now
    at = stamp - (time.time() - time.perf_counter())
    return min(max(at, previous), now)


def run_mtail(
    args: argparse.Namespace,
    log: Path,
    lines: int,
    tmp: Path,
    report: Report,
    ours: tuple[float, float] | None,
) -> None:
    """mtail's one-shot run of the log; with ``ours`` (the catch-up's lines per second and per
    CPU second), the ratios."""
    mtail = shutil.which("mtail")
    if mtail is None:
        say("mtail not found: skipping the mtail column (apt-get install -y mtail)")
        report.add("mtail -one_shot: lines/s", "skipped", "", "mtail not installed")
        return
    progs = tmp / "mtail"
    progs.mkdir(exist_ok=True)
    (progs / "realistic.mtail").write_text(MTAIL_PROGRAM)
    # mtail (3.0.0-rc50) stops at the first line that is not UTF-8 and then spins: it gets
    # the log without those lines (0.02% of them), and its rate counts the lines it got.
    clean = tmp / "mtail.jsonl"
    dropped = 0
    with open(log, "rb") as src, open(clean, "wb") as dst:
        for line in src:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                dropped += 1
                continue
            dst.write(line)
    lines -= dropped
    command = [
        mtail,
        "-one_shot",
        "-one_shot_format",
        "prometheus",
        "-progs",
        str(progs),
        "-logs",
        str(clean),
        "-logtostderr",
    ]
    out = tmp / "mtail.out"
    proc = Proc.start(command, args.cpu, tmp / "mtail.stderr", stdout=out)
    try:
        seconds = proc.wait_sampling(600)
    except TimeoutError:
        report.add("mtail -one_shot: lines/s", "timed out", "", "after 600 s")
        return
    finally:
        clean.unlink()
    if proc.popen.returncode != 0:
        text = (tmp / "mtail.stderr").read_text()
        report.add("mtail -one_shot: lines/s", "failed", "", text.strip()[-200:])
        return
    counted = metric_sum(out.read_text(), "predictions_total")
    value, note = rate(lines, seconds, proc.cpu_at_exit)
    note += f"; {lines:,} lines ({dropped} not UTF-8 left out), counted {counted:,.0f}"
    report.add("mtail -one_shot (1 core): lines/s", value, "", note)
    if ours is not None:
        wall, per_cpu = ours
        report.add(
            "catch-up ÷ mtail",
            f"{wall / (lines / seconds):.1f}x",
            ">= 7x (goal 12x)",
            f"{per_cpu / (lines / proc.cpu_at_exit):.1f}x per CPU second",
        )


def run_ladder(
    args: argparse.Namespace, log: Path, reference: Path | None, tmp: Path, report: Report
) -> None:
    source = log.read_bytes()
    bytes_per_line = len(source) / source.count(b"\n")
    kept = 0.0
    peak = 0.0
    for rate in args.rates:
        target = tmp / "live.jsonl"
        target.unlink(missing_ok=True)
        target.touch()
        port = free_port()
        config = write_config(TEMPLATE, tmp / "live.yaml", target, port, "end", reference)
        positions = config.with_suffix(".positions.json")
        positions.unlink(missing_ok=True)
        proc = Proc.start([args.cli, "run", "--config", str(config)], args.cpu, tmp / "live.stderr")
        try:
            wait_ready(port, proc)
            writer = Writer(source, target, rate, args.ladder_seconds)
            cpu0, wall0, wait0 = proc.cpu_seconds(), time.perf_counter(), proc.waited_seconds()
            writer.start()
            lags: list[float] = []
            while writer.running:
                time.sleep(1.0)
                reply = try_scrape(port)
                if reply is not None and reply.status == 200:
                    lags.append(metric_sum(reply.text, "model_exporter_source_lag_bytes"))
            result = writer.join()
            wall = time.perf_counter() - wall0
            cpu_share = (proc.cpu_seconds() - cpu0) / wall
            waited = (proc.waited_seconds() - wait0) / wall
            peak = max(peak, proc.peak_rss_mib())
        finally:
            proc.stop()
            target.unlink(missing_ok=True)
        second = bytes_per_line * rate  # one second of log
        tail = sorted(lags[-5:])
        end_lag = tail[len(tail) // 2] if tail else float("inf")
        half = len(lags) // 2
        growing = bool(lags[half:]) and min(lags[half:]) > 2 * second
        ok = end_lag < second and not growing and not result.behind
        achieved = result.lines / max(result.seconds, 1e-9)
        verdict = "keeps up" if ok else ("writer behind" if result.behind else "falls behind")
        report.add(
            f"live {rate / 1000:,.0f}k lines/s for {args.ladder_seconds:.0f} s",
            verdict,
            "bounded lag",
            f"wrote {achieved:,.0f}/s; lag max {max(lags, default=0) / second:.1f} s, "
            f"end {end_lag / second:.2f} s of log; sidecar CPU {cpu_share * 100:.0f}%, "
            f"runnable but waiting for the core {waited * 100:.0f}%",
        )
        if ok:
            kept = rate
        elif not args.ladder_all:
            break
    report.add("live: highest rate kept up", f"{kept:,.0f} lines/s", ">= 300k")
    report.add("live: peak RSS", f"{peak:.0f} MiB", "<= 64 MiB")


def run_scrapes(args: argparse.Namespace, workdir: Path, tmp: Path, report: Report) -> None:
    for target in args.series:
        # About 470 series per model version with 12 countries; each more country value adds
        # one category-ratio series per window. category_cap is at most 1000, so a version
        # carries at most ~3,400 series and larger targets take more versions.
        versions = max(1, math.ceil(target / 3_300))
        per_version = target / versions
        countries = max(12, int(12 + (per_version - 470) / 3))
        shape = Shape(versions=versions, countries=countries, rate=1000.0)
        log = cached_log(workdir, 50_000 + 20 * countries * versions, shape)
        target_log = tmp / "scrape.jsonl"
        shutil.copyfile(log, target_log)
        port = free_port()
        config = write_config(
            TEMPLATE,
            tmp / "scrape.yaml",
            target_log,
            port,
            "beginning",
            category_cap=countries + 1,
            max_model_versions=versions + 1,
        )
        config.with_suffix(".positions.json").unlink(missing_ok=True)
        proc = Proc.start(
            [args.cli, "run", "--config", str(config)], args.cpu, tmp / "scrape.stderr"
        )
        try:
            wait_ready(port, proc)
            lines = log.read_bytes().count(b"\n")
            while metric_sum(scrape(port).text, "model_exporter_lines_total") < lines:
                time.sleep(0.5)
            time.sleep(1.5)
            first = scrape(port)
            n_series = series_count(first.text)
            extra = b"".join(log.open("rb").readlines()[: args.scrapes])
            fresh = measure_scrapes(proc, port, args.scrapes, target_log, extra)
            repeat = measure_scrapes(proc, port, args.scrapes)
            pair = measure_scrapes(proc, port, args.scrapes, target_log, extra, concurrent=2)
            text_format = measure_scrapes(
                proc, port, args.scrapes, target_log, extra, openmetrics=False
            )
        finally:
            proc.stop()
        limit = {1_000: "", 10_000: "<= 20 ms", 50_000: "<= 100 ms"}.get(target, "")
        report.add(
            f"scrape ~{target / 1000:.0f}k series: CPU per fresh render",
            f"{fresh * 1000:.1f} ms",
            limit,
            f"{n_series:,} series; OpenMetrics+gzip; text format {text_format * 1000:.1f} ms; "
            f"repeat {repeat * 1000:.1f} ms; HA pair {pair * 1000:.1f} ms per pair; "
            f"{len(first.body) / 1024:,.0f} KiB, gzip {first.wire_bytes / 1024:,.0f} KiB",
        )


def measure_scrapes(
    proc: Proc,
    port: int,
    count: int,
    log: Path | None = None,
    extra: bytes = b"",
    concurrent: int = 1,
    openmetrics: bool = True,
) -> float:
    """Mean CPU seconds of the sidecar per scrape (or per concurrent group). With ``log``,
    one line is appended before each, so the state has changed and the render is fresh."""
    import threading  # noqa: PLC0415

    lines = extra.splitlines(keepends=True)
    total = 0.0
    for i in range(count):
        if log is not None:
            with open(log, "ab") as f:
                f.write(lines[i % len(lines)])
            time.sleep(1.2)  # the poll interval is 1 s: let the line be ingested first
        cpu0 = proc.cpu_seconds()
        threads = [
            threading.Thread(target=scrape, args=(port, "/metrics", openmetrics))
            for _ in range(concurrent)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total += proc.cpu_seconds() - cpu0
    return total / count


# -- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=2_000_000, help="catch-up log size")
    parser.add_argument(
        "--cli",
        default=str(ROOT / ".venv" / "bin" / "model-exporter"),
        help="the model-exporter command to measure (default: this checkout's .venv)",
    )
    parser.add_argument("--ts", default="iso", choices=("iso", "iso-offset", "epoch-s", "epoch-ms"))
    parser.add_argument("--cpu", default="0", help="core the measured processes are pinned to")
    parser.add_argument("--bench-cpu", default="1", help="core of this script and the writer")
    parser.add_argument(
        "--rates",
        default="100000,200000,300000,500000,700000,1000000",
        help="live ladder rates (lines/s)",
    )
    parser.add_argument(
        "--ladder-seconds",
        type=float,
        default=20.0,
        help="seconds per rate (60 to be sure a lag does not grow)",
    )
    parser.add_argument("--ladder-all", action="store_true", help="go on after a failed rate")
    parser.add_argument("--series", default="1000,10000,50000", help="scrape series targets")
    parser.add_argument("--scrapes", type=int, default=8, help="scrapes measured per case")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument(
        "--unique-lines",
        type=int,
        help="lines of the unique-keys log (default: as many as the catch-up log, so the "
        "start-up CPU weighs alike in both rates of the ratio)",
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections to run")
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="run the sidecar and replay without a reference profile",
    )
    parser.add_argument(
        "--compare-exact",
        action="store_true",
        help=f"run catch-up and replay again with {NATIVE}=0 (the native scanner off)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="500k lines, 10 s ladder steps, 10 s idle, 1k/10k series",
    )
    parser.add_argument(
        "--workdir", default=str(Path(tempfile.gettempdir()) / "model-exporter-bench")
    )
    args = parser.parse_args()
    if args.quick:
        args.lines, args.ladder_seconds, args.idle_seconds = 500_000, 10.0, 10.0
        args.series = "1000,10000"
    if args.unique_lines is None:
        args.unique_lines = args.lines
    args.rates = [float(r) for r in args.rates.split(",")]
    args.series = [int(s) for s in args.series.split(",")]
    args.only = set(args.only.split(","))
    unknown = args.only - set(SECTIONS)
    if unknown:
        parser.error(f"--only: unknown section(s) {', '.join(sorted(unknown))}")
    if not Path(args.cli).exists():
        parser.error(f"{args.cli} not found: run pip install -e . in .venv first")
    if args.bench_cpu and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in args.bench_cpu.split(",")})

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    compiled_modules(workdir, args.cli)
    report = Report()
    description = machine()
    log = cached_log(workdir, args.lines, Shape(ts_format=args.ts))
    size = log.stat().st_size
    say(f"log: {args.lines:,} lines, {size / args.lines:.0f} bytes/line, ts {args.ts}")
    with tempfile.TemporaryDirectory(prefix="bench-sidecar-") as name:
        tmp = Path(name)
        reference = None
        if "baseline" in args.only or not args.no_reference:
            reference = run_baseline(args, log, args.lines, tmp, report)
            if args.no_reference:
                reference = None
        ours = None
        exact_dir = tmp / "exact"
        exact_dir.mkdir()
        if "catchup" in args.only:
            ours = run_catchup(args, log, args.lines, reference, tmp, report)
            if args.compare_exact:
                with exact_path():  # own directory: a fresh positions file
                    title = "catch-up, exact path"
                    run_catchup(args, log, args.lines, reference, exact_dir, report, title)
        if "mtail" in args.only:
            run_mtail(args, log, args.lines, tmp, report, ours)
        if "unique" in args.only:
            run_unique(args, workdir, reference, tmp, report, ours)
        if "replay" in args.only:
            run_replay(args, log, args.lines, reference, tmp, report)
            if args.compare_exact:
                with exact_path():
                    exact = "replay, exact path"
                    run_replay(args, log, args.lines, reference, exact_dir, report, exact)
        if "ladder" in args.only:
            run_ladder(args, log, reference, tmp, report)
        if "scrape" in args.only:
            run_scrapes(args, workdir, tmp, report)
    print(f"machine: {description}")
    print(
        f"log: {args.lines:,} lines of {size / args.lines:.0f} bytes, ts as {args.ts}; "
        f"processes pinned to core {args.cpu}"
    )
    print(report.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
