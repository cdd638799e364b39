"""Scalar checks and the problem collector that config validation is built from.

Kept apart from ``config`` so the rules for one value (what a duration, a listen address or a
dotted path looks like) live in a leaf that imports nothing from the package: the CLI and the
tools parse ``--window 5m`` or ``:10027`` with the same functions the config file uses, without
pulling in the YAML validator, and ``config`` keeps only the shape of the config itself.

Each check takes one raw value and returns it typed, or raises ValueError with a message that
reads after the key (``sources[0].path: must be a non-empty string``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def number_label(value: float) -> str:
    """A configured number as a label value: ``0.5``, ``0.99``, ``1`` (never ``0.50000``), the
    same spelling wherever it appears (window and reference quantiles, histogram bounds)."""
    return f"{float(value):.12g}"


def parse_duration(text: str) -> float:
    """``"90s"``, ``"5m"``, ``"1h"``, ``"500ms"`` → seconds; raises ValueError otherwise."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def parse_listen_address(text: str) -> tuple[str, int]:
    """``":10027"`` → ("", 10027) (all interfaces); ``"127.0.0.1:9000"``; ``"[::1]:9000"``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. :10027 or 127.0.0.1:10027)")
    return host.strip("[]"), int(port)


class Checker:
    """Collects problems while reading a mapping, so one run reports all of them."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def mapping(self, value: Any, key: str, allowed: set[str]) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(key, "must be a mapping")
            return {}
        for k in value:
            if k not in allowed:
                self.fail(
                    f"{key}.{k}" if key else str(k),
                    f"unknown key (allowed: {', '.join(sorted(allowed))})",
                )
        return value

    def get(
        self, data: Mapping[str, Any], key: str, where: str, check: Callable[[Any], T], default: T
    ) -> T:
        if key not in data or data[key] is None:
            return default
        try:
            return check(data[key])
        except ValueError as exc:
            self.fail(f"{where}{key}", str(exc))
            return default


def string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("must be a finite number")
    return float(value)


def count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("must be a whole number, 0 or more")
    return value


def positive(value: Any) -> float:
    result = number(value)
    if result <= 0:
        raise ValueError("must be positive")
    return result


def nonneg(value: Any) -> float:
    result = number(value)
    if result < 0:
        raise ValueError("must not be negative")
    return result


def at_least_two(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ValueError("must be a whole number, 2 or more (one bucket would empty at every edge)")
    return value


def accuracy(value: Any) -> float:
    result = number(value)
    if not 0.001 <= result <= 0.1:
        # Finer than 0.1% costs tens of thousands of buckets per sketch; coarser than 10% is
        # not a quantile worth exporting.
        raise ValueError("must be between 0.001 and 0.1")
    return result


def positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("must be a positive integer")
    return value


def duration(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = parse_duration(value)
    else:
        raise ValueError("must be a duration like 30s, 5m, 1h")
    if seconds <= 0:
        raise ValueError("must be positive")
    return seconds


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def probability(value: Any) -> float:
    result = number(value)
    if not 0 < result < 1:
        raise ValueError("must be between 0 and 1 (exclusive)")
    return result


def one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return str(value)

    return check


def dotted_path(value: Any) -> tuple[str, ...]:
    text = string(value)
    parts = tuple(text.split("."))
    if any(not p for p in parts):
        raise ValueError(f"{text!r} is not a dotted path like features.amount")
    return parts


def listen(value: Any) -> str:
    """A listen address, kept as text: the server parses it when it binds."""
    text = string(value)
    parse_listen_address(text)
    return text
