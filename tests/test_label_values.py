"""The batched label-value paths give exactly what value-by-value ``label_value`` gives.

A log with a new model, version, class or country on every line sends every value through
these paths, so they take shortcuts (one C-level check for a list of short ASCII strings, codes
looked up in C once a vocabulary is full, each name made a label value once per batch). Each
property here states the slow, obvious rule per value and checks the shortcut against it:
the counts of invalid_text, label_values_truncated and unseen_category must not move.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from exporter import batch
from exporter.anomaly import Kind
from exporter.batch import MISS, OTHER, UNKNOWN, Batch, Vocabulary, label_value, label_values
from exporter.config import parse_config
from exporter.decode import Decoder, _first_seen_codes
from tests.configs import example_config

LIMIT = 16
# Short ASCII text (the shortcut), text with lone surrogates or past the limit (repaired,
# cut), and the other JSON scalars a category or a name can be.
ODD = st.one_of(
    st.text(st.characters(codec=None), max_size=24),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False),
    st.booleans(),
    st.sampled_from(["", OTHER, "x" * LIMIT, "y" * (LIMIT + 1), "é" * 9, "\ud800", "1"]),
)
PLAIN = st.text("abc", max_size=3)
VALUE = st.one_of(PLAIN, ODD)
COLUMNS = st.one_of(st.lists(PLAIN, max_size=40), st.lists(VALUE, max_size=40))


@given(COLUMNS, st.integers(1, 24))
def test_label_values_are_label_value_of_each(values: list[Any], limit: int) -> None:
    texts, repaired, cut = label_values(values, limit)
    each = [label_value(v, limit) for v in values]
    assert texts == [text for text, _, _ in each]
    assert repaired == [i for i, (_, r, _) in enumerate(each) if r]
    assert cut == [i for i, (_, _, c) in enumerate(each) if c]


class _ByValue:
    """A capped vocabulary coded one value at a time: the rules ``Vocabulary`` documents."""

    def __init__(self, cap: int, development: frozenset[str] | None) -> None:
        self.cap, self.development = cap, development
        self.codes: dict[str, int] = {}

    def encode(self, values: list[Any]) -> tuple[list[int], list[int], list[int], int]:
        codes: list[int] = []
        invalid: list[int] = []
        kinds: list[int] = []
        cuts = 0
        for i, value in enumerate(values):
            if value is None:
                codes.append(-1)
                kinds.append(Kind.MISSING)
                continue
            text, repaired, cut = label_value(value, LIMIT)
            cuts += cut
            if repaired:
                invalid.append(i)
            if text not in self.codes and len(self.codes) < self.cap and text != OTHER:
                self.codes[text] = len(self.codes)
            codes.append(self.codes.get(text, self.cap))
            unseen = self.development is not None and text not in self.development
            kinds.append(Kind.UNSEEN_CATEGORY if unseen else Kind.OK)
        return codes, invalid, kinds, cuts


@given(
    st.lists(st.lists(st.one_of(st.none(), VALUE), max_size=30), max_size=5),
    st.integers(1, 6),
    st.one_of(st.none(), st.frozensets(st.one_of(PLAIN, st.sampled_from(["1", "true"])))),
)
def test_vocabulary_encode_codes_each_value_as_coding_it_alone_would(
    batches: list[list[Any]], cap: int, development: frozenset[str] | None
) -> None:
    check_encoding(batches, cap, development)


def check_encoding(batches: list[list[Any]], cap: int, development: frozenset[str] | None) -> None:
    """``Vocabulary.encode`` batch after batch against ``_ByValue``: codes, invalid count, kinds,
    cuts and the vocabulary itself."""
    vocabulary = Vocabulary(cap, limit=LIMIT)
    vocabulary.set_development(development)
    oracle = _ByValue(cap, development)
    for values in batches:
        codes, invalid, kinds, cuts = vocabulary.encode(values)
        want_codes, want_invalid, want_kinds, want_cuts = oracle.encode(values)
        assert codes.tolist() == want_codes
        assert invalid == want_invalid
        assert kinds.tolist() == want_kinds
        assert vocabulary.values == list(oracle.codes)
        assert cuts == want_cuts


@given(
    st.lists(st.one_of(st.none(), VALUE, st.just([1])), min_size=1, max_size=12),
    st.lists(st.integers(0, 60), max_size=200),
    st.lists(PLAIN, max_size=8),
)
def test_the_compiled_lookup_is_dict_get_of_each_value(
    pool: list[Any], picks: list[int], known: list[str]
) -> None:
    """``Vocabulary.lookup`` in C remembers its answer for an object it saw lately; the same
    objects recur here (as the scanner's strings do), with equal values as other objects, and
    an unhashable value sends the whole column to the value-by-value pass."""
    assert batch._codes is not None
    vocabulary = Vocabulary(8, seed=known)
    values = [pool[k % len(pool)] for k in picks]
    values += [str(v) if type(v) is str else v for v in values]  # equal text, other objects
    got = vocabulary.lookup(values)
    assert got.dtype == np.int64
    hashable = not any(isinstance(v, list) for v in values)
    want = [vocabulary._codes.get(v, MISS) if hashable or type(v) is str else MISS for v in values]
    assert got.tolist() == want
    assert batch._codes(values[:0], {}, MISS) == bytearray()


def test_the_lookup_without_the_compiled_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Built without a C compiler, the lookup answers alike."""
    vocabulary = Vocabulary(8, seed=["a", "b"])
    columns: list[list[Any]] = [["a", "b", None, "a", 1, True, "zz"], ["a", None, [1], "b"]]
    compiled = [vocabulary.lookup(values).tolist() for values in columns]
    monkeypatch.setattr(batch, "_codes", None)
    assert [vocabulary.lookup(values).tolist() for values in columns] == compiled
    assert compiled[0] == [0, 1, -1, 0, MISS, MISS, MISS]


def _named(value: Any) -> bool:
    return value is not None and value != "" and not isinstance(value, dict | list)


def _repaired(value: Any) -> bool:
    return _named(value) and label_value(value, LIMIT)[1]


def _cut(value: Any) -> bool:
    return label_value(value, LIMIT)[2]


def _name(value: Any) -> str:
    """A model or version name as a label value, one record at a time."""
    return label_value(value, LIMIT)[0] if _named(value) else UNKNOWN


NAME = st.one_of(st.none(), PLAIN, ODD, st.just([1]))


@st.composite
def _pairs(draw: st.DrawFn) -> list[tuple[Any, Any]]:
    """Lines naming a few models and versions, each name on several lines."""
    models = st.sampled_from(draw(st.lists(NAME, min_size=1, max_size=4)))
    versions = st.sampled_from(draw(st.lists(NAME, min_size=1, max_size=4)))
    return draw(st.lists(st.tuples(models, versions), min_size=1, max_size=30))


@given(_pairs())
# Found by this test: False == 0 and True == 1 in Python, so grouping by value put a version
# ``false`` under the label ``0`` (and the one-model shortcut took [0, False] for one name).
@example([(None, 0), (None, False)])
@example([("m", 1), ("m", True), ("m", 1)])
@example([(True, "v"), (1, "v"), (1.0, "v")])
def test_names_are_grouped_flagged_and_counted_per_record(pairs: list[tuple[Any, Any]]) -> None:
    check_grouping(pairs)


def check_grouping(pairs: list[tuple[Any, Any]]) -> Batch:
    """Decode a line per (model, version) pair and compare each record's group, invalid_text
    flags and cut label values with the plain rules (also ``tests/test_unique_keys.py``)."""
    config = parse_config(example_config("/var/log/p.jsonl", max_label_value_bytes=LIMIT))
    decoder = Decoder(config.fields)
    lines = [
        json.dumps({"ts": 1.7e9, "model": m, "version": v, "prediction": 0.5}) for m, v in pairs
    ]
    batch = decoder.decode("\n".join(lines).encode() + b"\n")
    # Row order is not meaningful (lines the typed decoder refuses come last): compare the
    # records as a multiset of (names, model invalid_text, version invalid_text).
    columns = (decoder.layout.model_column, decoder.layout.version_column)
    got = Counter(
        (batch.groups[g], *(bool(batch.flags[r, c] == Kind.INVALID_TEXT) for c in columns))
        for r, g in enumerate(batch.group.tolist())
    )
    want = Counter(((_name(m), _name(v)), _repaired(m), _repaired(v)) for m, v in pairs)
    assert got == want
    assert np.array_equal(np.unique(batch.group), np.arange(len(batch.groups)))
    cut = batch.labels_cut
    for role, i in (("model", 0), ("version", 1)):
        assert cut[role] == sum(1 for pair in pairs if _named(pair[i]) and _cut(pair[i]))
    return batch


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "", None, 1, 2.5]), st.sampled_from(["v1", None, 0])),
        max_size=40,
    )
)
def test_grouping_codes_pairs_in_order_of_first_appearance(pairs: list[tuple[Any, Any]]) -> None:
    check_first_seen_codes(pairs)


