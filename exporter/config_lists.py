"""The list-valued settings: windows, quantiles and histogram bounds.

Their items become label values (``window``, ``q``, ``le``) or whole series, so beyond each
item's bounds, a list is short (``limits.LENGTHS``) and no two items may end up as the same label
value: ``[1m, 60s]`` or ``[0.5, 0.5000000000001]`` would put one series twice in a scrape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exporter.config_types import Config, WindowSpec
from exporter.limits import LENGTHS, REAL
from exporter.validate import Checker, number, number_label, shown

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


def _list(c: Checker, value: Any, key: str, what: str) -> list[Any] | None:
    """A non-empty list of at most ``LENGTHS[key]`` items, or None (reported)."""
    longest = LENGTHS.get(key, LENGTHS.get(key.rsplit(".", 1)[0] + ".*", 0))
    if not isinstance(value, list) or not value or len(value) > longest:
        c.fail(key, f"must be a list of 1 to {longest} {what}")
        return None
    return value


def windows(c: Checker, value: Any) -> tuple[WindowSpec, ...]:
    if value is None:
        return Config().windows
    items = _list(c, value, "windows", "durations like [1m, 5m, 1h]")
    result: list[WindowSpec] = []
    for i, item in enumerate(items or []):
        try:
            window = WindowSpec(str(item), REAL["windows[]"](item))
        except ValueError as exc:
            c.fail(f"windows[{i}]", str(exc))
            continue
        same = next((w for w in result if w.seconds == window.seconds), None)
        if same is not None:
            c.fail(f"windows[{i}]", f"{window.name} is the same window as {same.name}")
            continue
        result.append(window)
    return tuple(sorted(result, key=lambda w: w.seconds)) if result else Config().windows


def _labelled_numbers(
    c: Checker, items: list[Any], key: str, check: Callable[[Any], float]
) -> list[float]:
    """Numbers that become label values (``q``, ``le``), in order: each checked, and no two
    different numbers spelled alike, or one scrape would carry the same series twice."""
    result: list[float] = []
    labels: dict[str, float] = {}
    for i, item in enumerate(items):
        try:
            value = float(check(item))
        except ValueError as exc:
            c.fail(f"{key}[{i}]", str(exc))
            continue
        label = number_label(value)
        if labels.setdefault(label, value) != value:
            c.fail(f"{key}[{i}]", f"{shown(item)} and {labels[label]!r} are both labelled {label}")
        result.append(value)
    return result


def quantiles(c: Checker, value: Any) -> tuple[float, ...]:
    if value is None:
        return Config().quantiles
    items = _list(c, value, "quantiles", "numbers in (0, 1)")
    result = _labelled_numbers(c, items or [], "quantiles", REAL["quantiles[]"])
    return tuple(sorted(set(result))) if result else Config().quantiles


def _finite_bound(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == float("inf"):
        raise ValueError("must be finite (the +Inf bucket is always added)")
    return number(value)


def histograms(c: Checker, value: Any) -> tuple[tuple[str, tuple[float, ...]], ...]:
    data = c.mapping(value, "histograms", set(DEFAULT_HISTOGRAMS))
    result = []
    for name, default in DEFAULT_HISTOGRAMS.items():
        key = f"histograms.{name}"
        if data.get(name) is None:
            result.append((name, default))
            continue
        items = _list(c, data[name], key, "bucket upper bounds")
        bounds = _labelled_numbers(c, items or [], key, _finite_bound)
        ok = items is not None and len(bounds) == len(items)
        if ok and bounds != sorted(set(bounds)):
            c.fail(key, "must be strictly increasing")
            ok = False
        result.append((name, tuple(bounds) if ok else default))
    return tuple(result)
