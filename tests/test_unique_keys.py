"""A log with a new model, version, class and country on every line, against the general rule.

Such a log fills every vocabulary and the model-version table within a batch or two, and from
then on nearly every value misses: the shortcuts for it (a full vocabulary sending clean
misses straight to the ``__other__`` code, grouping whose pairs are all new, joining batches
whose groups differ, slots once the table is full) must give exactly what the value-by-value
rules give, on awkward data: values to repair or cut, ``__other__`` itself, None, booleans and
numbers as categories, a vocabulary filling up mid-batch, and development membership.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from exporter import batch as batch_module
from exporter.anomaly import Kind
from exporter.batch import OTHER, Batch, Vocabulary, category_text, class_text
from exporter.config import parse_config
from exporter.decode import Decoder
from tests.test_label_values import (
    LIMIT,
    ODD,
    check_encoding,
    check_first_seen_codes,
    check_grouping,
)
from tests.test_state import check_slots


@st.composite
def _new_values(draw: st.DrawFn) -> list[list[Any]]:
    """Columns of mostly new short text (a new value on each line), odd values among them."""
    odd = st.one_of(st.none(), ODD, st.sampled_from(["a", "b"]))
    columns = []
    for b in range(draw(st.integers(0, 5))):
        size = draw(st.integers(0, 40))
        columns.append([f"k{b}-{i}" if draw(st.booleans()) else draw(odd) for i in range(size)])
    return columns


DEVELOPMENT = st.one_of(
    st.none(), st.frozensets(st.sampled_from(["a", "b", "1", "true", OTHER, "x" * LIMIT]))
)


@given(_new_values(), st.integers(1, 4), DEVELOPMENT)
@example([["a", "k0", "k1", "b", "k2"], ["k3", "a", None, "k4"]], 1, frozenset({"a", "k3"}))
@example([["a", "b"], ["\ud800", "y" * (LIMIT + 1), True, 1.0, OTHER, "k5"]], 2, frozenset({"1"}))
def test_a_full_vocabulary_codes_new_values_as_coding_them_alone_would(
    batches: list[list[Any]], cap: int, development: frozenset[str] | None
) -> None:
    check_encoding(batches, cap, development)


def test_a_full_vocabulary_sends_clean_new_values_past_the_cap_without_relabelling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once full, new short ASCII text needs no label spelling: it is past the cap, and only
    development says whether it is unseen. Text to repair still takes the general path."""
    vocabulary = Vocabulary(2, limit=LIMIT)
    vocabulary.set_development(["a", "c"])
    vocabulary.encode(["a", "b"])
    calls: list[tuple[list[Any], int]] = []
    spelled = batch_module.label_values

    def counted(values: list[Any], limit: int) -> tuple[list[str], list[int], list[int]]:
        calls.append((values, limit))
        return spelled(values, limit)

    monkeypatch.setattr(batch_module, "label_values", counted)
    codes, invalid, kinds, cuts = vocabulary.encode(["c", "d", "a", None, "e", OTHER])
    assert codes.tolist() == [2, 2, 0, -1, 2, 2]
    unseen, ok, missing = Kind.UNSEEN_CATEGORY, Kind.OK, Kind.MISSING
    assert kinds.tolist() == [ok, unseen, ok, missing, unseen, unseen]
    assert (invalid, cuts, calls) == ([], 0, [])
    codes, invalid, kinds, cuts = vocabulary.encode(["c", "\ud800", "z" * (LIMIT + 1), True])
    assert codes.tolist() == [2, 2, 2, 2]
    assert kinds.tolist() == [ok, unseen, unseen, unseen]
    assert (invalid, cuts, len(calls)) == ([1], 1, 1)
    assert vocabulary.values == ["a", "b"]


PAIR_PART = st.one_of(st.integers(0, 60), st.sampled_from([None, "a", True, 1.0, 2.5]))


@given(st.lists(st.tuples(PAIR_PART, st.integers(0, 1)), max_size=90))
@example([(i, 0) for i in range(40)] + [(7, 0)])  # the first pairs distinct, a repeat later
@example([(i, 0) for i in range(40)])
@example([(1, 0), (True, 0), (1.0, 0)])
def test_first_seen_codes_of_mostly_new_pairs(pairs: list[tuple[Any, Any]]) -> None:
    check_first_seen_codes(pairs)


NAME = st.one_of(st.none(), ODD, st.sampled_from(["a", "b", ""]), st.just([1]))


@st.composite
def _unique_pairs(draw: st.DrawFn) -> list[tuple[Any, Any]]:
    """Lines naming a new model and version each, with odd or repeated names among them."""
    size = draw(st.integers(1, 60))
    odd_share = draw(st.sampled_from([0.0, 0.05, 0.5]))
    pairs = []
    for i in range(size):
        if draw(st.floats(0, 1)) < odd_share:
            pairs.append((draw(NAME), draw(NAME)))
        else:
            pairs.append((f"m{i}", f"v{i}"))
    return pairs


