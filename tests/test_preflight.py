"""Visible misconfiguration: the paths a config names, the profile it loads, and the CLI's flags
and messages about them.

A missing log directory is a warning (it may appear later), in check-config and at WARNING in
``run``; a positions directory is created by ``run`` when it can be, and otherwise both commands
refuse with the fix; a profile built for another model is refused by check-config, ``run`` and
the hot reload alike.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.cli import _parser, main
from exporter.config import load_config
from exporter.config_types import Config
from exporter.errors import ConfigError
from exporter.reload import ReferenceFile
from tests.configs import example_config, write_config
from tests.harness import WAIT, SidecarProcess, wait_until

UNBINDABLE = "192.0.2.1:9"  # never local: a config that wrongly passes ends with exit 1


def check_paths(config: Config, prepare: bool = False) -> list[str]:
    """``preflight.check_paths``, imported when called (so this module's CLI tests also run on
    a tree without it)."""
    from exporter.preflight import check_paths as check  # noqa: PLC0415

    return check(config, prepare=prepare)


def check(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str, str]:
    code = main(["check-config", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- sources -----------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["missing/p.jsonl", "missing/*.jsonl", "missing/*/p.jsonl"])
def test_a_log_directory_that_does_not_exist_is_a_warning_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pattern: str
) -> None:
    path = write_config(tmp_path, example_config(tmp_path / pattern))
    code, out, err = check(capsys, path)
    assert code == 0, err
    assert "ok" in out
    assert f"warning: sources[0].path: directory {tmp_path / 'missing'} does not exist (yet)" in err
    assert "waits for it" in err


def test_an_existing_log_or_directory_gives_no_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "logs").mkdir()
    for pattern in ("p.jsonl", "logs/*.jsonl", "logs/not-yet.jsonl"):
        path = write_config(tmp_path, example_config(tmp_path / pattern))
        code, _, err = check(capsys, path)
        assert (code, err) == (0, ""), pattern


def test_a_source_under_a_file_can_never_exist_and_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").touch()
    config = load_config(write_config(tmp_path, example_config(tmp_path / "file" / "p.jsonl")))
    with pytest.raises(ConfigError, match=r"sources\[0\]\.path: .*file is not a directory"):
        check_paths(config)


def test_a_file_name_too_long_for_the_file_system_is_refused_not_a_crash(tmp_path: Path) -> None:
    """No file of that name can ever appear: the source is refused (the tailer would otherwise
    warn forever), and the reference too (stat raised ENAMETOOLONG out of check_paths)."""
    long_name = str(tmp_path / ("x" * 300))
    config = load_config(write_config(tmp_path, example_config(long_name)))
    with pytest.raises(ConfigError, match=r"sources\[0\]\.path: .*x: File name too long"):
        check_paths(config)
    raw = example_config(tmp_path / "p.jsonl", reference=long_name)
    config = load_config(write_config(tmp_path, raw))
    with pytest.raises(ConfigError, match=r"reference: .*x: File name too long"):
        check_paths(config)


def test_a_fifo_as_the_log_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p.jsonl")
    config = load_config(write_config(tmp_path, example_config(tmp_path / "p.jsonl")))
    with pytest.raises(ConfigError, match=r"sources\[0\]\.path: .* is not a regular file"):
        check_paths(config)


@pytest.mark.e2e
def test_run_warns_about_a_missing_log_directory_at_warning_level(
    tmp_path: Path, start_sidecar: Callable[..., SidecarProcess]
) -> None:
    """And creates the positions directory, so checkpoints are saved from the first flush."""
    positions = tmp_path / "state" / "model-exporter" / "positions.json"
    path = write_config(tmp_path, example_config(tmp_path / "model-logs" / "p.jsonl", positions))
    sidecar = start_sidecar(path)
    stderr = sidecar.stderr_path
    wait_until(positions.exists, timeout=WAIT, message="the first checkpoint")
    (tmp_path / "model-logs").mkdir()
    (tmp_path / "model-logs" / "p.jsonl").write_text(
        '{"model": "m", "version": "v1", "prediction": 0.5}\n'
    )
    wait_until(
        lambda: 'model_predictions_total{model="m",version="v1"} 1.0' in sidecar.metrics_text(),
        timeout=WAIT,
        message="the line written once the directory appeared",
    )
    sidecar.stop()
    log = stderr.read_text()
    assert f"WARNING model-exporter: sources[0].path: directory {tmp_path / 'model-logs'}" in log
    assert "cannot save positions" not in log


# --- the positions file ------------------------------------------------------------------------


def test_check_config_creates_nothing_and_run_creates_the_positions_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's `run --config config/exporter.yaml` on a fresh machine: the directory of
    positions_file (/var/lib/model-exporter) does not exist yet."""
    directory = tmp_path / "var" / "lib" / "model-exporter"
    raw = example_config(tmp_path / "p.jsonl", directory / "positions.json")
    config = load_config(write_config(tmp_path, raw))
    assert check_paths(config) == []
    assert not directory.exists()
    assert check_paths(config, prepare=True) == []
    assert directory.is_dir()


