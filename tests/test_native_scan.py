"""The native scanner against the exact path: arbitrary lines must decode to equal batches.

The scanner (``exporter/_scan.c`` via ``exporter/scan.py``) answers only for lines it is sure
about and leaves the rest to the exact Python path; whatever the mix, every column, every
parse error and every vocabulary must come out as the exact path alone makes them, in the same
order. Hypothesis writes the lines: records of the mapped shape with values of every JSON type,
then broken in the ways logs break (cut short, stray bytes, duplicate keys, escapes, a BOM,
NaN, long integers, invalid UTF-8, NUL bytes, two records on a line, one record on two lines).
"""

from __future__ import annotations

import json
import math
from dataclasses import fields as dataclass_fields
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter import decode, scan
from exporter.batch import Batch
from exporter.config import parse_config
from exporter.config_types import FieldsConfig, FieldSpec
from exporter.decode import Decoder
from exporter.timestamps import parse_one
from tests.configs import UNREAD, example_config

T0 = 1_764_511_200.0
EXAMPLE = parse_config(example_config(UNREAD)).fields
# The score as a regression target (its label a number), ms timestamps, a small category cap
# (which values become __other__ depends on the order rows are seen in).
REGRESSION = parse_config(
    example_config(
        UNREAD,
        fields={
            "timestamp": {"path": "ts", "unit": "ms"},
            "prediction": "score",
            "ground_truth": "label",
            "request_id": "id",
            "features": [
                {"name": "colour", "path": "f.colour", "type": "categorical", "max_categories": 3},
                {"name": "size", "path": "f.deep.size", "type": "numeric", "min": 0},
            ],
        },
    )
).fields
KEYS = ["ts", "model", "version", "request_id", "prediction", "predicted_class", "confidence"]
KEYS += ["latency_ms", "ground_truth", "score", "label", "id", "other"]
FEATURE_KEYS = ["amount", "age", "merchant_risk", "country", "device", "colour", "deep", "x"]


def test_the_scanner_is_compiled() -> None:
    """The test command installs the package with a compiler at hand: a missing extension
    here means the build broke, not that the machine has no compiler."""
    assert scan.available()
    assert Decoder(EXAMPLE)._native is not None


# -- the lines --------------------------------------------------------------------------------

# Below 1e300: a regression residual of two values near the largest float overflows (on both
# paths alike, with a numpy warning that pytest makes an error); the largest floats have their
# own edge-case lines below, in a mapping without residuals.
finite = st.floats(min_value=-1e300, max_value=1e300)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    finite,
    st.sampled_from([0.1, 0.5, 1e-300, 5e-324, 2.2250738585072014e-308, -0.0, 123456789.123]),
    st.text(max_size=12),
    st.sampled_from(["US", "FR", "fraud", "legit", "v3", "m", "", "__other__", "é", "\u2028"]),
)
stamps = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat(sep=" ", timespec="milliseconds") + "Z"),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dt%H:%M:%S.%fz")),
    st.sampled_from(
        ["2025-11-30T14:00:00.000Z", "2025-02-29T00:00:00", "2025-11-30T14:00:00+05:30"]
    ),
    st.sampled_from(["2025-11-30T24:00:00", "1700000000", " 17 ", "nan", "1e999", "x", "1_000"]),
    st.floats(min_value=-1e12, max_value=1e14),
    st.integers(min_value=-(10**19), max_value=10**19),
    st.booleans(),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(FEATURE_KEYS), inner, max_size=3)
    ),
    max_leaves=6,
)


