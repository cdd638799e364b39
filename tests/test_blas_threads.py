"""numpy's OpenBLAS runs on one thread in the CLI's processes unless the environment says
otherwise (exporter/cli.py ``_one_blas_thread``): each of its threads spins at start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.configs import example_config, write_config


def _blas_threads(tmp_path: Path, **env: str) -> list[str]:
    """``check-config`` (which loads numpy) in a process of its own: the variable numpy was
    loaded with, and the threads OpenBLAS says it runs."""
    config = write_config(tmp_path, example_config(tmp_path / "model.jsonl"))
    program = f"""
import os, threadpoolctl
from exporter.cli import main
assert main(["check-config", {str(config)!r}]) == 0
pools = threadpoolctl.threadpool_info()
threads = [p["num_threads"] for p in pools if p["internal_api"] == "openblas"]
print(os.environ.get("OPENBLAS_NUM_THREADS"), *threads)
"""
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


def test_openblas_runs_one_thread(tmp_path: Path) -> None:
    assert _blas_threads(tmp_path) == ["1", "1"]


@pytest.mark.parametrize("variable", ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"])
def test_a_thread_count_given_in_the_environment_is_kept(tmp_path: Path, variable: str) -> None:
    told = _blas_threads(tmp_path, **{variable: "2"})
    assert told[-1] == "2"
    assert told[0] == ("2" if variable == "OPENBLAS_NUM_THREADS" else "None")
