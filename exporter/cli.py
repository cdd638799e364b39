"""``model-exporter``: argv, logging, signals and exit codes. Nothing imports this module.

Exit codes: 0 clean stop, 1 runtime failure (e.g. the port is taken), 2 bad config or usage.

Each sub-command imports what it runs when it runs, so ``run`` never loads the offline side
(the simulator, replay, baseline building) and ``replay`` never binds a port; the config's
modules (numpy among them) load once the command is known, while the cycle collector is paused
(``exporter.allocator``).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from exporter import __version__
from exporter.allocator import (
    collect_less,
    keep_batch_memory,
    pause_collections,
    resume_collections,
)
from exporter.errors import ConfigError

if TYPE_CHECKING:
    from exporter.config_types import Config
    from exporter.sidecar import Control

log = logging.getLogger("model-exporter")

# The commands that work in batches (see ``exporter.allocator``).
BATCH_COMMANDS = ("run", "baseline", "replay", "demo")


_WEB_CONFIG_HELP = (
    "exporter-toolkit web config (TLS, mTLS, basic auth, headers); read again per connection "
    "(docs/deploy.md)"
)


def _logging_options(default: str) -> argparse.ArgumentParser:
    """``--log.level``, accepted before and after the sub-command: the sub-command's copy
    defaults to SUPPRESS, so it overrides the top-level value only when given."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--log.level",
        dest="log_level",
        default=default,
        choices=["debug", "info", "warning", "error"],
        help="logging verbosity (default: info)",
    )
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="model-exporter",
        description="Prometheus exporter sidecar for ML models: tails a prediction log and "
        "exposes rolling-window statistics, anomalies and drift on /metrics.",
        parents=[_logging_options("info")],
    )
    parser.add_argument("--version", action="version", version=f"model-exporter {__version__}")
    common = [_logging_options(argparse.SUPPRESS)]
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the sidecar", parents=common)
    run.add_argument("--config", required=True, help="path to the YAML config")
    run.add_argument(
        "--web.listen-address",
        dest="listen_address",
        help="HOST:PORT to serve /metrics on (overrides listen_address; default :10027)",
    )
    run.add_argument("--web.config.file", dest="web_config_file", help=_WEB_CONFIG_HELP)

    check = sub.add_parser(
        "check-config",
        help="validate a config file (and the paths it names) and exit",
        parents=common,
    )
    check.add_argument("config", help="path to the YAML config")
    check.add_argument(
        "--web.config.file",
        dest="web_config_file",
        help="also check this exporter-toolkit web config (loads its certificate and key; "
        "docs/deploy.md)",
    )

    baseline = sub.add_parser(
        "baseline",
        help="build the reference profile from a development (validation) log",
        parents=common,
    )
    baseline.add_argument("--config", required=True, help="the sidecar config (its field mapping)")
    baseline.add_argument("--input", required=True, help="the development prediction log")
    baseline.add_argument("--output", required=True, help="where to write the profile (JSON)")

    _replay_parser(sub, common)

    demo = sub.add_parser(
        "demo", help="a simulated model writing a log, and the sidecar tailing it", parents=common
    )
    demo.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=":10027",
        help="HOST:PORT for the sidecar's /metrics (default :10027)",
    )
    demo.add_argument(
        "--rate", type=_positive, default=200.0, help="records per second (default 200)"
    )
    demo.add_argument(
        "--duration", type=_positive, default=None, help="stop after this many seconds"
    )
    demo.add_argument(
        "--drift-start",
        type=_not_negative,
        default=120.0,
        help="seconds until the drift episode (default 120)",
    )
    demo.add_argument(
        "--drift-end",
        type=_not_negative,
        default=420.0,
        help="seconds until the drift ends (default 420)",
    )
    demo.add_argument("--log", default=None, help="where to write the log (default: a temp dir)")
    demo.add_argument(
        "--writer-only",
        action="store_true",
        help="only simulate the model writing the log (no sidecar)",
    )
    return parser


def _positive(text: str) -> float:
    """A finite number > 0 (a rate or duration of 0, negative or NaN would stall or crash)."""
    return _number(text, lambda v: v > 0, "> 0")


def _not_negative(text: str) -> float:
    return _number(text, lambda v: v >= 0, ">= 0")


