"""Validate a config once, on plain data, reporting every problem with the key it is about.

The result is a tree of frozen dataclasses (``config_types``); no stage ever sees raw YAML.
The checks for single values (durations, numbers, dotted paths) are in ``validate``, the bounds
of every numeric key in ``limits``, the list-valued settings in ``config_lists``, and reading the
file itself in ``config_file``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from exporter.config_file import read_yaml
from exporter.config_lists import DEFAULT_HISTOGRAMS, histograms, quantiles, windows
from exporter.config_types import (
    CATEGORY_CAP,
    LABEL_VALUE_BYTES,
    Config,
    DriftConfig,
    FieldsConfig,
    FieldSpec,
    SourceConfig,
    TailConfig,
)
from exporter.errors import ConfigError
from exporter.labels import label_text
from exporter.limits import REAL, WHOLE, memory_problem
from exporter.validate import (
    Checker,
    boolean,
    dotted_path,
    file_path,
    listen,
    name_value,
    number,
    one_of,
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


def _sources(c: Checker, value: Any) -> tuple[SourceConfig, ...]:
    if not isinstance(value, list) or not value:
        c.fail("sources", "must be a non-empty list of {path: ...}")
        return ()
    result = []
    for i, item in enumerate(value):
        where = f"sources[{i}]"
        if not isinstance(item, str | Mapping):
            c.fail(where, "must be a path or a mapping {path: ...}")
            continue
        data = c.mapping(
            {"path": item} if isinstance(item, str) else item,
            where,
            {"path", "format", "start_at", "follow_symlinks"},
        )
        if "path" not in data:
            c.fail(f"{where}.path", "is required")
            continue
        path = c.get(data, "path", f"{where}.", file_path, "")
        fmt = c.get(data, "format", f"{where}.", one_of("json"), "json")
        start = c.get(data, "start_at", f"{where}.", one_of("end", "beginning"), "end")
        follow = c.get(data, "follow_symlinks", f"{where}.", boolean, False)
        if path:
            result.append(
                SourceConfig(path=path, format=fmt, start_at=start, follow_symlinks=follow)  # type: ignore[arg-type]
            )
    return tuple(result)


def _role(
    c: Checker,
    value: Any,
    where: str,
    name: str,
    kind: str,
    category_cap: int,
    unit_key: str | None = None,
) -> FieldSpec | None:
    """A built-in role: either a bare dotted path or a mapping with path and options."""
    if value is None:
        return None
    allowed = {"path", "min", "max"} | ({"unit"} if unit_key else set())
    if kind == "categorical":
        allowed = {"path", "max_categories"}
    if isinstance(value, str):
        value = {"path": value}
    return _field(c, c.mapping(value, where, allowed), where, name, kind, category_cap, unit_key)


def _field(
    c: Checker,
    data: Mapping[str, Any],
    where: str,
    name: str,
    kind: str,
    category_cap: int,
    unit_key: str | None = None,
) -> FieldSpec | None:
    """A role or feature whose keys were checked by the caller (each unknown key once)."""
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
    cap = c.get(data, "max_categories", f"{where}.", WHOLE["fields.*.max_categories"], category_cap)
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


_NUMERIC_ONLY = {"min", "max"}
_CATEGORICAL_ONLY = {"max_categories"}
_FEATURE_KEYS = {"name", "path", "type"} | _NUMERIC_ONLY | _CATEGORICAL_ONLY


def _feature_keys(c: Checker, item: Any, where: str) -> Mapping[str, Any]:
    """Unknown keys of a feature, reported once; keys of the other type are reported by the
    caller once the type is known."""
    data = c.mapping(item, where, _FEATURE_KEYS)
    return {k: v for k, v in data.items() if k in _FEATURE_KEYS}


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
        data = _feature_keys(c, item, where)
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
        for key in sorted(set(data) & (_CATEGORICAL_ONLY if kind == "numeric" else _NUMERIC_ONLY)):
            other = "categorical" if kind == "numeric" else "numeric"
            c.fail(f"{where}.{key}", f"applies to {other} features only (this one is {kind})")
        options = {k: v for k, v in data.items() if k not in {"name", "type"}}
        options.setdefault("path", name)
        spec = _field(c, options, where, name, kind, category_cap)
        if spec is not None:
            result.append(spec)
    return tuple(result)


def _static_name(limit: int) -> Callable[[Any], str]:
    """A static model or version name is a label value: valid Unicode within the limit."""

    def check(value: Any) -> str:
        text = name_value(value)
        if label_text(text, limit)[1:] != (False, False):
            raise ValueError(f"must be valid Unicode text of at most {limit} bytes (UTF-8)")
        return text

    return check


def _fields(c: Checker, value: Any, category_cap: int, label_limit: int) -> FieldsConfig:
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
        timestamp_required="timestamp" in data,
        model_path=c.get(data, "model", w, dotted_path, None),
        model_value=c.get(data, "model_name", w, _static_name(label_limit), "unknown"),
        version_path=c.get(data, "version", w, dotted_path, None),
        version_value=c.get(data, "model_version", w, _static_name(label_limit), "unknown"),
        prediction=_role(
            c, data.get("prediction"), "fields.prediction", "prediction", "numeric", category_cap
        ),
        predicted_class=_role(
            c,
            data.get("predicted_class"),
            "fields.predicted_class",
            "predicted_class",
            "categorical",
            category_cap,
        ),
        confidence=_role(
            c, data.get("confidence"), "fields.confidence", "confidence", "numeric", category_cap
        ),
        latency=_role(
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
        label_value_bytes=label_limit,
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


def _drift(c: Checker, value: Any) -> DriftConfig:
    d = DriftConfig()
    data = c.mapping(value, "drift", set(DriftConfig.__dataclass_fields__))
    w = "drift."
    return DriftConfig(
        alpha=c.get(data, "alpha", w, REAL["drift.alpha"], d.alpha),
        min_samples=c.get(data, "min_samples", w, WHOLE["drift.min_samples"], d.min_samples),
        psi_floor=c.get(data, "psi_floor", w, REAL["drift.psi_floor"], d.psi_floor),
        ks_floor=c.get(data, "ks_floor", w, REAL["drift.ks_floor"], d.ks_floor),
        js_floor=c.get(data, "js_floor", w, REAL["drift.js_floor"], d.js_floor),
        outlier_z=c.get(data, "outlier_z", w, REAL["drift.outlier_z"], d.outlier_z),
        range_margin=c.get(data, "range_margin", w, REAL["drift.range_margin"], d.range_margin),
        freeze_first=c.get(data, "freeze_first", w, WHOLE["drift.freeze_first"], d.freeze_first),
    )


def _tail(c: Checker, value: Any, positions_file: str | None) -> TailConfig:
    d = TailConfig()
    # positions_file is a top-level key (docs/configuration.md); the rest of TailConfig is here
    data = c.mapping(value, "tail", set(TailConfig.__dataclass_fields__) - {"positions_file"})
    w = "tail."

    def real(key: str, default: float) -> float:
        return c.get(data, key, w, REAL[f"tail.{key}"], default)

    def whole(key: str, default: int) -> int:
        return c.get(data, key, w, WHOLE[f"tail.{key}"], default)

    return TailConfig(
        poll_interval=real("poll_interval", d.poll_interval),
        rotate_wait=real("rotate_wait", d.rotate_wait),
        max_line_bytes=whole("max_line_bytes", d.max_line_bytes),
        read_chunk_bytes=whole("read_chunk_bytes", d.read_chunk_bytes),
        positions_file=positions_file,
        positions_flush_interval=real("positions_flush_interval", d.positions_flush_interval),
        positions_ttl=real("positions_ttl", d.positions_ttl),
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
    "max_label_value_bytes",
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
    category_cap = c.get(data, "category_cap", "", WHOLE["category_cap"], CATEGORY_CAP)
    label_limit = c.get(
        data, "max_label_value_bytes", "", WHOLE["max_label_value_bytes"], LABEL_VALUE_BYTES
    )
    positions_file = c.get(data, "positions_file", "", file_path, None)
    join = c.mapping(
        data.get("ground_truth_join"), "ground_truth_join", {"enabled", "timeout", "capacity"}
    )
    config = Config(
        listen_address=c.get(data, "listen_address", "", listen, d.listen_address),
        sources=_sources(c, data.get("sources")),
        tail=_tail(c, data.get("tail"), positions_file),
        fields=_fields(c, data.get("fields"), category_cap, label_limit),
        windows=windows(c, data.get("windows")),
        window_buckets=c.get(data, "window_buckets", "", WHOLE["window_buckets"], d.window_buckets),
        quantiles=quantiles(c, data.get("quantiles")),
        sketch_relative_accuracy=c.get(
            data,
            "sketch_relative_accuracy",
            "",
            REAL["sketch_relative_accuracy"],
            d.sketch_relative_accuracy,
        ),
        histograms=histograms(c, data.get("histograms")),
        explicit_histograms=frozenset(
            name for name in (data.get("histograms") or {}) if name in DEFAULT_HISTOGRAMS
        )
        if isinstance(data.get("histograms"), dict)
        else frozenset(),
        late_after=c.get(data, "late_after", "", REAL["late_after"], d.late_after),
        future_after=c.get(data, "future_after", "", REAL["future_after"], d.future_after),
        reference=c.get(data, "reference", "", file_path, None),
        max_model_versions=c.get(
            data, "max_model_versions", "", WHOLE["max_model_versions"], d.max_model_versions
        ),
        drift=_drift(c, data.get("drift")),
        label_join=c.get(join, "enabled", "ground_truth_join.", boolean, d.label_join),
        label_join_timeout=c.get(
            join,
            "timeout",
            "ground_truth_join.",
            REAL["ground_truth_join.timeout"],
            d.label_join_timeout,
        ),
        label_join_capacity=c.get(
            join,
            "capacity",
            "ground_truth_join.",
            WHOLE["ground_truth_join.capacity"],
            d.label_join_capacity,
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
    if not c.problems:
        memory = memory_problem(config)
        if memory is not None:
            c.fail("max_model_versions", memory)
    if c.problems:
        raise ConfigError(c.problems)
    return config


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file (``config_file`` bounds what reading may cost)."""
    return parse_config(read_yaml(path))