texts = st.one_of(st.text(max_size=12), st.sampled_from(["US", "FR", "fraud", "legit", "é"]))
numbers = st.one_of(finite, st.integers(min_value=-(10**6), max_value=10**6), st.none())
# What each mapped key usually holds; any value at all now and then.
USUAL = {
    "ts": stamps,
    "model": texts,
    "version": st.one_of(texts, st.integers(0, 9)),
    "request_id": st.uuids().map(str),
    "id": st.uuids().map(str),
    "predicted_class": st.one_of(texts, st.booleans(), st.integers(0, 2)),
    "ground_truth": st.one_of(texts, st.booleans(), st.integers(0, 2)),
    "label": numbers,
    "country": texts,
    "device": texts,
    "colour": texts,
}


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    def value(key: str) -> Any:
        usual = draw(st.integers(0, 5)) > 0
        return draw(USUAL.get(key, numbers) if usual else values)

    record: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=len(KEYS), unique=True)):
        record[key] = value(key)
    if draw(st.integers(0, 3)) > 0:
        keys = draw(st.lists(st.sampled_from(FEATURE_KEYS), max_size=6, unique=True))
        features = {key: value(key) for key in keys}
        if draw(st.booleans()):
            features["deep"] = {"size": value("size")}
        record[draw(st.sampled_from(["features", "f"]))] = features
    return record


def _text(record: dict[str, Any], ascii_only: bool, spaced: bool) -> bytes:
    separators = (", ", ": ") if spaced else (",", ":")
    return json.dumps(record, ensure_ascii=ascii_only, separators=separators).encode(
        "utf-8", "surrogatepass"
    )


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    line = _text(draw(records()), draw(st.booleans()), draw(st.booleans()))
    how = draw(
        st.sampled_from(
            ["plain"] * 6
            + ["cut", "byte", "bom", "space", "duplicate", "two", "blank", "text", "split"]
        )
    )
    if how == "cut":
        line = line[: draw(st.integers(0, len(line)))]
    elif how == "byte":
        at = draw(st.integers(0, len(line)))
        stray = draw(
            st.sampled_from(
                [
                    b"\x00",
                    b"\xff",
                    b"\xc3",
                    b"\\",
                    b'"',
                    b"}",
                    b"{",
                    b"\t",
                    b"\x0c",
                    b"NaN",
                    b",",
                    b"]",
                ]
            )
        )
        line = line[:at] + stray + line[at:]
    elif how == "bom":
        line = b"\xef\xbb\xbf" + line
    elif how == "space":
        line = b" \t\r" + line + b" \r"
    elif how == "duplicate" and line.endswith(b"}") and len(line) > 2:
        key = draw(st.sampled_from(KEYS))
        line = line[:-1] + b', "' + key.encode() + b'": ' + _text(draw(values), True, True) + b"}"
    elif how == "two":
        line += draw(st.sampled_from([b"", b" ", b"\r"])) + _text(draw(records()), True, True)
    elif how == "blank":
        line = draw(st.sampled_from([b"", b" ", b"\r", b"\t \r", b"\x0b"]))
    elif how == "text":
        line = draw(
            st.sampled_from(
                [
                    b"Traceback (most recent call last):",
                    b"1 2",
                    b"[1, 2]",
                    b'"x"',
                    b"null",
                    b"NaN",
                    b"}",
                    b'10.0.3.7 - - [30/Nov/2025:14:03:21 +0000] "GET / HTTP/1.1" 200 2',
                    b"0.5}",  # the end of a record cut (or split) above, or not
                    b"-2e3 ]",
                    b"1.x",
                ]
            )
        )
    elif how == "split" and b", " in line:
        line = line.replace(b", ", b",\n", 1)  # one record on two lines
    return line


# -- the comparison ---------------------------------------------------------------------------


def _same_value(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(_same_value, a, b))
    return bool(a == b)


def assert_same_batch(native: Batch, exact: Batch) -> None:
    for field in dataclass_fields(Batch):
        a, b = getattr(native, field.name), getattr(exact, field.name)
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray), field.name
            assert a.dtype == b.dtype, field.name
            assert a.shape == b.shape, field.name
            assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), field.name
            if a.dtype.kind == "f":  # -0.0 and 0.0 are equal, but not the same value
                assert np.array_equal(np.signbit(a), np.signbit(b)), field.name
        else:
            assert _same_value(a, b), (field.name, a, b)


def decoders(fields: FieldsConfig, keep_labels: bool) -> tuple[Decoder, Decoder]:
    native = Decoder(fields, keep_labels=keep_labels)
    exact = Decoder(fields, keep_labels=keep_labels, native=False)
    assert native._native is not None
    assert exact._native is None
    return native, exact


