"""What each entry point loads: the sidecar never pulls in the offline side, and the store and
the renderer never pull in the decoder (the import-linter contract in pyproject.toml checks the
static graph; these check what a fresh interpreter actually imports)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.configs import empty_log_config
from tests.harness import free_port


def _loaded_after(statement: str) -> set[str]:
    code = f"{statement}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
    )
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "module",
    [
        "exporter.collector",
        "exporter.bodies",
        "exporter.families.model",
        "exporter.families.fleet",
        "exporter.state",
        "exporter.assess",
        "exporter.compare",
        "exporter.server",
    ],
)
def test_the_store_and_the_renderer_do_not_load_the_decoder(module: str) -> None:
    loaded = _loaded_after(f"import {module}")
    assert module in loaded
    # msgspec itself may load: the reference profile's types are msgspec Structs.
    assert not {"exporter.decode", "watchdog"} & loaded
    assert not [m for m in loaded if m.startswith(("exporter.tail", "exporter.offline"))]


HTTP_STACK = {
    "exporter.server",
    "exporter.connections",
    "exporter.request",
    "exporter.scrape",
    "exporter.page",
    "exporter.status",
    "exporter.webconfig",
    "exporter.webfile",
    "exporter.basicauth",
}
RENDERER = {"exporter.collector", "exporter.bodies", "exporter.families", "prometheus_client"}


@pytest.mark.parametrize(
    "module",
    [
        "exporter.tail.tailer",
        "exporter.tail.watch",
        "exporter.engine",
        "exporter.pipeline",
        "exporter.assess",
        "exporter.offline.replay",
        "exporter.offline.baseline",
        "exporter.offline.html",
    ],
)
def test_the_pipeline_and_the_offline_side_do_not_load_the_http_stack(module: str) -> None:
    """Replay, baseline and the report run the pipeline with no server at all."""
    loaded = _loaded_after(f"import {module}")
    assert module in loaded
    assert not (HTTP_STACK | RENDERER | {"exporter.sidecar"}) & loaded


def test_the_tailer_does_not_load_records_or_the_store() -> None:
    """The tailer hands on bytes: decoding, joining and storing happen downstream of it."""
    loaded = _loaded_after("import exporter.tail.tailer, exporter.tail.watch")
    downstream = {
        "exporter.decode",
        "exporter.batch",
        "exporter.engine",
        "exporter.join",
        "exporter.state",
        "exporter.assess",
        "exporter.pipeline",
        "exporter.exposition",
    }
    assert not downstream & loaded
    assert not [m for m in loaded if m.startswith("exporter.stats")]


def test_the_store_does_not_load_the_drift_statistics() -> None:
    """Windows are stored by ``state`` and judged by ``assess``: the store needs no statistics."""
    loaded = _loaded_after("import exporter.state")
    assert not {"exporter.compare", "exporter.assess", "exporter.stats.drift"} & loaded


def test_the_sidecar_does_not_load_the_offline_side() -> None:
    loaded = _loaded_after("import exporter.sidecar")
    assert "exporter.pipeline" in loaded
    assert not [m for m in loaded if m.startswith("exporter.offline")]


def test_the_cli_loads_a_sub_command_only_when_it_runs() -> None:
    loaded = _loaded_after("import exporter.cli; exporter.cli._parser()")
    assert "exporter.cli" in loaded
    assert "exporter.offline.thresholds" in loaded  # the replay flags' defaults
    banned = {"exporter.sidecar", "exporter.decode", "exporter.offline.simulate"}
    assert not (banned | {"exporter.offline.backtest"}) & loaded


# A running sidecar without a web config needs none of these: each was CPU at every start.
NOT_AT_START = {
    "exporter.offline.backtest",  # replay's rules (the CLI parser reads only the defaults)
    "exporter.webfile",  # TLS and basic auth: only with --web.config.file
    "exporter.webconfig",
    "exporter.basicauth",
    "bcrypt",
    # Our own writer renders every body and our own server negotiates the format: the
    # registry view (tests, the server's fallback) is all that loads prometheus_client.
    "prometheus_client",
    "exporter.registry_view",
    "importlib.resources",  # the page's files are read from the package's directory
}


def test_a_started_sidecar_loads_nothing_it_does_not_run(tmp_path: Path) -> None:
    """``model-exporter run`` as the CLI starts it, up to its first poll of the log."""
    address = f"127.0.0.1:{free_port()}"
    config = empty_log_config(tmp_path, address)
    started = f"""
import time
import exporter.sidecar
from exporter.cli import main

def first_poll(sidecar, control, load=None):
    sidecar.start()
    deadline = time.monotonic() + 60
    while not sidecar.pipeline.ready()[0] and time.monotonic() < deadline:
        time.sleep(0.05)
    sidecar.stop()

exporter.sidecar.run_until = first_poll
assert main(["run", "--config", {str(config)!r}]) == 0
"""
    loaded = _loaded_after(started)
    assert {"exporter.sidecar", "exporter.server", "watchdog"} <= loaded
    assert not NOT_AT_START & loaded
