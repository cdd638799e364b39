"""``model-exporter demo``: a simulated model writes a prediction log and the sidecar tails it.

So a newcomer sees live metrics, a drift episode and counted malformed lines with one command
and no model of their own.
"""

from __future__ import annotations

import argparse
import logging
import math
import tempfile
import threading
from dataclasses import replace
from importlib import resources
from pathlib import Path

import yaml

from exporter.clock import SystemClock
from exporter.config import parse_config, parse_listen_address
from exporter.config_types import Config, SourceConfig
from exporter.sidecar import Sidecar, build
from exporter.simulate import Scenario, Writer
from exporter.state import Snapshot

log = logging.getLogger(__name__)

STATUS_EVERY = 10.0  # seconds between console status lines


def demo_config(log_path: str) -> Config:
    """The packaged demo config (the documented example, pointed at the demo's log)."""
    text = resources.files("exporter").joinpath("data/demo.yaml").read_text(encoding="utf-8")
    config = parse_config(yaml.safe_load(text.replace("PLACEHOLDER_LOG", log_path)))
    return replace(config, sources=(SourceConfig(path=log_path, start_at="beginning"),))


def run_demo(args: argparse.Namespace, stop: threading.Event) -> int:
    directory = None
    if args.log is None:
        directory = tempfile.TemporaryDirectory(prefix="model-exporter-demo-")
        log_path = str(Path(directory.name) / "predictions.jsonl")
    else:
        log_path = args.log
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    scenario = Scenario(
        drift_start=args.drift_start, drift_end=args.drift_end, malformed_ratio=0.005
    )
    writer = Writer(log_path, args.rate, scenario, SystemClock())
    sidecar: Sidecar | None = None
    try:
        writer.start()
        if not args.writer_only:
            sidecar = build(demo_config(log_path), args.listen_address)
            sidecar.start()
        _banner(args, log_path, sidecar)
        deadline = args.duration
        waited = 0.0
        while not stop.wait(
            STATUS_EVERY if deadline is None else min(STATUS_EVERY, deadline - waited)
        ):
            waited += STATUS_EVERY
            if sidecar is not None:
                print(_status(sidecar.state.snapshot(SystemClock().now())), flush=True)
            if deadline is not None and waited >= deadline:
                break
    finally:
        writer.stop()
        if sidecar is not None:
            sidecar.stop()
        if directory is not None:
            directory.cleanup()
    return 0


def _banner(args: argparse.Namespace, log_path: str, sidecar: Sidecar | None) -> None:
    print("model-exporter demo", flush=True)
    print(f"  simulated model: {args.rate:g} predictions/s into {log_path}")
    print(f"  drift episode:   from {args.drift_start:g}s to {args.drift_end:g}s after start")
    if sidecar is None:
        print("  writer only (no sidecar); Ctrl-C to stop", flush=True)
        return
    host, _ = parse_listen_address(args.listen_address)
    base = f"http://{host or 'localhost'}:{sidecar.server.port}"
    print(f"  metrics:         {base}/metrics")
    print(f"  try:             curl -s {base}/metrics | grep ^model_window_quantile")
    print("  Ctrl-C to stop.", flush=True)


def _status(snapshot: Snapshot) -> str:
    """One console line: traffic, anomalies and a feature's live median over the first window."""
    parts = []
    for group in snapshot.groups:
        t = group.totals
        anomalies = int(t.anomalies.sum())
        window = group.windows[0]
        median = ""
        names = [spec.name for spec in snapshot.layout.numeric]
        if "amount" in names:
            value = window.quantiles[names.index("amount")][0]
            if not math.isnan(value):
                median = f", amount p50 ({window.spec.name}) {value:.1f}"
        parts.append(
            f"{group.model}/{group.version}: {t.records} predictions, {anomalies} anomalies{median}"
        )
    return "  " + ("; ".join(parts) if parts else "waiting for records…")
