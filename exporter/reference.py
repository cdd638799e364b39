"""The development reference profile as data: what "normal" looked like when the model was built.

Saved as compact versioned JSON (built by ``profile.build`` from a development log through
``model-exporter baseline``, or from the first N production records), loaded and validated here,
and compared with live windows by ``compare``. This module holds no statistics and no decoder:
the store, the comparison and the collector depend on it, so it stays a leaf.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from exporter.errors import ConfigError

FORMAT = "model-exporter/reference"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class NumericReference:
    count: int
    missing: int
    mean: float
    stddev: float
    min: float
    max: float
    quantiles: dict[str, float]
    bin_edges: list[float]  # e_0 < … < e_K: bins (-inf, e_0), [e_0, e_1), …, [e_K, +inf)
    bin_shares: list[float]  # K + 2 shares, underflow and overflow included
    cdf_points: list[float]
    cdf_values: list[float]  # observed F(x_i), not the nominal percentile (ties!)


@dataclass(frozen=True)
class CategoricalReference:
    count: int
    missing: int
    shares: dict[str, float]  # top categories; the rest folded into __other__


@dataclass(frozen=True)
class Reference:
    created: str
    records: int
    numeric: dict[str, NumericReference]
    categorical: dict[str, CategoricalReference]
    labelled: int = 0
    error_ratio: float | None = None  # classification
    mae: float | None = None  # regression: mean absolute error
    rmse: float | None = None  # regression: root mean squared error
    sketch_relative_accuracy: float = 0.01
    source: dict[str, Any] = field(default_factory=dict)
    hash: str = ""

    def content_hash(self) -> str:
        """sha256 of the content (not of the creation time or the hash itself), so the same
        development data gives the same hash whenever it is rebuilt."""
        body = asdict(self)
        for key in ("hash", "created", "source"):
            body.pop(key)
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def to_json(self) -> str:
        body = {"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(self)}
        body["hash"] = self.content_hash()
        return json.dumps(body, indent=1, allow_nan=False) + "\n"


# -- loading ------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_share(value: Any) -> bool:
    return _is_number(value) and 0.0 <= value <= 1.0


def _check_numeric(body: Any, where: str) -> list[str]:
    """Every value typed and finite: a profile that parses must never fail when used."""
    if not isinstance(body, dict):
        return [f"{where}: must be an object"]
    problems = []
    scalars = {"count": _is_count, "missing": _is_count, "mean": _is_number, "stddev": _is_number}
    scalars |= {"min": _is_number, "max": _is_number}
    for key, check in scalars.items():
        if not check(body.get(key)):
            problems.append(f"{where}.{key}: must be a finite number")
    lists = {"bin_edges": _is_number, "bin_shares": _is_share, "cdf_points": _is_number}
    lists["cdf_values"] = _is_share
    for key, check in lists.items():
        value = body.get(key)
        if not isinstance(value, list) or not all(check(v) for v in value):
            problems.append(f"{where}.{key}: must be a list of finite numbers")
    quantiles = body.get("quantiles")
    if not isinstance(quantiles, dict) or not all(_is_number(v) for v in quantiles.values()):
        problems.append(f"{where}.quantiles: must map quantiles to finite numbers")
    if problems:
        return problems
    if len(body["bin_shares"]) != len(body["bin_edges"]) + 1:
        problems.append(f"{where}.bin_shares: needs one share more than bin_edges")
    if len(body["cdf_points"]) != len(body["cdf_values"]):
        problems.append(f"{where}.cdf_values: must match cdf_points")
    if body["bin_edges"] != sorted(body["bin_edges"]):
        problems.append(f"{where}.bin_edges: must increase")
    unknown = sorted(set(body) - set(NumericReference.__dataclass_fields__))
    if unknown:
        problems.append(f"{where}: unknown keys {unknown}")
    return problems


def _check_categorical(body: Any, where: str) -> list[str]:
    if not isinstance(body, dict):
        return [f"{where}: must be an object"]
    problems = [
        f"{where}.{key}: must be a count"
        for key in ("count", "missing")
        if not _is_count(body.get(key))
    ]
    shares = body.get("shares")
    if not isinstance(shares, dict) or not all(_is_share(v) for v in shares.values()):
        problems.append(f"{where}.shares: must map categories to shares in [0, 1]")
    if set(body) - {"count", "missing", "shares"}:
        problems.append(
            f"{where}: unknown keys {sorted(set(body) - {'count', 'missing', 'shares'})}"
        )
    return problems


def parse(text: str, where: str = "reference") -> Reference:
    """JSON text → Reference, or ConfigError naming every problem."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ConfigError([f"{where}: not valid JSON ({exc})"]) from exc
    if not isinstance(raw, dict):
        raise ConfigError([f"{where}: must be a JSON object"])
    problems = []
    if raw.get("format") != FORMAT:
        problems.append(f"{where}.format: must be {FORMAT!r}")
    if raw.get("format_version") != FORMAT_VERSION:
        problems.append(
            f"{where}.format_version: must be {FORMAT_VERSION} (rebuild it with baseline)"
        )
    if problems:
        raise ConfigError(problems)
    if not _is_count(raw.get("records")):
        problems.append(f"{where}.records: must be a count")
    if not _is_count(raw.get("labelled", 0)):
        problems.append(f"{where}.labelled: must be a count")
    if raw.get("error_ratio") is not None and not _is_share(raw["error_ratio"]):
        problems.append(f"{where}.error_ratio: must be a share in [0, 1] or null")
    for key in ("mae", "rmse"):
        if raw.get(key) is not None and not (_is_number(raw[key]) and raw[key] >= 0):
            problems.append(f"{where}.{key}: must be a non-negative number or null")
    accuracy = raw.get("sketch_relative_accuracy", 0.01)
    if not (_is_number(accuracy) and 0 < accuracy < 1):
        problems.append(f"{where}.sketch_relative_accuracy: must be in (0, 1)")
    for kind, check_field in (("numeric", _check_numeric), ("categorical", _check_categorical)):
        section = raw.get(kind)
        if not isinstance(section, dict):
            problems.append(f"{where}.{kind}: must be an object of fields")
            continue
        for name, body in section.items():
            problems += check_field(body, f"{where}.{kind}.{name}")
    if not isinstance(raw.get("created"), str):
        problems.append(f"{where}.created: must be a string")
    if problems:
        raise ConfigError(problems)
    reference = Reference(
        created=raw["created"],
        records=int(raw["records"]),
        numeric={name: NumericReference(**body) for name, body in raw["numeric"].items()},
        categorical={
            name: CategoricalReference(**body) for name, body in raw["categorical"].items()
        },
        labelled=int(raw.get("labelled", 0)),
        error_ratio=raw.get("error_ratio"),
        mae=raw.get("mae"),
        rmse=raw.get("rmse"),
        sketch_relative_accuracy=float(accuracy),
        source=dict(raw["source"]) if isinstance(raw.get("source"), dict) else {},
        hash=str(raw.get("hash", "")),
    )
    if reference.hash and reference.hash != reference.content_hash():
        raise ConfigError(
            [f"{where}.hash: does not match the content (edited by hand? rebuild it)"]
        )
    return reference


def check_compatible(reference: Reference, relative_accuracy: float) -> None:
    """Both sides must bucket values the same way, or equal data would look drifted."""
    if not math.isclose(reference.sketch_relative_accuracy, relative_accuracy):
        raise ConfigError(
            [
                f"sketch_relative_accuracy: the reference was built with "
                f"{reference.sketch_relative_accuracy}, the sidecar uses {relative_accuracy}; "
                "rebuild the reference with this config"
            ]
        )


def load(path: str | Path) -> Reference:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text ({exc.reason})"]) from exc
    return parse(text, str(path))