def assert_same_decoding(
    fields: FieldsConfig, chunks: list[bytes], keep_labels: bool, now: float | None = T0
) -> None:
    native, exact = decoders(fields, keep_labels)
    for chunk in chunks:
        assert_same_batch(native.decode(chunk, now), exact.decode(chunk, now))
    for a, b in zip(native.vocabularies, exact.vocabularies, strict=True):
        assert a.values == b.values


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=st.lists(st.lists(lines(), max_size=25), min_size=1, max_size=3),
    fields=st.sampled_from([EXAMPLE, REGRESSION]),
    keep_labels=st.booleans(),
    piece=st.sampled_from([decode.PIECE_BYTES, 64, 300]),
    now=st.sampled_from([T0, None]),
    in_place=st.sampled_from([scan.IN_PLACE_SPANS, 0]),
)
def test_native_and_exact_decode_alike(
    chunks: list[list[bytes]],
    fields: FieldsConfig,
    keep_labels: bool,
    piece: int,
    now: float | None,
    in_place: int,
) -> None:
    data = [b"".join(line + b"\n" for line in chunk) for chunk in chunks]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(decode, "PIECE_BYTES", piece)  # small pieces: entangled lines in many
        patch.setattr(scan, "IN_PLACE_SPANS", in_place)  # 0: the columns built anew
        assert_same_decoding(fields, data, keep_labels, now)


@given(
    st.datetimes(),
    st.sampled_from(["", "Z", "+05:30", "-11:59", "+00:00"]),
    st.sampled_from(["T", " "]),
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
)
def test_iso_timestamps_read_as_the_reference(value: Any, zone: str, sep: str, spec: str) -> None:
    """The C reading of the common shape is the reference's value; outside 1686-2255 (microseconds
    beyond 2**53) it declines and the reference reads the text."""
    text = value.isoformat(sep=sep, timespec=spec) + zone
    seconds = scan._scan.iso_seconds(text)
    if 1686 <= value.year < 2255:
        assert seconds == parse_one(text, 1.0)
    else:
        assert seconds is None or seconds == parse_one(text, 1.0)


def _decimals() -> list[bytes]:
    """Decimals as logs write them: every one of up to three places below 1000, and random
    ones of up to fifteen digits and seven places (either side of eight digits in all, where
    the lexing sums the digits in one run or two), signed or not."""
    texts = [f"{i}.{f:0{k}d}" for i in range(1000) for k in (1, 2, 3) for f in range(0, 10**k, 7)]
    texts += [f"{i}" for i in range(0, 10**7, 997)]
    rng = np.random.default_rng(7)
    sizes = zip(rng.integers(1, 16, 100_000), rng.integers(1, 8, 100_000), strict=True)
    for digits, most in sizes:
        mantissa = str(int(rng.integers(1, 10 ** int(digits), dtype=np.int64)))
        places = min(int(most), len(mantissa))
        whole, frac = mantissa[:-places] or "0", mantissa[-places:]
        texts.append(("-" if digits % 2 else "") + f"{whole}.{frac}")
    return [t.encode() for t in texts]


def test_decimals_read_as_python_reads_them() -> None:
    """The scanner's reading of a number is Python's, to the last bit."""
    read = scan._scan.number
    wrong = []
    for text in _decimals():
        value, want = read(text), float(text)
        if value is None or value != want or math.copysign(1, value) != math.copysign(1, want):
            wrong.append((text, value, want))
    assert not wrong[:10]
    assert read(b"-0.0") == 0.0
    assert math.copysign(1, read(b"-0.0")) == -1
    assert read(b"1.5e3") == 1500.0
    assert read(b"1.") is None


# -- chosen edge cases ------------------------------------------------------------------------

GOOD = {"ts": "2025-11-30T14:00:00.000Z", "model": "m", "version": "v3", "request_id": "r1",
        "prediction": 0.25, "predicted_class": "fraud", "confidence": 0.9, "latency_ms": 4,
        "features": {"amount": 12.5, "age": 42, "country": "US", "device": "ios"}}  # fmt: skip


