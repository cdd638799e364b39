"""Validate a config once, on plain data, reporting every problem with the key it is about.

The result is a tree of frozen dataclasses (``config_types``); no stage ever sees raw YAML.
The checks for single values (durations, numbers, dotted paths) are in ``validate``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from exporter.config_types import (
    Config,
    DriftConfig,
    FieldsConfig,
    FieldSpec,
    SourceConfig,
    TailConfig,
    WindowSpec,
)
from exporter.errors import ConfigError
from exporter.validate import (
    Checker,
    accuracy,
    at_least_two,
    boolean,
    count,
    dotted_path,
    duration,
    listen,
    nonneg,
    number,
    one_of,
    positive,
    positive_int,
    probability,
    string,
)

_LATENCY_UNITS = {"ms": 0.001, "s": 1.0, "us": 1e-6}
_TIMESTAMP_UNITS = {"s": 1.0, "ms": 0.001, "us": 1e-6, "ns": 1e-9}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_FIELD_NAMES = {
    "prediction",
    "confidence",
    "latency_seconds",
    "predicted_class",
    "timestamp",
    "ground_truth",
    "model",
    "version",
    "record",
}

DEFAULT_HISTOGRAMS: dict[str, tuple[float, ...]] = {
    "latency_seconds": (
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
        10.0,
    ),
    "prediction": tuple(round(0.1 * i, 1) for i in range(1, 11)),
    "confidence": tuple(round(0.1 * i, 1) for i in range(1, 11)),
}


def _sources(c: Checker, value: Any) -> tuple[SourceConfig, ...]:
    if not isinstance(value, list) or not value:
        c.fail("sources", "must be a non-empty list of {path: ...}")
        return ()
    result = []
    for i, item in enumerate(value):
        where = f"sources[{i}]"
        data = c.mapping(
            {"path": item} if isinstance(item, str) else item, where, {"path", "format", "start_at"}
        )
        if "path" not in data:
            c.fail(f"{where}.path", "is required")
            continue
        path = c.get(data, "path", f"{where}.", string, "")
        fmt = c.get(data, "format", f"{where}.", one_of("json"), "json")
        start = c.get(data, "start_at", f"{where}.", one_of("end", "beginning"), "end")
        if path:
            result.append(SourceConfig(path=path, format=fmt, start_at=start))  # type: ignore[arg-type]
    return tuple(result)


def _field(
    c: Checker,
    value: Any,
    where: str,
    name: str,
    kind: str,
    category_cap: int,
    unit_key: str | None = None,
) -> FieldSpec | None:
    """A role or feature: either a bare dotted path or a mapping with path and options."""
    if value is None:
        return None
    allowed = {"path", "min", "max"} | ({"unit"} if unit_key else set())
    if kind == "categorical":
        allowed = {"path", "max_categories"}
    if isinstance(value, str):
        value = {"path": value}
    data = c.mapping(value, where, allowed)
    if "path" not in data:
        c.fail(f"{where}.path", "is required")
        return None
    path = c.get(data, "path", f"{where}.", dotted_path, None)
    minimum = c.get(data, "min", f"{where}.", number, None)
    maximum = c.get(data, "max", f"{where}.", number, None)
    if minimum is not None and maximum is not None and minimum > maximum:
        c.fail(f"{where}.min", f"must not be greater than max ({minimum} > {maximum})")
    scale = 1.0
    if unit_key:
        unit = c.get(data, "unit", f"{where}.", one_of(*_LATENCY_UNITS), "s")
        scale = _LATENCY_UNITS.get(unit, 1.0)
    cap = c.get(data, "max_categories", f"{where}.", positive_int, category_cap)
    if not path:
        return None
    return FieldSpec(
        name=name,
        path=path,
        kind=kind,  # type: ignore[arg-type]
        minimum=minimum,
        maximum=maximum,
        scale=scale,
        max_categories=cap,
    )


def _features(c: Checker, value: Any, category_cap: int) -> tuple[FieldSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        c.fail("fields.features", "must be a list of {name, path, type}")
        return ()
    result: list[FieldSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        where = f"fields.features[{i}]"
        data = c.mapping(item, where, {"name", "path", "type", "min", "max", "max_categories"})
        name = c.get(data, "name", f"{where}.", string, "")
        if not name:
            c.fail(f"{where}.name", "is required")
            continue
        if not _NAME.match(name):
            c.fail(
                f"{where}.name",
                f"{name!r} must be letters, digits and _ (it becomes a label value)",
            )
        if name in _RESERVED_FIELD_NAMES:
            c.fail(f"{where}.name", f"{name!r} is reserved for a built-in role")
        if name in seen:
            c.fail(f"{where}.name", f"{name!r} is used twice")
        seen.add(name)
        kind = c.get(data, "type", f"{where}.", one_of("numeric", "categorical"), "numeric")
        if kind == "categorical" and ("min" in data or "max" in data):
            c.fail(f"{where}.min", "bounds apply to numeric features only")
        options = {k: v for k, v in data.items() if k not in {"name", "type"}}
        options.setdefault("path", name)
        spec = _field(c, options, where, name, kind, category_cap)
        if spec is not None:
            result.append(spec)
    return tuple(result)


def _fields(c: Checker, value: Any, category_cap: int) -> FieldsConfig:
    allowed = {
        "timestamp",
        "model",
        "model_name",
        "version",
        "model_version",
        "prediction",
        "predicted_class",
        "confidence",
        "latency",
        "ground_truth",
        "request_id",
        "features",
    }
    data = c.mapping(value, "fields", allowed)
    w = "fields."
    for path_key, value_key in (("model", "model_name"), ("version", "model_version")):
        if data.get(path_key) is not None and data.get(value_key) is not None:
            c.fail(
                f"fields.{value_key}",
                f"give either {path_key} (a path) or {value_key} (a static value), not both",
            )
    ts_scale = 1.0
    ts_raw = data.get("timestamp", "ts")
    ts_path: tuple[str, ...] | None = None
    if isinstance(ts_raw, Mapping):
        ts_data = c.mapping(ts_raw, "fields.timestamp", {"path", "unit"})
        ts_path = c.get(ts_data, "path", "fields.timestamp.", dotted_path, None)
        unit = c.get(ts_data, "unit", "fields.timestamp.", one_of(*_TIMESTAMP_UNITS), "s")
        ts_scale = _TIMESTAMP_UNITS.get(unit, 1.0)
    elif ts_raw is not None:
        ts_path = c.get(data, "timestamp", w, dotted_path, None) if "timestamp" in data else ("ts",)
    return FieldsConfig(
        timestamp=ts_path,
        timestamp_scale=ts_scale,
        model_path=c.get(data, "model", w, dotted_path, None),
        model_value=c.get(data, "model_name", w, string, "unknown"),
        version_path=c.get(data, "version", w, dotted_path, None),
        version_value=c.get(data, "model_version", w, string, "unknown"),
        prediction=_field(
            c, data.get("prediction"), "fields.prediction", "prediction", "numeric", category_cap
        ),
        predicted_class=_field(
            c,
            data.get("predicted_class"),
            "fields.predicted_class",
            "predicted_class",
            "categorical",
            category_cap,
        ),
        confidence=_field(
            c, data.get("confidence"), "fields.confidence", "confidence", "numeric", category_cap
        ),
        latency=_field(
            c,
            data.get("latency"),
            "fields.latency",
            "latency_seconds",
            "numeric",
            category_cap,
            unit_key="unit",
        ),
        ground_truth=c.get(data, "ground_truth", w, dotted_path, None),
        request_id=c.get(data, "request_id", w, dotted_path, None),
        features=_features(c, data.get("features"), category_cap),
    )


def _check_paths(c: Checker, fields: FieldsConfig) -> None:
    """Each path feeds one role, and no mapped value is also the parent of another: the
    decoder builds one typed structure from these paths."""
    mapped: list[tuple[str, tuple[str, ...]]] = [
        (key, path)
        for key, path in (
            ("fields.timestamp", fields.timestamp),
            ("fields.model", fields.model_path),
            ("fields.version", fields.version_path),
            ("fields.ground_truth", fields.ground_truth),
            ("fields.request_id", fields.request_id),
        )
        if path is not None
    ]
    roles = (fields.prediction, fields.predicted_class, fields.confidence, fields.latency)
    role_keys = ("prediction", "predicted_class", "confidence", "latency")
    mapped += [
        (f"fields.{k}", s.path) for k, s in zip(role_keys, roles, strict=True) if s is not None
    ]
    mapped += [(f"fields.features[{i}]", s.path) for i, s in enumerate(fields.features)]
    for i, (key, path) in enumerate(mapped):
        for other_key, other in mapped[:i]:
            text, other_text = ".".join(path), ".".join(other)
            if path == other:
                c.fail(f"{key}.path", f"{text!r} is already mapped by {other_key}")
            elif path[: len(other)] == other or other[: len(path)] == path:
                c.fail(
                    f"{key}.path",
                    f"{text!r} and {other_text!r} ({other_key}) overlap: one is inside the other",
                )


def _windows(c: Checker, value: Any) -> tuple[WindowSpec, ...]:
    if value is None:
        return Config().windows
    if not isinstance(value, list) or not value:
        c.fail("windows", "must be a non-empty list of durations like [1m, 5m, 1h]")
        return Config().windows
    result = []
    for i, item in enumerate(value):
        try:
            result.append(WindowSpec(str(item), duration(item)))
        except ValueError as exc:
            c.fail(f"windows[{i}]", str(exc))
    names = [w.name for w in result]
    if len(set(names)) != len(names):
        c.fail("windows", "has duplicates")
    return tuple(sorted(result, key=lambda w: w.seconds))


def _quantiles(c: Checker, value: Any) -> tuple[float, ...]:
    if value is None:
        return Config().quantiles
    if not isinstance(value, list) or not value:
        c.fail("quantiles", "must be a non-empty list of numbers in (0, 1)")
        return Config().quantiles
    result = []
    for i, item in enumerate(value):
        try:
            result.append(probability(item))
        except ValueError as exc:
            c.fail(f"quantiles[{i}]", str(exc))
    return tuple(sorted(set(result)))


def _histograms(c: Checker, value: Any) -> tuple[tuple[str, tuple[float, ...]], ...]:
    data = c.mapping(value, "histograms", set(DEFAULT_HISTOGRAMS))
    result = []
    for name, default in DEFAULT_HISTOGRAMS.items():
        bounds = data.get(name, default)
        ok = isinstance(bounds, list | tuple) and bool(bounds)
        ok = ok and all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
        if not ok or list(bounds) != sorted(set(bounds)):
            c.fail(f"histograms.{name}", "must be a non-empty, strictly increasing list of numbers")
            bounds = default
        result.append((name, tuple(float(b) for b in bounds)))
    return tuple(result)


def _drift(c: Checker, value: Any) -> DriftConfig:
    d = DriftConfig()
    data = c.mapping(value, "drift", set(DriftConfig.__dataclass_fields__))
    w = "drift."
    return DriftConfig(
        alpha=c.get(data, "alpha", w, probability, d.alpha),
        min_samples=c.get(data, "min_samples", w, positive_int, d.min_samples),
        psi_floor=c.get(data, "psi_floor", w, nonneg, d.psi_floor),
        ks_floor=c.get(data, "ks_floor", w, nonneg, d.ks_floor),
        js_floor=c.get(data, "js_floor", w, nonneg, d.js_floor),
        outlier_z=c.get(data, "outlier_z", w, positive, d.outlier_z),
        range_margin=c.get(data, "range_margin", w, nonneg, d.range_margin),
        freeze_first=c.get(data, "freeze_first", w, count, d.freeze_first),
    )


def _tail(c: Checker, value: Any, positions_file: str | None) -> TailConfig:
    d = TailConfig()
    # positions_file is a top-level key (docs/configuration.md); the rest of TailConfig is here
    data = c.mapping(value, "tail", set(TailConfig.__dataclass_fields__) - {"positions_file"})
    w = "tail."
    return TailConfig(
        poll_interval=c.get(data, "poll_interval", w, duration, d.poll_interval),
        rotate_wait=c.get(data, "rotate_wait", w, duration, d.rotate_wait),
        max_line_bytes=c.get(data, "max_line_bytes", w, positive_int, d.max_line_bytes),
        read_chunk_bytes=c.get(data, "read_chunk_bytes", w, positive_int, d.read_chunk_bytes),
        positions_file=positions_file,
        positions_flush_interval=c.get(
            data, "positions_flush_interval", w, duration, d.positions_flush_interval
        ),
        positions_ttl=c.get(data, "positions_ttl", w, duration, d.positions_ttl),
        watch=c.get(data, "watch", w, boolean, d.watch),
    )


TOP_LEVEL_KEYS = {
    "max_model_versions",
    "listen_address",
    "sources",
    "positions_file",
    "tail",
    "fields",
    "windows",
    "window_buckets",
    "quantiles",
    "category_cap",
    "sketch_relative_accuracy",
    "histograms",
    "late_after",
    "future_after",
    "reference",
    "drift",
    "ground_truth_join",
}


def parse_config(raw: Any) -> Config:
    """Plain data (as loaded from YAML) → Config, or ConfigError listing every problem."""
    c = Checker()
    if not isinstance(raw, Mapping):
        raise ConfigError(["(top level): must be a mapping of settings"])
    data = c.mapping(raw, "", TOP_LEVEL_KEYS)
    d = Config()
    category_cap = c.get(data, "category_cap", "", positive_int, 50)
    positions_file = c.get(data, "positions_file", "", string, None)
    join = c.mapping(
        data.get("ground_truth_join"), "ground_truth_join", {"enabled", "timeout", "capacity"}
    )
    config = Config(
        listen_address=c.get(data, "listen_address", "", listen, d.listen_address),
        sources=_sources(c, data.get("sources")),
        tail=_tail(c, data.get("tail"), positions_file),
        fields=_fields(c, data.get("fields"), category_cap),
        windows=_windows(c, data.get("windows")),
        window_buckets=c.get(data, "window_buckets", "", at_least_two, d.window_buckets),
        quantiles=_quantiles(c, data.get("quantiles")),
        sketch_relative_accuracy=c.get(
            data, "sketch_relative_accuracy", "", accuracy, d.sketch_relative_accuracy
        ),
        histograms=_histograms(c, data.get("histograms")),
        late_after=c.get(data, "late_after", "", duration, d.late_after),
        future_after=c.get(data, "future_after", "", duration, d.future_after),
        reference=c.get(data, "reference", "", string, None),
        max_model_versions=c.get(
            data, "max_model_versions", "", positive_int, d.max_model_versions
        ),
        drift=_drift(c, data.get("drift")),
        label_join=c.get(join, "enabled", "ground_truth_join.", boolean, d.label_join),
        label_join_timeout=c.get(
            join, "timeout", "ground_truth_join.", duration, d.label_join_timeout
        ),
        label_join_capacity=c.get(
            join, "capacity", "ground_truth_join.", positive_int, d.label_join_capacity
        ),
    )
    _check_paths(c, config.fields)
    f = config.fields
    if f.ground_truth is not None and f.predicted_class is None and f.prediction is None:
        c.fail(
            "fields.ground_truth",
            "needs fields.predicted_class (classification) or fields.prediction (regression)",
        )
    if config.label_join and (
        config.fields.request_id is None or config.fields.ground_truth is None
    ):
        c.fail("ground_truth_join.enabled", "needs fields.request_id and fields.ground_truth")
    if not (config.fields.numeric or config.fields.categorical):
        c.fail(
            "fields",
            "maps no prediction, confidence, latency, class or feature: nothing to measure",
        )
    if c.problems:
        raise ConfigError(c.problems)
    return config


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML ({exc})"]) from exc
    return parse_config(raw)
