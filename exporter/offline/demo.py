"""``model-exporter demo``: a simulated model writes a prediction log and the sidecar tails it.

So a newcomer sees live metrics, a drift episode and counted malformed lines with one command
and no model of their own.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import threading
from dataclasses import replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import yaml

from exporter.assess import Assessment
from exporter.clock import SystemClock
from exporter.config import parse_config
from exporter.config_types import Config, SourceConfig
from exporter.offline.baseline import ProfileBuilder
from exporter.offline.simulate import Scenario, Writer, generate
from exporter.sidecar import Sidecar, build
from exporter.state import Snapshot
from exporter.validate import parse_listen_address

log = logging.getLogger(__name__)

STATUS_EVERY = 10.0  # seconds between console status lines


DEV_RECORDS = 50_000  # the simulated development log the demo's reference is built from


def demo_config(log_path: str, reference_path: str | None = None) -> Config:
    """The packaged demo config (the documented example, pointed at the demo's files)."""
    text = resources.files("exporter").joinpath("data/demo.yaml").read_text(encoding="utf-8")
    config = parse_config(yaml.safe_load(text.replace("PLACEHOLDER_LOG", log_path)))
    return replace(
        config,
        sources=(SourceConfig(path=log_path, start_at="beginning"),),
        reference=reference_path,
    )


def write_demo_reference(path: Path, config: Config) -> None:
    """What `model-exporter baseline` would build from the model's validation log: here the
    simulator before any drift, so the drift episode shows up against it."""
    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    scenario = Scenario(seed=12345)
    for first in range(0, DEV_RECORDS, 10_000):
        builder.add(b"".join(generate(10_000, 1_764_000_000.0, 1000.0, scenario, first)))
    created = datetime.fromtimestamp(SystemClock().now(), UTC).isoformat(timespec="seconds")
    path.write_text(builder.build(created, {"simulated_development_log": DEV_RECORDS}).to_json())


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
    if args.writer_only:
        # No temporary directory: the writer stands in for the model on a read-only root file
        # system (deploy/kubernetes/deployment.yaml), where none is usable.
        return _run(args, stop, writer, None, log_path, directory)
    with tempfile.TemporaryDirectory(prefix="model-exporter-reference-") as ref_dir:
        reference = Path(ref_dir) / "reference.json"
        _announce(args.listen_address)  # before the sidecar's own start-up lines
        write_demo_reference(reference, demo_config(log_path))
        sidecar = build(demo_config(log_path, str(reference)), args.listen_address)
        return _run(args, stop, writer, sidecar, log_path, directory)


def _run(
    args: argparse.Namespace,
    stop: threading.Event,
    writer: Writer,
    sidecar: Sidecar | None,
    log_path: str,
    directory: tempfile.TemporaryDirectory[str] | None,
) -> int:
    try:
        writer.start()
        if sidecar is not None:
            sidecar.start()
        _banner(args, log_path, sidecar)
        deadline = args.duration
        waited = 0.0
        while not stop.wait(
            STATUS_EVERY if deadline is None else min(STATUS_EVERY, deadline - waited)
        ):
            waited += STATUS_EVERY
            if sidecar is not None:
                engine = sidecar.engine
                snapshot = engine.state.snapshot(SystemClock().now())
                print(_status(snapshot, engine.assessor.latest), flush=True)
            if deadline is not None and waited >= deadline:
                break
    finally:
        writer.stop()
        if sidecar is not None:
            sidecar.stop()
        if directory is not None:
            directory.cleanup()
    return 0


def _base_url(listen_address: str, port: int) -> str:
    host, _ = parse_listen_address(listen_address)
    return f"http://{host or 'localhost'}:{port}"


def _announce(listen_address: str) -> None:
    """The live page's address comes first, before any log line: it is what a newcomer should
    open. (Port 0 is only known once bound: the banner below gives it then.)"""
    _, port = parse_listen_address(listen_address)
    if port:
        print(f"model-exporter demo: open {_base_url(listen_address, port)}/ to watch it live")
        sys.stdout.flush()


def _banner(args: argparse.Namespace, log_path: str, sidecar: Sidecar | None) -> None:
    if sidecar is None:
        print("model-exporter demo (writer only: no sidecar, no page)", flush=True)
    else:
        base = _base_url(args.listen_address, sidecar.server.port)
        print(f"  live page:       {base}/", flush=True)
    print(f"  simulated model: {args.rate:g} predictions/s into {log_path}")
    print(f"  drift episode:   from {args.drift_start:g}s to {args.drift_end:g}s after start")
    if sidecar is None:
        print("  Ctrl-C to stop", flush=True)
        return
    print(f"  metrics:         {base}/metrics")
    print(f"  status JSON:     {base}/api/v1/status")
    print(f"  try:             curl -s {base}/metrics | grep ^model_window_quantile")
    print("  Ctrl-C to stop.", flush=True)


def _status(snapshot: Snapshot, assessment: Assessment) -> str:
    """One console line: traffic, anomalies, a feature's live median and the drifting fields,
    over the first window."""
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
        assessed = assessment.window(group.model, group.version, window.spec.name)
        found = assessed.drift if assessed is not None else ()
        drifted = sorted({d.field for d in found if d.verdict.drifted})
        drift = f", drift in {', '.join(drifted)}" if drifted else ", no drift"
        parts.append(
            f"{group.model}/{group.version}: {t.records} predictions, "
            f"{anomalies} anomalies{median}{drift if snapshot.reference else ''}"
        )
    return "  " + ("; ".join(parts) if parts else "waiting for records…")