def _line(**changes: Any) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


@pytest.mark.parametrize(
    ("line", "scanned"),
    [
        (_line(), True),
        (_line(ts=1764511200), True),
        (_line(ts="2025-11-30t14:00:00z"), True),  # read by Python, row kept by the scanner
        (_line(model=None, ground_truth=True), True),
        (_line(model="caf\u00e9").replace(b"\\u00e9", "é".encode()), True),  # raw UTF-8
        (_line(model="caf\u00e9"), False),  # an escape in a mapped string
        (_line(other="caf\u00e9"), True),  # ... in a skipped one is only checked
        (_line(other="\ud800"), False),  # a lone surrogate
        (_line(predicted_class=1.5), False),  # a float where a category belongs
        (_line(confidence="0.9"), False),  # a string where a number belongs
        (_line(confidence=10**19), False),  # an integer longer than 18 digits
        (_line(confidence=1e308 * 10), False),  # Infinity is not JSON
        (_line(confidence=1.7976931348623157e308, other=-1e308), True),  # the largest floats
        (_line(confidence=0.1 + 0.2, latency_ms=123456789.12345678), True),  # 17 digits
        (_line().replace(b'"latency_ms": 4', b'"latency_ms": 1.5e-320'), True),  # subnormal
        (_line(features=None), False),  # a mapped object that is not one
        (_line().replace(b'"m"', b'"m\xff"'), False),  # invalid UTF-8
        (_line()[:-1] + b', "model": "n"}', False),  # a mapped key twice
        (b"\xef\xbb\xbf" + _line(), False),  # a BOM
        (
            _line()[:-1]
            + b', "x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}',
            False,
        ),
    ],
)
def test_lines_the_scanner_keeps_or_leaves(line: bytes, scanned: bool) -> None:
    native, _ = decoders(EXAMPLE, keep_labels=True)
    assert native._native is not None
    result = native._native._scanner.scan(line + b"\n")
    assert (result[0] == 1) is scanned
    assert_same_decoding(EXAMPLE, [line + b"\n", _line() + b"\n" + line + b"\n"], keep_labels=True)


def test_entangled_lines_decode_with_their_piece() -> None:
    """A record on two lines is one record on the exact path (msgspec reads a stream): the
    scanner must not read the good line between its halves as a record of its own."""
    good = _line()
    parts = [good, b'{"other":', good, b"}", good, b'{"a": 1}{"b": 2}', good]
    chunk = b"\n".join(parts) + b"\n"
    assert_same_decoding(EXAMPLE, [chunk], keep_labels=False)
    native, exact = decoders(EXAMPLE, keep_labels=False)
    batch = native.decode(chunk)
    assert batch.size == exact.decode(chunk).size == 6
    assert not batch.parse_errors  # the halves are one record, not two broken lines


@pytest.mark.parametrize(
    ("line", "entangled"),
    [
        (b'10.0.3.7 - - [30/Nov/2025:14:03:21 +0000] "GET /healthz HTTP/1.1" 200 2', False),
        (b"1e5x", False),  # a number, then a byte no JSON allows after a value
        (b"0123", False),  # a zero and a digit: msgspec reads no such number
        (b"-", False),  # a sign and no digit
        (b"- 1", False),
        (b"1.", False),  # a point and no digit, even at the end of the line
        (b"2.e5}", False),
        (b"3e+", False),  # an exponent and no digit
        (b"-Infinity}", False),
        (b"0.5", True),  # a whole value: a record a line above opened may take it
        (b"0.5}", True),
        (b"-7, 8]}", True),
        (b"1e-3 \t", True),
        (b"42\r", True),
        (b"5]", True),
        (b"12 x", True),  # a value and a space: whether the next byte fails is not asked
    ],
)
def test_lines_that_start_with_a_number(line: bytes, entangled: bool) -> None:
    """A line that starts with a number is entangled unless it fails wherever it stands (an
    access log line): only then is it decoded alone, and not with its whole piece. After a
    line that leaves a record open, the exact path reads a whole value as that record's."""
    native, _ = decoders(EXAMPLE, keep_labels=False)
    assert native._native is not None
    good = _line()
    chunk = b"\n".join([good, good[:-1] + b', "other":', line, good, b"[", line, b"}", good])
    result = native._native._scanner.scan(chunk + b"\n")
    flags = [flag for _, _, flag in result[7]]
    assert flags == [False, entangled, True, entangled, True], result[7]
    for piece in (decode.PIECE_BYTES, 64):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(decode, "PIECE_BYTES", piece)
            for before in (b"", good[:-1] + b', "other":', b'{"other": [', b'{"a": "'):
                data = b"\n".join([good, before, line, b"}", good, line, good]) + b"\n"
                assert_same_decoding(EXAMPLE, [data], keep_labels=False)


