"""Fleet drift, end to end: three real sidecars each tail a third of one production log, a fourth
runs with another profile, and a real Prometheus with the bundled rules pools them.

The production log is shifted from development (a numeric feature by 0.6 development standard
deviations, a categorical one's shares moved), but each replica holds fewer records than
``drift.min_samples``: no sidecar can judge it, so no per-replica verdict and no per-replica alert
exists. Pooled, the three thirds are enough: the fleet PSI and JS from the recording rules must
equal numpy's on the pooled records over the same cells (within 1 %), ModelFleetDrift must fire,
and the fourth replica (a profile built from half the development log: another hash) must stay
out of the pool and show up in ModelReferenceMismatch.

Driven by counts: write every line, wait until each sidecar has counted its part and Prometheus
has scraped the totals, then read the rules' results from one evaluation.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from oracle import js, pool, psi, sketch_bins

from tests.bundle import shortened_rules
from tests.configs import tailed_data, write_config
from tests.harness import RUN_TIMEOUT, WAIT, Prometheus, ScrapeTarget, SidecarProcess, wait_until

pytestmark = pytest.mark.e2e

MODEL, VERSION = "checkout-risk", "v7"
REPLICAS = 3
PER_REPLICA = 90  # below drift.min_samples (100): no replica can judge; the pool (270) can
DEVELOPMENT = 3_000
COLOURS = ("red", "green", "blue")
DEV_SHARES = (0.5, 0.3, 0.2)
LIVE_SHARES = (0.3, 0.3, 0.4)
SHIFT = 0.6  # development standard deviations
JOB = "model-exporter"


def records(
    rng: np.random.Generator, n: int, shift: float, shares: tuple[float, ...]
) -> list[dict[str, Any]]:
    x = rng.normal(10.0 + 2.0 * shift, 2.0, n)
    colour = rng.choice(COLOURS, size=n, p=shares)
    return [
        {"ts": time.time(), "features": {"x": float(v), "colour": str(c)}}
        for v, c in zip(x, colour, strict=True)
    ]


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def config(log: Path, reference: Path) -> dict[str, Any]:
    fields = {
        "timestamp": "ts",
        "model_name": MODEL,
        "model_version": VERSION,
        "features": [
            {"name": "x", "path": "features.x", "type": "numeric"},
            {"name": "colour", "path": "features.colour", "type": "categorical"},
        ],
    }
    return tailed_data(log, fields, windows=["1m", "1h"], reference=str(reference))


def baseline(config_path: Path, development: Path, output: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "baseline", "--config", str(config_path),
         "--input", str(development), "--output", str(output)],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    profile: dict[str, Any] = json.loads(output.read_text())
    return profile


def counted(sidecar: SidecarProcess) -> float:
    for line in sidecar.metrics_text().splitlines():
        if line.startswith("model_predictions_total{"):
            return float(line.rsplit(" ", 1)[1])
    return -1.0


def numpy_fleet(profile: dict[str, Any], rows: list[dict[str, Any]]) -> tuple[float, float]:
    """PSI of x and JS of colour on the pooled records, by tests/oracle.py."""
    x = np.array([r["features"]["x"] for r in rows])
    numeric = profile["numeric"]["x"]
    edges = numeric["bin_edges"]
    bins = np.bincount(
        sketch_bins(x, edges, profile["sketch_relative_accuracy"]), minlength=len(edges) + 1
    )
    x_psi = psi(*pool(np.asarray(numeric["bin_shares"]), bins))
    shares = profile["categorical"]["colour"]["shares"]
    kept = [v for v in shares if v != "__other__"]
    counts = [sum(1 for r in rows if r["features"]["colour"] == v) for v in kept]
    other = len(rows) - sum(counts)
    q = np.array([shares[v] for v in kept] + [shares.get("__other__", 0.0)])
    colour_js = js(*pool(q, np.array([*counts, other], dtype=float)))
    return x_psi, colour_js


def one_evaluation(
    prometheus: Prometheus, selector: str
) -> dict[tuple[str, str], tuple[float, float]]:
    """{(name, field): (timestamp, value)} of the latest samples of the series matching
    ``selector``, once all of them come from one rule evaluation (a query could otherwise read
    a group's evaluation half written: the counts of the newest, the drift of the one before).
    The samples' own timestamps are read (a range selector returns them); an instant query's
    value carries the query's time, the same for every series whatever evaluation wrote it."""

    def read() -> dict[tuple[str, str], tuple[float, float]] | None:
        found = {
            (s["metric"]["__name__"], s["metric"]["field"]): (
                float(s["values"][-1][0]),
                float(s["values"][-1][1]),
            )
            for s in prometheus.query(f"{selector}[1m]")
        }
        stamps = {t for t, _ in found.values()}
        return found if len(stamps) == 1 else None

    return wait_until(read, timeout=WAIT, message=f"one evaluation of {selector}")


def test_prometheus_pools_the_replicas_that_share_a_profile(
    tmp_path: Path,
    start_sidecar: Callable[..., SidecarProcess],
    start_prometheus: Callable[..., Prometheus],
) -> None:
    started = time.monotonic()
    rng = np.random.default_rng(7)
    development = tmp_path / "development.jsonl"
    development.write_bytes(jsonl(records(rng, DEVELOPMENT, 0.0, DEV_SHARES)))
    half = tmp_path / "development-half.jsonl"
    half.write_bytes(
        b"".join(development.read_bytes().splitlines(keepends=True)[: DEVELOPMENT // 2])
    )
    production = records(rng, REPLICAS * PER_REPLICA, SHIFT, LIVE_SHARES)
    other_rows = records(rng, PER_REPLICA, SHIFT, LIVE_SHARES)

    sidecars = []
    profile: dict[str, Any] = {}
    for r in range(REPLICAS + 1):
        log = tmp_path / f"replica-{r}.jsonl"
        log.touch()
        reference = tmp_path / f"reference-{r}.json"
        path = write_config(tmp_path, config(log, reference), f"exporter-{r}.yaml")
        built = baseline(path, development if r < REPLICAS else half, reference)
        if r == 0:
            profile = built
        sidecars.append((start_sidecar(path), log))
    other = json.loads((tmp_path / f"reference-{REPLICAS}.json").read_text())
    assert other["hash"] != profile["hash"]

    rules = shortened_rules(tmp_path / "rules")
    prometheus = start_prometheus(
        [ScrapeTarget(JOB, f"127.0.0.1:{s.port}") for s, _ in sidecars], rule_files=rules
    )
    prometheus.wait_for_target_up(JOB)
    # Every replica's cell counters are in Prometheus at 0 before a record is written, so
    # increase() counts all of them; a few scrapes of zeros keep the extrapolation small.
    cells = 10 + len(COLOURS)  # x: the deciles; colour: one cell per colour
    wait_until(
        lambda: (
            prometheus.query_value("count(count_over_time(model_field_bin_records_total[1m]) >= 5)")
            == cells * (REPLICAS + 1)
        ),
        timeout=WAIT,
        message="five scrapes of every cell counter",
    )
    assert prometheus.query_value("sum(model_field_bin_records_total)") == 0

    # -- every replica gets its third (the fourth a part of its own), then counts it --------
    for r, (_, log) in enumerate(sidecars):
        rows = production[r::REPLICAS] if r < REPLICAS else other_rows
        log.write_bytes(jsonl(rows))
    for sidecar, _ in sidecars:
        wait_until(
            lambda s=sidecar: counted(s) == PER_REPLICA,
            timeout=WAIT,
            message="the sidecar to count its lines",
        )
    wait_until(
        lambda: (
            prometheus.query_value(f'sum(model_predictions_total{{model="{MODEL}"}})')
            == (REPLICAS + 1) * PER_REPLICA
        ),
        timeout=WAIT,
        message="Prometheus to scrape every count",
    )
    hash_a, hash_b = profile["hash"], other["hash"]
    pooled_n = (
        f'model_version_field:model_field_bin_records:increase1h{{reference_hash="{hash_a}"}}'
    )
    wait_until(
        lambda: (
            (n := prometheus.query(pooled_n))
            and min(float(s["value"][1]) for s in n) >= REPLICAS * PER_REPLICA
        ),
        timeout=WAIT,
        message="a rule evaluation after the last scrape",
    )

    # -- no replica could judge: no per-replica verdict, so no per-replica alert ---------------
    assert prometheus.query("model_window_drift_psi or model_window_drift_js") == []

    # -- the pool: the fleet statistics against numpy on the pooled records -----------------
    want_psi, want_js = numpy_fleet(profile, production)
    for window in ("1h", "5m"):
        got = one_evaluation(
            prometheus,
            f'{{__name__=~"model_version_field:model_fleet_drift:{window}|'
            f'model_version_field:model_field_bin_records:increase{window}",'
            f' reference_hash="{hash_a}"}}',
        )
        counts = f"model_version_field:model_field_bin_records:increase{window}"
        # Counted, not extrapolated: exactly the records of the three replicas.
        assert got[(counts, "x")][1] == REPLICAS * PER_REPLICA
        assert got[(counts, "colour")][1] == REPLICAS * PER_REPLICA
        fleet_psi = got[(f"model_version_field:model_fleet_drift:{window}", "x")][1]
        fleet_js = got[(f"model_version_field:model_fleet_drift:{window}", "colour")][1]
        print(
            f"\nfleet {window}: PSI {fleet_psi:.6f} vs numpy {want_psi:.6f} "
            f"({fleet_psi / want_psi - 1:+.2e}), JS {fleet_js:.6f} vs numpy {want_js:.6f} "
            f"({fleet_js / want_js - 1:+.2e})"
        )
        assert fleet_psi == pytest.approx(want_psi, rel=0.01)
        assert fleet_js == pytest.approx(want_js, rel=0.01)
    # What increase() alone would have pooled (the rules do not use it: docs/drift.md).
    extrapolated = {
        s["metric"]["bin"]: float(s["value"][1])
        for s in prometheus.query(
            'sum by (bin) (increase(model_field_bin_records_total{field="x", '
            f'reference_hash="{hash_a}"}}[1h]))'
        )
    }
    counts_x = np.array([extrapolated[str(b)] for b in range(len(extrapolated))])
    shares_x, _ = pool(np.asarray(profile["numeric"]["x"]["bin_shares"]), np.zeros(12))
    naive = psi(shares_x, counts_x)
    print(
        f"increase() would pool n = {counts_x.sum():.1f} for {REPLICAS * PER_REPLICA} records, "
        f"PSI {naive:.6f} ({naive / want_psi - 1:+.2%})"
    )

    # -- the fleet alert fires (on the pool of the shared profile only), the replicas' do not --
    def firing() -> list[dict[str, Any]] | None:
        alerts = [a for a in prometheus.alerts() if a["state"] == "firing"]
        names = {a["labels"]["alertname"] for a in alerts}
        return alerts if {"ModelFleetDrift", "ModelReferenceMismatch"} <= names else None

    alerts = wait_until(firing, timeout=WAIT, message="ModelFleetDrift and ModelReferenceMismatch")
    fleet = {
        (a["labels"]["field"], a["labels"]["reference_hash"])
        for a in alerts
        if a["labels"]["alertname"] == "ModelFleetDrift"
    }
    assert fleet == {("x", hash_a), ("colour", hash_a)}
    names = {a["labels"]["alertname"] for a in prometheus.alerts()}  # pending ones too
    assert not names & {"ModelFeatureDrift", "ModelPredictionDrift"}, names

    # -- the fourth replica: a pool of its own, too small for a verdict, and visible ---------
    other_n = prometheus.query_value(
        "model_version_field:model_field_bin_records:increase1h"
        f'{{field="x", reference_hash="{hash_b}"}}'
    )
    assert other_n == PER_REPLICA
    assert (
        prometheus.query(
            f'model_version_field:model_fleet_drift_threshold_ratio:1h{{reference_hash="{hash_b}"}}'
        )
        == []
    )
    replicas = {
        s["metric"]["hash"]: float(s["value"][1])
        for s in prometheus.query("model_version_hash:model_reference_info:replicas")
    }
    assert replicas == {hash_a: REPLICAS, hash_b: 1}
    assert prometheus.query_value("model_version:model_reference_info:hashes") == 2
    print(f"fleet e2e: {time.monotonic() - started:.1f}s")