def _number(text: str, ok: Callable[[float], bool], bound: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number {bound} (got {text})")
    return value


def _replay_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: list[argparse.ArgumentParser],
) -> None:
    from exporter.offline.thresholds import Thresholds  # noqa: PLC0415  (small, pure: for defaults)

    defaults = Thresholds()
    replay = sub.add_parser(
        "replay",
        help="back-test thresholds: replay a historical log with its own timestamps as the clock",
        description="Runs the sidecar's engine over a log, with time driven by the records' "
        "timestamps, and reports each window over time and the alerts that would have fired "
        "(docs/replay.md).",
        parents=common,
    )
    replay.add_argument("--config", required=True, help="the sidecar config (its field mapping)")
    replay.add_argument(
        "--reference", help="the reference profile (default: the config's reference)"
    )
    replay.add_argument(
        "--every", default="1m", help="report and alert evaluation step, in log time (default 1m)"
    )
    replay.add_argument("--json", action="store_true", help="one JSON document (rows, alerts)")
    replay.add_argument(
        "--html",
        metavar="FILE",
        help="also write a self-contained HTML report (timelines, alert episodes, ranking) to FILE",
    )
    replay.add_argument("--window", help="the window of the text table (default: the smallest)")
    for flag, value, what in (
        ("--error-factor", defaults.error_factor, "error ratio over development"),
        ("--error-min-labels", defaults.error_min_labels, "labels in 1h before the error alert"),
        ("--mae-factor", defaults.mae_factor, "regression: MAE over development"),
        ("--mae-min-labels", defaults.mae_min_labels, "labels in 1h before the MAE alert"),
        ("--confidence-min", defaults.confidence_min, "mean confidence over development"),
        ("--anomaly-max", defaults.anomaly_max, "share of records with one anomaly kind"),
        ("--parse-error-max", defaults.parse_error_max, "share of unparseable lines"),
        ("--latency-p99-max", defaults.latency_p99_max, "p99 latency SLO in seconds"),
        ("--drift-ratio-max", defaults.drift_ratio_max, "drift statistic over its threshold"),
    ):
        # No argparse default: a flag given beats the --thresholds file, a flag left out not.
        replay.add_argument(flag, type=type(value), help=f"{what} (default {value})")
    replay.add_argument(
        "--thresholds",
        metavar="FILE",
        help="a thresholds rule file (config/prometheus/rules/thresholds.yml): its defaults and "
        "per-model and per-field overrides, as Prometheus would apply them",
    )
    replay.add_argument(
        "--for",
        dest="for_overrides",
        action="append",
        default=[],
        metavar="ALERT=DURATION",
        help="override an alert's for: duration, e.g. ModelFeatureDrift=10m (repeatable)",
    )
    replay.add_argument("log", help="the prediction log to replay")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, draining and stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def _control_by_signals() -> Control:
    """SIGTERM and SIGINT stop (drain, checkpoint, exit); SIGHUP reloads and never exits."""
    from exporter.sidecar import Control  # noqa: PLC0415

    control = Control()

    def handle(signum: int, frame: FrameType | None) -> None:
        # Only set a flag: the main thread logs and acts (a handler must not take locks).
        if signum == signal.SIGHUP:
            control.reload()
        else:
            control.stop(f"received {signal.Signals(signum).name}")

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, handle)
    return control


def _load(path: str, prepare: bool) -> tuple[Config, list[str]]:
    """The config and the warnings about its paths: the one validation ``check-config`` and
    ``run`` share (``run`` also creates the positions directory). The reference profile is
    loaded by each with the same ``ReferenceFile.load_now``."""
    from exporter.config import load_config  # noqa: PLC0415
    from exporter.preflight import check_paths  # noqa: PLC0415

    config = load_config(path)
    return config, check_paths(config, prepare=prepare)


