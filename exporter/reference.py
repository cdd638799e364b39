"""The development reference profile as data: what "normal" looked like when the model was built.

Saved as compact versioned JSON (built by ``profile.build`` from a development log through
``model-exporter baseline``, or from the first N production records), loaded and validated here,
and compared with live windows by ``compare``. This module holds no statistics and no decoder:
the store, the comparison and the collector depend on it, so it stays a leaf.

The types are msgspec Structs so the file format is written down once, with its constraints
(finite numbers, shares in [0, 1], counts ≥ 0, no unknown key): decoding checks every value, and
only the checks that relate two fields are written by hand below.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any

import msgspec

from exporter.errors import ConfigError

FORMAT = "model-exporter/reference"
FORMAT_VERSION = 2
# Distinct development values kept per categorical field to tell "unseen" from "rare": a field
# with more is not a category anyone can judge value by value, and gets no unseen_category.
VOCABULARY_CAP = 10_000

_MAX = 1.7976931348623157e308
Finite = Annotated[float, msgspec.Meta(ge=-_MAX, le=_MAX)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0, le=_MAX)]
Share = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Count = Annotated[int, msgspec.Meta(ge=0)]


class NumericReference(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    count: Count
    missing: Count
    mean: Finite
    stddev: NonNegative
    min: Finite
    max: Finite
    quantiles: dict[str, Finite]
    # e_0 < … < e_K: bins (-inf, e_0), [e_0, e_1), …, [e_K, +inf); a value holding a large share
    # (a point mass: zeros of a zero-inflated count, each level of a flag) is a bin of its own
    bin_edges: list[Finite]
    bin_shares: list[Share]  # K + 2 shares, underflow and overflow included
    cdf_points: list[Finite]
    cdf_values: list[Share]  # observed F(x_i), not the nominal percentile (ties!)


class CategoricalReference(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    count: Count
    missing: Count
    # The kept categories and __other__ (everything else), measured on ``share_count`` held-out
    # records: the categories were chosen on the other records, so choosing cannot bias them.
    shares: dict[str, Share]
    share_count: Count
    # Every value seen in development, sorted; None when there were more than VOCABULARY_CAP.
    vocabulary: list[str] | None


class Calibration(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How often development predictions were wrong, by confidence: per bin of the confidence
    field's ``bin_edges`` (underflow and overflow included, like ``bin_shares``), the labelled
    records and the wrong ones among them. Live windows are judged by it before their labels
    arrive (``model_window_estimated_error_ratio``)."""

    field: str  # the numeric field whose bins these are: "confidence"
    labelled: list[Count]
    wrong: list[Count]


class Reference(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    created: str
    records: Count
    numeric: dict[str, NumericReference]
    categorical: dict[str, CategoricalReference]
    labelled: Count = 0
    error_ratio: Share | None = None  # classification
    mae: NonNegative | None = None  # regression: mean absolute error
    rmse: NonNegative | None = None  # regression: root mean squared error
    sketch_relative_accuracy: Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)] = 0.01
    # Optional (added within format 2): profiles without it load, and keep their hash.
    calibration: Calibration | None = None
    source: dict[str, Any] = msgspec.field(default_factory=dict)
    hash: str = ""

    def content_hash(self) -> str:
        """sha256 of the content (not of the creation time or the hash itself), so the same
        development data gives the same hash whenever it is rebuilt. An absent calibration is
        left out, so a profile written before the key existed keeps its hash."""
        body = msgspec.to_builtins(self)
        for key in ("hash", "created", "source"):
            body.pop(key, None)
        if body.get("calibration") is None:
            body.pop("calibration", None)
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def to_json(self) -> str:
        body = {"format": FORMAT, "format_version": FORMAT_VERSION, **msgspec.to_builtins(self)}
        if body.get("calibration") is None:
            body.pop("calibration", None)
        body["hash"] = self.content_hash()
        return json.dumps(body, indent=1, allow_nan=False) + "\n"


class _Header(msgspec.Struct):
    format: Any = None
    format_version: Any = None


class _File(Reference, frozen=True, forbid_unknown_fields=True, kw_only=True):
    format: str
    format_version: int


# -- loading ------------------------------------------------------------------------------------

_AT = re.compile(r"^(?P<message>.*) - at `\$(?P<path>.*)`$")