def check_first_seen_codes(pairs: list[tuple[Any, Any]]) -> None:
    """Against the plain loop: each new pair gets the next code, a pair seen before its own."""
    keys: list[tuple[Any, Any]] = []
    expected = []
    for pair in pairs:
        if pair not in keys:
            keys.append(pair)
        expected.append(keys.index(pair))
    found, codes = _first_seen_codes(iter(pairs), len(pairs))
    assert found == keys
    assert codes.dtype == np.int64
    assert codes.tolist() == expected


@given(
    st.lists(
        st.one_of(
            st.text(max_size=6),
            st.text(alphabet=st.characters(max_codepoint=127), max_size=6),
            st.integers(),
            st.none(),
            st.builds(type("Text", (str,), {}), st.text(max_size=3)),
        ),
        max_size=8,
    ),
    st.integers(min_value=0, max_value=7),
)
def test_the_compiled_label_check_answers_as_the_python_passes(
    values: list[Any], limit: int
) -> None:
    """``own_labels``, compiled and not, against the rule per value: an exact ``str`` (not a
    subclass) of ASCII text of at most ``limit`` characters."""
    rule = all(type(v) is str and v.isascii() and len(v) <= limit for v in values)
    assert batch._own_labels is not None
    assert batch.own_labels(values, limit) == rule
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch, "_own_labels", None)  # the passes of a build without a compiler
        assert batch.own_labels(values, limit) == rule
