"""Config validation: every problem at once, each with the key it is about; defaults; the
shipped example configs parse."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from exporter.config import load_config, parse_config
from exporter.config_file import MAX_BYTES, MAX_DEPTH
from exporter.config_lists import DEFAULT_HISTOGRAMS
from exporter.config_types import Config, DriftConfig, TailConfig, WindowSpec
from exporter.decode import Decoder
from exporter.errors import ConfigError
from exporter.limits import LENGTHS, REAL, WHOLE, WINDOW_MEMORY_BUDGET, window_memory
from exporter.validate import Whole, parse_duration, parse_listen_address

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
        "sources[2]: must be a path or a mapping {path: ...}",
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
        "fields.features[4].min: applies to numeric features only (this one is categorical)",
        "fields.features[5].type: must be one of numeric, categorical",
        "fields.features[6].name: is required",
        "windows[0]: '5x' is not a duration",
        "windows[1]: must be a duration from 1s to 7d (got 0)",
        "windows[3]: 1m is the same window as 1m",
        "window_buckets: must be a whole number from 2 to 120 (got 0)",
        "quantiles[0]: must be a number greater than 0 and less than 1 (got 0)",
        "quantiles[1]: must be a number greater than 0 and less than 1 (got 1.5)",
        "quantiles[2]: must be a number greater than 0 and less than 1 (got 'a')",
        "sketch_relative_accuracy: must be a number from 0.001 to 0.1 (got 1)",
        "histograms.other: unknown key",
        "histograms.latency_seconds: must be strictly increasing",
        "late_after: must be a duration from 1s to 365d (got -1)",
        "listen_address: 'localhost' is not HOST:PORT",
        "drift.alpha: must be a number greater than 0 and less than 1 (got 2)",
        "drift.psi_floor: must be a number from 0 to 100 (got -1)",
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
        (
            {"fields": {"prediction": "p", "model_version": 1.0}},
            'fields.model_version: must be text: quote it (1.0 is a number to YAML: write "1.0")',
        ),
        ({"fields": {"prediction": "p", "model_name": True}}, "fields.model_name: must be a non"),
        ({"fields": {"prediction": {"min": 0}}}, "fields.prediction.path: is required"),
        (
            {"fields": {"prediction": {"path": "p", "unit": "ms"}}},
            "fields.prediction.unit: unknown",
        ),
        ({"fields": {"prediction": {"path": "p", "min": True}}}, "fields.prediction.min: must be"),
        ({"fields": {"prediction": "p", "timestamp": 5}}, "fields.timestamp: must be a non-empty"),
        ({"windows": []}, "windows: must be a list of 1 to 10 durations"),
        ({"windows": [True]}, "windows[0]: must be a duration from 1s to 7d (got True)"),
        ({"quantiles": "0.5"}, "quantiles: must be a list of 1 to 20 numbers"),
        ({"category_cap": 0}, "category_cap: must be a whole number from 1 to 1000 (got 0)"),
        ({"category_cap": 2.5}, "category_cap: must be a whole number from 1 to 1000 (got 2.5)"),
        ({"tail": {"max_line_bytes": -1}}, "tail.max_line_bytes: must be a whole number from 256"),
        ({"tail": "fast"}, "tail: must be a mapping"),
        ({"future_after": "0s"}, "future_after: must be a duration from 1s to 365d (got '0s')"),
        ({"positions_file": ""}, "positions_file: must be a non-empty string"),
        ({"histograms": {"prediction": []}}, "histograms.prediction: must be a list of 1 to 100"),
        ({"histograms": {"prediction": [0.5, 0.5]}}, "histograms.prediction: must be strictly"),
        ({"histograms": {"prediction": [True, 2]}}, "histograms.prediction[0]: must be a finite"),
        ({"listen_address": ":70000"}, "listen_address: ':70000' is not HOST:PORT"),
    ],
)
def test_single_problems_name_their_key(overrides: dict[str, Any], problem: str) -> None:
    got = problems(with_(**overrides))
    assert any(p.startswith(problem) for p in got), got


def test_parsed_values() -> None:
    config = parse_config(
        with_(
            windows=["30s", "1h", "1500ms", 90],
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
        WindowSpec("1500ms", 1.5),
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
        "window_buckets: must be a whole number from 2 to 120 (got 1)",
        "sketch_relative_accuracy: must be a number from 0.001 to 0.1 (got 0.0001)",
        "max_model_versions: must be a whole number from 1 to 256 (got 0)",
        "drift.outlier_z: must be a number greater than 0 and at most 1000 (got 0)",
    ]


# --- bounds, hostile values and the documentation of both ---------------------------------------


def test_every_bound_is_documented_as_the_validator_applies_it() -> None:
    """docs/configuration.md's Limits table says what ``limits`` enforces, key by key."""
    docs = (ROOT / "docs" / "configuration.md").read_text()
    rows = dict(re.findall(r"^\| `([^`]+)` \| (.+) \|$", docs, flags=re.MULTILINE))
    for key, bounds in {**REAL, **WHOLE}.items():
        assert key in rows, f"{key} is missing from the Limits table"
        assert rows[key].startswith(bounds.text), (key, rows[key], bounds.text)
    for key, longest in LENGTHS.items():
        what = {"histograms.*": "bounds per histogram"}.get(key, f"`{key}`")
        assert f"{longest} {what}" in docs
    assert f"exceeds {WINDOW_MEMORY_BUDGET >> 30} GiB is refused" in docs
    assert f"at most {MAX_BYTES >> 10} KiB" in docs
    assert f"deeper than {MAX_DEPTH} levels" in docs


