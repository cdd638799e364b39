"""Check a Grafana dashboard's JSON against the typed models of Grafana's foundation SDK.

The SDK's ``from_json`` decodes a dashboard into typed objects (panels, their plugin's options
and field config, Prometheus queries, variables) but is lenient: it drops keys its schema does
not know and stores values as they come. So the check is in two halves: decode and encode again
and report every key that was lost or changed (a misspelt or unknown field), then walk the
decoded objects and compare each value with its attribute's declared type (a string where an
enum member, a number or a nested object belongs). Paths in the first kind of report use the
JSON's names (``fieldConfig``), in the second the SDK's attribute names (``field_config``).
"""

from __future__ import annotations

import enum
import json
import types
import typing
from functools import cache
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

_NONE = type(None)


def problems(data: dict[str, Any]) -> list[str]:
    """Every field of ``data`` that Grafana's dashboard schema does not accept, as
    "path: what is wrong"; empty for a valid dashboard."""
    register_default_plugins()
    try:
        model = Dashboard.from_json(data)
        again = json.loads(json.dumps(model, cls=JSONEncoder))
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        return [f"(decoding): {type(e).__name__}: {e}"]
    found = list(_lost(data, again, "dashboard"))
    found += _mistyped(model, "dashboard")
    return found


def _lost(original: Any, again: Any, path: str) -> typing.Iterator[str]:
    if isinstance(original, dict) and isinstance(again, dict):
        for key, value in original.items():
            if key not in again:
                yield f"{path}.{key}: not a field of the schema"
            else:
                yield from _lost(value, again[key], f"{path}.{key}")
    elif isinstance(original, list) and isinstance(again, list) and len(original) == len(again):
        for i, (a, b) in enumerate(zip(original, again, strict=True)):
            yield from _lost(a, b, f"{path}[{i}]")
    elif original != again:
        yield f"{path}: {original!r} became {again!r}"


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _mistyped(obj: Any, path: str) -> list[str]:
    """Attributes of a decoded SDK object whose values do not fit their declared types."""
    found: list[str] = []
    for name, hint in _hints(type(obj)).items():
        value = getattr(obj, name, None)
        found += _check(value, hint, f"{path}.{name}")
    return found


def _check(value: Any, hint: Any, path: str) -> list[str]:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or hint is object:
        return _mistyped(value, path) if _is_model(value) else []
    if origin in (typing.Union, types.UnionType):
        if value is None and _NONE in args:
            return []
        results = [_check(value, arg, path) for arg in args if arg is not _NONE]
        return [] if any(not r for r in results) else min(results, key=len)
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} is not one of {list(args)}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a list"]
        return [p for i, v in enumerate(value) for p in _check(v, args[0], f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not an object"]
        return [p for k, v in value.items() for p in _check(v, args[1], f"{path}.{k}")]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        members = [m.value for m in hint]
        return [] if value in members else [f"{path}: {value!r} is not one of {members}"]
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is not a number"]
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is not an integer"]
    if hint in (str, bool):
        return [] if isinstance(value, hint) else [f"{path}: {value!r} is not a {hint.__name__}"]
    if isinstance(hint, type):
        if isinstance(value, dict) and hasattr(hint, "from_json"):
            value = hint.from_json(value)  # a list the SDK's decoder leaves as plain JSON
        if not isinstance(value, hint):
            return [f"{path}: {value!r} is not a {hint.__name__}"]
        return _mistyped(value, path)
    return []


def _is_model(value: Any) -> bool:
    """A decoded SDK object (a panel's options, a query), as opposed to plain JSON data."""
    return callable(getattr(value, "to_json", None)) and bool(_hints(type(value)))
