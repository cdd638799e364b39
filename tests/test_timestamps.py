"""A column of timestamps read at once must give exactly what reading each value does.

The expected value of every string comes from the test's own ``datetime.fromisoformat`` call,
never from the module under test; the strings mix the fast shape with near misses (a day 31
in April, hour 24, a comma or seven fraction digits, offsets without a colon, non-ASCII
digits) that must take the exact path.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter import timestamps
from exporter.timestamps import epoch_seconds


@pytest.fixture(autouse=True, scope="module", params=["few read one by one", "byte matrix always"])
def _few(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test twice: as shipped (a short column is read value by value), and with every
    column, however short, taking the byte-matrix path."""
    patch = pytest.MonkeyPatch()
    if request.param == "byte matrix always":
        patch.setattr(timestamps, "FEW", 0)
    yield
    patch.undo()


def expected(value: Any, scale: float = 1.0) -> float:
    if value is None or isinstance(value, bool):
        return math.nan
    if isinstance(value, int | float):
        return float(value) * scale
    try:
        return float(value) * scale
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:  # RFC 3339: "t" and "z" may be lowercase
            parsed = datetime.fromisoformat(value.replace("t", "T").replace("z", "Z"))
        except ValueError:
            return math.nan
    return parsed.replace(tzinfo=parsed.tzinfo or UTC).timestamp()


def same(got: np.ndarray, want: list[float]) -> bool:
    return all((math.isnan(w) and math.isnan(g)) or g == w for g, w in zip(got, want, strict=True))


@st.composite
def iso_text(draw: st.DrawFn) -> str:
    year = draw(st.sampled_from([1, 4, 1969, 1970, 2000, 2024, 2100, 2255, 2256, 9999]))
    month = draw(st.integers(0, 13))
    day = draw(st.integers(0, 32))
    hour, minute, second = (
        draw(st.integers(0, 25)),
        draw(st.integers(0, 60)),
        draw(st.integers(0, 61)),
    )
    sep = draw(st.sampled_from(["T", " ", "t", "x"]))
    fraction = draw(
        st.sampled_from(["", ".5", ".25", ".123", ".1234", ".123456", ".1234567", ",5", "."])
    )
    zone = draw(
        st.sampled_from(
            [
                "",
                "Z",
                "z",
                "+00:00",
                "-00:00",
                "-05:30",
                "+23:59",
                "+24:00",
                "+02",
                "+0200",
                "+05:61",
            ]
        )
    )
    text = (
        f"{year:04d}-{month:02d}-{day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}{fraction}{zone}"
    )
    if draw(st.integers(0, 20)) == 0:
        text = text.replace("2", "\u0662")  # an Arabic-Indic digit: a digit to \\d, not to us
    return text


# No booleans: the decoder flags a boolean timestamp a type mismatch before it gets here.
others = st.sampled_from([None, 5.5, 1_717_000_000, "1717000000.5", "garbage", "", "x" * 60])


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(iso_text(), min_size=1, max_size=30))
def test_a_column_of_iso_strings_reads_as_each_one_alone(texts: list[str]) -> None:
    assert same(epoch_seconds(texts, 1.0), [expected(t) for t in texts])


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(iso_text(), min_size=1, max_size=30))
def test_near_misses_next_to_a_valid_string_of_their_shape(texts: list[str]) -> None:
    """A valid string of each length goes first, so its shape is the one tried on the rest."""
    column = ["2000-01-01T00:00:00" + text[19:] for text in texts if len(text) >= 19] + texts
    assert same(epoch_seconds(column, 1.0), [expected(t) for t in column])


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(iso_text(), others), min_size=1, max_size=30))
def test_mixed_columns_read_as_each_value_alone(values: list[Any]) -> None:
    assert same(epoch_seconds(values, 0.001), [expected(v, 0.001) for v in values])


@pytest.mark.parametrize(
    "text",
    [
        "2025-11-30T14:00:00.123Z",
        "2025-11-30T14:00:00.123+00:00",
        "2025-11-30 14:00:00",
        "2024-02-29T23:59:59.999999-12:30",
        "1970-01-01T00:00:00Z",
    ],
)
def test_common_shapes_in_a_long_uniform_column(text: str) -> None:
    column = [text] * 5_000
    got = epoch_seconds(column, 1.0)
    assert (got == expected(text)).all()


@pytest.mark.parametrize(
    "miss",
    [
        "2024-04-31T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-10T00:00:00Z",
        "2024-01-00T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T23:60:00Z",
        "2024-01-01T23:59:60Z",
        "0000-01-01T00:00:00Z",
        "2024-01-01T00:00:00z",
        "2024/01/01T00:00:00Z",
        "2024-01-01T00:00:0aZ",
    ],
)
def test_a_near_miss_among_valid_strings_of_its_shape(miss: str) -> None:
    column = ["2000-02-29T12:00:00Z", miss, "2024-02-29T00:00:00Z"]
    assert same(epoch_seconds(column, 1.0), [expected(t) for t in column])


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-30t14:03:21z",
        "2026-11-30t14:03:21.250Z",
        "2026-11-30T14:03:21.5z",
        "2026-11-30t14:03:21+01:00",
    ],
)
def test_rfc3339_lowercase_t_and_z_are_read(text: str) -> None:
    """RFC 3339 (5.6) allows "t" and "z" in lower case; fromisoformat does not."""
    want = datetime.fromisoformat(text.upper()).timestamp()
    assert epoch_seconds([text, text.upper()], 1.0).tolist() == [want, want]


def test_numbers_take_the_unit_and_none_is_nan() -> None:
    got = epoch_seconds([1_717_000_000_123, None, 5], 0.001)
    assert got[0] == pytest.approx(1_717_000_000.123)
    assert math.isnan(got[1])
    assert got[2] == 0.005


@pytest.mark.parametrize(
    "odd",
    [
        "2024-01-01T00:0\n:00Z",  # a newline of its own, at the width of its neighbours
        "2024-01-01T00:00:00Z\n",
        "\n",
        "2024-01-01T00:00:0\ud800",  # a lone surrogate (a JSON "\ud800")
        "2024-01-01T00:00:00\u00e9",  # non-ASCII, one byte longer than it looks
        "2024-01-01T00:00:0\u00e9",
    ],
)
def test_a_column_read_as_one_text_keeps_values_apart(odd: str) -> None:
    """The column is joined with newlines and encoded as one: a value's own newline, or a
    character of several bytes, must not shift its neighbours."""
    column = ["2000-02-29T12:00:00Z", odd, "2024-02-29T00:00:00Z", "2024-02-29 00:00:01"]
    assert same(epoch_seconds(column, 1.0), [expected(t) for t in column])