def _placed(key: str, value: Any) -> tuple[dict[str, Any], str]:
    """A minimal config with ``value`` at the documented ``key``, and the key a problem names."""
    raw: dict[str, Any] = {**MINIMAL, "fields": {"prediction": "score"}}
    if key == "fields.*.max_categories":
        raw["fields"]["features"] = [{"name": "c", "type": "categorical", "max_categories": value}]
        return raw, "fields.features[0].max_categories"
    parts = key.removesuffix("[]").split(".")
    target = raw
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = [value] if key.endswith("[]") else value
    return raw, ".".join(parts) + ("[0]" if key.endswith("[]") else "")


@pytest.mark.parametrize("key", sorted({**REAL, **WHOLE}))
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400, -1, "x", True, [1]])
def test_every_numeric_key_refuses_hostile_values_by_name(key: str, value: Any) -> None:
    raw, name = _placed(key, value)
    got = problems(raw)
    assert len(got) == 1, got
    assert got[0].startswith(f"{name}: "), got


@pytest.mark.parametrize("key", sorted({**REAL, **WHOLE}))
def test_the_bounds_are_where_the_documentation_says(key: str) -> None:
    """A closed bound is accepted, an open one is not, and just past either is refused."""
    bounds = {**REAL, **WHOLE}[key]
    step: float = 1 if isinstance(bounds, Whole) else 1e-9 * max(1.0, bounds.high)
    low_in = bounds.low + step if bounds.open_low else bounds.low
    high_in = bounds.high - step if bounds.open_high else bounds.high
    low_out = bounds.low if bounds.open_low else bounds.low - step
    high_out = bounds.high if bounds.open_high else bounds.high + step
    kind = int if isinstance(bounds, Whole) else float
    for value in (low_in, high_in):
        parse_config(_placed(key, kind(value))[0])
    for value in (low_out, high_out):
        raw, name = _placed(key, kind(value))
        assert problems(raw)[0].startswith(f"{name}: ")


@pytest.mark.parametrize("path", ["a\x1fb", 'a"b', "a\\b", "x.\n"])
def test_a_path_the_decoder_cannot_name_is_refused(path: str) -> None:
    got = problems(with_(fields={"prediction": "p", "features": [{"name": "f", "path": path}]}))
    assert got == [
        f"fields.features[0].path: {path!r}: a path has no control characters, quotes or "
        "backslashes"
    ]


def test_a_path_with_a_nul_character_is_refused() -> None:
    raw = with_(sources=["a\x00.jsonl"], positions_file="p\x00", reference="r\x00")
    assert sorted(problems(raw)) == [
        "positions_file: 'p\\x00' contains a NUL character",
        "reference: 'r\\x00' contains a NUL character",
        "sources[0].path: 'a\\x00.jsonl' contains a NUL character",
    ]


def test_unknown_keys_of_a_feature_are_reported_once_with_the_true_allowed_list() -> None:
    raw = with_(
        fields={
            "prediction": "p",
            "features": [
                {"name": "a", "bogus": 1},
                {"name": "b", "max_categories": 5},
                {"name": "c", "type": "categorical", "max": 3},
            ],
        }
    )
    assert problems(raw) == [
        "fields.features[0].bogus: unknown key (allowed: max, max_categories, min, name, path, "
        "type)",
        "fields.features[1].max_categories: applies to categorical features only "
        "(this one is numeric)",
        "fields.features[2].max: applies to numeric features only (this one is categorical)",
    ]


