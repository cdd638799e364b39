"""JSON lines → columnar batches: values, anomaly kinds and parse errors.

Expected values come from the test's own reading of each line (``json.loads``, ``datetime``),
never from running the decoder.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.anomaly import PARSE_ERROR_REASONS, Kind
from exporter.batch import OTHER, UNKNOWN, Batch
from exporter.config import parse_config
from exporter.decode import PIECE_BYTES, Decoder
from exporter.errors import ConfigError
from exporter.stats.sketch import Sketches
from exporter.stats.window import Shape, summarize

NOW = 1_717_000_000.0
LATE_AFTER, FUTURE_AFTER = 300.0, 60.0

FIELDS: dict[str, Any] = {
    "timestamp": "ts",
    "model": "model",
    "version": "version",
    "prediction": {"path": "p", "min": 0, "max": 1},
    "predicted_class": "cls",
    "confidence": "conf",
    "latency": {"path": "lat_ms", "unit": "ms", "min": 0, "max": 60000},
    "ground_truth": "truth",
    "features": [
        {"name": "rid", "path": "rid"},
        {"name": "amount", "path": "f.amount", "min": -1000, "max": 1000},
        {"name": "country", "path": "f.country", "type": "categorical", "max_categories": 3},
    ],
}


def decoder(**fields: Any) -> Decoder:
    mapping = {**FIELDS, **fields}
    config = parse_config({"sources": ["x.jsonl"], "fields": mapping})
    return Decoder(config.fields, LATE_AFTER, FUTURE_AFTER)


def encode(*records: dict[str, Any] | str) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


def num(d: Decoder, batch: Batch, name: str) -> np.ndarray:
    names = [s.name for s in d.layout.numeric]
    return batch.numeric[:, names.index(name)]


def flag(d: Decoder, batch: Batch, name: str) -> np.ndarray:
    return batch.flags[:, d.layout.anomaly_fields.index(name)]


def category(d: Decoder, batch: Batch, name: str) -> list[str | None]:
    j = [s.name for s in d.layout.categorical].index(name)
    names = d.vocabularies[j].names()
    return [names[c] if c >= 0 else None for c in batch.categorical[:, j]]


def by_rid(d: Decoder, batch: Batch) -> dict[int, int]:
    """Row order is not meaningful; the ``rid`` feature says which line a row came from."""
    return {int(r): i for i, r in enumerate(num(d, batch, "rid"))}


# -- valid records -------------------------------------------------------------------------


def test_valid_lines_decode_to_their_values() -> None:
    d = decoder()
    records = [
        {
            "rid": i,
            "ts": NOW - i,
            "model": "fraud",
            "version": "v3",
            "p": i / 10,
            "conf": 0.5 + i / 100,
            "lat_ms": 12.5 * i,
            "cls": ["yes", "no"][i % 2],
            "truth": "yes",
            "f": {"amount": -5.0 * i, "country": ["DE", "FR"][i % 2]},
        }
        for i in range(10)
    ]
    batch = d.decode(encode(*records), NOW)
    assert batch.size == 10
    assert not batch.parse_errors
    assert batch.groups == [("fraud", "v3")]
    rows = by_rid(d, batch)
    for record in records:
        r = rows[record["rid"]]
        assert num(d, batch, "prediction")[r] == record["p"]
        assert num(d, batch, "confidence")[r] == record["conf"]
        assert num(d, batch, "latency_seconds")[r] == pytest.approx(record["lat_ms"] / 1000)
        assert num(d, batch, "amount")[r] == record["f"]["amount"]
        assert batch.timestamp[r] == record["ts"]
        assert category(d, batch, "predicted_class")[r] == record["cls"]
        assert category(d, batch, "country")[r] == record["f"]["country"]
        assert batch.wrong[r] == (record["cls"] != record["truth"])
    assert (batch.flags == Kind.OK).all()


@pytest.mark.parametrize(("unit", "factor"), [("ms", 1e-3), ("s", 1.0), ("us", 1e-6)])
def test_latency_is_converted_to_seconds(unit: str, factor: float) -> None:
    d = decoder(latency={"path": "lat", "unit": unit})
    raw = [0.0, 1.0, 250.0, 12345.5]
    batch = d.decode(encode(*({"lat": v} for v in raw)))
    np.testing.assert_allclose(num(d, batch, "latency_seconds"), np.array(raw) * factor)


def test_latency_bounds_are_in_the_configured_unit() -> None:
    d = decoder(latency={"path": "lat", "unit": "ms", "min": 0, "max": 1000})
    batch = d.decode(encode({"lat": 999}, {"lat": 1000}, {"lat": 1001}, {"lat": -1}))
    kinds = sorted(flag(d, batch, "latency_seconds").tolist())
    assert kinds == [Kind.OK, Kind.OK, Kind.OUT_OF_RANGE, Kind.OUT_OF_RANGE]


# -- numeric anomalies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (None, Kind.MISSING),
        ("null", Kind.MISSING),
        ('"abc"', Kind.NOT_A_NUMBER),
        ('""', Kind.NOT_A_NUMBER),
        ("NaN", Kind.NOT_A_NUMBER),
        ("Infinity", Kind.NOT_A_NUMBER),
        ("-Infinity", Kind.NOT_A_NUMBER),
        ("1e999", Kind.NOT_A_NUMBER),
        ('"nan"', Kind.NOT_A_NUMBER),
        ("true", Kind.TYPE_MISMATCH),
        ("false", Kind.TYPE_MISMATCH),
        ("[0.5]", Kind.TYPE_MISMATCH),
        ('{"v": 0.5}', Kind.TYPE_MISMATCH),
        ("1.5", Kind.OUT_OF_RANGE),
        ("-0.01", Kind.OUT_OF_RANGE),
        ("0", Kind.OK),
        ("1", Kind.OK),
        ('"0.25"', Kind.OK),
    ],
)
def test_numeric_anomaly_kinds(text: str | None, kind: Kind) -> None:
    d = decoder()
    bad = '{"rid": 1' + ("" if text is None else f', "p": {text}') + "}"
    batch = d.decode(encode({"rid": 0, "p": 0.5}, bad, {"rid": 2, "p": 0.75}))
    rows = by_rid(d, batch)
    assert batch.size == 3
    assert flag(d, batch, "prediction")[rows[1]] == kind
    value = num(d, batch, "prediction")[rows[1]]
    if kind is Kind.OK:
        expected = json.loads(text)  # type: ignore[arg-type]
        assert value == float(expected)
    else:
        assert np.isnan(value)
    assert num(d, batch, "prediction")[rows[0]] == 0.5
    assert num(d, batch, "prediction")[rows[2]] == 0.75
    assert flag(d, batch, "prediction")[rows[0]] == flag(d, batch, "prediction")[rows[2]] == 0


def test_huge_integer_is_not_a_number_not_a_crash() -> None:
    d = decoder()
    batch = d.decode(encode({"rid": 0, "p": 0.5}, '{"rid": 1, "p": 1' + "0" * 400 + "}"))
    rows = by_rid(d, batch)
    assert flag(d, batch, "prediction")[rows[1]] in (Kind.NOT_A_NUMBER, Kind.OUT_OF_RANGE)


def test_out_of_range_values_are_kept_out_of_statistics() -> None:
    d = decoder()
    rng = np.random.default_rng(7)
    amounts = rng.normal(0.0, 900.0, 2_000)
    batch = d.decode(encode(*({"rid": i, "f": {"amount": a}} for i, a in enumerate(amounts))))
    rows = by_rid(d, batch)
    column = num(d, batch, "amount")
    kinds = flag(d, batch, "amount")
    inside = (amounts >= -1000) & (amounts <= 1000)
    assert 0 < (~inside).sum() < len(amounts)
    for i, a in enumerate(amounts):
        r = rows[i]
        assert kinds[r] == (Kind.OK if inside[i] else Kind.OUT_OF_RANGE)
        assert column[r] == a if inside[i] else np.isnan(column[r])
    layout = d.layout
    shape = Shape(
        numeric=len(layout.numeric),
        categorical=len(layout.categorical),
        categories=4,
        anomaly_fields=len(layout.anomaly_fields) + 1,
        sketch=Sketches.unanchored(len(layout.numeric)),
    )
    summary = summarize(batch, None, shape)
    f = [s.name for s in layout.numeric].index("amount")
    assert summary.count[f] == inside.sum()
    assert summary.total[f] == pytest.approx(amounts[inside].sum(), rel=1e-9)
    assert summary.high[f] == amounts[inside].max()
    assert (
        summary.anomalies[layout.anomaly_fields.index("amount"), Kind.OUT_OF_RANGE]
        == (~inside).sum()
    )


# -- categorical ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label", "kind"),
    [
        (None, None, Kind.MISSING),
        ("null", None, Kind.MISSING),
        ('"DE"', "DE", Kind.OK),
        ("7", "7", Kind.OK),
        ("2.0", "2", Kind.OK),
        ("true", "true", Kind.OK),
        ("false", "false", Kind.OK),
        ('["DE"]', None, Kind.TYPE_MISMATCH),
        ('{"c": "DE"}', None, Kind.TYPE_MISMATCH),
    ],
)
def test_categorical_values_and_kinds(text: str | None, label: str | None, kind: Kind) -> None:
    d = decoder()
    line = '{"rid": 0, "f": {' + ("" if text is None else f'"country": {text}') + "}}"
    batch = d.decode(encode(line))
    assert category(d, batch, "country") == [label]
    assert flag(d, batch, "country")[0] == kind


@pytest.mark.parametrize("development", [None, ["a", "b", "d"]])
def test_categories_beyond_the_cap_share_the_other_code(development: list[str] | None) -> None:
    """The cap bounds label values and says nothing about a value: without a reference nothing
    is unseen; with one, only a value development never saw is, coded or past the cap."""
    d = decoder()  # country: max_categories 3
    d.vocabularies[1].set_development(development)
    values = ["a", "b", "a", "c", "d", "e", "b", "c"]
    batch = d.decode(encode(*({"rid": i, "f": {"country": v}} for i, v in enumerate(values))))
    rows = by_rid(d, batch)
    labels = category(d, batch, "country")
    kinds = flag(d, batch, "country")
    seen: list[str] = []
    for i, value in enumerate(values):
        if value not in seen and len(seen) < 3:
            seen.append(value)
        expected = value if value in seen else OTHER
        assert labels[rows[i]] == expected
        unseen = development is not None and value not in development
        assert kinds[rows[i]] == (Kind.UNSEEN_CATEGORY if unseen else Kind.OK), value
    assert d.vocabularies[1].names() == [*seen, OTHER]
    later = d.decode(encode({"rid": 0, "f": {"country": "e"}}, {"rid": 1, "f": {"country": "c"}}))
    assert category(d, later, "country") == [OTHER, "c"]


# -- timestamps ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (NOW, Kind.OK),
        (NOW - LATE_AFTER, Kind.OK),
        (NOW - LATE_AFTER - 0.5, Kind.LATE),
        (NOW + FUTURE_AFTER, Kind.OK),
        (NOW + FUTURE_AFTER + 0.5, Kind.FUTURE),
        (0, Kind.LATE),
    ],
)
def test_late_and_future_relative_to_now(value: float, kind: Kind) -> None:
    d = decoder()
    batch = d.decode(encode({"rid": 0, "ts": value}), NOW)
    if kind == Kind.FUTURE:  # kept out of the last-record time: a clock ahead must not pin it
        assert np.isnan(batch.timestamp[0])
    else:
        assert batch.timestamp[0] == value
    assert flag(d, batch, "timestamp")[0] == kind
    assert flag(d, d.decode(encode({"rid": 0, "ts": value})), "timestamp")[0] == Kind.OK


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-29T16:26:40Z", datetime(2024, 5, 29, 16, 26, 40, tzinfo=UTC)),
        ("2024-05-29T16:26:40.250+00:00", datetime(2024, 5, 29, 16, 26, 40, 250000, UTC)),
        ("2024-05-29T18:26:40+02:00", datetime(2024, 5, 29, 16, 26, 40, tzinfo=UTC)),
        ("2024-05-29 16:26:40", datetime(2024, 5, 29, 16, 26, 40, tzinfo=UTC)),  # naive = UTC
    ],
)
def test_iso_8601_timestamps(text: str, expected: datetime) -> None:
    d = decoder()
    batch = d.decode(encode({"rid": 0, "ts": text}, {"rid": 1, "ts": 5.0}))
    rows = by_rid(d, batch)
    assert batch.timestamp[rows[0]] == expected.timestamp()
    assert batch.timestamp[rows[1]] == 5.0
    assert (flag(d, batch, "timestamp") == Kind.OK).all()


def test_epoch_seconds_given_as_a_string() -> None:
    d = decoder()
    batch = d.decode(encode({"rid": 0, "ts": "1717000000.5"}))
    assert batch.timestamp[0] == 1717000000.5


def test_timestamp_unit_ms_scales_numbers_but_not_iso_strings() -> None:
    d = decoder(timestamp={"path": "ts", "unit": "ms"})
    batch = d.decode(
        encode({"rid": 0, "ts": 1717000000123}, {"rid": 1, "ts": "2024-05-29T16:26:40Z"}), NOW
    )
    rows = by_rid(d, batch)
    assert batch.timestamp[rows[0]] == pytest.approx(1717000000.123, abs=1e-6)
    assert batch.timestamp[rows[1]] == datetime(2024, 5, 29, 16, 26, 40, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (None, Kind.MISSING),
        ("null", Kind.MISSING),
        ('"yesterday"', Kind.TYPE_MISMATCH),
        ('{"s": 1}', Kind.TYPE_MISMATCH),
    ],
)
def test_unusable_timestamps(text: str | None, kind: Kind) -> None:
    d = decoder()
    line = '{"rid": 1' + ("" if text is None else f', "ts": {text}') + "}"
    batch = d.decode(encode({"rid": 0, "ts": NOW}, line), NOW)
    rows = by_rid(d, batch)
    assert flag(d, batch, "timestamp")[rows[1]] == kind
    assert np.isnan(batch.timestamp[rows[1]])
    assert flag(d, batch, "timestamp")[rows[0]] == Kind.OK


def test_boolean_timestamp_is_a_type_mismatch() -> None:
    d = decoder()
    batch = d.decode(encode({"rid": 0, "ts": True}), NOW)
    assert flag(d, batch, "timestamp")[0] == Kind.TYPE_MISMATCH


def test_list_timestamp_alone_in_a_chunk_is_a_type_mismatch() -> None:
    d = decoder()
    batch = d.decode(encode({"rid": 0, "ts": [5]}), NOW)
    assert flag(d, batch, "timestamp")[0] == Kind.TYPE_MISMATCH


# -- parse errors and line handling --------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{bad", "invalid_json"),
        (b'{"rid": 1,', "invalid_json"),
        (b"hello", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b"5", "not_an_object"),
        (b'"text"', "not_an_object"),
        (b"null", "not_an_object"),
        (b"true", "not_an_object"),
        (b"\xff\xfe{}", "invalid_utf8"),
    ],
)
def test_parse_errors_by_reason(line: bytes, reason: str) -> None:
    d = decoder()
    batch = d.decode(encode({"rid": 0, "p": 0.5}) + line + b"\n" + encode({"rid": 1}))
    assert dict(batch.parse_errors) == {reason: 1}
    assert reason in PARSE_ERROR_REASONS  # the documented list
    assert sorted(num(d, batch, "rid").tolist()) == [0.0, 1.0]


def test_invalid_utf8_in_a_mapped_string_is_a_parse_error() -> None:
    d = decoder()
    batch = d.decode(encode({"rid": 0}) + b'{"rid": 1, "cls": "\xff"}\n')
    assert batch.size + sum(batch.parse_errors.values()) == 2


@pytest.mark.parametrize("with_bad_line", [False, True])
def test_blank_whitespace_and_crlf_lines_are_not_errors(with_bad_line: bool) -> None:
    d = decoder()
    data = (
        b'{"rid": 0, "p": 0.5}\r\n'
        b"\n"
        b"   \n"
        b"\t\r\n"
        b"\r\n"
        b'\xef\xbb\xbf{"rid": 1, "p": 0.25}\n'
        b'{"rid": 2, "p": 0.125}\r\n'
    )
    if with_bad_line:
        data += b"{oops\r\n"
    batch = d.decode(data)
    assert sorted(num(d, batch, "rid").tolist()) == [0.0, 1.0, 2.0]
    rows = by_rid(d, batch)
    assert [num(d, batch, "prediction")[rows[i]] for i in range(3)] == [0.5, 0.25, 0.125]
    assert dict(batch.parse_errors) == ({"invalid_json": 1} if with_bad_line else {})


def test_one_bad_line_leaves_every_good_line_as_in_an_all_good_chunk() -> None:
    rng = np.random.default_rng(11)
    records = [
        {
            "rid": i,
            "ts": NOW - rng.uniform(0, 600),
            "p": rng.uniform(-0.1, 1.1),
            "lat_ms": rng.exponential(40.0),
            "cls": str(rng.integers(0, 4)),
            "truth": str(rng.integers(0, 4)),
            "model": f"m{rng.integers(0, 2)}",
            "f": {"amount": rng.normal(0, 800), "country": str(rng.integers(0, 5))},
        }
        for i in range(3_000)
    ]
    good = encode(*records)
    assert len(good) > 2 * PIECE_BYTES  # the decoder works in several pieces
    middle = good.index(b"\n", len(good) // 2) + 1
    with_bad = good[:middle] + b'{"rid": 99999, "p": \n' + good[middle:]
    a, b = decoder(), decoder()
    clean, dirty = a.decode(good, NOW), b.decode(with_bad, NOW)
    assert dict(dirty.parse_errors) == {"invalid_json": 1}
    assert clean.groups == dirty.groups
    for name in ("group", "numeric", "categorical", "flags", "timestamp", "wrong"):
        np.testing.assert_array_equal(getattr(clean, name), getattr(dirty, name), err_msg=name)
    assert [v.names() for v in a.vocabularies] == [v.names() for v in b.vocabularies]


# -- groups and labels ---------------------------------------------------------------------


def test_static_model_and_version() -> None:
    d = decoder(model=None, version=None, model_name="fraud", model_version="v3")
    batch = d.decode(encode({"rid": 0, "model": "other"}, {"rid": 1}))
    assert batch.groups == [("fraud", "v3")]
    assert batch.group.tolist() == [0, 0]


def test_several_groups_in_one_chunk() -> None:
    d = decoder()
    pairs = [("a", "1"), ("b", "1"), ("a", "2"), ("a", "1"), (None, "1"), (7, 3), ("b", "1")]
    records = []
    for i, (m, v) in enumerate(pairs):
        record: dict[str, Any] = {"rid": i, "version": v}
        if m is not None:
            record["model"] = m
        records.append(record)
    batch = d.decode(encode(*records))
    rows = by_rid(d, batch)
    for i, (m, v) in enumerate(pairs):
        model = UNKNOWN if m is None else str(m)
        assert batch.groups[batch.group[rows[i]]] == (model, str(v))
    assert len(set(batch.groups)) == len(batch.groups) == 5


@pytest.mark.parametrize(
    ("cls", "truth", "wrong"),
    [
        ('"yes"', '"yes"', 0),
        ('"yes"', '"no"', 1),
        ("1", '"1"', 0),
        ('"1"', "1", 0),
        ("true", '"true"', 0),
        ("true", "false", 1),
        # A binary classifier logging a boolean class with 0/1 labels, or the other way round.
        ("true", "1", 0),
        ("false", "0", 0),
        ("true", "0", 1),
        ("1", "true", 0),
        ('"false"', "0", 0),
        ("false", "1.0", 1),
        ("2", "2.0", 0),
        ('"yes"', None, -1),
        ('"yes"', "null", -1),
        (None, '"yes"', -1),
    ],
)
def test_ground_truth_against_predicted_class(
    cls: str | None, truth: str | None, wrong: int
) -> None:
    d = decoder()
    parts = ['"rid": 0']
    if cls is not None:
        parts.append(f'"cls": {cls}')
    if truth is not None:
        parts.append(f'"truth": {truth}')
    batch = d.decode(encode("{" + ", ".join(parts) + "}"))
    assert batch.wrong.tolist() == [wrong]
    assert flag(d, batch, "ground_truth")[0] == Kind.OK


def test_a_structured_label_is_a_type_mismatch() -> None:
    d = decoder()
    batch = d.decode(encode({"rid": 0, "cls": "yes", "truth": {"label": "yes"}}))
    assert batch.wrong.tolist() == [-1]
    assert flag(d, batch, "ground_truth")[0] == Kind.TYPE_MISMATCH


def test_a_structured_label_is_a_type_mismatch_without_a_class() -> None:
    d = decoder()
    batch = d.decode(encode({"rid": 0, "truth": ["yes"]}))
    assert flag(d, batch, "ground_truth")[0] == Kind.TYPE_MISMATCH


def test_one_path_mapped_as_numeric_and_categorical_is_refused_by_validation() -> None:
    with pytest.raises(ConfigError, match=r"fields\.features\[1\]\.path: 'p' is already mapped"):
        decoder(
            features=[
                {"name": "rid", "path": "rid"},
                {"name": "score_band", "path": "p", "type": "categorical"},
            ]
        )


# -- property: random mixes of lines against an independent classification ----------------

MISSING_KEY = object()


def _number_kind(value: Any, low: float, high: float) -> tuple[float, Kind]:
    if value is MISSING_KEY or value is None:
        return math.nan, Kind.MISSING
    if isinstance(value, bool | list | dict):
        return math.nan, Kind.TYPE_MISMATCH
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return math.nan, Kind.NOT_A_NUMBER
    if not math.isfinite(number):
        return math.nan, Kind.NOT_A_NUMBER
    if not low <= number <= high:
        return math.nan, Kind.OUT_OF_RANGE
    return number, Kind.OK


def _category_kind(value: Any) -> tuple[str | None, Kind]:
    if value is MISSING_KEY or value is None:
        return None, Kind.MISSING
    if isinstance(value, list | dict):
        return None, Kind.TYPE_MISMATCH
    if isinstance(value, bool):
        return ("true" if value else "false"), Kind.OK
    if isinstance(value, float) and value.is_integer():
        return str(int(value)), Kind.OK
    return str(value), Kind.OK


def _timestamp_kind(value: Any) -> tuple[float, Kind]:
    if value is MISSING_KEY or value is None:
        return math.nan, Kind.MISSING
    if isinstance(value, bool | list | dict):
        return math.nan, Kind.TYPE_MISMATCH
    if isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                return math.nan, Kind.TYPE_MISMATCH
            seconds = parsed.replace(tzinfo=parsed.tzinfo or UTC).timestamp()
    else:
        try:
            seconds = float(value)
        except OverflowError:
            return math.nan, Kind.TYPE_MISMATCH
    if not 0 <= seconds < 95_617_584_000:  # before 1970 or after the year 5000
        return math.nan, Kind.TYPE_MISMATCH
    if seconds < NOW - LATE_AFTER:
        return seconds, Kind.LATE
    if seconds > NOW + FUTURE_AFTER:
        return math.nan, Kind.FUTURE  # kept out of the last-record time
    return seconds, Kind.OK


# Raw JSON fragments, so NaN and Infinity literals can appear (json.loads reads them too).
numbers = st.one_of(
    st.floats(-0.5, 1.5, allow_nan=False).map(repr),
    st.sampled_from(['"abc"', '"0.5"', "NaN", "Infinity", "true", "[1]", '{"a": 1}', "null"]),
    st.just("1" + "0" * 400),
)
classes = st.one_of(
    st.sampled_from(['"a"', '"b"', '"c"', "1", "2.0", "true", "null", "[1]", '{"x": 1}']),
)
labels = st.sampled_from(['"a"', '"b"', "1", "true", "null", '{"l": "a"}'])
stamps = st.one_of(
    st.floats(NOW - 1_000, NOW + 1_000).map(repr),
    st.sampled_from(["-5", "1e400", "1" + "0" * 400, "1e12", '"inf"']),
    st.sampled_from(['"2024-05-29T16:26:40Z"', '"1717000000"', '"garbage"', '{"t": 1}', "null"]),
    st.sampled_from(["true", "[5]", "[1, 2]"]),
)
junk = st.sampled_from(
    [
        b"{bad",
        b'{"rid": ',
        b"[1, 2]",
        b"7",
        b"null",
        b"\xff\xfe{",
        b'{"cls": "\xff"}',
        b"",
        b"   ",
        b"\t\r",
    ]
)


@st.composite
def record_line(draw: st.DrawFn, rid: int) -> bytes:
    values = {"rid": str(rid), "ts": draw(stamps)}
    for key, strategy in (("p", numbers), ("cls", classes), ("truth", labels)):
        if draw(st.booleans()):
            values[key] = draw(strategy)
    parts = [f'"{key}": {value}' for key, value in values.items()]
    draw(st.randoms()).shuffle(parts)
    return ("{" + ", ".join(parts) + "}").encode()


@st.composite
def chunk(draw: st.DrawFn) -> list[bytes]:
    kinds = draw(st.lists(st.booleans(), min_size=0, max_size=40))
    return [draw(record_line(i)) if is_record else draw(junk) for i, is_record in enumerate(kinds)]


def _reason(line: bytes) -> str | None:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    try:
        obj = json.loads(text)
    except ValueError:
        return "invalid_json"
    return None if isinstance(obj, dict) else "not_an_object"


@settings(max_examples=150)
@given(lines=chunk(), crlf=st.booleans())
def test_random_mixes_match_an_independent_classification(lines: list[bytes], crlf: bool) -> None:
    d = decoder(
        features=[
            {"name": "rid", "path": "rid"},
        ]
    )
    data = b"".join(line + (b"\r\n" if crlf else b"\n") for line in lines)
    batch = d.decode(data, NOW)

    non_blank = [line for line in lines if line.strip()]
    reasons = [_reason(line) for line in non_blank]
    expected_errors = {r: reasons.count(r) for r in set(reasons) if r is not None}
    assert dict(batch.parse_errors) == expected_errors
    assert batch.size + sum(batch.parse_errors.values()) == len(non_blank)

    rows = by_rid(d, batch)
    objects = [json.loads(line) for line, r in zip(non_blank, reasons, strict=True) if r is None]
    assert sorted(rows) == sorted(o["rid"] for o in objects)
    for obj in objects:
        r = rows[obj["rid"]]
        value, kind = _number_kind(obj.get("p", MISSING_KEY), 0.0, 1.0)
        assert flag(d, batch, "prediction")[r] == kind, obj
        got = num(d, batch, "prediction")[r]
        assert (np.isnan(got) and math.isnan(value)) or got == value, obj
        label, kind = _category_kind(obj.get("cls", MISSING_KEY))
        assert category(d, batch, "predicted_class")[r] == label, obj
        assert flag(d, batch, "predicted_class")[r] == kind, obj
        seconds, kind = _timestamp_kind(obj.get("ts", MISSING_KEY))
        assert flag(d, batch, "timestamp")[r] == kind, obj
        assert (np.isnan(batch.timestamp[r]) and math.isnan(seconds)) or (
            batch.timestamp[r] == seconds
        ), obj
        truth = obj.get("truth")
        expected_wrong = -1
        truth_kind = Kind.OK
        if isinstance(truth, dict):
            truth_kind = Kind.TYPE_MISMATCH
        elif truth is not None and label is not None:
            # true/false are the classes 1/0 for the comparison (docs/configuration.md).
            same = {"true": "1", "false": "0"}
            said = _category_kind(truth)[0]
            expected_wrong = int(same.get(said, said) != same.get(label, label))
        assert flag(d, batch, "ground_truth")[r] == truth_kind, obj
        assert batch.wrong[r] == expected_wrong, obj


def test_numbers_beyond_float_range_are_not_a_number() -> None:
    d = decoder()
    batch = d.decode(
        encode({"rid": 0, "p": 0.5}) + b'{"rid": 1, "p": 1e400}\n{"rid": 2, "p": -1e999}\n'
    )
    rows = by_rid(d, batch)
    assert flag(d, batch, "prediction")[rows[0]] == Kind.OK
    for rid in (1, 2):
        assert flag(d, batch, "prediction")[rows[rid]] == Kind.NOT_A_NUMBER
        assert np.isnan(num(d, batch, "prediction")[rows[rid]])


def test_nesting_deeper_than_any_record_is_a_parse_error_not_a_crash() -> None:
    d = decoder()
    batch = d.decode(encode({"rid": 0, "p": 0.5}) + b"[" * 5000 + b"\n" + b'{"a":' * 5000 + b"\n")
    assert batch.size == 1
    assert batch.parse_errors == {"invalid_json": 2}


def test_a_structured_model_or_version_names_no_model() -> None:
    d = decoder()
    batch = d.decode(
        encode(
            {"rid": 0, "model": {"a": 1}, "version": [1]}, {"rid": 1, "model": "m", "version": "v"}
        )
    )
    assert batch.size == 2
    assert sorted(batch.groups) == [(UNKNOWN, UNKNOWN), ("m", "v")]


def test_a_literal_other_value_shares_the_overflow_code() -> None:
    d = decoder()
    batch = d.decode(
        encode({"rid": 0, "f": {"country": "__other__"}}, {"rid": 1, "f": {"country": "US"}})
    )
    rows = by_rid(d, batch)
    j = [s.name for s in d.layout.categorical].index("country")
    assert batch.categorical[rows[0], j] == d.vocabularies[j].other
    assert d.vocabularies[j].values == ["US"]


def test_labels_do_not_use_up_the_class_vocabulary() -> None:
    d = decoder()
    cap = d.vocabularies[0].cap
    labels = [{"rid": i, "truth": f"label-{i}"} for i in range(cap + 5)]
    batch = d.decode(encode(*labels, {"rid": 999, "cls": "dog", "truth": "cat"}))
    rows = by_rid(d, batch)
    assert d.vocabularies[0].values == ["dog"]
    assert batch.wrong[rows[999]] == 1
    assert flag(d, batch, "predicted_class")[rows[999]] == Kind.OK