@pytest.mark.parametrize("padding", [0, 500])  # lines far shorter; about half as long
def test_columns_grow_when_a_chunk_has_more_lines_than_its_start_promised(padding: int) -> None:
    """The scanner sizes its columns by the lines of a chunk's first 16 KiB: a chunk whose
    later lines are shorter grows them, every row read before and after kept in place."""
    long_lines = [_line(other="x" * 2000, confidence=i / 8, model=f"m{i}") for i in range(9)]
    short = [
        _line(confidence=i / 1000, model=f"s{i % 7}", latency_ms=i, other="y" * padding)
        for i in range(3000 if not padding else 200)
    ]
    short[-50] = b"not json"
    short[-40] = b'{"model": "cut'
    chunk = b"\n".join(long_lines + short) + b"\n"
    native, _ = decoders(EXAMPLE, keep_labels=False)
    assert native._native is not None
    result = native._native._scanner.scan(chunk)
    assert result[0] == len(long_lines) + len(short) - 2
    assert len(result[4]) == chunk.count(b"\n") + 1  # grown, to the count of its lines
    assert_same_decoding(EXAMPLE, [chunk, b"\n".join(short) + b"\n"], keep_labels=True)


def test_the_environment_turns_the_scanner_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(scan.ENVIRONMENT, "0")
    assert Decoder(EXAMPLE)._native is None
    monkeypatch.setenv(scan.ENVIRONMENT, "1")
    assert Decoder(EXAMPLE)._native is not None


def test_one_path_for_two_roles() -> None:
    """A mapping built in code (the config refuses it) may read one path for two roles: of
    one type the scanner serves it, each role with its own rows; of two types (any scalar)
    it leaves the mapping to the exact path."""
    shared = replace(
        EXAMPLE,
        features=(
            *EXAMPLE.features,
            FieldSpec("country_again", ("features", "country"), "categorical"),
        ),
    )
    assert Decoder(shared)._native is not None
    chunk = b"\n".join([_line(), b'{"model": "m2"', _line(model="m3"), _line(model=7)]) + b"\n"
    assert_same_decoding(shared, [chunk, chunk], keep_labels=True)
    two_types = replace(
        EXAMPLE, features=(*EXAMPLE.features, FieldSpec("p", ("prediction",), "categorical"))
    )
    assert Decoder(two_types)._native is None


@pytest.mark.parametrize("ts_format", ["iso", "iso-offset", "epoch-s", "epoch-ms"])
def test_the_realistic_log_decodes_alike(ts_format: str) -> None:
    """The benchmark's log (bench/realistic.py), with a malformed line in twenty of all six
    kinds, chunk by chunk as the tailer hands it over."""
    from bench.realistic import Shape, block  # noqa: PLC0415 - a bench module, only here

    shape = Shape(ts_format=ts_format, malformed_ratio=0.05, versions=3)
    data = block(0, shape, count=6000)
    fields = EXAMPLE
    if ts_format == "epoch-ms":
        fields = replace(EXAMPLE, timestamp_scale=0.001)
    chunks, start = [], 0
    while start < len(data):
        stop = data.rfind(b"\n", start, start + (1 << 18)) + 1
        chunks.append(data[start:stop])
        start = stop
    native, _ = decoders(fields, keep_labels=False)
    scanned = sum(native._native.scan(c, lambda *_: None, decode.PIECE_BYTES).size for c in chunks)
    # The scanner reads most lines; the exact path the malformed ones and, around each line
    # that starts like JSON but is not (an access log line), its whole piece.
    assert scanned > 0.5 * 6000
    assert_same_decoding(fields, chunks, keep_labels=False)
    assert_same_decoding(fields, chunks, keep_labels=True)


