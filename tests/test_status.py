"""``/api/v1/status``: the document against its documented schema, its numbers against the store
and the assessment they come from, the history's cap, and the endpoint's bounded work."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from exporter.clock import ManualClock
from exporter.config import parse_config
from exporter.downsample import bins
from exporter.engine import Engine
from exporter.health import Health, SourceStats
from exporter.offline.baseline import ProfileBuilder
from exporter.offline.simulate import Scenario, generate
from exporter.status import (
    CACHED_DOCUMENTS,
    MAX_HISTORY_POINTS,
    Inputs,
    StatusEndpoint,
    document,
)
from tests.configs import example_config, regression_fields, regression_lines, unread_config

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "status-api.schema.json").read_text())
DOC = (ROOT / "docs" / "status-api.md").read_text()
T0 = 1_800_000_000.0
SOURCE = "/var/log/model/predictions.jsonl"


def _engine(windows: list[str] | None = None) -> Engine:
    data = example_config(SOURCE)
    if windows is not None:
        data["windows"] = windows
    config = parse_config(data)
    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    builder.add(b"".join(generate(8000, T0 - 86_400, 10.0, Scenario(seed=3))))
    return Engine(config, builder.build("2026-01-01T00:00:00+00:00"))


def _inputs(engine: Engine, clock: ManualClock) -> Inputs:
    stats = SourceStats(lines=1200, bytes_read=360_000, open_files=1, files_present=1)
    health = Health(
        sources={SOURCE: stats},
        parse_errors={(SOURCE, "invalid_json"): 3},
        last_read={SOURCE: T0 + 10.0},
        ingest_seconds=0.25,
        reference_reloads={"ok": 1},
    )
    return Inputs(
        snapshot=lambda: engine.state.snapshot(clock.now()),
        assessment=lambda: engine.assessor.latest,
        history=engine.assessor.history,
        health=lambda: health,
        live=lambda: (True, "ok"),
        ready=lambda: (True, "ok"),
        step=engine.assessor.step,
    )


def _feed(engine: Engine, clock: ManualClock, steps: int, drift_from: int) -> None:
    """``steps`` assessment steps of traffic, drifted from step ``drift_from`` on."""
    scenario = Scenario(drift_start=0.0)
    for k in range(steps):
        now = T0 + engine.assessor.step * k + 0.5
        clock.set(now)
        lines = generate(60, now, 100.0, scenario if k >= drift_from else Scenario(), 60 * k)
        engine.ingest(b"".join(lines), now)


def test_the_document_matches_its_schema_and_the_numbers_it_comes_from() -> None:
    engine = _engine()
    clock = ManualClock(T0)
    _feed(engine, clock, steps=40, drift_from=20)
    clock.advance(engine.assessor.step)
    engine.advance(clock.now())
    doc = json.loads(json.dumps(document(_inputs(engine, clock), clock.now(), T0, None)))
    jsonschema.validate(doc, SCHEMA)

    snapshot = engine.state.snapshot(clock.now())
    [group] = snapshot.groups
    [model] = doc["models"]
    assert (model["model"], model["version"]) == (group.model, group.version)
    assert model["records_total"] == group.totals.records
    assert doc["assessed_at"] == engine.assessor.latest.at
    for view in group.windows:
        shown = model["windows"][view.spec.name]
        assert shown["records"] == view.summary.records
        assessed = engine.assessor.latest.window(group.model, group.version, view.spec.name)
        assert assessed is not None
        assert [
            (d["field"], d["statistic"], d["value"], d["threshold"], d["drifted"])
            for d in shown["drift"]
        ] == [
            (d.field, d.statistic, d.verdict.statistic, d.verdict.threshold, d.verdict.drifted)
            for d in assessed.drift
        ]
        amount = next(f for f in shown["numeric"] if f["field"] == "amount")
        f = [s.name for s in snapshot.layout.numeric].index("amount")
        assert amount["samples"] == int(view.summary.count[f])
        assert amount["mean"] == pytest.approx(view.summary.mean(f))
    assert any(d["drifted"] for d in model["windows"]["1m"]["drift"])  # the drift shows
    [source] = doc["sidecar"]["sources"]
    assert source["source"] == SOURCE
    assert source["lines_total"] == 1200
    assert source["parse_errors"] == {"invalid_json": 3}
    assert snapshot.reference is not None
    assert doc["reference"]["hash"] == snapshot.reference.hash


def test_it_reveals_nothing_of_the_reference_but_what_metrics_shows() -> None:
    """The reference's source (the path of the development log) and its vocabulary are not
    exported on /metrics, so not here either."""
    engine = _engine()
    clock = ManualClock(T0)
    _feed(engine, clock, steps=3, drift_from=99)
    doc = document(_inputs(engine, clock), clock.now(), T0, None)
    assert set(doc["reference"]) == {
        "hash",
        "created",
        "age_seconds",
        "records",
        "labelled",
        "error_ratio",
        "mae",
        "rmse",
        "numeric",
        "categorical",
    }
    assert "vocabulary" not in json.dumps(doc)


def _keys(schema: Any, found: set[str]) -> set[str]:
    if isinstance(schema, dict):
        for key, value in schema.get("properties", {}).items():
            found.add(key)
            _keys(value, found)
        for key in ("items", "additionalProperties", "oneOf"):
            value = schema.get(key)
            if isinstance(value, list):
                for item in value:
                    _keys(item, found)
            elif isinstance(value, dict):
                _keys(value, found)
    return found


def test_every_key_of_the_schema_is_documented() -> None:
    rows = [line for line in DOC.splitlines() if line.startswith("| ")]
    documented = {key for row in rows for key in re.findall(r"`([a-z_0-9]+)`", row)}
    missing = sorted(_keys(SCHEMA, set()) - documented)
    assert not missing, f"docs/status-api.md does not describe: {missing}"


def test_history_is_capped_and_keeps_the_largest_statistic_of_each_bin() -> None:
    engine = _engine(windows=["1m", "5m"])
    clock = ManualClock(T0)
    steps = 3 * MAX_HISTORY_POINTS  # more 5 s buckets than the cap
    _feed(engine, clock, steps=steps, drift_from=steps - 30)
    points = engine.assessor.history("fraud-detector", "v3", "1m")
    assert len(points) > MAX_HISTORY_POINTS
    doc = document(_inputs(engine, clock), clock.now(), T0, ["1m"])
    [model] = doc["models"]
    assert set(model["history"]) == {"1m"}
    history = model["history"]["1m"]
    assert history["points"] == len(history["time"]) <= MAX_HISTORY_POINTS
    assert history["downsampled_from"] == len(points)
    shown = history["drift"]["merchant_risk"]["psi"]["value"]
    raw = [
        d.value
        for p in points
        for d in p.drift
        if (d.field, d.statistic) == ("merchant_risk", "psi")
    ]
    assert max(v for v in shown if v is not None) == pytest.approx(max(raw), rel=1e-5)
    assert history["time"] == sorted(history["time"])


def test_bins_cover_every_point_once_within_the_cap() -> None:
    for n in (0, 1, 5, 120, 121, 719, 720, 10_000):
        found = bins(n, 120)
        assert len(found) <= 120
        assert [i for b in found for i in b] == list(range(n))


def test_the_endpoint_builds_at_most_once_per_interval_and_refuses_unknown_queries() -> None:
    engine = _engine()
    clock = ManualClock(T0)
    _feed(engine, clock, steps=3, drift_from=99)
    endpoint = StatusEndpoint(_inputs(engine, clock), ["1m", "5m", "1h"], clock, min_interval=1.0)
    code, body = endpoint.get("")
    assert code == 200
    again = endpoint.get("history=all")
    assert again == (200, body)
    assert endpoint.builds == 1
    code, zipped = endpoint.get("", gzipped=True)
    assert gzip.decompress(zipped) == body
    assert endpoint.builds == 1
    clock.advance(1.0)
    assert endpoint.get("")[0] == 200
    assert endpoint.builds == 2
    only = json.loads(endpoint.get("history=5m")[1])
    assert set(only["models"][0]["history"]) == {"5m"}
    none = json.loads(endpoint.get("history=none")[1])
    assert none["models"][0]["history"] == {}
    for query, message in (
        ("history=2m", b"'2m' is not a window"),
        ("window=1m", b"unknown parameter 'window'"),
        ("history=1m&history=5m", b"history: give it once"),
    ):
        code, body = endpoint.get(query)
        assert code == 400
        assert message in body
    assert body.isascii()


def test_the_cache_holds_one_document_per_set_of_windows_and_a_bounded_number_of_them() -> None:
    """Each distinct query string was a document of its own, kept forever: with 10 windows,
    millions of orderings. A set of windows is one key whatever its order, and at most
    CACHED_DOCUMENTS are kept."""
    engine = _engine()
    clock = ManualClock(T0)
    _feed(engine, clock, steps=3, drift_from=99)
    windows = ["1m", "5m", "1h"]
    endpoint = StatusEndpoint(_inputs(engine, clock), windows, clock, min_interval=1.0)
    assert endpoint.get("history=1h,1m") == endpoint.get("history=1m,1h,1m")
    assert endpoint.builds == 1
    for query in ("all", "none", "1m", "5m", "1h", "1m,5m", "5m,1h", "1m,1h", "1m,5m,1h"):
        assert endpoint.get(f"history={query}")[0] == 200
    assert len(endpoint._cache) <= CACHED_DOCUMENTS


def test_label_values_come_back_exactly_and_the_bytes_are_ascii() -> None:
    engine = _engine()
    clock = ManualClock(T0)
    name = '<script>alert("x")</script> é ✓'
    line = generate(1, T0, 1.0, Scenario())[0].replace(
        b'"fraud-detector"', json.dumps(name).encode()
    )
    engine.ingest(line, T0)
    endpoint = StatusEndpoint(_inputs(engine, clock), ["1m", "5m", "1h"], clock)
    code, body = endpoint.get("history=none")
    assert code == 200
    assert body.isascii()
    assert b"<script>" in body  # JSON needs no HTML escaping: the page renders it as text
    assert json.loads(body)["models"][0]["model"] == name
    assert np.isfinite(json.loads(body)["generated_at"])


def test_a_regression_model_gets_mae_and_rmse_and_no_error_ratio() -> None:
    config = unread_config(regression_fields())
    rng = np.random.default_rng(5)

    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    builder.add(regression_lines(rng, 2000, 2.0))
    engine = Engine(config, builder.build("2026-01-01T00:00:00+00:00"))
    clock = ManualClock(T0)
    for k in range(6):
        clock.set(T0 + 5.0 * k + 0.5)
        engine.ingest(regression_lines(rng, 300, 6.0), clock.now())
    clock.advance(5.0)
    engine.advance(clock.now())
    doc = json.loads(json.dumps(document(_inputs(engine, clock), clock.now(), T0, None)))
    jsonschema.validate(doc, SCHEMA)
    window = doc["models"][0]["windows"]["1m"]
    assert window["error_ratio"] is None
    assert window["mae"] == pytest.approx(6.0 * np.sqrt(2 / np.pi), rel=0.1)
    assert window["gaps"]["mae"] == pytest.approx(3.0, rel=0.15)  # three times the noise
    assert window["gaps"]["error_ratio"] is None
    history = doc["models"][0]["history"]["1m"]
    assert max(v for v in history["mae_gap"] if v is not None) == pytest.approx(3.0, rel=0.15)