def test_quantiles_or_bounds_that_print_alike_are_refused() -> None:
    """Two label values spelled the same would put one series twice in a scrape."""
    got = problems(
        with_(
            quantiles=[0.5, 0.5000000000001],
            histograms={"prediction": [0.1, 0.1000000000001, 0.2]},
        )
    )
    assert got == [
        "quantiles[1]: 0.5000000000001 and 0.5 are both labelled 0.5",
        "histograms.prediction[1]: 0.1000000000001 and 0.1 are both labelled 0.1",
    ]
    assert parse_config(with_(quantiles=[0.5, 0.5])).quantiles == (0.5,)  # the same one twice


def test_lists_are_bounded() -> None:
    got = problems(with_(windows=[f"{n}m" for n in range(1, 12)], quantiles=[0.5] * 21))
    assert got == [
        "windows: must be a list of 1 to 10 durations like [1m, 5m, 1h]",
        "quantiles: must be a list of 1 to 20 numbers in (0, 1)",
    ]


def test_a_config_whose_windows_could_exhaust_memory_is_refused() -> None:
    example = load_config(ROOT / "config" / "exporter.yaml")
    assert window_memory(example) < 200 << 20
    raw = with_(
        max_model_versions=256,
        windows=["1m", "5m", "1h", "6h"],
        window_buckets=60,
        fields={"prediction": "p", "features": [{"name": f"f{i}"} for i in range(8)]},
    )
    got = problems(raw)
    assert len(got) == 1
    assert got[0].startswith("max_model_versions: the windows could take ")
    assert "256 model versions x 4 windows x 60 window_buckets x 9 numeric fields" in got[0]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("category_cap: " + "9" * 5000, "category_cap: must be a whole number from 1 to 1000 "
         "(got a 5000-digit number)"),
        ("category_cap: 0x" + "f" * 2000, "category_cap: must be a whole number"),
        ("window_buckets: 1.0e+400", "window_buckets: must be a whole number from 2 to 120"),
        ("late_after: 99999999999999999999999d", "late_after: must be a duration from 1s to 365d"),
    ],
)  # fmt: skip
def test_numbers_too_large_for_python_are_reported_against_their_bounds(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"sources: [x.jsonl]\nfields: {{prediction: p}}\n{text}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(problem), info.value.problems


def test_a_whole_number_as_a_static_version_is_its_text() -> None:
    """``model_version: 2`` is what people write; YAML reads it as a number. It labels the
    series as the same number in the log would: ``"2"``."""
    config = parse_config({"sources": ["/x"], "fields": {"prediction": "p", "model_version": 2}})
    assert config.fields.version_value == "2"


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("1.10", 'quote it (YAML reads 1.10 as the number 1.1: write "1.10")'),
        ("1.0", 'quote it (1.0 is a number to YAML: write "1.0")'),
        ("010", 'quote it (YAML reads 010 as the number 8: write "010")'),
        ("0x1F", 'quote it (YAML reads 0x1F as the number 31: write "0x1F")'),
        ("1_000", 'quote it (YAML reads 1_000 as the number 1000: write "1_000")'),
        ("1:30", 'quote it (YAML reads 1:30 as the number 90: write "1:30")'),
    ],
)  # fmt: skip
def test_a_static_version_yaml_would_change_is_refused_as_written(
    tmp_path: Path, written: str, problem: str
) -> None:
    """YAML 1.1 reads ``010`` as 8 and ``1.10`` as 1.1: taken as text, such a version would
    label every series with a version the model never had. It must be quoted, and the message
    says how with the text as written (``"1.10"``, not the ``"1.1"`` YAML made of it)."""
    path = tmp_path / "c.yaml"
    path.write_text(f"sources: [x.jsonl]\nfields: {{prediction: p, model_version: {written}}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [f"fields.model_version: must be text: {problem}"]


def test_numbers_written_in_other_bases_still_set_numeric_keys(tmp_path: Path) -> None:
    """Remembering how a number was written changes nothing for a number setting."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "sources: [x.jsonl]\nfields: {prediction: p, model_version: 7}\n"
        "max_model_versions: 0x20\nwindow_buckets: 1_0\nquantiles: [0.50, 0.9]\n"
    )
    config = load_config(path)
    assert (config.max_model_versions, config.window_buckets) == (32, 10)
    assert config.quantiles == (0.5, 0.9)
    assert type(config.quantiles[0]) is float
    assert config.fields.version_value == "7"