def test_without_the_extension_the_exact_path_decodes_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Installed where no C compiler was: the decoder works on the exact path alone, and the
    log says why once, not once per decoder."""
    monkeypatch.setattr(scan, "_scan", None)
    monkeypatch.setattr(scan, "_warned", False)
    with caplog.at_level("WARNING", logger="exporter.scan"):
        first, second = Decoder(EXAMPLE), Decoder(EXAMPLE)
    assert first._native is None
    assert second._native is None
    assert [r.message for r in caplog.records if "not compiled in" in r.message] == [
        "the native JSON scanner is not compiled in (no C compiler at install time?): "
        "decoding takes the slower exact path"
    ]
    chunk = _line() + b"\n" + b"not json\n"
    batch = first.decode(chunk)
    assert batch.size == 1
    assert batch.parse_errors == {"invalid_json": 1}


def test_left_lines_are_joined_up_to_a_piece_but_never_into_an_entangled_one() -> None:
    """Neighbouring lines the scanner left take one exact call; lines joined before an
    entangled line's piece stop where that piece starts, so no line is decoded twice."""
    data = b"a\nb\nc\nd\ne\n"  # lines at 0, 2, 4, 6, 8; pieces of 6 bytes: (0, 6), (6, 10)
    left = [(2, 4, False), (4, 6, False), (6, 8, False), (8, 10, True)]
    assert scan._exact_spans(data, left, 6) == [(2, 6), (6, 10)]
    assert scan._exact_spans(data, left[:3], 6) == [(2, 8)]
    assert scan._exact_spans(data, left[:3], 4) == [(2, 6), (6, 8)]


def test_a_log_that_escapes_its_text_decodes_alike() -> None:
    """Python's json.dumps escapes non-ASCII text: the scanner leaves such lines to the exact
    path, which takes runs of them at once."""
    lines = [
        _line(request_id=f"r{i}", features={**GOOD["features"], "country": "Zürich"})
        if i % 3
        else _line(request_id=f"r{i}")
        for i in range(200)
    ]
    chunk = b"\n".join(lines) + b"\n"
    assert b"\\u00fc" in chunk
    assert_same_decoding(EXAMPLE, [chunk], keep_labels=True)


# -- the fast paths ---------------------------------------------------------------------------
# The scanner reads a key by comparing the bytes before its value with those it learned on an
# earlier line, a usual number with two 8-byte loads, and a category through a cache hashed on
# its bytes. Lines that share a shape but differ at those edges must still decode alike.

# Keys that share prefixes: one the first 8 bytes of another, one of 16 bytes, and unmapped
# keys that are prefixes of mapped ones.
PREFIXED = parse_config(
    example_config(
        UNREAD,
        fields={
            "timestamp": "ts",
            "model": "model",
            "prediction": "score",
            "predicted_class": "cls",
            "features": [
                {"name": "a", "path": "f.amount", "type": "numeric"},
                {"name": "b", "path": "f.amount_usd", "type": "numeric"},
                {"name": "c", "path": "f.abcdefgh", "type": "categorical"},
                {"name": "d", "path": "f.abcdefghi", "type": "categorical"},
                {"name": "e", "path": "f.abcdefghijklmnop", "type": "categorical"},
            ],
        },
    )
).fields
TOP_KEYS = ["ts", "model", "score", "cls", "other", "scor", "f"]
NESTED_KEYS = ["amount", "amount_usd", "amoun", "abcdefgh", "abcdefghi", "abcdefg"]
# 16 bytes, a prefix of it, and one that differs from it in the middle of the learned bytes
NESTED_KEYS += ["abcdefghijklmnop", "abcdefghijklmno", "abcdeXghijklmnop"]
# JSON numbers and near misses: many digits, leading zeros, exponents, a bare point or sign.
NUMBER = r"-?(0|[1-9][0-9]{0,9})(\.[0-9]{1,10})?([eE][+-]?[0-9]{1,3})?"
number_texts = st.one_of(
    st.from_regex(NUMBER, fullmatch=True),
    st.sampled_from(["01", "00.5", "1.", ".5", "-", "-0", "-0.0", "1e", "1.5e+", "12345678"]),
    st.sampled_from(["1234567.1234567", "0.00000001", "99999999.9", "-0.072", "4.04", "42"]),
)
# Equal lengths, mostly different bytes: 7, 8, 9, 15, 16 and 17 bytes among them.
string_texts = st.text(alphabet="ab", min_size=6, max_size=18).map(json.dumps)
raw_values = st.one_of(number_texts, string_texts, st.sampled_from(["null", "true", '"x"', "[1]"]))
COLONS = [": ", ":", " : ", ":\t", ":  "]
COMMAS = [", ", ",", " ,", ",  "]