def test_a_positions_directory_that_cannot_be_created_is_refused_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").touch()
    raw = example_config(tmp_path / "p.jsonl", tmp_path / "file" / "state" / "positions.json")
    path = write_config(tmp_path, raw)
    code, _, err = check(capsys, path)
    assert code == 2
    assert f"positions_file: {tmp_path / 'file'} is not a directory" in err
    assert main(["run", "--config", str(path), "--web.listen-address", UNBINDABLE]) == 2
    err = capsys.readouterr().err
    assert (
        f"positions_file: {tmp_path / 'file' / 'state'} does not exist and cannot be created" in err
    )
    assert "set positions_file to a path in a writable directory" in err


@pytest.fixture
def unprivileged() -> Iterator[tuple[Path, list[str]]]:
    """A world-readable scratch directory and the argv prefix that runs a command as a user
    who cannot write to it (``nobody`` through setpriv when the tests run as root)."""
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot test as an unprivileged user")
    scratch = Path(tempfile.mkdtemp(prefix="model-exporter-preflight-"))
    try:
        scratch.chmod(0o755)
        if os.geteuid() == 0:
            yield scratch, ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        else:
            yield scratch, []
    finally:
        scratch.chmod(0o755)
        shutil.rmtree(scratch)


def test_a_positions_directory_the_user_cannot_create_fails_both_commands(
    unprivileged: tuple[Path, list[str]],
) -> None:
    scratch, as_user = unprivileged
    locked = scratch / "var-lib"
    locked.mkdir()
    raw = example_config(scratch / "p.jsonl", locked / "model-exporter" / "positions.json")
    path = write_config(scratch, raw)
    path.chmod(0o644)
    locked.chmod(0o555)
    for argv in (["check-config", str(path)], ["run", "--config", str(path)]):
        done = subprocess.run(
            [*as_user, sys.executable, "-m", "exporter", *argv],
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert f"positions_file: {locked / 'model-exporter'}" in done.stderr
        assert f"install -d -o {'65534' if as_user else os.geteuid()}" in done.stderr
    assert not (locked / "model-exporter").exists()


# --- the reference profile ---------------------------------------------------------------------

DEV_FIELDS: dict[str, Any] = {
    "timestamp": None,
    "prediction": "score",
    "features": [
        {"name": "income", "type": "numeric"},
        {"name": "region", "type": "categorical"},
    ],
}


def _profile(tmp_path: Path, fields: dict[str, Any], name: str) -> Path:
    """A profile built by `baseline` for a model with these fields."""
    log = tmp_path / f"{name}.jsonl"
    with log.open("w") as f:
        for i in range(200):
            record: dict[str, Any] = {"score": (i % 10) / 10}
            for field in fields["features"]:
                record[field["name"]] = i % 7 if field["type"] == "numeric" else f"v{i % 3}"
            f.write(json.dumps(record) + "\n")
    config = write_config(tmp_path, {"sources": [str(log)], "fields": fields}, f"{name}.yaml")
    output = tmp_path / f"{name}.profile.json"
    assert (
        main(["baseline", "--config", str(config), "--input", str(log), "--output", str(output)])
        == 0
    )
    return output


OTHER_NAMES: dict[str, Any] = {
    **DEV_FIELDS,
    "features": [
        {"name": "amount", "type": "numeric"},
        {"name": "country", "type": "categorical"},
    ],
}
OTHER_TYPES: dict[str, Any] = {
    **DEV_FIELDS,
    "features": [
        {"name": "income", "type": "categorical"},
        {"name": "region", "type": "numeric"},
    ],
}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (OTHER_NAMES, "the profile has fields this config does not map: income, region"),
        (OTHER_TYPES, "numeric in the profile, categorical in the config: income"),
    ],
    ids=["other-field-names", "other-field-types"],
)
def test_a_profile_of_another_model_is_refused_by_check_config_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fields: dict[str, Any], named: str
) -> None:
    profile = _profile(tmp_path, DEV_FIELDS, "dev")
    capsys.readouterr()
    raw = {"sources": [str(tmp_path / "p.jsonl")], "fields": fields, "reference": str(profile)}
    path = write_config(tmp_path, raw)
    code, _, err = check(capsys, path)
    assert code == 2
    assert f"reference: {profile}: {named}" in err
    assert "model-exporter baseline" in err
    assert main(["run", "--config", str(path), "--web.listen-address", UNBINDABLE]) == 2
    assert named in capsys.readouterr().err


