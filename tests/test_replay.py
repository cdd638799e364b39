"""``replay``: the engine over a historical log, with the records' timestamps as the clock.

Expected counts and ratios come from the simulator's record of what it wrote (numpy over
``LineTruth``), never from the engine's code; alert timing is checked against the rules' own
terms (a ``for:`` as a run of consecutive evaluations).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from exporter.batch import UNKNOWN
from exporter.cli import main
from exporter.config import load_config
from exporter.config_types import Config
from exporter.errors import ConfigError
from exporter.offline.backtest import (
    RULES,
    AlertTracker,
    DriftStat,
    Row,
    conditions,
    parse_for,
)
from exporter.offline.baseline import ProfileBuilder
from exporter.offline.read import read_chunks
from exporter.offline.replay import Replayer, ReplayError, replay, with_alert_windows
from exporter.offline.report import Report, iso, render_text
from exporter.offline.simulate import LineTruth, Scenario, generate, generate_with_truth
from exporter.offline.thresholds import Override, Thresholds
from exporter.offline.thresholds_file import load_thresholds
from exporter.reference import Reference
from exporter.validate import parse_duration
from tests.configs import ROOT, example_config, write_config
from tests.harness import RUN_TIMEOUT

START = 1_764_000_000.0  # a multiple of 3600: steps and buckets line up with the log's start
RATE = 5.0
DRIFT_START = 1.5 * 3600
DRIFT_END = 3.0 * 3600
LINES = int(4.5 * 3600 * RATE)
CONTROLS = ("age", "device")
DRIFTING = ("amount", "merchant_risk", "country", "prediction")


@dataclass
class Episode:
    config_path: Path
    reference_path: Path
    log: Path
    config: Config
    reference: Reference
    calm: LineTruth
    truth: LineTruth
    report: Report


@pytest.fixture(scope="module")
def episode(tmp_path_factory: pytest.TempPathFactory) -> Episode:
    """A reference from a calm log, and 4.5 h of log with drift from 1.5 h to 3 h, replayed."""
    directory = tmp_path_factory.mktemp("replay")
    log = directory / "predictions.jsonl"
    lines, truth = generate_with_truth(
        LINES,
        START,
        RATE,
        Scenario(seed=2, drift_start=DRIFT_START, drift_end=DRIFT_END, malformed_ratio=0.02),
    )
    log.write_bytes(b"".join(lines))
    config_path = write_config(directory, example_config(log))
    config = load_config(config_path)
    calm_lines, calm = generate_with_truth(20_000, START - 86_400, RATE, Scenario(seed=1))
    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    builder.add(b"".join(calm_lines))
    reference = builder.build("2025-11-23T00:00:00+00:00")
    reference_path = directory / "reference.json"
    reference_path.write_text(reference.to_json())
    report = replay(read_chunks(str(log)), config, reference, source=str(log))
    return Episode(config_path, reference_path, log, config, reference, calm, truth, report)


def _spans(report: Report, window: str, config: Config) -> list[tuple[float, float]]:
    """[from, to) of log time each row of ``window`` covers: whole buckets back from the
    bucket holding the report time, up to the report time."""
    spec = next(w for w in config.windows if w.name == window)
    width = spec.seconds / config.window_buckets
    spans = []
    for row in report.rows:
        if row.window == window and row.model != UNKNOWN:
            epoch = math.floor((row.time - 1e-3) / width)
            spans.append(((epoch - config.window_buckets + 1) * width, row.time))
    return spans


def _in(ts: npt.NDArray[np.float64], span: tuple[float, float]) -> npt.NDArray[np.bool_]:
    inside: npt.NDArray[np.bool_] = (ts >= span[0]) & (ts < span[1])
    return inside


# -- the replayed episode -------------------------------------------------------------------------


def test_every_line_is_counted_once(episode: Episode) -> None:
    report, truth = episode.report, episode.truth
    assert report.records == int(truth.parses.sum())
    assert sum(report.parse_errors.values()) == int((~truth.parses).sum())
    assert report.retimed == 0  # the simulator writes in time order
    assert report.start == pytest.approx(truth.columns["ts"][0])


@pytest.mark.parametrize("window", ["1m", "5m", "1h"])
def test_window_counts_and_error_ratio_match_the_log(episode: Episode, window: str) -> None:
    truth = episode.truth
    ts = truth.columns["ts"]
    parses = truth.parses
    labelled = parses & truth.has_ground_truth
    rows = [r for r in episode.report.rows if r.window == window and r.model != UNKNOWN]
    spans = _spans(episode.report, window, episode.config)
    assert len(rows) == math.ceil(LINES / RATE / 60)  # one per minute of log
    for row, span in zip(rows, spans, strict=True):
        inside = _in(ts, span)
        assert row.records == int((inside & parses).sum())
        assert row.labelled == int((inside & labelled).sum())
        assert row.wrong == int((inside & labelled & truth.error).sum())


def test_unseen_country_share_matches_the_log(episode: Episode) -> None:
    truth = episode.truth
    ts = truth.columns["ts"]
    brazil = truth.parses & (truth.columns["country"] == "BR") & (truth.bad_field != "country")
    checked = 0
    for row, span in zip(
        [r for r in episode.report.rows if r.window == "5m" and r.model != UNKNOWN],
        _spans(episode.report, "5m", episode.config),
        strict=True,
    ):
        inside = _in(ts, span)
        expected = (inside & brazil).sum() / max((inside & truth.parses).sum(), 1)
        assert row.anomalies.get("country", {}).get("unseen_category", 0.0) == pytest.approx(
            expected
        )
        checked += expected > 0
    assert checked > 10


def test_no_alert_before_the_drift(episode: Episode) -> None:
    early = [a for a in episode.report.alerts if a.pending_since < START + DRIFT_START]
    assert early == []


def test_drift_alerts_name_the_drifting_fields_and_spare_the_controls(episode: Episode) -> None:
    drift = [
        a for a in episode.report.alerts if a.alert in ("ModelFeatureDrift", "ModelPredictionDrift")
    ]
    during = {
        a.labels["field"] for a in drift if START + DRIFT_START <= a.start < START + DRIFT_END
    }
    assert set(DRIFTING) <= during
    assert not {a.labels["field"] for a in drift} & set(CONTROLS)
    for a in drift:
        assert a.labels["window"] == "1h"
        assert a.start - a.pending_since >= RULES[a.alert].for_seconds
        kind = "ModelPredictionDrift" if a.labels["field"] == "prediction" else None
        assert kind is None or a.alert == kind


def test_drift_alerts_resolve_within_a_window_after_the_drift(episode: Episode) -> None:
    for a in episode.report.alerts:
        if a.alert in ("ModelFeatureDrift", "ModelPredictionDrift"):
            assert a.end is not None
            assert a.end <= START + DRIFT_END + 3600 + 300 + 60


def test_error_ratio_alert_fires_when_the_log_says_it_should(episode: Episode) -> None:
    """The 1h error ratio, computed from the log, is above 1.15× the development one over the
    whole ``for:`` before the alert fires."""
    fired = [a for a in episode.report.alerts if a.alert == "ModelErrorRateAboveDevelopment"]
    assert fired
    first = fired[0]
    assert START + DRIFT_START <= first.start < START + DRIFT_END
    calm = episode.calm
    dev = (calm.error & calm.has_ground_truth).sum() / calm.has_ground_truth.sum()
    truth = episode.truth
    labelled = truth.parses & truth.has_ground_truth
    spans = dict(
        zip(
            [r.time for r in episode.report.rows if r.window == "1h" and r.model != UNKNOWN],
            _spans(episode.report, "1h", episode.config),
            strict=True,
        )
    )
    t = first.pending_since
    while t <= first.start:
        inside = _in(truth.columns["ts"], spans[t]) & labelled
        assert inside.sum() >= 200
        assert (inside & truth.error).sum() / inside.sum() > 1.15 * dev
        t += 60.0
    before = _in(truth.columns["ts"], spans[first.pending_since - 60.0]) & labelled
    assert (before & truth.error).sum() / before.sum() <= 1.15 * dev


# -- the command line ---------------------------------------------------------------------------


def _table(text: str) -> list[list[str]]:
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("time "))
    rows = []
    for line in lines[head + 1 :]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def _fixed(value: float | None, digits: int, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def test_json_from_the_command_matches_the_text_report(episode: Episode) -> None:
    args = ["--config", str(episode.config_path), "--reference", str(episode.reference_path)]
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "replay", *args, "--json", str(episode.log)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    assert document["records"] == episode.report.records
    # The command's JSON against the text of the fixture's own replay of the same log (one
    # replay less: the same engine, config and profile give the same report).
    text = render_text(episode.report, "5m")
    rows = [r for r in document["rows"] if r["window"] == "5m"]
    table = _table(text)
    assert len(table) == len(rows)
    for cells, row in zip(table, rows, strict=True):
        assert cells[0] == iso(row["time"])
        assert cells[1:4] == [row["model"], row["version"], str(row["records"])]
        assert cells[4] == _fixed(row["error_ratio"], 1, 100.0)
        assert cells[5] == _fixed(row["error_ratio_gap"], 2)
        assert cells[6] == _fixed(row["confidence_gap"], 2)
        drift_cells = {c.split("=")[0]: c for c in cells[8:]}
        for d in row["drift"]:
            key = f"{d['field']}:{d['statistic']}"
            if key in drift_cells:
                value, threshold = drift_cells[key].split("=")[1].rstrip("!").split("/")
                assert float(value) == pytest.approx(d["value"], abs=5e-4)
                assert float(threshold) == pytest.approx(d["threshold"], abs=5e-4)
                assert drift_cells[key].endswith("!") == d["exceeded"]
    alert_lines = [line for line in text.splitlines() if line.startswith("  Model")]
    assert len(alert_lines) == len(document["alerts"])
    for line, alert in zip(alert_lines, document["alerts"], strict=True):
        assert line.split()[0] == alert["alert"]
        assert f"from {iso(alert['start'])}" in line


def test_bad_arguments_exit_2_and_a_missing_log_exits_1(
    episode: Episode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["replay", "--config", str(episode.config_path)]
    assert main([*base, "--for", "NoSuchAlert=5m", str(episode.log)]) == 2
    assert main([*base, "--every", "soon", str(episode.log)]) == 2
    assert main([*base, "--window", "2m", str(episode.log)]) == 2
    assert main([*base, "--error-factor", "nan", str(episode.log)]) == 2
    assert main([*base, "--anomaly-max", "2", str(episode.log)]) == 2
    assert main([*base, "--latency-p99-max", "-1", str(episode.log)]) == 2
    assert main([*base, str(tmp_path / "missing.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "NoSuchAlert" in err
    assert "--error-factor: must be a finite number >= 0 (got nan)" in err
    assert "--anomaly-max: must be a share from 0 to 1 (got 2.0)" in err


# -- time from the records -----------------------------------------------------------------------


SMALL = Scenario(seed=5)


def _small_config(tmp_path: Path) -> Config:
    return load_config(write_config(tmp_path, example_config(tmp_path / "x.jsonl")))


def _strip_ts(line: bytes) -> bytes:
    return re.sub(rb'^\{"ts": [0-9.]+, ', b"{", line)


def _minute_counts(report: Report) -> dict[float, int]:
    """Records per report time, over every model (lines that name none count under
    __unknown__, in rows of their own)."""
    counts: dict[float, int] = {}
    for r in report.rows:
        if r.window == "1m":
            counts[r.time] = counts.get(r.time, 0) + r.records
    return counts


def _expected_minutes(times: npt.NDArray[np.float64]) -> dict[float, int]:
    minutes = (np.floor(times / 60.0) + 1) * 60.0
    values, counts = np.unique(minutes, return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


def test_records_without_a_timestamp_take_the_latest_time_before_them(tmp_path: Path) -> None:
    lines = generate(3000, START, 10.0, SMALL)
    ts = np.array([json.loads(line)["ts"] for line in lines])
    missing = np.zeros(len(lines), dtype=bool)
    missing[::7] = True
    missing[:3] = True  # before any timestamp: they take the first one
    data = b"".join(_strip_ts(x) if m else x for x, m in zip(lines, missing, strict=True))
    report = replay([data], _small_config(tmp_path), None)
    expected = np.fmax.accumulate(np.where(missing, np.nan, ts))
    expected[:3] = ts[3]
    assert report.retimed == int(missing.sum())
    assert report.records == len(lines)
    counts = _minute_counts(report)
    assert {t: c for t, c in counts.items() if c} == _expected_minutes(expected)
    missing_ratio = [
        r.anomalies.get("timestamp", {}).get("missing", 0.0) * r.records
        for r in report.rows
        if r.window == "1m"
    ]
    assert sum(round(x) for x in missing_ratio) == int(missing.sum())


def test_out_of_order_records_keep_their_time_within_a_block(tmp_path: Path) -> None:
    lines = generate(3000, START, 10.0, SMALL)
    ts = np.array([json.loads(line)["ts"] for line in lines])
    order = np.arange(len(lines))
    order[[100, 2500]] = order[[2500, 100]]  # one record four minutes early, one late
    report = replay([b"".join(lines[i] for i in order)], _small_config(tmp_path), None)
    assert report.retimed == 0
    assert _minute_counts(report) == _expected_minutes(ts)


def test_a_record_older_than_an_earlier_block_takes_its_latest_time(tmp_path: Path) -> None:
    lines = generate(3000, START, 5.0, SMALL)
    ts = np.array([json.loads(line)["ts"] for line in lines])
    replayer = Replayer(_small_config(tmp_path), None)
    replayer.feed(b"".join(lines[:2000]))
    replayer.feed(lines[100] + b"".join(lines[2000:]))
    report = replayer.finish()
    expected = np.concatenate([ts[:2000], [ts[1999]], ts[2000:]])
    assert report.retimed == 1
    assert report.records == 3001
    assert _minute_counts(report) == _expected_minutes(expected)
    assert ts[1999] - ts[100] > 300.0  # more than late_after behind: counted late, as live
    late = sum(
        r.anomalies.get("timestamp", {}).get("late", 0.0) * r.records
        for r in report.rows
        if r.window == "1m"
    )
    assert round(late) == 1


def test_a_first_block_without_timestamps_waits_for_the_first_one(tmp_path: Path) -> None:
    lines = generate(600, START, 10.0, SMALL)
    replayer = Replayer(_small_config(tmp_path), None)
    replayer.feed(b"".join(_strip_ts(x) for x in lines[:20]))
    replayer.feed(b"not json\n")
    replayer.feed(b"".join(lines[20:]))
    report = replayer.finish()
    assert report.records == 600
    assert report.retimed == 20
    assert report.parse_errors == {"invalid_json": 1}
    assert sum(_minute_counts(report).values()) == 600


def test_epoch_milliseconds_read_as_seconds_are_named_in_the_error(tmp_path: Path) -> None:
    """Without ``unit: ms``, epoch milliseconds are dates after the year 5000: no record has a
    usable time, and the error says which field held what, and how to fix it."""
    lines = [json.loads(x) for x in generate(50, START, 10.0, SMALL)]
    data = b"".join(json.dumps({**r, "ts": int(r["ts"] * 1000)}).encode() + b"\n" for r in lines)
    with pytest.raises(ReplayError) as error:
        replay([data], _small_config(tmp_path), None)
    message = str(error.value)
    assert "50 record(s) carry a ts that is not a time" in message
    assert "unit: ms" in message
    with pytest.raises(ReplayError) as error:  # none at all: no hint to give
        replay(
            [b"".join(_strip_ts(x) for x in generate(5, START, 10.0, SMALL))],
            _small_config(tmp_path),
            None,
        )
    assert str(error.value) == "no record has a timestamp: nothing to drive time"


def test_a_gap_of_days_in_the_log_costs_no_empty_steps(tmp_path: Path) -> None:
    first = generate(600, START, 10.0, SMALL)
    later = generate(600, START + 30 * 86_400, 10.0, replace(SMALL, seed=6))
    report = replay([b"".join(first), b"".join(later)], _small_config(tmp_path), None)
    steps = {r.time for r in report.rows}
    assert len(steps) < 2 * (3600 + 300 + 60 + 60) / 60 + 4
    assert sum(_minute_counts(report).values()) == 1200


# -- the rules, as plain Python -----------------------------------------------------------------


def test_the_rules_mirror_the_bundled_alerting_rules() -> None:
    rules_dir = ROOT / "config" / "prometheus" / "rules"
    alerts = {
        rule["alert"]: rule
        for group in yaml.safe_load((rules_dir / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    for name, rule in RULES.items():
        assert parse_duration(alerts[name]["for"]) == rule.for_seconds, name
        assert alerts[name]["labels"]["severity"] == rule.severity, name
        expression = alerts[name]["expr"]
        # The 1h window, a 1h rate or a recording rule over [1h] (named ...:1h)
        window = 'window="1h"' in expression or "rate1h" in expression or ":1h{" in expression
        assert window == (rule.window == 3600.0), name
    constants = {
        rule["record"]: float(re.sub(r"vector\((.*)\)", r"\1", rule["expr"]))
        for group in yaml.safe_load((rules_dir / "thresholds.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    t = Thresholds()
    assert constants["model_alert:error_ratio_factor"] == t.error_factor
    assert constants["model_alert:error_ratio_min_labels"] == t.error_min_labels
    assert constants["model_alert:mae_factor"] == t.mae_factor
    assert constants["model_alert:mae_min_labels"] == t.mae_min_labels
    assert constants["model_alert:confidence_gap_min"] == t.confidence_min
    assert constants["model_alert:latency_p99_slo_seconds"] == t.latency_p99_max
    assert constants["model_alert:anomaly_ratio_max"] == t.anomaly_max
    assert constants["model_alert:parse_error_ratio_max"] == t.parse_error_max


def _row(window: str, **values: Any) -> Row:
    base: dict[str, Any] = {
        "time": 0.0,
        "model": "m",
        "version": "v",
        "window": window,
        "records": 1000,
        "labelled": 500,
        "wrong": 0,
        "error_ratio": None,
        "error_ratio_gap": None,
        "confidence_gap": None,
        "latency_p99_seconds": None,
        "parse_errors": 0,
        "anomalies": {},
        "drift": [],
    }
    return Row(**{**base, **values})


def _names(rows: list[Row], t: Thresholds | None = None) -> set[str]:
    return {name for name, _ in conditions(rows, t or Thresholds(), "1h", "5m", "log")}


def test_each_condition_is_strictly_above_or_below_its_threshold() -> None:
    t = Thresholds()
    assert _names([_row("1h", error_ratio_gap=t.error_factor)]) == set()
    assert _names([_row("1h", error_ratio_gap=1.2)]) == {"ModelErrorRateAboveDevelopment"}
    assert _names([_row("1h", error_ratio_gap=1.2, labelled=t.error_min_labels - 1)]) == set()
    assert _names([_row("5m", error_ratio_gap=1.2)]) == set()  # the rule reads the 1h window
    assert _names([_row("1h", mae_gap=t.mae_factor)]) == set()
    assert _names([_row("1h", mae_gap=1.3)]) == {"ModelMAEAboveDevelopment"}
    assert _names([_row("1h", mae_gap=1.3, labelled=t.mae_min_labels - 1)]) == set()
    assert _names([_row("5m", mae_gap=1.3)]) == set()
    assert _names([_row("1h", confidence_gap=t.confidence_min)]) == set()
    assert _names([_row("1h", confidence_gap=0.89)]) == {"ModelConfidenceDrop"}
    assert _names([_row("5m", latency_p99_seconds=0.51)]) == {"ModelLatencyHigh"}
    assert _names([_row("5m", anomalies={"amount": {"missing": 0.05}})]) == set()
    assert _names([_row("5m", anomalies={"amount": {"missing": 0.06}})]) == {
        "ModelAnomalyRatioHigh"
    }
    assert _names([_row("5m", records=990, parse_errors=10)]) == set()  # exactly 1 %
    assert _names([_row("5m", records=980, parse_errors=20)]) == {"ModelExporterParseErrorsHigh"}
    drifted = [
        DriftStat("amount", "psi", 0.2, 0.1, True),
        DriftStat("predicted_class", "js", 0.3, 0.13, True),
        DriftStat("age", "ks", 0.01, 0.05, False),
    ]
    assert _names([_row("1h", drift=drifted)]) == {"ModelFeatureDrift", "ModelPredictionDrift"}
    assert _names([_row("5m", drift=drifted)]) == set()
    loose = Thresholds(anomaly_max=0.1)
    assert _names([_row("5m", anomalies={"amount": {"missing": 0.06}})], loose) == set()


@given(
    holding=st.lists(st.booleans(), max_size=60),
    for_steps=st.integers(min_value=0, max_value=6),
)
def test_for_durations_behave_as_runs_of_consecutive_evaluations(
    holding: list[bool], for_steps: int
) -> None:
    """An alert fires at the (for + 1)-th consecutive evaluation holding its condition and
    resolves at the first that does not: checked against run lengths of the sequence."""
    key = ("ModelLatencyHigh", (("model", "m"),))
    tracker = AlertTracker({"ModelLatencyHigh": 60.0 * for_steps})
    for i, h in enumerate(holding):
        tracker.observe(60.0 * i, [key] if h else [])
    got = [(e.pending_since, e.start, e.end) for e in tracker.finish()]
    expected = []
    i = 0
    while i < len(holding):
        if not holding[i]:
            i += 1
            continue
        j = i
        while j < len(holding) and holding[j]:
            j += 1
        if j - i > for_steps:
            end = 60.0 * j if j < len(holding) else None
            expected.append((60.0 * i, 60.0 * (i + for_steps), end))
        i = j
    assert got == expected


def test_late_labels_join_in_log_time() -> None:
    """Predictions at t = 0..99 s, their labels 60 s later on their own lines: with the join on,
    the labels count (in the window where they arrive) and are not predictions themselves."""
    config = replace(load_config(ROOT / "config" / "exporter.yaml"), label_join=True)
    lines = []
    for i in range(100):
        lines.append(
            {
                "ts": 1_000.0 + i,
                "request_id": f"r{i}",
                "predicted_class": "fraud",
                "prediction": 0.9,
            }
        )
    for i in range(100):
        label = "legit" if i % 4 == 0 else "fraud"
        lines.append({"ts": 1_060.0 + i, "request_id": f"r{i}", "ground_truth": label})
    data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    report = replay([data], config, None, every=60.0)
    assert report.records == 100
    last = max(row.time for row in report.rows if row.window == "1h")
    final = next(row for row in report.rows if row.window == "1h" and row.time == last)
    assert (final.records, final.labelled, final.wrong) == (100, 100, 25)


def test_a_regression_model_is_reported_with_mae_rmse_and_their_gaps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A score and a numeric label: each row carries the window's MAE and RMSE and their ratio
    to development (numpy over the log's own values), no error ratio; text and JSON say so."""
    fields = {"timestamp": "ts", "model_name": "m", "model_version": "v"}
    fields |= {"prediction": "y_hat", "ground_truth": "y"}
    data = {"sources": [str(tmp_path / "x.jsonl")], "fields": fields, "windows": ["1m"]}
    config_path = write_config(tmp_path, data)
    config = load_config(config_path)
    rng = np.random.default_rng(9)

    def lines(start: float, n: int, noise: float) -> tuple[bytes, np.ndarray, np.ndarray]:
        ts = start + np.arange(n) * 0.5
        truth = rng.normal(100.0, 10.0, n)
        guess = truth + rng.normal(0.0, noise, n)
        text = b"".join(
            json.dumps({"ts": t, "y_hat": p, "y": y}).encode() + b"\n"
            for t, p, y in zip(ts.tolist(), guess.tolist(), truth.tolist(), strict=True)
        )
        return text, ts, guess - truth

    dev, _, _ = lines(START - 86_400, 2000, 1.0)
    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    builder.add(dev)
    reference = builder.build("2025-11-23T00:00:00+00:00")
    assert reference.mae is not None
    assert reference.rmse is not None
    (tmp_path / "reference.json").write_text(reference.to_json())
    log, ts, residual = lines(START, 1200, 3.0)  # three times the development noise, 10 min
    (tmp_path / "x.jsonl").write_bytes(log)

    for_seconds = parse_for(["ModelMAEAboveDevelopment=2m"])
    report = replay([log], config, reference, for_seconds=for_seconds)
    assert report.regression
    rows = [r for r in report.rows if r.window == "1m"]
    assert len(rows) == 10
    for row, span in zip(rows, _spans(report, "1m", with_alert_windows(config)), strict=True):
        inside = residual[_in(ts, span)]
        assert row.labelled == len(inside) > 0
        assert row.error_ratio is None
        assert row.error_ratio_gap is None
        assert row.mae == pytest.approx(np.abs(inside).mean(), rel=1e-9)
        assert row.rmse == pytest.approx(np.sqrt((inside**2).mean()), rel=1e-9)
        assert row.mae_gap == pytest.approx(row.mae / reference.mae, rel=1e-9)
        assert row.rmse_gap == pytest.approx(row.rmse / reference.rmse, rel=1e-9)
        assert 2.0 < row.mae_gap < 4.0
    (alert,) = report.alerts  # 1h MAE over 1.2x development with 200 labels (100 s), for 2m
    assert alert.alert == "ModelMAEAboveDevelopment"
    hour = [r for r in report.rows if r.window == "1h"]
    since = next(r.time for r in hour if r.labelled >= 200)
    assert (alert.pending_since, alert.start, alert.end) == (since, since + 120.0, None)

    args = ["replay", "--config", str(config_path), "--reference", str(tmp_path / "reference.json")]
    assert main([*args, "--window", "1m", str(tmp_path / "x.jsonl")]) == 0
    text = capsys.readouterr().out
    assert "err%" not in text
    header = next(line for line in text.splitlines() if line.startswith("time "))
    assert header.split()[:9] == [
        "time",
        "model",
        "version",
        "n",
        "mae",
        "gap",
        "rmse",
        "gap",
        "conf",
    ]
    for cells, row in zip(_table(text), rows, strict=True):
        assert cells[4:8] == [
            _fixed(row.mae, 4),
            _fixed(row.mae_gap, 2),
            _fixed(row.rmse, 4),
            _fixed(row.rmse_gap, 2),
        ]
    assert main([*args, "--json", str(tmp_path / "x.jsonl")]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["regression"] is True
    for got, row in zip([r for r in document["rows"] if r["window"] == "1m"], rows, strict=True):
        assert (got["mae"], got["rmse"], got["mae_gap"], got["rmse_gap"]) == (
            row.mae,
            row.rmse,
            row.mae_gap,
            row.rmse_gap,
        )
        assert got["error_ratio"] is None


def test_fleet_drift_is_mirrored_on_the_sidecars_own_counts(episode: Episode) -> None:
    """One sidecar's fleet is itself: ModelFleetDrift fires on the drifting fields (PSI for the
    numeric ones, JS for the categorical ones) during the drift, names the profile, spares the
    controls and resolves within the 1h range after the drift."""
    fleet = [a for a in episode.report.alerts if a.alert == "ModelFleetDrift"]
    during = {
        a.labels["field"] for a in fleet if START + DRIFT_START <= a.start < START + DRIFT_END
    }
    assert set(DRIFTING) <= during
    assert not {a.labels["field"] for a in fleet} & {*CONTROLS, "confidence", "latency_seconds"}
    for a in fleet:
        assert a.labels["reference_hash"] == episode.reference.hash
        categorical = a.labels["field"] in episode.reference.categorical
        assert a.labels["statistic"] == ("js" if categorical else "psi")
        assert a.start - a.pending_since >= RULES["ModelFleetDrift"].for_seconds
        assert a.end is not None
        assert a.end <= START + DRIFT_END + 3600 + 60


# -- thresholds from a rule file (--thresholds) ---------------------------------------------------


def test_overrides_resolve_as_the_recording_rules_do() -> None:
    """Model and field, then model, then the default; another model keeps the default."""
    t = Thresholds(
        overrides=(
            Override("anomaly_max", "m", "", 0.15),
            Override("anomaly_max", "m", "amount", 0.5),
            Override("error_factor", "m", "", 2.0),
            Override("drift_ratio_max", "m", "age", 3.0),
        )
    )
    missing = {"amount": {"missing": 0.3}, "age": {"missing": 0.1}}
    assert _names([_row("5m", anomalies=missing)], t) == set()
    assert _names([_row("5m", anomalies={"age": {"missing": 0.2}})], t) == {"ModelAnomalyRatioHigh"}
    assert _names([_row("5m", model="other", anomalies=missing)], t) == {"ModelAnomalyRatioHigh"}
    assert _names([_row("1h", error_ratio_gap=1.9)], t) == set()
    assert _names([_row("1h", model="other", error_ratio_gap=1.9)], t) == {
        "ModelErrorRateAboveDevelopment"
    }
    age = [DriftStat("age", "ks", 0.2, 0.1, True)]
    assert _names([_row("1h", drift=age)], t) == set()  # 2x its threshold, allowed 3x
    assert _names([_row("1h", model="other", drift=age)], t) == {"ModelFeatureDrift"}
    ratio = Thresholds(drift_ratio_max=1.5)
    assert _names([_row("1h", drift=age)], ratio) == {"ModelFeatureDrift"}
    assert _names([_row("1h", drift=[DriftStat("age", "ks", 0.14, 0.1, True)])], ratio) == set()


def test_the_bundled_thresholds_file_reads_as_the_defaults() -> None:
    path = ROOT / "config" / "prometheus" / "rules" / "thresholds.yml"
    assert load_thresholds(str(path), Thresholds(), frozenset()) == Thresholds()


def test_the_documented_overrides_are_read_with_their_labels() -> None:
    path = ROOT / "config" / "prometheus" / "tests" / "threshold_overrides.yml"
    t = load_thresholds(str(path), Thresholds(), frozenset())
    assert t.of("error_factor", "churn") == 1.3
    assert t.of("error_factor", "fraud-detector") == Thresholds().error_factor
    assert t.of("drift_ratio_max", "fraud-detector", "country") == 2.0
    assert t.of("drift_ratio_max", "fraud-detector", "amount") == 1.0
    assert t.of("drift_ratio_max", "churn", "amount") == 2.0
    assert t.of("anomaly_max", "fraud-detector", "device") == 0.2
    assert t.of("anomaly_max", "churn", "device") == 0.15
    assert t.of("latency_p99_max", "batch-scorer") == 2.0
    assert t.of("mae_min_labels", "small-regressor") == 50


def _rule_file(tmp_path: Path, *rules: dict[str, Any]) -> str:
    path = tmp_path / "thresholds.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "t", "rules": list(rules)}]}))
    return str(path)


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"expr": "vector(1) * 2"}, "expr must be vector(NUMBER)"),
        ({"expr": "vector(1)", "labels": {"instance": "a"}}, "label instance not allowed"),
        (
            {
                "record": "model_alert:anomaly_ratio_max",
                "expr": "vector(1)",
                "labels": {"field": "a"},
            },
            "a field label needs a model",
        ),
        ({"expr": "vector(-1)"}, "must be a finite number >= 0 (got -1.0)"),
        ({"expr": "vector(+Inf)"}, "must be a finite number >= 0 (got inf)"),
    ],
)
def test_a_bad_thresholds_file_is_refused_naming_the_rule(
    tmp_path: Path, rule: dict[str, Any], problem: str
) -> None:
    rule = {"record": "model_alert:error_ratio_factor", **rule}
    path = _rule_file(tmp_path, rule)
    with pytest.raises(ConfigError) as caught:
        load_thresholds(path, Thresholds(), frozenset()).check()
    assert problem in str(caught.value)
    assert rule["record"].removeprefix("model_alert:") in str(caught.value)