@st.composite
def shaped_lines(draw: st.DrawFn) -> bytes:
    """A record written as text: keys mostly in one order with one style of separators (so
    the scanner learns them), now and then another style, order or value."""
    style = draw(st.sampled_from([0] * 8 + [1, 2, 3, 4]))
    colon, comma = COLONS[style], COMMAS[style % len(COMMAS)]

    def members(keys: list[str]) -> str:
        if draw(st.integers(0, 4)) == 0:
            keys = draw(st.permutations(keys))
        if draw(st.integers(0, 4)) == 0:
            keys = keys[: draw(st.integers(0, len(keys)))]
        return comma.join(f'"{key}"{colon}{value(key)}' for key in keys)

    def value(key: str) -> str:
        if key == "f":
            return "{" + members(NESTED_KEYS[: draw(st.integers(0, len(NESTED_KEYS)))]) + "}"
        if key == "ts" and draw(st.booleans()):
            return '"2025-11-30T14:00:00.000Z"'
        return draw(raw_values)

    line = ("{" + members(TOP_KEYS) + "}").encode()
    how = draw(st.sampled_from(["plain"] * 6 + ["cut", "tail"]))
    if how == "cut":  # e.g. right after a colon, before the whitespace the scanner learned
        line = line[: draw(st.integers(0, len(line)))]
    elif how == "tail":
        line += draw(st.sampled_from([b" ", b"\r", b" x", b"}", b","]))
    return line


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=st.lists(st.lists(shaped_lines(), min_size=1, max_size=30), min_size=1, max_size=3),
    newline=st.booleans(),
    keep_labels=st.booleans(),
)
def test_learned_shapes_decode_alike(
    chunks: list[list[bytes]], newline: bool, keep_labels: bool
) -> None:
    """Without a last newline, the last record ends where the chunk does: the word-at-a-time
    reads there fall back to the byte-at-a-time ones."""
    data = [b"\n".join(chunk) + (b"\n" if newline else b"") for chunk in chunks]
    assert_same_decoding(PREFIXED, data, keep_labels)


def _prefixed(**members: str) -> bytes:
    return ("{" + ", ".join(f'"{key}": {value}' for key, value in members.items()) + "}").encode()


EDGE_TEXTS = ["abcdefgh", "abcdefgX", "Xbcdefgh", "abcdefgh", "abcdefghabcdefgh", "", "a", "ab"]
EDGE_TEXTS += ["abcdefghabcdefgX", "abcdefgXabcdefgh", "abcdefghabcdefgh", "b"]
EDGE_TEXTS += ["abcdefghXabcdefghabcd", "abcdefghYabcdefghabcd"]
EDGE_NUMBERS = ["1234567.1234567", "12345678.1", "1.12345678", "0.0000001", "123456789012345678"]
EDGE_NUMBERS += ["1234567890123456789", "0.1e1", "1E-3", "-0", "-0.0", "0", "7", "01", "-01"]
EDGE_NUMBERS += ["1.", "-", "-.5", "1.5.5", "12345678901234567890.5", "0.0000000000000000000001"]
EDGE_STAMPS = ["2025-11-30T14:00:00.000Z", "2025-11-30T14:00:59.999999Z", "2025-11-30T14:00:60"]
EDGE_STAMPS += ["2025-11-30T14:00:00+05:30", "2025-11-30T14:00:01-23:59", "2025-11-30T14:00"]
EDGE_STAMPS += ["2025-11-30T14:00:0", "2025-11-30T14:00:00.1234567Z", "2025-11-30T14:00:00.Z"]
EDGE_STAMPS += [
    "2025-11-30 14:00:01",
    "2025-11-31T14:00:00",
    "2025-11-31T14:00:00",
    "2024-02-29T00:00",
]
EDGE_STAMPS += ["2024-02-29T00:00:00", "2025-02-29T00:00:00", "2025-11-30T14:00:00.5+24:00"]
LEARN = _prefixed(ts="1764511200", model='"m"', score="0.5", f='{"amount": 1.5, "abcdefgh": "x"}')


