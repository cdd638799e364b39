"""Record timestamps → epoch seconds, a whole column at a time.

Why vectorised: parsing an ISO-8601 string per record in Python (``datetime.fromisoformat``)
was the largest single cost of ingesting a log that writes them. Here the common shape —
``YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}][Z|±HH:MM]`` — is read as a byte matrix with numpy: the
digits become numbers with a few array operations, and every row whose bytes do not fit the
shape exactly (other ISO variants, numbers written as strings, garbage, a day 31 in April)
goes through the exact per-value parser. So the fast path only ever answers for values it
reads exactly as ``datetime.fromisoformat`` does; everything else gets the slow, exact answer.

Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

LONGEST = 32  # longer strings are not of the fast shape: the per-value parser takes them
_SHAPE = re.compile(
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.(\d{1,6}))?(Z|[+-]\d\d:\d\d)?", re.ASCII
)
_DAYS_BEFORE_MONTH = np.array([0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334])
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_EXACT = 2**53


def _year_tables() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per year 0..9999: the day number of its 1 January counted from 1970-01-01, and 1 for a
    leap year (tables, so a column of dates costs lookups rather than integer divisions)."""
    years = np.arange(10_000, dtype=np.int64)
    before = np.maximum(years - 1, 0)
    start = before * 365 + before // 4 - before // 100 + before // 400 - 719_162
    leap = ((years % 4 == 0) & ((years % 100 != 0) | (years % 400 == 0))).astype(np.int64)
    return start, leap


_YEAR_START, _LEAP = _year_tables()


def parse_one(value: Any, scale: float) -> float:
    """Epoch seconds from a number (scaled by the configured unit) or an ISO 8601 string;
    NaN for anything else. The exact reference the fast path must agree with."""
    if isinstance(value, bool):
        return math.nan
    if isinstance(value, int | float):
        try:
            return float(value) * scale
        except OverflowError:
            return math.nan
    if isinstance(value, str):
        try:
            return float(value) * scale
        except (ValueError, OverflowError):
            pass
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return math.nan
        if parsed.tzinfo is None:  # a naive time in a log is taken as UTC, never as local time
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return math.nan


def epoch_seconds(values: Sequence[Any], scale: float) -> FloatArray:
    """Seconds for a column of decoded timestamp values — numbers, strings or None (the
    decoder flags a boolean before it gets here) — NaN where there is none. A column of
    numbers takes one numpy call, ISO strings the byte-matrix path, and whatever is left the
    per-value parser."""
    try:
        return np.array(values, dtype=np.float64) * scale
    except (ValueError, TypeError, OverflowError):
        pass
    n = len(values)
    try:
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
    except TypeError:  # numbers or None among the strings
        return _mixed(values, scale)
    seconds, ok = iso_seconds(values, lengths)
    for i in np.flatnonzero(~ok).tolist():
        seconds[i] = parse_one(values[i], scale)
    return seconds


def _mixed(values: Sequence[Any], scale: float) -> FloatArray:
    seconds = np.full(len(values), math.nan)
    at: list[int] = []
    for i, value in enumerate(values):
        if type(value) is str:
            at.append(i)
        elif value is not None:
            seconds[i] = parse_one(value, scale)
    texts = [values[i] for i in at]
    parsed, ok = iso_seconds(texts, np.fromiter(map(len, texts), dtype=np.int64, count=len(at)))
    rows = np.array(at, dtype=np.int64)
    seconds[rows[ok]] = parsed[ok]
    for i in rows[~ok].tolist():
        seconds[i] = parse_one(values[i], scale)
    return seconds


def iso_seconds(
    texts: Sequence[str], lengths: npt.NDArray[np.int64]
) -> tuple[FloatArray, BoolArray]:
    """Epoch seconds of the strings that have the fast shape, and which ones had it."""
    n = len(texts)
    seconds = np.full(n, math.nan)
    ok = np.zeros(n, dtype=bool)
    if n == 0:
        return seconds, ok
    uniform = lengths.min() == lengths.max()
    for length in [int(lengths[0])] if uniform else np.unique(lengths).tolist():
        if length > LONGEST:
            continue
        rows = np.arange(n) if uniform else np.flatnonzero(lengths == length)
        group = texts if uniform else [texts[i] for i in rows.tolist()]
        match = _SHAPE.fullmatch(group[0])
        if match is None:
            continue  # this length holds some other shape: the per-value parser reads it
        try:
            raw = np.array(group, dtype=f"S{length}")
        except UnicodeEncodeError:  # a non-ASCII string is not of the shape
            ascii_rows = np.array([t.isascii() for t in group], dtype=bool)
            rows = rows[ascii_rows]
            raw = np.array([t for t in group if t.isascii()], dtype=f"S{length}")
        shape = _shape(length, len(match.group(1) or ""), len(match.group(2) or ""))
        values, good = shape.read(raw)
        seconds[rows] = values
        ok[rows] = good
    return seconds, ok


