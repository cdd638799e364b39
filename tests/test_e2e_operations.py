"""The real sidecar process under operations: SIGHUP reloads (and never exits), a bad config
is kept out, and readiness means lines written from then on are counted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.offline.simulate import Scenario, generate_with_truth
from tests.configs import example_config, write_config
from tests.harness import RUN_TIMEOUT, WAIT, SidecarProcess, http_status, wait_until

pytestmark = pytest.mark.e2e

THRESHOLD = 'model_window_drift_psi_threshold{field="amount",model="fraud-detector",version="v3",window="5m"}'  # noqa: E501


def _samples(sidecar: SidecarProcess) -> dict[str, float]:
    """Every sample as ``name{labels in order}`` → value."""
    out = {}
    for family in text_string_to_metric_families(sidecar.metrics_text()):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def _reference_created(sidecar: SidecarProcess) -> str | None:
    for family in text_string_to_metric_families(sidecar.metrics_text()):
        if family.name == "model_reference_info":
            return str(family.samples[0].labels["created"])
    return None


def _baseline(tmp_path: Path, config: Path) -> Path:
    dev = tmp_path / "development.jsonl"
    lines, _ = generate_with_truth(3_000, time.time() - 3_600, 100.0, Scenario(seed=1))
    dev.write_bytes(b"".join(lines))
    reference = tmp_path / "reference.json"
    argv = ["baseline", "--config", str(config), "--input", str(dev), "--output", str(reference)]
    done = subprocess.run(
        [sys.executable, "-m", "exporter", *argv],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return reference


def test_sighup_reloads_and_keeps_a_bad_config_out(
    tmp_path: Path, start_sidecar: Callable[..., SidecarProcess]
) -> None:
    log = tmp_path / "predictions.jsonl"
    log.touch()
    data: dict[str, Any] = example_config(log, tmp_path / "positions.json")
    config = write_config(tmp_path, data)
    reference = _baseline(tmp_path, config)
    data["reference"] = str(reference)
    write_config(tmp_path, data)
    sidecar = start_sidecar(config)
    lines, _ = generate_with_truth(3_000, time.time(), 1_000.0, Scenario(seed=2))
    with log.open("ab") as f:
        f.write(b"".join(lines))
    before = wait_until(
        lambda: _samples(sidecar).get(THRESHOLD), WAIT, message="drift verdicts on amount"
    )
    assert before < 7.5
    created = _reference_created(sidecar)
    assert created is not None

    # The reference changes in place with its size, inode and mtime kept: only a reload reads
    # it again (the hot reload looks at those).
    stat = reference.stat()
    text = reference.read_text()
    edited = text.replace(created, created[:-1] + ("1" if created[-1] != "1" else "2"))
    assert len(edited) == len(text)
    with reference.open("r+") as f:
        f.write(edited)
    os.utime(reference, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    # A reloadable change (a drift floor) and one that needs a restart (the windows).
    data["drift"] = {**data.get("drift", {}), "psi_floor": 7.5}
    data["windows"] = ["1m", "5m", "2h"]
    write_config(tmp_path, data)
    os.kill(sidecar.pid, signal.SIGHUP)
    wait_until(
        lambda: _samples(sidecar).get('model_exporter_config_reloads_total{outcome="ok"}') == 1,
        WAIT,
        message="one successful reload",
    )
    wait_until(lambda: _samples(sidecar).get(THRESHOLD) == 7.5, WAIT, message="the new floor")
    wait_until(
        lambda: _reference_created(sidecar) != created, WAIT, message="the profile read again"
    )
    assert not any('window="2h"' in name for name in _samples(sidecar))  # needs a restart
    stderr = sidecar.stderr_path.read_text()
    assert "config reload: windows changed; restart to apply" in stderr
    assert "applied drift.psi_floor" in stderr

    # A config that fails validation: logged, counted, and the running config stays.
    data["drift"]["psi_floor"] = "high"
    write_config(tmp_path, data)
    os.kill(sidecar.pid, signal.SIGHUP)
    wait_until(
        lambda: _samples(sidecar).get('model_exporter_config_reloads_total{outcome="error"}') == 1,
        WAIT,
        message="one refused reload",
    )
    samples = _samples(sidecar)
    assert samples["model_exporter_config_last_reload_successful"] == 0
    assert samples[THRESHOLD] == 7.5
    assert "config reload refused, the running config stays: drift.psi_floor" in (
        sidecar.stderr_path.read_text()
    )
    sidecar.assert_running()
    assert http_status(f"{sidecar.url}/readyz") == 200
    assert sidecar.stop() == 0
    # The log says why the process went away, and that it drained first.
    stderr = sidecar.stderr_path.read_text()
    assert "received SIGTERM: draining what was written, then stopping" in stderr
    assert stderr.rstrip().endswith("stopped")


def test_lines_written_once_ready_are_counted_with_start_at_end(
    tmp_path: Path, start_sidecar: Callable[..., SidecarProcess]
) -> None:
    """start_at: end skips what the file held at the first poll; /readyz says that poll is
    done, so everything written after it answers 200 is counted."""
    log = tmp_path / "predictions.jsonl"
    old, _ = generate_with_truth(500, time.time() - 600, 100.0, Scenario(seed=3))
    log.write_bytes(b"".join(old))
    data = example_config(log, tmp_path / "positions.json")
    data["sources"] = [{"path": str(log), "start_at": "end"}]
    sidecar = start_sidecar(write_config(tmp_path, data))
    new, truth = generate_with_truth(400, time.time(), 100.0, Scenario(seed=4))
    with log.open("ab") as f:
        f.write(b"".join(new))
    records = int(truth.parses.sum())
    key = 'model_predictions_total{model="fraud-detector",version="v3"}'
    wait_until(lambda: _samples(sidecar).get(key) == records, WAIT, message=f"{records} records")
    assert _samples(sidecar)[f'model_exporter_lines_total{{source="{log}"}}'] == len(new)


def test_debug_logging_is_the_sidecars_own_not_its_libraries(
    tmp_path: Path, start_sidecar: Callable[..., SidecarProcess]
) -> None:
    """``--log.level debug`` is for diagnosing the sidecar. watchdog logs every inotify event at
    DEBUG, the sidecar's own opens and reads included: dozens of lines a second, and without
    end when stderr goes to a file in a watched directory (each line is another event)."""
    log = tmp_path / "predictions.jsonl"
    log.touch()
    config = write_config(tmp_path, example_config(log, tmp_path / "positions.json"))
    sidecar = start_sidecar(config, extra_args=["--log.level", "debug"])
    lines, _ = generate_with_truth(200, time.time(), 100.0, Scenario(seed=3))
    with log.open("ab") as f:
        f.write(b"".join(lines))

    def read() -> float:
        return sum(v for k, v in _samples(sidecar).items() if k.startswith("model_exporter_lines"))

    wait_until(lambda: read() == 200, WAIT, message="200 lines read")
    assert sidecar.stop() == 0
    stderr = sidecar.stderr_path.read_text()
    assert " DEBUG watchdog" not in stderr
