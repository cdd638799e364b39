"""The allocator thresholds set at start (exporter/allocator.py)."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.allocator import keep_batch_memory
from tests.configs import empty_log_config
from tests.harness import free_port


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's; elsewhere nothing is set"
)
def printed_by(code: str) -> list[str]:
    """The words a fresh interpreter prints running ``code`` (the settings are a process's)."""
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_glibc_takes_the_thresholds() -> None:
    assert keep_batch_memory()


def test_start_up_objects_leave_the_cycle_collectors_walks() -> None:
    """In a process of its own: the settings are the process's."""
    code = (
        "import gc; from exporter.allocator import collect_less, GC_THRESHOLDS; "
        "collect_less(); print(gc.get_threshold() == GC_THRESHOLDS, gc.get_freeze_count() > 0)"
    )
    assert printed_by(code) == ["True", "True"]


def test_pausing_collections_ends_with_the_collector_running() -> None:
    code = (
        "import gc; from exporter.allocator import pause_collections, collect_less; "
        "pause_collections(); print(gc.isenabled()); collect_less(); print(gc.isenabled())"
    )
    assert printed_by(code) == ["False", "True"]


def test_a_starting_sidecar_runs_no_cycle_collection_and_freezes_its_modules(
    tmp_path: Path,
) -> None:
    """``model-exporter run`` in a process of its own, stopped once it answers /readyz: no
    collection walked the start-up objects (numpy loaded, nothing frozen yet), the sidecar's
    own functions are frozen, and the collector runs with the raised thresholds."""
    address = f"127.0.0.1:{free_port()}"
    config = empty_log_config(tmp_path, address)
    program = f"""
import gc, os, signal, sys, threading, time, urllib.request
from exporter.cli import main

walks = []
gc.callbacks.append(
    lambda phase, info: phase == "start"
    and walks.append("numpy" in sys.modules and gc.get_freeze_count() == 0)
)
seen = {{}}

def stop_when_ready():
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen("http://{address}/readyz", timeout=5).read()
            break
        except OSError:
            time.sleep(0.05)
    build = sys.modules["exporter.sidecar"].build
    seen["frozen"] = not any(build is o for g in range(3) for o in gc.get_objects(g))
    seen["running"] = gc.isenabled() and gc.get_threshold() == GC_THRESHOLDS
    os.kill(os.getpid(), signal.SIGINT)

from exporter.allocator import GC_THRESHOLDS
threading.Thread(target=stop_when_ready, daemon=True).start()
assert main(["run", "--config", {str(config)!r}]) == 0
print(any(walks), seen["frozen"], seen["running"])
"""
    done = subprocess.run(
        [sys.executable, "-c", program], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.split() == ["False", "True", "True"], done.stderr
