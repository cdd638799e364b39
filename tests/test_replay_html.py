"""``replay --html``: bounded in size whatever the log's length, spikes kept by the downsampling,
everything from the log escaped, and the CLI writing the file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from exporter.config import parse_config
from exporter.config_types import Config
from exporter.offline.baseline import ProfileBuilder
from exporter.offline.html import rank, render_html
from exporter.offline.replay import replay
from exporter.offline.svg import MAX_POINTS, downsample
from exporter.reference import Reference
from tests.configs import unread_data, write_config
from tests.harness import RUN_TIMEOUT

T0 = 1_800_000_000.0
DAY = 86_400.0


def _config() -> Config:
    return parse_config(_config_data())


def _config_data() -> dict[str, object]:
    fields = {
        "timestamp": "ts",
        "model": "model",
        "version": "version",
        "prediction": "score",
        "features": [{"name": "x", "path": "x"}],
    }
    # window_buckets 2: steps of 5 minutes, so a long log costs few assessments
    return unread_data(fields, windows=["10m"], window_buckets=2)


def _log(
    days: float, every: float = 20.0, spike_at: float | None = None, model: str = "m"
) -> bytes:
    """One record every ``every`` seconds; ``x`` moves by 3 for the 20 minutes from
    ``spike_at`` (days from the start)."""
    n = int(days * DAY / every)
    rng = np.random.default_rng(4)
    ts = T0 + np.arange(n) * every
    x = rng.normal(0.0, 1.0, n)
    if spike_at is not None:
        start = T0 + spike_at * DAY
        x[(ts >= start) & (ts < start + 1200)] += 3.0
    score = rng.uniform(0, 1, n)
    name = json.dumps(model)
    return b"".join(
        (
            f'{{"ts": {t:.1f}, "model": {name}, "version": "v1", "score": {s:.4f}, "x": {v:.4f}}}\n'
        ).encode()
        for t, s, v in zip(ts.tolist(), score.tolist(), x.tolist(), strict=True)
    )


def _reference(config: Config) -> Reference:
    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    builder.add(_log(0.5))
    return builder.build("2026-01-01T00:00:00+00:00")


def test_downsampling_keeps_every_spike_and_caps_the_points() -> None:
    rng = np.random.default_rng(1)
    for n in (10, MAX_POINTS, MAX_POINTS + 1, 5000, 77_777):
        times = list(np.arange(n, dtype=float))
        values: list[float | None] = list(rng.uniform(0, 1, n))
        spike = int(rng.integers(n))
        values[spike] = 50.0
        values[int(rng.integers(n))] = None
        t, v = downsample(times, values)
        assert len(t) == len(v) <= MAX_POINTS
        assert max(x for x in v if x is not None) == 50.0
        assert t == sorted(t)
        _, low = downsample(times, values, keep="min")
        finite = [x for x in values if x is not None]
        assert min(x for x in low if x is not None) == min(finite)


def test_the_report_stays_small_however_long_the_log() -> None:
    config = _config()
    reference = _reference(config)
    short = replay([_log(1.0)], config, reference, every=300.0)
    long = replay([_log(4.0, spike_at=2.1)], config, reference, every=300.0)
    assert len(long.rows) > 3 * len(short.rows)
    small, big = render_html(short), render_html(long)
    assert len(big) < 1.3 * len(small) + 20_000, (len(small), len(big))
    assert len(big) < 400_000
    for d in re.findall(r'<path class="line [^"]*" d="([^"]*)"', big):
        assert d.count("M") + d.count("L") <= MAX_POINTS
    # The 20-minute spike, 1/288th of the log, is at the top of the ranking, at its step.
    top = rank(long)[0]
    assert top.field == "x"
    assert 2.1 * DAY <= top.at - T0 <= 2.1 * DAY + 1200 + 600 + 300
    assert top.ratio > 1
    assert 'data-field="x"' in big


def test_everything_from_the_log_is_escaped() -> None:
    config = _config()
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    report = replay([_log(0.3, model=hostile)], config, _reference(config), every=300.0)
    page = render_html(report)
    assert "<script" not in page
    assert "<img" not in page
    assert "&lt;script&gt;" in page


def test_the_cli_writes_the_report(tmp_path: Path) -> None:
    log = tmp_path / "predictions.jsonl"
    log.write_bytes(_log(0.5, spike_at=0.25))
    config = write_config(tmp_path, _config_data())
    reference = tmp_path / "reference.json"
    reference.write_text(_reference(_config()).to_json())
    out = tmp_path / "report.html"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "replay",
            "--config",
            str(config),
            "--reference",
            str(reference),
            "--every",
            "5m",
            "--html",
            str(out),
            str(log),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("replay of ")  # the text report still goes to stdout
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    assert "Fields ranked by how far past threshold they went" in page
    assert "://" not in page  # nothing to fetch: no script, no link, no font
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "replay",
            "--config",
            str(config),
            "--html",
            str(tmp_path / "missing" / "report.html"),
            "--reference",
            str(reference),
            str(log),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert bad.returncode == 1
    assert "cannot write" in bad.stderr
