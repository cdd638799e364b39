"""`model-exporter demo`: the newcomer's first command must show live metrics and drift."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.cli import main
from tests.harness import WAIT, ManagedProcess, ProcessGroup, free_port, http_get, wait_until

pytestmark = pytest.mark.e2e


def test_demo_serves_metrics_with_anomalies_and_drift(
    processes: ProcessGroup, tmp_path: Path
) -> None:
    port = free_port()
    demo: ManagedProcess = processes.start(
        "demo",
        [
            sys.executable,
            "-m",
            "exporter",
            "demo",
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--rate",
            "400",
            "--drift-start",
            "4",
            "--log",
            str(tmp_path / "predictions.jsonl"),
        ],
    )

    def scrape() -> str | None:
        demo.assert_running()
        got = http_get(f"http://127.0.0.1:{port}/metrics")
        return got[1].decode() if got is not None and got[0] == 200 else None

    def drifting() -> str | None:
        text = scrape()
        detected = 'model_window_drift_detected{field="merchant_risk",model="fraud-detector",'
        detected += 'statistic="ks"'
        lines = [line for line in (text or "").splitlines() if line.startswith(detected)]
        return text if any(line.endswith(" 1.0") for line in lines) else None

    text = wait_until(
        drifting, timeout=WAIT, interval=0.5, message="the demo's drift episode to be detected"
    )
    assert 'model_exporter_parse_errors_total{reason="invalid_json"' in text
    assert "model_reference_info{" in text
    first = demo.stdout_path.read_text().splitlines()[0]
    assert first == f"model-exporter demo: open http://127.0.0.1:{port}/ to watch it live"
    page = http_get(f"http://127.0.0.1:{port}/")
    assert page is not None
    assert page[0] == 200
    assert b"/static/app.js" in page[1]
    status = http_get(f"http://127.0.0.1:{port}/api/v1/status?history=none")
    assert status is not None
    assert status[0] == 200
    assert json.loads(status[1])["models"][0]["model"] == "fraud-detector"
    assert demo.stop() == 0


def test_writer_only_mode_writes_a_log(tmp_path: Path) -> None:
    log = tmp_path / "predictions.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "demo",
            "--writer-only",
            "--log",
            str(log),
            "--rate",
            "1000",
            "--duration",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # How many lines depends on how often the writer thread ran in those 2 s; that it writes
    # whole prediction records does not.
    data = log.read_bytes()
    assert data.endswith(b"\n")
    records = [r for r in map(_object_or_none, data.splitlines()) if r is not None]
    assert records  # the demo's model also writes a few malformed lines on purpose
    assert {r.get("model") for r in records} <= {"fraud-detector", None}


def test_writer_only_mode_needs_no_temporary_directory(tmp_path: Path) -> None:
    """The Kubernetes example runs the writer as the stand-in model with a read-only root file
    system and no /tmp volume: it must write its log without a temporary directory (Python's
    ``tempfile`` is pointed at a directory that does not exist, as none is usable there)."""
    log = tmp_path / "predictions.jsonl"
    program = (
        "import sys, tempfile; tempfile.tempdir = sys.argv[1]; from exporter.cli import main; "
        "sys.exit(main(sys.argv[2:]))"
    )
    args = ["demo", "--writer-only", "--log", str(log), "--rate", "1000", "--duration", "1"]
    done = subprocess.run(
        [sys.executable, "-c", program, str(tmp_path / "no-such-dir"), *args],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert log.read_bytes().endswith(b"\n")


def test_the_page_address_is_the_first_line_a_newcomer_sees(tmp_path: Path) -> None:
    """stdout and stderr together, as in a terminal: the address comes before any log line."""
    port = free_port()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "demo",
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--log",
            str(tmp_path / "predictions.jsonl"),
            "--duration",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    assert lines[0] == f"model-exporter demo: open http://127.0.0.1:{port}/ to watch it live"
    assert any("INFO" in line for line in lines[1:])  # the sidecar's own lines follow


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--rate", "nan"),
        ("--rate", "0"),
        ("--rate", "-5"),
        ("--duration", "-1"),
        ("--drift-end", "inf"),
    ],
)
def test_a_rate_or_duration_that_cannot_run_is_refused_naming_the_flag(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rate of 0 or below made the demo wait for records forever; NaN crashed it."""
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--writer-only", flag, value])
    assert exited.value.code == 2
    assert f"argument {flag}: must be a finite number" in capsys.readouterr().err


def _object_or_none(line: bytes) -> dict[str, object] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
