"""Configs that used to pass check-config and then broke ``run``, or crashed or hung both.

Each case is refused by ``check-config`` and by ``run`` alike: exit 2, one line naming the key.
The value cases call the CLI's ``main`` in-process (``run`` is given an address it cannot bind,
so a config that wrongly passes ends the test with exit 1 instead of serving forever); the
cases that used to hang or take minutes (a FIFO, an alias bomb) run the real CLI under a
timeout, so a regression fails instead of stalling the suite.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.cli import main
from tests.configs import example_config, write_config

NAN, INF = math.nan, math.inf
UNBINDABLE = "192.0.2.1:9"  # TEST-NET-1: never a local address, so a bind fails at once

Overrides = dict[str, Any] | Callable[[Path], dict[str, Any]]

# (id, overrides of the example config, the key the refusal must name)
VALUE_CASES: list[tuple[str, Overrides, str]] = [
    ("windows-nan", {"windows": [NAN]}, "windows[0]"),
    ("category-cap-1e12", {"category_cap": 10**12}, "category_cap"),
    ("window-buckets-1e8", {"window_buckets": 10**8}, "window_buckets"),
    ("poll-interval-inf", {"tail": {"poll_interval": INF}}, "tail.poll_interval"),
    (
        "positions-flush-interval-nan",
        {"tail": {"positions_flush_interval": NAN}},
        "tail.positions_flush_interval",
    ),
    ("histogram-bound-inf", {"histograms": {"prediction": [0.1, INF]}}, "histograms.prediction[1]"),
    ("histogram-bound-nan", {"histograms": {"prediction": [NAN]}}, "histograms.prediction[0]"),
    ("windows-1m-and-60s", {"windows": ["1m", "60s"]}, "windows[1]"),
    ("windows-1ms", {"windows": ["1ms"]}, "windows[0]"),
    ("windows-3650d", {"windows": ["3650d"]}, "windows[0]"),
    ("max-line-bytes-1e14", {"tail": {"max_line_bytes": 10**14}}, "tail.max_line_bytes"),
    ("read-chunk-bytes-1e14", {"tail": {"read_chunk_bytes": 10**14}}, "tail.read_chunk_bytes"),
    (
        "join-capacity-1e14",
        {"ground_truth_join": {"capacity": 10**14}},
        "ground_truth_join.capacity",
    ),
    ("source-is-a-directory", lambda d: {"sources": [{"path": str(d)}]}, "sources[0].path"),
    ("positions-file-is-a-directory", lambda d: {"positions_file": str(d)}, "positions_file"),
]


def merged(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` applied to ``data``, mappings merged key by key."""
    result = dict(data)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def config_with(tmp_path: Path, overrides: Overrides) -> Path:
    if callable(overrides):
        target = tmp_path / "a-directory"
        target.mkdir()
        overrides = overrides(target)
    data = merged(example_config(tmp_path / "p.jsonl", tmp_path / "positions.json"), overrides)
    return write_config(tmp_path, data)


def refusal(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI in-process; it must exit 2 and print the problems (and no traceback)."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, f"{argv} exited {code}\n{err}"
    assert "invalid configuration" in err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("overrides", "key"), [c[1:] for c in VALUE_CASES], ids=[c[0] for c in VALUE_CASES]
)
def test_check_config_and_run_both_refuse_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], overrides: Overrides, key: str
) -> None:
    path = config_with(tmp_path, overrides)
    checked = refusal(capsys, ["check-config", str(path)])
    assert f"\n  {key}: " in checked
    ran = refusal(capsys, ["run", "--config", str(path), "--web.listen-address", UNBINDABLE])
    assert f"\n  {key}: " in ran


# --- the file itself ---------------------------------------------------------------------------

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{k}: &{k} [{', '.join([f'*{p}'] * 9)}]\n" for p, k in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"sources: [\xff\xfe]\n", "not UTF-8 text"),
        (b"a: " + b"[" * 20_000 + b"]" * 20_000 + b"\n", "nest"),
        (b"category_cap: " + b"7" * 5_000 + b"\n", "category_cap: must be a whole number"),
        (b"windows: [1m]\nwindows: [5m]\n", "'windows' is given twice"),
        (b"windows: !!float abc\n", "not valid YAML"),
        (b"late_after: 2024-02-30\n", "late_after: '2024-02-30' is not a duration"),
        (b"# " + b"x" * (300 << 10) + b"\n", "larger than 256 KiB"),
        (ALIAS_BOMB.encode(), "aliases (*a) are not supported"),
    ],
    ids=["non-utf8", "nesting-20000", "integer-5000-digits", "duplicate-key", "bad-tag", "bad-date",
         "oversized", "alias-bomb"],
)  # fmt: skip
def test_a_hostile_file_is_refused_by_both_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    path = tmp_path / "exporter.yaml"
    path.write_bytes(content)
    assert expected in refusal(capsys, ["check-config", str(path)])
    assert expected in refusal(capsys, ["run", "--config", str(path)])


def cli(*argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """The real CLI; a hang fails the test at the timeout instead of stalling the suite."""
    return subprocess.run(
        [sys.executable, "-m", "exporter", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("kind", ["fifo", "directory", "alias-bomb"])
def test_the_real_cli_refuses_a_config_path_that_would_block_or_balloon(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "exporter.yaml"
    if kind == "fifo":
        os.mkfifo(path)  # no writer: a blocking open or read would wait forever
        expected = "not a regular file"
    elif kind == "directory":
        path.mkdir()
        expected = "not a regular file"
    else:
        path.write_text(ALIAS_BOMB)  # ~330 bytes that expand to 9^9 list items
        expected = "aliases"
    for argv in (("check-config", str(path)), ("run", "--config", str(path))):
        done = cli(*argv)
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr
        assert "Traceback" not in done.stderr
