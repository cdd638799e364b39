"""The allocator thresholds set at start (exporter/allocator.py)."""

from __future__ import annotations

import platform

import pytest

from exporter.allocator import keep_batch_memory


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's; elsewhere nothing is set"
)
def test_glibc_takes_the_thresholds() -> None:
    assert keep_batch_memory()