def test_a_profile_of_the_same_model_missing_a_field_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A development log may lack a field the config maps (latency, often): not compared."""
    profile = _profile(tmp_path, DEV_FIELDS, "dev")
    fields = {**DEV_FIELDS, "confidence": "conf"}
    raw = {"sources": [str(tmp_path / "p.jsonl")], "fields": fields, "reference": str(profile)}
    code, out, err = check(capsys, write_config(tmp_path, raw))
    assert code == 0, err
    assert "ok" in out


def test_the_hot_reload_refuses_a_profile_of_another_model_and_keeps_the_old_one(
    tmp_path: Path,
) -> None:
    good = _profile(tmp_path, DEV_FIELDS, "dev")
    other = _profile(tmp_path, OTHER_NAMES, "other")
    config = load_config(
        write_config(
            tmp_path,
            {"sources": [str(tmp_path / "p.jsonl")], "fields": DEV_FIELDS, "reference": str(good)},
        )
    )
    live = tmp_path / "live.json"
    shutil.copy(good, live)
    reference = ReferenceFile(str(live), config.sketch_relative_accuracy, config.fields)
    first = reference.load_now()
    shutil.copy(other, live)
    os.utime(live, ns=(1, 1))  # a new identity even if the copy kept size and mtime
    assert reference.poll() is None
    assert reference.outcomes == {"ok": 1, "error": 1}
    shutil.copy(good, live)
    again = reference.poll()
    assert again is not None
    assert again.hash == first.hash


def test_the_hot_reload_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    good = _profile(tmp_path, DEV_FIELDS, "dev")
    config = load_config(write_config(tmp_path, {"sources": ["p.jsonl"], "fields": DEV_FIELDS}))
    live = tmp_path / "live.json"
    shutil.copy(good, live)
    reference = ReferenceFile(str(live), config.sketch_relative_accuracy, config.fields)
    reference.load_now()
    live.unlink()
    os.mkfifo(live)
    assert reference.poll() is None
    assert reference.outcomes == {"ok": 1, "error": 1}


def test_an_edited_profile_names_the_file_and_the_key_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = _profile(tmp_path, DEV_FIELDS, "dev")
    body = json.loads(profile.read_text())
    body["records"] += 1
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(body))
    raw = {"sources": [str(tmp_path / "p.jsonl")], "fields": DEV_FIELDS, "reference": str(edited)}
    code, _, err = check(capsys, write_config(tmp_path, raw))
    assert code == 2
    assert f"reference: {edited}: profile.hash: does not match the content" in err
    assert "edited.json.hash" not in err


def test_a_fifo_as_the_reference_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "ref.json")  # no writer: reading it would block forever
    raw = example_config(tmp_path / "p.jsonl", reference=str(tmp_path / "ref.json"))
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "check-config", str(write_config(tmp_path, raw))],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 2
    assert f"reference: {tmp_path / 'ref.json'} is not a regular file" in done.stderr


# --- flags and messages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["run", "--config", "x.yaml"], "info"),
        (["--log.level", "error", "run", "--config", "x.yaml"], "error"),
        (["run", "--config", "x.yaml", "--log.level", "debug"], "debug"),
        (["--log.level", "error", "check-config", "x.yaml", "--log.level", "warning"], "warning"),
        (["baseline", "--config=c", "--input=i", "--output=o", "--log.level=info"], "info"),
        (["replay", "--config", "x", "--log.level", "debug", "log.jsonl"], "debug"),
        (["demo", "--log.level", "warning"], "warning"),
    ],
)  # fmt: skip
def test_log_level_is_accepted_before_and_after_the_sub_command(
    argv: list[str], level: str
) -> None:
    assert _parser().parse_args(argv).log_level == level


def test_a_taken_port_names_the_flag_that_changes_it(tmp_path: Path) -> None:
    path = write_config(tmp_path, example_config(tmp_path / "p.jsonl"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "exporter", "run", "--config", str(path),
             "--web.listen-address", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=WAIT, check=False,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "--web.listen-address" in done.stderr