def _problem(where: str, error: msgspec.ValidationError, prefix: str = "") -> str:
    """msgspec's "Expected `int` >= 0 - at `$.records`" as "reference.records: Expected …"."""
    found = _AT.match(str(error))
    if found is None:
        return f"{where}{prefix}: {error}"
    return f"{where}{prefix}{found['path']}: {found['message']}"


def _field_problems(raw: dict[str, Any], where: str) -> list[str]:
    """Decode each field on its own, so a problem names the field (msgspec says ``[...]``)."""
    problems = []
    for kind, kind_type in (("numeric", NumericReference), ("categorical", CategoricalReference)):
        section = raw.get(kind)
        if not isinstance(section, dict):
            continue
        for name, body in section.items():
            try:
                msgspec.convert(body, kind_type)
            except msgspec.ValidationError as exc:
                problems.append(_problem(where, exc, f".{kind}.{name}"))
    return problems


def _cross_field_problems(reference: Reference, where: str) -> list[str]:
    problems = []
    for name, num in reference.numeric.items():
        at = f"{where}.numeric.{name}"
        if len(num.bin_shares) != len(num.bin_edges) + 1:
            problems.append(f"{at}.bin_shares: needs one share more than bin_edges")
        if len(num.cdf_points) != len(num.cdf_values):
            problems.append(f"{at}.cdf_values: must match cdf_points")
        if any(b <= a for a, b in zip(num.bin_edges, num.bin_edges[1:], strict=False)):
            problems.append(f"{at}.bin_edges: must increase")
    for name, cat in reference.categorical.items():
        if cat.share_count > cat.count:
            problems.append(f"{where}.categorical.{name}.share_count: more than count")
    calibration = reference.calibration
    if calibration is not None:
        at = f"{where}.calibration"
        binned = reference.numeric.get(calibration.field)
        if binned is None:
            problems.append(f"{at}.field: {calibration.field!r} is not a numeric field")
        elif not len(calibration.labelled) == len(calibration.wrong) == len(binned.bin_shares):
            problems.append(f"{at}: labelled and wrong need one count per bin of the field")
        if any(w > n for w, n in zip(calibration.wrong, calibration.labelled, strict=False)):
            problems.append(f"{at}.wrong: more than labelled in a bin")
    if reference.hash and reference.hash != reference.content_hash():
        problems.append(f"{where}.hash: does not match the content (edited by hand? rebuild it)")
    return problems


def parse(text: str | bytes, where: str = "reference") -> Reference:
    """JSON text → Reference, or ConfigError naming the problems by key."""
    try:
        header = msgspec.json.decode(text, type=_Header)
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: first
        raise ConfigError([f"{where}: must be a JSON object"]) from exc
    except msgspec.DecodeError as exc:
        raise ConfigError([f"{where}: not valid JSON ({exc})"]) from exc
    if header.format != FORMAT:
        raise ConfigError([f"{where}.format: must be {FORMAT!r}"])
    if header.format_version != FORMAT_VERSION:
        raise ConfigError(
            [
                f"{where}.format_version: is {header.format_version!r}, this sidecar reads "
                f"{FORMAT_VERSION} (rebuild the profile with `model-exporter baseline`)"
            ]
        )
    try:
        file = msgspec.json.decode(text, type=_File)
    except msgspec.ValidationError as exc:
        problems = _field_problems(msgspec.json.decode(text), where) or [_problem(where, exc)]
        raise ConfigError(problems) from exc
    reference = Reference(**{key: getattr(file, key) for key in Reference.__struct_fields__})
    problems = _cross_field_problems(reference, where)
    if problems:
        raise ConfigError(problems)
    return reference


def check_compatible(reference: Reference, relative_accuracy: float) -> None:
    """Both sides must bucket values the same way, or equal data would look drifted."""
    if abs(reference.sketch_relative_accuracy - relative_accuracy) > 1e-9 * relative_accuracy:
        raise ConfigError(
            [
                f"sketch_relative_accuracy: the reference was built with "
                f"{reference.sketch_relative_accuracy}, the sidecar uses {relative_accuracy}; "
                "rebuild the reference with this config"
            ]
        )


def load(path: str | Path) -> Reference:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from exc
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text ({exc.reason})"]) from exc
    return parse(data, f"{path}: profile")  # "x.json: profile.hash: ...", not "x.json.hash"