@given(_unique_pairs())
@example([(f"m{i}", f"v{i}") for i in range(40)] + [("", "v1")])
@example([(f"m{i}", f"v{i}") for i in range(40)] + [("m0", "v0")])
@example([(f"m{i}", "v") for i in range(40)] + [("\ud800", "v"), ("m1", "w" * (LIMIT + 1))])
@example([(None, None)] * 6 + [(None, 19446744073709551617)])  # msgspec 0.18 misread it
def test_new_names_on_every_line_are_grouped_flagged_and_counted_per_record(
    pairs: list[tuple[Any, Any]],
) -> None:
    batch = check_grouping(pairs)
    assert len(set(batch.groups)) == len(batch.groups)  # one group per label pair


def _grouped(keys: list[tuple[str, str]], rows: list[int]) -> Batch:
    n = len(rows)
    return Batch(
        groups=keys,
        group=np.array(rows, dtype=np.int64),
        numeric=np.arange(n, dtype=np.float64).reshape(n, 1),
        categorical=np.zeros((n, 0), dtype=np.int64),
        flags=np.zeros((n, 1), dtype=np.int8),
        timestamp=np.zeros(n),
        wrong=np.zeros(n, dtype=np.int8),
    )


@st.composite
def _batches(draw: st.DrawFn) -> list[Batch]:
    """Batches whose groups repeat, start alike, or are all new, in any order."""
    pool = [(f"m{i}", "v") for i in range(draw(st.integers(1, 12)))]
    batches = []
    for _ in range(draw(st.integers(1, 4))):
        keys = draw(st.lists(st.sampled_from(pool), unique=True, max_size=len(pool)))
        rows = draw(st.lists(st.integers(0, max(len(keys) - 1, 0)), max_size=20)) if keys else []
        batches.append(_grouped(keys, rows))
    return batches


@given(_batches())
@example([_grouped([("a", "v"), ("b", "v")], [0, 1]), _grouped([("a", "v")], [0, 0])])
@example([_grouped([("a", "v")], [0]), _grouped([("a", "v"), ("b", "v")], [1, 0])])
@example([_grouped([("a", "v")], [0]), _grouped([("b", "v"), ("a", "v")], [0, 1])])
def test_concat_codes_groups_as_the_group_by_group_loop(batches: list[Batch]) -> None:
    index: dict[tuple[str, str], int] = {}
    codes = []
    for part in batches:
        remap = [index.setdefault(key, len(index)) for key in part.groups]
        codes += [remap[g] for g in part.group.tolist()]
    joined = Batch.concat(batches)
    assert joined.groups == list(index)
    assert joined.group.dtype == np.int64
    assert joined.group.tolist() == codes
    assert joined.numeric.ravel().tolist() == [
        v for part in batches for v in part.numeric.ravel().tolist()
    ]


@given(
    st.lists(
        st.lists(
            st.one_of(st.integers(0, 80), st.sampled_from(["a", "b", OTHER, None])), max_size=40
        ),
        max_size=5,
    ),
    st.integers(1, 4),
)
@example([[0, 1, 2, 3, 4, 5], [9, 8, 1, 7, 0, None, 6, OTHER, 2]], 2)
@example([[0, 1], [5, 6, 7, 0], [None, 8, 1]], 2)
@example([[0, 1], [5, None, 6]], 2)  # __other__ and __unknown__ both new once the table is full
def test_slots_of_mostly_new_names_follow_the_record_by_record_rule(
    batches: list[list[int | str | None]], limit: int
) -> None:
    """As ``test_groups_past_the_limit_follow_the_record_by_record_rule``, with a new name on
    most lines: once the table is full, the few kept keys are found among many new ones."""
    check_slots([[None if m is None else str(m) for m in names] for names in batches], limit)


CLASS = st.one_of(
    st.none(),
    st.sampled_from(["true", "false", "1", "0", True, False, 1, 0, 1.0, "yes", "no"]),
    st.builds(lambda i: f"c{i}", st.integers(0, 40)),
)


@given(st.lists(st.tuples(CLASS, CLASS), max_size=40), st.integers(1, 3))
@example([("c1", "c1"), ("c2", "c3"), ("true", "1"), ("c4", "false"), ("0", "false")], 1)
@example([("a", "b"), ("true", "1"), ("false", "0"), ("c9", "c9")], 1)
def test_errors_past_the_class_cap_are_judged_as_text(
    pairs: list[tuple[Any, Any]], cap: int
) -> None:
    """A class past the cap (``__other__``) or a label the vocabulary lacks is compared as
    ``class_text``: ``true``/``false`` the classes ``1``/``0``, a new class on every line.
    A label and a class that both have codes are compared as codes, so as text."""
    mapping = {"predicted_class": "cls", "ground_truth": "truth", "prediction": "p"}
    fields = {"timestamp": "ts", "model": "model", "version": "version", **mapping}
    config = parse_config({"sources": ["x.jsonl"], "fields": fields, "category_cap": cap})
    decoder = Decoder(config.fields)
    lines = [json.dumps({"p": i, "cls": c, "truth": t}) for i, (c, t) in enumerate(pairs)]
    batch = decoder.decode("".join(line + "\n" for line in lines).encode())
    got = dict(zip(batch.numeric[:, 0].tolist(), batch.wrong.tolist(), strict=True))
    coded = set(decoder.class_names)

    def judged(c: Any, t: Any) -> int:
        if c is None or t is None:
            return -1
        if type(t) is str and t in coded and category_text(c) in coded:
            return int(t != category_text(c))
        return int(class_text(c) != class_text(t))

    assert got == {float(i): judged(c, t) for i, (c, t) in enumerate(pairs)}