class _Shape:
    """One fixed-width layout: 19 characters of date and time, then ``fraction`` digits after
    a dot (if any), then a zone of 0, 1 (``Z``) or 6 (``±HH:MM``) characters."""

    def __init__(self, length: int, fraction: int, zone: int) -> None:
        self.length = length
        self.fraction = fraction
        marks = {4: "-", 7: "-", 13: ":", 16: ":"}
        # Two-digit fields, tens then ones: month, day, hour, minute, second (and the zone's
        # hours and minutes); low and high bounds for each.
        pairs = [5, 8, 11, 14, 17]
        low, high = [1, 1, 0, 0, 0], [12, 31, 23, 59, 59]
        digits = [0, 1, 2, 3]
        if fraction:
            marks[19] = "."
            digits += list(range(20, 20 + fraction))
        self.zone_at = 19 + (fraction + 1 if fraction else 0)
        self.zone = zone
        if zone == 1:
            marks[self.zone_at] = "Z"
        elif zone == 6:
            marks[self.zone_at + 3] = ":"
            pairs += [self.zone_at + 1, self.zone_at + 4]
            low, high = [*low, 0, 0], [*high, 23, 59]
        self.tens = pairs
        self.ones = [p + 1 for p in pairs]
        self.digit_at = digits + self.tens + self.ones
        self.low = np.array(low)[:, None]
        self.high = np.array(high)[:, None]
        self.mark_at = list(marks)
        self.mark = np.frombuffer("".join(marks.values()).encode(), dtype=np.uint8)[:, None]

    def read(self, raw: npt.NDArray[np.bytes_]) -> tuple[FloatArray, BoolArray]:
        n = len(raw)
        matrix = np.ascontiguousarray(raw.view(np.uint8).reshape(n, self.length).T)
        digits = matrix[self.digit_at] - np.uint8(ord("0"))  # bytes below '0' wrap around
        good: BoolArray = np.all(digits <= 9, axis=0)
        good &= (matrix[self.mark_at] == self.mark).all(axis=0)
        good &= (matrix[10] == ord("T")) | (matrix[10] == ord(" "))
        d = digits.astype(np.int32)  # rows: year, fraction, tens of the pairs, their ones
        first_pair = 4 + self.fraction
        count = len(self.tens)
        pairs = d[first_pair : first_pair + count] * 10 + d[first_pair + count :]
        good &= ((pairs >= self.low) & (pairs <= self.high)).all(axis=0)
        year = ((d[0] * 10 + d[1]) * 10 + d[2]) * 10 + d[3]
        good &= year >= 1
        month, day, hour, minute, second = pairs[:5].astype(np.int64)
        year = np.where(good, year, 1970)
        month = np.where(good, month, 1)
        leap = _LEAP[year]
        good &= day <= _DAYS_IN_MONTH[month] + (month == 2) * leap
        days = _YEAR_START[year] + _DAYS_BEFORE_MONTH[month] + (month > 2) * leap + day - 1
        whole = days * 86_400 + hour * 3600 + minute * 60 + second
        if self.zone == 6:
            sign = matrix[self.zone_at]
            good &= (sign == ord("+")) | (sign == ord("-"))
            offset = pairs[5].astype(np.int64) * 3600 + pairs[6] * 60
            whole -= np.where(sign == ord("-"), -offset, offset)
        micros = np.zeros(n, dtype=np.int64)
        for k in range(self.fraction):
            micros += d[4 + k] * 10 ** (5 - k)
        # Integer microseconds, then one division: the same correctly rounded value as
        # datetime.timestamp() (total microseconds / 10**6) while they convert to a float
        # exactly (below 2**53, until the year 2255); later times take the per-value parser.
        total = whole * 1_000_000 + micros
        good &= np.abs(total) < _EXACT
        values: FloatArray = total / 1e6
        return values, good


_SHAPES: dict[tuple[int, int, int], _Shape] = {}


def _shape(length: int, fraction: int, zone: int) -> _Shape:
    key = (length, fraction, zone)
    shape = _SHAPES.get(key)
    if shape is None:
        shape = _SHAPES[key] = _Shape(length, fraction, zone)
    return shape