def test_a_field_label_on_a_model_only_threshold_or_a_global_one_is_refused(
    tmp_path: Path,
) -> None:
    path = _rule_file(
        tmp_path,
        {
            "record": "model_alert:error_ratio_factor",
            "expr": "vector(2)",
            "labels": {"model": "m", "field": "age"},
        },
        {
            "record": "model_alert:parse_error_ratio_max",
            "expr": "vector(0.1)",
            "labels": {"model": "m"},
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_thresholds(path, Thresholds(), frozenset())
    text = str(caught.value)
    assert "rules[0] (model_alert:error_ratio_factor): label field not allowed" in text
    assert "rules[1] (model_alert:parse_error_ratio_max): label model not allowed" in text


def test_replay_applies_a_thresholds_file_and_a_flag_beats_its_default(
    episode: Episode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file's default factor silences the episode's error alert, and the flag, given,
    beats the file's default. The file's overrides are in the report."""
    model = episode.report.rows[0].model
    assert any(a.alert == "ModelErrorRateAboveDevelopment" for a in episode.report.alerts)
    rules = _rule_file(
        tmp_path,
        {"record": "model_alert:error_ratio_factor", "expr": "vector(50)"},
        {
            "record": "model_alert:anomaly_ratio_max",
            "expr": "vector(1)",
            "labels": {"model": model, "field": "country"},
        },
    )
    base = ["replay", "--config", str(episode.config_path), "--json"]
    base += ["--reference", str(episode.reference_path), "--thresholds", rules]

    def alerts(*flags: str) -> set[str]:
        assert main([*base, *flags, str(episode.log)]) == 0
        document = json.loads(capsys.readouterr().out)
        override = {"threshold": "anomaly_max", "model": model, "field": "country", "value": 1}
        assert document["thresholds"]["overrides"] == [override]
        return {a["alert"] for a in document["alerts"]}

    assert "ModelErrorRateAboveDevelopment" not in alerts()
    assert "ModelErrorRateAboveDevelopment" in alerts("--error-factor", "1.15")