def _run(args: argparse.Namespace) -> int:
    from exporter.config import load_config  # noqa: PLC0415

    config, warnings = _load(args.config, prepare=True)  # a bad config fails before the imports
    from exporter.sidecar import build, run_until  # noqa: PLC0415

    web = None
    if args.web_config_file:  # TLS and basic auth load only with a web config
        from exporter.webfile import WebConfigFile  # noqa: PLC0415

        web = WebConfigFile(args.web_config_file)
    collect_less()
    for warning in warnings:
        log.warning("%s", warning)
    control = _control_by_signals()
    address = args.listen_address or config.listen_address
    try:
        sidecar = build(
            config,
            args.listen_address,
            on_failure=lambda: control.stop("the ingest loop died"),
            web_config=web,
        )
    except OSError as exc:
        log.error(
            "cannot listen on %s: %s; free the port, or choose another with "
            "--web.listen-address HOST:PORT (or listen_address in the config)",
            address,
            exc.strerror or exc,
        )
        return 1
    run_until(sidecar, control, lambda: load_config(args.config))
    return 1 if sidecar.pipeline.failed else 0


def _check(args: argparse.Namespace) -> int:
    from exporter.reload import ReferenceFile  # noqa: PLC0415

    config, warnings = _load(args.config, prepare=False)
    if config.reference is not None:
        ReferenceFile(config.reference, config.sketch_relative_accuracy, config.fields).load_now()
    if args.web_config_file:
        from exporter.webfile import load_web_config  # noqa: PLC0415

        load_web_config(args.web_config_file)
    for warning in warnings:
        print(f"{args.config}: warning: {warning}", file=sys.stderr)
    fields = config.fields
    print(
        f"{args.config}: ok — {len(config.sources)} source(s), "
        f"{len(fields.numeric)} numeric and {len(fields.categorical)} categorical field(s), "
        f"windows {', '.join(w.name for w in config.windows)}"
    )
    return 0


def _config(path: str) -> Config:
    """The config of an offline command, read once its modules are loaded: start-up is over."""
    from exporter.config import load_config  # noqa: PLC0415

    config = load_config(path)
    collect_less()
    return config


def _unwritable(path: str) -> bool:
    """Log why ``path`` cannot be written, before a long pass whose result would be lost."""
    from exporter.atomic import unwritable  # noqa: PLC0415

    problem = unwritable(path)
    if problem is not None:
        log.error("cannot write %s: %s", path, problem)
    return problem is not None


def _baseline(args: argparse.Namespace) -> int:
    from exporter.atomic import write_atomic  # noqa: PLC0415
    from exporter.clock import SystemClock  # noqa: PLC0415
    from exporter.offline.baseline import ProfileBuilder  # noqa: PLC0415
    from exporter.offline.read import Progress, read_chunks  # noqa: PLC0415

    config = _config(args.config)
    if _unwritable(args.output):
        return 1
    builder = ProfileBuilder(
        config.fields,
        config.quantiles,
        config.sketch_relative_accuracy,
        config.label_join_capacity if config.label_join else None,
    )
    try:
        progress = Progress.for_file(args.input, "baseline")
        for chunk in read_chunks(args.input):
            builder.add(chunk)
            progress.advance(len(chunk))
        progress.close()
    except OSError as exc:
        log.error("cannot read %s: %s", args.input, exc.strerror)
        return 1
    if builder.records == 0:
        log.error("%s holds no records: no profile written", args.input)
        return 1
    created = datetime.fromtimestamp(SystemClock().now(), UTC).isoformat(timespec="seconds")
    source = {"path": str(Path(args.input).resolve()), "parse_errors": builder.parse_errors}
    reference = builder.build(created, source)
    pooling = builder.pooling()
    if pooling is not None:
        log.warning("%s holds %s", args.input, pooling)
    try:  # a watching sidecar never sees half a profile, nor an empty one after a crash
        write_atomic(args.output, reference.to_json().encode())
    except OSError as exc:
        log.error("cannot write %s: %s", args.output, exc.strerror or exc)
        return 1
    print(
        f"{args.output}: {reference.records} records, {len(reference.numeric)} numeric and "
        f"{len(reference.categorical)} categorical fields, hash {reference.hash}"
        + (f", {builder.parse_errors} unparseable lines skipped" if builder.parse_errors else "")
    )
    return 0


