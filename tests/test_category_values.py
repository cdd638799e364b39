"""Category columns of the native scan (one cached value object for a repeated text) against
the exact path, which reads a value a row: codes, kinds, cut counts and vocabularies must be the
same, bit for bit.

The lines are drawn from a small pool of values so that they repeat (the scanner's string cache
and the compiled lookup answer per object), with text longer than the label limit (cut: counted
per row, not per value), values that are not text (None, booleans, integers: categories too),
more distinct values than the cap (which ones get codes depends on the order rows first show
them, across chunks), and lines the scanner leaves to the exact path mixed in: broken ones,
escaped text, and lines that fail after a category value was read.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.config import parse_config
from tests.configs import UNREAD, example_config
from tests.test_native_scan import assert_same_decoding

LIMIT = 16
FIELDS = parse_config(
    example_config(
        UNREAD,
        max_label_value_bytes=LIMIT,
        fields={
            "timestamp": "ts",
            "model": "model",
            "version": "version",
            "predicted_class": {"path": "predicted_class", "max_categories": 3},
            "ground_truth": "ground_truth",
            "features": [
                {
                    "name": "country",
                    "path": "f.country",
                    "type": "categorical",
                    "max_categories": 3,
                },
                {"name": "device", "path": "f.device", "type": "categorical"},
                {"name": "amount", "path": "f.amount", "type": "numeric"},
            ],
        },
    )
).fields
LONG = ["a-value-longer-than-the-limit", "another-value-longer-than-the-limit", "x" * 17]
POOL = ["a", "b", "c", "d", "e", "", "__other__", "é", "\u2028", *LONG, None, True, False, 0, 1, 2]
ABSENT = object()
values = st.sampled_from([*POOL, ABSENT])


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    record: dict[str, Any] = {"ts": "2025-11-30T14:00:00Z", "model": "m", "version": "v1"}
    features: dict[str, Any] = {"amount": draw(st.integers(0, 9))}
    for key, into in (("predicted_class", record), ("ground_truth", record)):
        value = draw(values)
        if value is not ABSENT:
            into[key] = value
    for key in ("country", "device"):
        value = draw(values)
        if value is not ABSENT:
            features[key] = value
    record["f"] = features
    text = json.dumps(record, ensure_ascii=draw(st.booleans()))  # escaped: the exact path's
    how = draw(st.sampled_from(["plain"] * 6 + ["bad tail", "cut", "junk", "list"]))
    if how == "bad tail":  # read up to a new category value, then left to the exact path
        text = text[:-1] + ', "version": {"a": 1}}'
    elif how == "cut":
        text = text[: len(text) // 2]
    elif how == "junk":
        text = "not json at all"
    elif how == "list":
        text = text.replace('"f": {', '"f": {"device": [1], ', 1)
    return text.encode()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=st.lists(st.lists(lines(), max_size=30), min_size=1, max_size=4),
    keep_labels=st.booleans(),
)
def test_category_ids_decode_as_the_exact_path(
    chunks: list[list[bytes]], keep_labels: bool
) -> None:
    data = [b"".join(line + b"\n" for line in chunk) for chunk in chunks]
    assert_same_decoding(FIELDS, data, keep_labels)


def test_a_cut_value_is_counted_on_every_row_that_holds_it() -> None:
    """Several rows share one long value (one cached object): each row is a value cut, as the
    exact path counts it."""
    line = json.dumps({"predicted_class": "a", "f": {"country": LONG[0], "device": "d"}})
    chunk = ((line + "\n") * 5).encode()
    assert_same_decoding(FIELDS, [chunk], keep_labels=False)