@pytest.mark.parametrize(
    "lines",
    [
        # a line cut right after a colon: the learned bytes must still end at a value
        [LEARN, LEARN[: LEARN.index(b'"m"')], LEARN, LEARN[: LEARN.index(b'"m"') - 1], LEARN],
        # the key bytes learned past a first member, then seen as the first: no comma allowed
        [b'{"other": 1, "ts": 5}', b'{, "ts": 5}', b'{"ts": 5, "model": "m"}'],
        # learned as a first member, then after an unmapped one without a comma
        [b'{"ts": 5}', b'{"other": 1 "ts": 5}', b'{"other": 1, "ts": 5}'],
        # other whitespace around the same keys
        [LEARN, *(LEARN.replace(a, b) for a, b in [(b": ", b" :"), (b", ", b","), (b":", b":\t")])],
        # a key that is a mapped key's first 8 bytes and longer, a prefix of it, one of 16 bytes
        [
            _prefixed(f='{"abcdefgh": "a", "abcdefghi": "b", "abcdefghijklmnop": "c"}'),
            _prefixed(f='{"abcdefghi": "a", "abcdefgh": "b", "abcdefg": "c"}'),
            _prefixed(f='{"abcdefgh": "a", "abcdefghijklmno": "c", "abcdefghijklmnop": "d"}'),
            _prefixed(f='{"amount_usd": 2, "amount": 1, "amoun": 3}'),
            _prefixed(f='{"amount": 1, "abcdefghijklmnop": "a"}'),
            _prefixed(f='{"amount": 1, "abcdeXghijklmnop": "b"}'),  # differs in a middle word
        ],
        # values that are prefixes of one another, longest first then shortest first
        [_prefixed(cls=json.dumps("ab" * 20)[: n + 1] + '"') for n in range(40, 0, -1)]
        + [_prefixed(cls=json.dumps("ab" * 20)[: n + 1] + '"') for n in range(41)],
        # equal-length category values of 8 and 16 bytes, differing at either end or inside
        [_prefixed(cls=json.dumps(value)) for value in EDGE_TEXTS],
        # timestamps that share their minute (the scanner remembers it) and differ after it
        [_prefixed(ts=json.dumps(stamp)) for stamp in EDGE_STAMPS],
        # numbers at and past the fast path's reach, and invalid ones
        [_prefixed(score=text, f=f'{{"amount": {text}}}') for text in EDGE_NUMBERS],
    ],
)
def test_fast_path_edges_decode_alike(lines: list[bytes]) -> None:
    chunk = b"\n".join(lines)
    assert_same_decoding(PREFIXED, [chunk + b"\n", chunk, chunk + b"\n" + chunk], keep_labels=True)


def test_the_scanner_keeps_lines_with_other_whitespace() -> None:
    """Key bytes learned on one line are compared on the next only up to a value: a line with
    more whitespace before its value is read by the scanner still, not left to the exact path."""
    lines = [LEARN, LEARN.replace(b": ", b":  "), LEARN.replace(b": ", b": \t"), LEARN]
    native, _ = decoders(PREFIXED, keep_labels=False)
    assert native._native is not None
    assert native._native._scanner.scan(b"\n".join(lines) + b"\n")[0] == len(lines)
