"""The real sidecar process, scraped by a real Prometheus on 127.0.0.1.

Expected numbers come from the simulator's own record of what it wrote (and numpy over the
lines), never from the sidecar's code.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from exporter.offline.simulate import Malformed, Scenario, generate_with_truth
from tests.configs import example_config, write_config
from tests.harness import WAIT, Prometheus, ScrapeTarget, SidecarProcess, promtool, wait_until

pytestmark = pytest.mark.e2e

AMOUNT_MAX = 100_000  # the bound in config/exporter.yaml


def _valid_amounts(lines: list[bytes]) -> np.ndarray:
    """Amounts the sidecar should count as valid: numbers within the configured bounds."""
    values = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        amount = record.get("features", {}).get("amount")
        if (
            isinstance(amount, int | float)
            and not isinstance(amount, bool)
            and 0 <= amount <= AMOUNT_MAX
        ):
            values.append(float(amount))
    return np.asarray(values)


def test_prometheus_sees_exact_counts_and_quantiles(
    tmp_path: Path,
    start_sidecar: Callable[..., SidecarProcess],
    start_prometheus: Callable[..., Prometheus],
) -> None:
    log = tmp_path / "predictions.jsonl"
    log.touch()
    config = write_config(tmp_path, example_config(log, tmp_path / "positions.json"))
    sidecar = start_sidecar(config)
    prometheus = start_prometheus([ScrapeTarget("model", f"127.0.0.1:{sidecar.port}")])
    prometheus.wait_for_target_up("model")

    lines, truth = generate_with_truth(
        5_000, time.time(), 1000.0, Scenario(malformed_ratio=0.05, seed=7)
    )
    with log.open("ab") as f:
        f.write(b"".join(lines))

    records = int(truth.parses.sum())
    whole_line = truth.count(Malformed.NOT_JSON) + truth.count(Malformed.TRUNCATED)
    assert records + whole_line == len(lines)
    model = 'model="fraud-detector",version="v3"'
    selector = "{" + model + "}"
    counted = (
        f"model_predictions_total{selector}",
        f'sum(model_exporter_parse_errors_total{{source="{log}"}})',
    )
    # The ingest loop adds a chunk's parse errors just after the store has taken its records,
    # so a scrape can fall between the two: wait for both totals, not for the first alone.
    wait_until(
        lambda: tuple(prometheus.query_value(q) for q in counted) == (records, whole_line),
        timeout=WAIT,
        message=f"Prometheus to see {records} predictions and {whole_line} parse errors",
    )

    assert prometheus.query_value(f'model_exporter_lines_total{{source="{log}"}}') == len(lines)
    nan_amounts = truth.count(Malformed.NAN_STRING, "amount") + truth.count(
        Malformed.STRING_NUMBER, "amount"
    )
    got = prometheus.query_value('sum(model_anomalies_total{field="amount",kind="not_a_number"})')
    assert got == nan_amounts
    got = prometheus.query_value('sum(model_anomalies_total{field="age",kind="type_mismatch"})')
    assert got == truth.count(Malformed.BOOL_AGE, "age")
    got = prometheus.query_value('sum(model_anomalies_total{field="amount",kind="out_of_range"})')
    assert got == truth.count(Malformed.NEGATIVE_AMOUNT, "amount")
    got = prometheus.query_value('sum(model_anomalies_total{field="record",kind="parse_error"})')
    assert got == whole_line

    amounts = _valid_amounts(lines)
    for q in (0.5, 0.9, 0.99):
        expected = float(np.quantile(amounts, q, method="lower"))
        got = prometheus.query_value(
            f'model_window_quantile{{field="amount",window="5m",q="{q:g}",{model}}}'
        )
        assert got is not None
        assert abs(got - expected) <= 0.01 * abs(expected), (q, got, expected)
    got = prometheus.query_value(f'model_window_mean{{field="amount",window="5m",{model}}}')
    assert got == pytest.approx(float(amounts.mean()), rel=1e-9)
    got = prometheus.query_value(f'model_window_samples{{field="amount",window="5m",{model}}}')
    assert got == len(amounts)

    labelled = truth.has_ground_truth & truth.parses
    got = prometheus.query_value("sum(model_ground_truth_total)")
    assert got == int(labelled.sum())
    got = prometheus.query_value("sum(model_prediction_errors_total)")
    assert got == int((truth.error & labelled).sum())

    checked = promtool("check", "metrics", input=sidecar.metrics_text())
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_garbage_log_is_counted_and_the_sidecar_keeps_running(
    tmp_path: Path, start_sidecar: Callable[..., SidecarProcess]
) -> None:
    log = tmp_path / "predictions.jsonl"
    garbage = [
        b"not json at all",
        b"[1, 2, 3]",
        b'"a string"',
        b'{"features": ',
        b"\xff\xfe bad utf-8",
        b"{}",
    ]
    log.write_bytes(b"\n".join(garbage * 100) + b"\n")
    sidecar = start_sidecar(write_config(tmp_path, example_config(log)))

    def parse_errors() -> dict[str, float] | None:
        totals: dict[str, float] = {}
        for line in sidecar.metrics_text().splitlines():
            if line.startswith("model_exporter_parse_errors_total{"):
                reason = line.split('reason="', 1)[1].split('"', 1)[0]
                totals[reason] = float(line.rsplit(" ", 1)[1])
        return totals if sum(totals.values()) == 500 else None

    totals = wait_until(parse_errors, timeout=WAIT, message="500 parse errors")
    assert totals == {"invalid_json": 200, "not_an_object": 200, "invalid_utf8": 100}
    # "{}" is a record with every field missing; it names no model, so it counts under
    # __unknown__, with every line that is not a record (docs/metrics.md).
    text = sidecar.metrics_text()
    unknown = 'model="__unknown__",version="__unknown__"'
    assert f"model_predictions_total{{{unknown}}} 100.0" in text
    assert f'model_anomalies_total{{field="amount",kind="missing",{unknown}}} 100.0' in text
    assert f'model_anomalies_total{{field="record",kind="parse_error",{unknown}}} 500.0' in text
    sidecar.assert_running()


def _refusals(config: Path) -> list[subprocess.CompletedProcess[str]]:
    """`run` and `check-config` on the same file: both must refuse it the same way."""
    return [
        subprocess.run(
            [sys.executable, "-m", "exporter", *argv],
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
        for argv in (["run", "--config", str(config)], ["check-config", str(config)])
    ]


def test_bad_config_is_refused_with_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sources: [{path: 3}]\n"
        "fields:\n  latency: {path: latency_ms, unit: minutes}\n"
        "  features: [{name: amount, type: numeric, min: 5, max: 1}]\n"
        "windows: [5x]\nlisten_address: nowhere\n"
    )
    for done in _refusals(bad):
        assert done.returncode == 2
        for expected in (
            "sources[0].path: must be a non-empty string",
            "fields.latency.unit: must be one of ms, s, us",
            "fields.features[0].min: must not be greater than max",
            "windows[0]:",
            "listen_address:",
        ):
            assert expected in done.stderr, done.stderr


def test_a_missing_reference_is_refused_at_start_naming_the_key(tmp_path: Path) -> None:
    log = tmp_path / "predictions.jsonl"
    config = write_config(tmp_path, example_config(log, reference=str(tmp_path / "absent.json")))
    for done in _refusals(config):
        assert done.returncode == 2
        assert "reference: " in done.stderr
        assert "absent.json: cannot read" in done.stderr
