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
from dataclasses import dataclass
from typing import Any, TypeVar

from exporter.config_file import SpelledFloat, SpelledInt

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


def name_value(value: Any) -> str:
    """A static model name or version: text, or a whole number as YAML reads ``2`` (``"2"``,
    as the same number in the log would be labelled). A number YAML does not keep as written
    (``1.10`` reads as 1.1, ``010`` as 8) must be quoted; the message quotes what was written,
    which the config loader remembers (``SpelledFloat``, ``SpelledInt``)."""
    plain = isinstance(value, int) and not isinstance(value, bool | SpelledInt)
    if plain and value.bit_length() <= 64:
        return str(value)
    if isinstance(value, SpelledInt | SpelledFloat):
        raise ValueError(
            f"must be text: quote it (YAML reads {value.text} as the number {shown(value)}: "
            f'write "{value.text}")'
        )
    if isinstance(value, float):
        raise ValueError(
            f'must be text: quote it ({shown(value)} is a number to YAML: write "{value}")'
        )
    return string(value)


def file_path(value: Any) -> str:
    """A path the sidecar will open: text without NUL (no system call accepts one)."""
    text = string(value)
    if "\x00" in text:
        raise ValueError(f"{shown(text)} contains a NUL character")
    return text


def shown(value: Any) -> str:
    """A value as a message quotes it: short, and total (an integer of thousands of digits
    cannot even be turned into text by ``str``)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"a number of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _finite(value: Any) -> float | None:
    """The value as a finite float, or None (also for NaN, ±inf and integers too large for a
    float, which ``float()`` would raise on)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        result = float(value)
    except OverflowError:
        return None
    return result if math.isfinite(result) else None


def number(value: Any) -> float:
    result = _finite(value)
    if result is None:
        raise ValueError(f"must be a finite number (got {shown(value)})")
    return result


def format_duration(seconds: float) -> str:
    """Seconds in the largest unit that writes them whole: ``600`` → ``10m``, ``0.01`` →
    ``10ms`` (how limits read in messages and in docs/configuration.md)."""
    for unit in ("d", "h", "m", "s", "ms"):
        amount = seconds / _DURATION_UNITS[unit]
        if amount >= 1 and abs(amount - round(amount)) < 1e-9:
            return f"{round(amount)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Range:
    """The bounds of one numeric setting. Every numeric key has one: NaN, infinities and
    values that would exhaust memory or stall the loop are refused at start, by key, instead
    of failing later inside a scrape or a batch. ``text`` is what messages and the docs say."""

    low: float
    high: float
    open_low: bool = False  # the bound itself is excluded: (0, 1) for a probability
    open_high: bool = False

    def _bound(self, x: float) -> str:
        return str(int(x)) if x == int(x) else f"{x:g}"

    @property
    def text(self) -> str:
        low, high = self._bound(self.low), self._bound(self.high)
        if self.open_low and self.open_high:
            return f"greater than {low} and less than {high}"
        if self.open_low:
            return f"greater than {low} and at most {high}"
        return f"from {low} to {high}"

    def contains(self, x: float) -> bool:
        above = x > self.low if self.open_low else x >= self.low
        below = x < self.high if self.open_high else x <= self.high
        return above and below  # False for NaN, and ±inf is outside any finite bounds


@dataclass(frozen=True)
class Whole(Range):
    """A count or a size: an integer within the bounds."""

    def __call__(self, value: Any) -> int:
        ok = isinstance(value, int) and not isinstance(value, bool) and self.contains(value)
        if not ok:
            raise ValueError(f"must be a whole number {self.text} (got {shown(value)})")
        return int(value)


@dataclass(frozen=True)
class Real(Range):
    """A finite number within the bounds."""

    def __call__(self, value: Any) -> float:
        result = _finite(value)
        if result is None or not self.contains(result):
            raise ValueError(f"must be a number {self.text} (got {shown(value)})")
        return result


@dataclass(frozen=True)
class Duration(Real):
    """A duration (``30s``, ``5m``, or a number of seconds) within the bounds."""

    @property
    def text(self) -> str:
        return f"from {format_duration(self.low)} to {format_duration(self.high)}"

    def __call__(self, value: Any) -> float:
        seconds = parse_duration(value) if isinstance(value, str) else _finite(value)
        if seconds is None or not self.contains(seconds):
            raise ValueError(f"must be a duration {self.text} (got {shown(value)})")
        return seconds


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


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
    if any(c in '\\"' or ord(c) < 0x20 for c in text):
        # The typed decoder names struct fields after these keys, and cannot for these.
        raise ValueError(f"{shown(text)}: a path has no control characters, quotes or backslashes")
    return parts


def listen(value: Any) -> str:
    """A listen address, kept as text: the server parses it when it binds."""
    text = string(value)
    parse_listen_address(text)
    return text
