"""The allocator thresholds set at start (exporter/allocator.py)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from exporter.allocator import keep_batch_memory


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's; elsewhere nothing is set"
)
def test_glibc_takes_the_thresholds() -> None:
    assert keep_batch_memory()


def test_start_up_objects_leave_the_cycle_collectors_walks() -> None:
    """In a process of its own: the settings are the process's."""
    code = (
        "import gc; from exporter.allocator import collect_less, GC_THRESHOLDS; "
        "collect_less(); print(gc.get_threshold() == GC_THRESHOLDS, gc.get_freeze_count() > 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == ["True", "True"], done.stderr
