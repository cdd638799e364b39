"""Config validation: every problem at once, each with the key it is about; defaults; the
shipped example configs parse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exporter.config import DEFAULT_HISTOGRAMS, load_config, parse_config
from exporter.config_types import Config, DriftConfig, TailConfig, WindowSpec
from exporter.decode import Decoder
from exporter.errors import ConfigError
from exporter.validate import parse_duration, parse_listen_address

ROOT = Path(__file__).resolve().parent.parent
MINIMAL: dict[str, Any] = {"sources": ["/var/log/p.jsonl"], "fields": {"prediction": "score"}}


def problems(raw: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def with_(**overrides: Any) -> dict[str, Any]:
    return {**MINIMAL, **overrides}


def test_minimal_config_gets_the_documented_defaults() -> None:
    config = parse_config(MINIMAL)
    d = Config()
    assert config.listen_address == ":10027"
    assert config.sources[0].path == "/var/log/p.jsonl"
    assert config.sources[0].start_at == "end"
    assert config.sources[0].format == "json"
    assert config.windows == d.windows
    assert [w.name for w in config.windows] == ["1m", "5m", "1h"]
    assert config.window_buckets == 12
    assert config.quantiles == (0.5, 0.9, 0.99)
    assert config.sketch_relative_accuracy == 0.01
    assert config.late_after == 300.0
    assert config.future_after == 60.0
    assert config.tail == TailConfig()
    assert config.drift == DriftConfig()
    assert dict(config.histograms) == DEFAULT_HISTOGRAMS
    assert config.reference is None
    fields = config.fields
    assert fields.timestamp == ("ts",)
    assert fields.timestamp_scale == 1.0
    assert (fields.model_value, fields.version_value) == ("unknown", "unknown")
    assert fields.model_path is None
    assert fields.prediction is not None
    assert fields.prediction.path == ("score",)
    assert fields.prediction.max_categories == 50
    assert [f.name for f in fields.numeric] == ["prediction"]


def test_every_problem_is_reported_at_once_with_its_key() -> None:
    raw = {
        "bogus": 1,
        "sources": [{"path": 5}, {"nope": 1}, 7, {"path": "/a", "start_at": "middle"}],
        "tail": {"poll_interval": "fast", "watch": "yes"},
        "fields": {
            "latency": {"path": "lat", "unit": "min"},
            "prediction": {"path": "p", "min": 2, "max": 1},
            "confidence": {"path": "c..d"},
            "timestamp": {"path": "t", "unit": "h"},
            "features": [
                {"name": "a"},
                {"name": "a"},
                {"name": "prediction"},
                {"name": "bad-name"},
                {"name": "c", "type": "categorical", "min": 1},
                {"name": "d", "type": "text"},
                {"path": "x"},
            ],
        },
        "windows": ["5x", 0, "1m", "1m"],
        "window_buckets": 0,
        "quantiles": [0, 1.5, "a"],
        "late_after": -1,
        "histograms": {"latency_seconds": [2, 1], "other": [1]},
        "sketch_relative_accuracy": 1,
        "listen_address": "localhost",
        "drift": {"alpha": 2, "psi_floor": -1},
        "ground_truth_join": {"timeout": "soon", "extra": 1},
    }
    got = problems(raw)
    expected_prefixes = [
        "bogus: unknown key",
        "sources[0].path: must be a non-empty string",
        "sources[1].nope: unknown key",
        "sources[1].path: is required",
        "sources[2]: must be a mapping",
        "sources[3].start_at: must be one of end, beginning",
        "tail.poll_interval: 'fast' is not a duration",
        "tail.watch: must be true or false",
        "fields.prediction.min: must not be greater than max (2.0 > 1.0)",
        "fields.confidence.path: 'c..d' is not a dotted path",
        "fields.latency.unit: must be one of ms, s, us",
        "fields.timestamp.unit: must be one of s, ms, us, ns",
        "fields.features[1].name: 'a' is used twice",
        "fields.features[2].name: 'prediction' is reserved for a built-in role",
        "fields.features[3].name: 'bad-name' must be letters, digits and _",
        "fields.features[4].min: bounds apply to numeric features only",
        "fields.features[5].type: must be one of numeric, categorical",
        "fields.features[6].name: is required",
        "windows[0]: '5x' is not a duration",
        "windows[1]: must be positive",
        "windows: has duplicates",
        "window_buckets: must be a whole number, 2 or more",
        "quantiles[0]: must be between 0 and 1 (exclusive)",
        "quantiles[1]: must be between 0 and 1 (exclusive)",
        "quantiles[2]: must be a finite number",
        "sketch_relative_accuracy: must be between 0.001 and 0.1",
        "histograms.other: unknown key",
        "histograms.latency_seconds: must be a non-empty, strictly increasing list",
        "late_after: must be positive",
        "listen_address: 'localhost' is not HOST:PORT",
        "drift.alpha: must be between 0 and 1 (exclusive)",
        "drift.psi_floor: must not be negative",
        "ground_truth_join.extra: unknown key",
        "ground_truth_join.timeout: 'soon' is not a duration",
    ]
    for prefix in expected_prefixes:
        assert any(p.startswith(prefix) for p in got), f"{prefix!r} not in {got}"
    assert all(": " in p for p in got)


@pytest.mark.parametrize("raw", [None, [1, 2], "sources: x", 5])
def test_top_level_must_be_a_mapping(raw: Any) -> None:
    assert problems(raw) == ["(top level): must be a mapping of settings"]


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"sources": []}, "sources: must be a non-empty list"),
        ({"sources": "x.jsonl"}, "sources: must be a non-empty list"),
        ({"fields": {}}, "fields: maps no prediction"),
        ({"fields": None}, "fields: maps no prediction"),
        ({"fields": [1]}, "fields: must be a mapping"),
        ({"fields": {"prediction": "p", "features": {"a": 1}}}, "fields.features: must be a list"),
        (
            {"fields": {"prediction": "p", "model": "m", "model_name": "x"}},
            "fields.model_name: give either model (a path) or model_name",
        ),
        (
            {"fields": {"prediction": "p", "version": "v", "model_version": "x"}},
            "fields.model_version: give either version",
        ),
        ({"fields": {"prediction": {"min": 0}}}, "fields.prediction.path: is required"),
        (
            {"fields": {"prediction": {"path": "p", "unit": "ms"}}},
            "fields.prediction.unit: unknown",
        ),
        ({"fields": {"prediction": {"path": "p", "min": True}}}, "fields.prediction.min: must be"),
        ({"fields": {"prediction": "p", "timestamp": 5}}, "fields.timestamp: must be a non-empty"),
        ({"windows": []}, "windows: must be a non-empty list"),
        ({"windows": [True]}, "windows[0]: must be a duration"),
        ({"quantiles": "0.5"}, "quantiles: must be a non-empty list"),
        ({"category_cap": 0}, "category_cap: must be a positive integer"),
        ({"category_cap": 2.5}, "category_cap: must be a positive integer"),
        ({"tail": {"max_line_bytes": -1}}, "tail.max_line_bytes: must be a positive integer"),
        ({"tail": "fast"}, "tail: must be a mapping"),
        ({"future_after": "0s"}, "future_after: must be positive"),
        ({"positions_file": ""}, "positions_file: must be a non-empty string"),
        ({"histograms": {"prediction": []}}, "histograms.prediction: must be a non-empty"),
        ({"histograms": {"prediction": [0.5, 0.5]}}, "histograms.prediction: must be a non-empty"),
        ({"histograms": {"prediction": [True, 2]}}, "histograms.prediction: must be a non-empty"),
        ({"listen_address": ":70000"}, "listen_address: ':70000' is not HOST:PORT"),
    ],
)
def test_single_problems_name_their_key(overrides: dict[str, Any], problem: str) -> None:
    got = problems(with_(**overrides))
    assert any(p.startswith(problem) for p in got), got


def test_parsed_values() -> None:
    config = parse_config(
        with_(
            windows=["30s", "1h", "500ms", 90],
            quantiles=[0.99, 0.5, 0.5],
            category_cap=7,
            fields={
                "timestamp": {"path": "meta.time", "unit": "ms"},
                "model": "m.name",
                "version": "m.version",
                "latency": {"path": "lat", "unit": "us", "min": 0},
                "predicted_class": "cls",
                "features": [
                    {"name": "amount", "path": "f.amount", "min": -5, "max": 5},
                    {"name": "city", "type": "categorical", "max_categories": 3},
                    {"name": "zip", "type": "categorical"},
                ],
            },
        )
    )
    assert config.windows == (
        WindowSpec("500ms", 0.5),
        WindowSpec("30s", 30.0),
        WindowSpec("90", 90.0),
        WindowSpec("1h", 3600.0),
    )
    assert config.quantiles == (0.5, 0.99)
    f = config.fields
    assert f.timestamp == ("meta", "time")
    assert f.timestamp_scale == 1e-3
    assert (f.model_path, f.version_path) == (("m", "name"), ("m", "version"))
    assert f.latency is not None
    assert (f.latency.name, f.latency.scale, f.latency.minimum) == ("latency_seconds", 1e-6, 0)
    assert [s.name for s in f.numeric] == ["latency_seconds", "amount"]
    assert [s.name for s in f.categorical] == ["predicted_class", "city", "zip"]
    assert [s.max_categories for s in f.categorical] == [7, 3, 7]
    amount = f.numeric[1]
    assert (amount.path, amount.minimum, amount.maximum) == (("f", "amount"), -5.0, 5.0)
    assert f.categorical[1].path == ("city",)  # a feature's path defaults to its name


def test_timestamp_can_be_switched_off() -> None:
    assert (
        parse_config(with_(fields={"prediction": "p", "timestamp": None})).fields.timestamp is None
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("90s", 90.0), ("5m", 300.0), ("1.5h", 5400.0), ("2d", 172800.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "m", "-1s", "1 m", "1w", "1.s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "address"),
    [(":10027", ("", 10027)), ("127.0.0.1:9000", ("127.0.0.1", 9000)), ("[::1]:80", ("::1", 80))],
)
def test_parse_listen_address(text: str, address: tuple[str, int]) -> None:
    assert parse_listen_address(text) == address


@pytest.mark.parametrize(
    "path", [ROOT / "config" / "exporter.yaml", ROOT / "exporter" / "data" / "demo.yaml"]
)
def test_shipped_configs_parse_and_build_a_decoder(path: Path) -> None:
    config = load_config(path)
    assert config.sources
    assert config.fields.numeric
    Decoder(config.fields, config.late_after, config.future_after)


def test_load_config_reports_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert info.value.problems[0].startswith(f"{missing}: cannot read")
    broken = tmp_path / "broken.yaml"
    broken.write_text("sources: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(broken)
    assert info.value.problems[0].startswith(f"{broken}: not valid YAML")
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="top level"):
        load_config(empty)


def test_a_path_that_is_also_a_parent_is_refused_by_validation() -> None:
    got = problems(with_(fields={"prediction": "a", "features": [{"name": "x", "path": "a.b"}]}))
    assert any("'a'" in p for p in got), got


def test_a_label_needs_a_class_or_a_score_to_be_compared_with() -> None:
    raw = {"sources": ["x.jsonl"], "fields": {"confidence": "c", "ground_truth": "y"}}
    assert problems(raw) == [
        "fields.ground_truth: needs fields.predicted_class (classification) "
        "or fields.prediction (regression)"
    ]


def test_limits_that_keep_memory_and_windows_sane() -> None:
    raw = {
        "sources": ["x.jsonl"],
        "fields": {"prediction": "p"},
        "max_model_versions": 0,
        "window_buckets": 1,
        "sketch_relative_accuracy": 0.0001,
        "drift": {"outlier_z": 0, "freeze_first": 0},
    }
    assert problems(raw) == [
        "window_buckets: must be a whole number, 2 or more (one bucket would empty at every edge)",
        "sketch_relative_accuracy: must be between 0.001 and 0.1",
        "max_model_versions: must be a positive integer",
        "drift.outlier_z: must be positive",
    ]