def _replay(args: argparse.Namespace) -> int:
    from exporter.offline.backtest import parse_for  # noqa: PLC0415
    from exporter.offline.read import Progress, read_chunks  # noqa: PLC0415
    from exporter.offline.replay import ReplayError, replay, with_alert_windows  # noqa: PLC0415
    from exporter.offline.report import render_text, to_json  # noqa: PLC0415
    from exporter.offline.thresholds import Thresholds  # noqa: PLC0415
    from exporter.offline.thresholds_file import load_thresholds  # noqa: PLC0415
    from exporter.reload import ReferenceFile  # noqa: PLC0415
    from exporter.validate import parse_duration  # noqa: PLC0415

    config = _config(args.config)
    path = args.reference or config.reference
    reference = (
        ReferenceFile(path, config.sketch_relative_accuracy, config.fields).load_now()
        if path
        else None
    )
    if reference is None and not config.drift.freeze_first:
        log.warning("no reference profile: drift, gaps and their alerts are not evaluated")
    given = {
        name: value
        for name in vars(Thresholds())
        if name != "overrides"
        if (value := getattr(args, name)) is not None
    }
    thresholds = Thresholds(**given)
    if args.thresholds is not None:
        thresholds = load_thresholds(args.thresholds, thresholds, frozenset(given))
    thresholds.check()
    try:
        every = parse_duration(args.every)
    except ValueError as exc:
        raise ConfigError([f"--every: {exc}"]) from exc
    for_seconds = parse_for(args.for_overrides)
    windows = [w.name for w in with_alert_windows(config).windows]
    if args.window is not None and args.window not in windows:
        raise ConfigError([f"--window: {args.window!r} is not one of {', '.join(windows)}"])
    if args.html and _unwritable(args.html):
        return 1
    try:
        progress = Progress.for_file(args.log, "replay")

        def chunks() -> Iterator[bytes]:
            for chunk in read_chunks(args.log):
                yield chunk
                progress.advance(len(chunk))

        report = replay(chunks(), config, reference, every, thresholds, for_seconds, args.log)
        progress.close()
    except OSError as exc:
        log.error("cannot read %s: %s", args.log, exc.strerror)
        return 1
    except ReplayError as exc:
        log.error("%s: %s", args.log, exc)
        return 1
    if args.html:
        from exporter.atomic import write_atomic  # noqa: PLC0415
        from exporter.offline.html import render_html  # noqa: PLC0415

        try:
            write_atomic(args.html, render_html(report).encode("utf-8", "replace"))
        except OSError as exc:
            log.error("cannot write %s: %s", args.html, exc.strerror or exc)
            return 1
        log.info("wrote the HTML report to %s", args.html)
    sys.stdout.write(to_json(report) if args.json else render_text(report, args.window))
    return 0


def _one_blas_thread() -> None:
    """Run numpy's OpenBLAS on one thread unless the environment says otherwise.

    Loaded with its defaults, it starts a thread per visible core, and each spins ~0.1 s
    before it sleeps: a sidecar on 2 unpinned cores spent ~255 ms of CPU to its first scrape
    instead of ~150 ms, and a node with many cores costs more. Nothing here needs more than
    one (the few BLAS calls are dot products of short vectors, which OpenBLAS runs on one
    thread anyway).
    Set before numpy loads (it reads the variable then); OMP_NUM_THREADS or
    OPENBLAS_NUM_THREADS, when given, are left to decide."""
    if "OPENBLAS_NUM_THREADS" not in os.environ and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"


def main(argv: Sequence[str] | None = None) -> int:
    _one_blas_thread()
    args = _parser().parse_args(argv)
    level = logging.getLevelName(args.log_level.upper())
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # --log.level debug is for the sidecar's own debugging. At DEBUG, watchdog logs every
    # inotify event, the sidecar's own opens and reads included (dozens a second, and without
    # end when stderr goes to a file in a watched directory: each line is another event).
    logging.getLogger("watchdog").setLevel(max(level, logging.INFO))
    if args.command in BATCH_COMMANDS:
        keep_batch_memory()
        # Until the command's modules are in: each ends start-up with ``collect_less``.
        pause_collections()
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "check-config":
            return _check(args)
        if args.command == "baseline":
            return _baseline(args)
        if args.command == "replay":
            return _replay(args)
        if args.command == "demo":
            from exporter.offline.demo import run_demo  # noqa: PLC0415

            collect_less()
            return run_demo(args, _stop_on_signals())
    except ConfigError as exc:
        print(
            f"model-exporter: invalid configuration ({len(exc.problems)} problem(s)):",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    finally:
        if args.command in BATCH_COMMANDS:
            resume_collections()
    return 2
