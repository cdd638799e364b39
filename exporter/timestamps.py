"""Record timestamps → epoch seconds, a whole column at a time.

Why vectorised: parsing an ISO-8601 string per record in Python (``datetime.fromisoformat``)
was the largest single cost of ingesting a log that writes them. Here the common shape —
``YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}][Z|±HH:MM]`` — is read as a byte matrix with numpy (the
column joined and encoded once, each value's bytes found from the separators): the digits
become numbers with a few array operations on bytes, and every row whose bytes do not fit the
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

# A column of at most this many values is read value by value: the byte-matrix path costs some
# fifty numpy calls whatever the column's length, and the few lines a chunk leaves to the exact
# path (a malformed neighbour, an odd value) come here a handful at a time.
FEW = 8
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
            # RFC 3339 allows a lowercase "t" and "z", which fromisoformat refuses.
            upper = value.replace("t", "T").replace("z", "Z")
            if upper == value:
                return math.nan
            try:
                parsed = datetime.fromisoformat(upper)
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
    if len(values) <= FEW:
        return np.array([parse_one(value, scale) for value in values], dtype=np.float64)
    try:
        seconds, ok = iso_seconds(values)
    except TypeError:  # numbers or None among the strings
        return _mixed(values, scale)
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
    parsed, ok = iso_seconds([values[i] for i in at])
    rows = np.array(at, dtype=np.int64)
    seconds[rows[ok]] = parsed[ok]
    for i in rows[~ok].tolist():
        seconds[i] = parse_one(values[i], scale)
    return seconds


def iso_seconds(texts: Sequence[str]) -> tuple[FloatArray, BoolArray]:
    """Epoch seconds of the strings that have the fast shape, and which ones had it (a
    TypeError if one is not a string).

    The column is joined and encoded once, and each value's bytes found from the separators
    with array operations: rows of one length (usually all of them) form a byte matrix per
    length, read in one pass. A value holding a newline of its own leaves every value to the
    per-value parser."""
    n = len(texts)
    seconds = np.full(n, math.nan)
    ok = np.zeros(n, dtype=bool)
    if n == 0:
        return seconds, ok
    blob = np.frombuffer("\n".join(texts).encode("utf-8", "surrogatepass") + b"\n", dtype=np.uint8)
    ends = np.flatnonzero(blob == ord("\n"))
    if len(ends) != n:
        return seconds, ok
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts
    uniform = lengths[0] == lengths[-1] and (lengths == lengths[0]).all()
    for length in [int(lengths[0])] if uniform else np.unique(lengths).tolist():
        if not 0 < length <= LONGEST:
            continue
        rows = None if uniform else np.flatnonzero(lengths == length)
        match = _SHAPE.fullmatch(texts[0 if rows is None else int(rows[0])])
        if match is None:
            continue  # this length holds some other shape: the per-value parser reads it
        shape = _shape(length, len(match.group(1) or ""), len(match.group(2) or ""))
        if rows is None:
            seconds, ok = shape.read_rows(blob.reshape(n, length + 1)[:, :length])
        else:
            matrix = blob[starts[rows][:, None] + np.arange(length)]
            seconds[rows], ok[rows] = shape.read_rows(matrix)
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
        self.low = np.array(low, dtype=np.uint8)[:, None]
        self.high = np.array(high, dtype=np.uint8)[:, None]
        self.mark_at = list(marks)
        self.mark = np.frombuffer("".join(marks.values()).encode(), dtype=np.uint8)[:, None]

    def read_rows(self, rows: npt.NDArray[np.uint8]) -> tuple[FloatArray, BoolArray]:
        """Seconds and validity of each row of an [n, length] byte matrix."""
        matrix = np.ascontiguousarray(rows.T)
        digits = matrix[self.digit_at] - np.uint8(ord("0"))  # bytes below '0' wrap around
        good: BoolArray = np.all(digits <= 9, axis=0)
        good &= (matrix[self.mark_at] == self.mark).all(axis=0)
        good &= (matrix[10] == ord("T")) | (matrix[10] == ord(" "))
        # Rows: year, fraction, tens of the pairs, their ones. Two digits fit a byte and a
        # year 16 bits; a row that is not all digits is already not good (its numbers wrap).
        first_pair = 4 + self.fraction
        count = len(self.tens)
        pairs = digits[first_pair : first_pair + count] * np.uint8(10)
        pairs += digits[first_pair + count :]
        good &= ((pairs >= self.low) & (pairs <= self.high)).all(axis=0)
        d = digits[:first_pair].astype(np.int32)
        year = ((d[0] * 10 + d[1]) * 10 + d[2]) * 10 + d[3]
        good &= year >= 1
        month = np.where(good, pairs[0], 1)
        year = np.where(good, year, 1970)
        day = pairs[1].astype(np.int32)
        leap = _LEAP[year]
        good &= day <= _DAYS_IN_MONTH[month] + (month == 2) * leap
        days = _YEAR_START[year] + (_DAYS_BEFORE_MONTH[month] + (month > 2) * leap + day - 1)
        clock = pairs[2].astype(np.int32) * 3600 + pairs[3].astype(np.int32) * 60 + pairs[4]
        if self.zone == 6:
            sign = matrix[self.zone_at]
            good &= (sign == ord("+")) | (sign == ord("-"))
            offset = pairs[5].astype(np.int32) * 3600 + pairs[6].astype(np.int32) * 60
            clock -= np.where(sign == ord("-"), -offset, offset)
        micros = clock.astype(np.int64) * 1_000_000
        for k in range(self.fraction):
            micros += d[4 + k] * 10 ** (5 - k)
        # Integer microseconds, then one division: the same correctly rounded value as
        # datetime.timestamp() (total microseconds / 10**6) while they convert to a float
        # exactly (below 2**53, until the year 2255); later times take the per-value parser.
        total = days * 86_400_000_000 + micros
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
