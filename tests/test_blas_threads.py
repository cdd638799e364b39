"""numpy's OpenBLAS runs on one thread in the CLI's processes unless the environment says
otherwise (exporter/cli.py ``_one_blas_thread``): each of its threads spins at start.

OpenBLAS's thread count is read with threadpoolctl (it comes with scikit-learn)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.configs import example_config, write_config

REPORT = """
import os, threadpoolctl
pools = threadpoolctl.threadpool_info()
threads = [p["num_threads"] for p in pools if p["internal_api"] == "openblas"]
print(os.environ.get("OPENBLAS_NUM_THREADS"), *threads)
"""


def _run(program: str, env: dict[str, str]) -> list[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    }
    done = subprocess.run(
        [sys.executable, "-c", program],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **env},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1].split()


def _after_the_cli(tmp_path: Path, **env: str) -> list[str]:
    """``check-config`` (which loads numpy) in a process of its own: the variable numpy was
    loaded with, and the threads OpenBLAS runs."""
    config = write_config(tmp_path, example_config(tmp_path / "model.jsonl"))
    start = f"from exporter.cli import main\nassert main(['check-config', {str(config)!r}]) == 0\n"
    return _run(start + REPORT, env)


def test_openblas_runs_one_thread(tmp_path: Path) -> None:
    assert _after_the_cli(tmp_path) == ["1", "1"]


@pytest.mark.parametrize("variable", ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"])
def test_a_thread_count_given_in_the_environment_decides(tmp_path: Path, variable: str) -> None:
    """As numpy loaded without the CLI in the same environment (OpenBLAS caps the count at the
    cores it sees)."""
    env = {variable: "2"}
    assert _after_the_cli(tmp_path, **env) == _run("import numpy\n" + REPORT, env)
