"""The value types every pipeline stage shares: a decoded ``Batch``, its column ``Layout``, and
the capped category ``Vocabulary``.

Kept apart from ``decode`` (which builds batches from log bytes) so the stages that only read
batches — windows, state, join, the collector, compare — depend on these small types and not on
the decoder, msgspec and its parsing rules. Imports nothing from the package but config types,
label spelling and the compiled column lookup.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from exporter import labels
from exporter.anomaly import Kind
from exporter.config_types import LABEL_VALUE_BYTES, FieldsConfig, FieldSpec

try:  # the compiled lookup of a column (``Vocabulary.lookup``) and check of label values
    # (``own_labels``); without them, numpy's and Python's passes
    _native = importlib.import_module("exporter._scan")
    _codes, _own_labels = _native.codes, _native.own_labels
except ImportError:  # built without a C compiler
    _codes = _own_labels = None

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

OTHER = "__other__"
UNKNOWN = "__unknown__"  # the model and version of a line that names none (docs/metrics.md)
MISS = -2  # a vocabulary lookup that found nothing


class Vocabulary:
    """Category value → code, capped: values past the cap share the ``__other__`` code.

    Append-only and bounded by ``cap`` values of at most ``limit`` bytes, so memory, the series
    count and the exposition's size stay fixed whatever the log contains. The cap bounds label
    values, it says nothing about a value: whether a value is ``unseen_category`` is a question
    for the development vocabulary (``set_development``), asked of the value itself (as label
    text), coded or past the cap.

    Every value is a label value (``label_value``): only clean text is ever a key, so a value
    that needs repairing or cutting misses the C lookup every time and is counted every time.
    """

    def __init__(self, cap: int, seed: Iterable[str] = (), limit: int = LABEL_VALUE_BYTES) -> None:
        self.cap = cap
        self.limit = limit
        self.values: list[str] = []
        self._codes: dict[str | None, int] = {None: -1}  # None (missing) encodes as -1
        self._development: frozenset[str] | None = None
        # The kind of a value past the cap, by its label text: OK for a value development saw
        # (absent: unseen_category), as a mapping the compiled lookup can ask (``mapped``).
        self._seen: dict[str, int] = {}
        # The kind of a value by its code + 1: missing for -1, unseen_category for a code
        # development never saw, OK otherwise (``__other__`` is asked value by value).
        self._kinds = np.zeros(cap + 2, dtype=np.int8)
        self._kinds[0] = Kind.MISSING
        for value in seed:
            self.code(value)

    def set_development(self, values: Iterable[str] | None) -> None:
        """The values the reference saw in development; None (no reference, or one that could
        not list them all) makes nothing unseen."""
        self._development = (
            None if values is None else frozenset(label_value(v, self.limit)[0] for v in values)
        )
        self._seen = dict.fromkeys(self._development or (), int(Kind.OK))
        for code, value in enumerate(self.values):
            self._kinds[code + 1] = self._judged(value)

    def _judged(self, value: str) -> Kind:
        development = self._development
        return (
            Kind.UNSEEN_CATEGORY
            if development is not None and value not in development
            else Kind.OK
        )

    @property
    def other(self) -> int:
        return self.cap

    def code(self, value: Any) -> int:
        """The code of a value, as its label value (repaired and cut: ``label_value``)."""
        return self._code(label_value(value, self.limit)[0])

    def _code(self, text: str) -> int:
        code = self._codes.get(text)
        if code is None:
            if len(self.values) >= self.cap or text == OTHER:  # never two __other__ series
                return self.cap
            code = len(self.values)
            self._codes[text] = code
            self.values.append(text)
            self._kinds[code + 1] = self._judged(text)
        return code

    def names(self) -> list[str]:
        """Code → label value, ``__other__`` last."""
        return [*self.values, OTHER]

    def lookup(self, values: list[Any]) -> IntArray:
        """Codes of known strings, -1 for None, and ``MISS`` for anything else; adds nothing
        (ground-truth labels must not use up the class vocabulary).

        Every value of a chunk's column comes here: compiled, one dict lookup per object not
        seen lately (``codes`` in ``_scan.c``); else a pass of ``dict.get`` in numpy."""
        try:
            return mapped(values, self._codes, MISS)
        except TypeError:
            return np.array(
                [self._codes.get(v, MISS) if type(v) is str else MISS for v in values],
                dtype=np.int64,
            )

    def encode(self, values: list[Any]) -> tuple[IntArray, list[int], npt.NDArray[np.int8], int]:
        """Codes of a column (-1 for None), the rows whose text was not valid Unicode, the
        anomaly kind of each row (missing, unseen_category: a value development never saw,
        coded or past the cap, or OK), and how many values were cut to ``limit``.

        Known strings — nearly every value of a real log — cost one dict lookup in C. The
        misses (a new value, a number, a boolean, text to repair or cut) are made label values
        together (``label_values``) and looked up in C again; once the vocabulary is full,
        misses that are all their own label text skip that and take the cap code at once, so
        a log with a new value on every line pays one more compiled lookup (development's)
        per value, never a Python call per line.
        The cut values are returned, not counted here: a chunk may be decoded twice (the
        engine's line-by-line retry), and only the decode whose records are kept may count.
        Assigning codes is safe to repeat: a value encoded again gets the code it was given.
        """
        codes = self.lookup(values)
        rows = np.flatnonzero(codes == MISS)
        if not len(rows):
            return codes, [], self._kinds[codes + 1], 0
        misses = values if len(rows) == len(values) else pick(values, rows.tolist())
        if len(self.values) >= self.cap and own_labels(misses, self.limit):
            # Full, and every miss is its own label text: none has a code (the lookup just
            # said so) and none can get one, so all are past the cap. The usual chunk of a
            # log with a new value on every line, once the first few chunks filled the cap.
            codes[rows] = self.cap
            kinds: npt.NDArray[np.int8] = self._kinds[codes + 1]
            if self._development is not None:
                kinds[rows] = self._past_kinds(misses)
            return codes, [], kinds, 0
        texts, repaired, cut = label_values(misses, self.limit)
        if len(self.values) < self.cap:
            for text in dict.fromkeys(texts):  # new values get codes in order of appearance
                if len(self.values) >= self.cap:
                    break
                self._code(text)
        found = mapped(texts, self._codes, self.cap)
        codes[rows] = found
        kinds = self._kinds[codes + 1]
        if self._development is not None:  # past the cap: ask the value
            past = np.flatnonzero(found == self.cap)
            kinds[rows[past]] = self._past_kinds(pick(texts, past.tolist()))
        return codes, rows[repaired].tolist(), kinds, len(cut)

    def _past_kinds(self, texts: list[str]) -> IntArray:
        """The kind of each label text past the cap: OK when development saw it, else
        unseen_category (one compiled lookup; a value past the cap has no code to judge)."""
        return mapped(texts, self._seen, int(Kind.UNSEEN_CATEGORY))


@dataclass(frozen=True)
class Layout:
    """Which columns a batch has, in order; shared by records, state and collector.

    A role (the score, the predicted class, ...) is found through its column index here, never
    by position or by name: the column order is the mapping's business, and a reorder must not
    silently compute residuals or errors from another field. ``None``: the log has no such role.
    """

    numeric: tuple[FieldSpec, ...]
    categorical: tuple[FieldSpec, ...]
    has_timestamp: bool
    has_ground_truth: bool
    regression: bool
    prediction_column: int | None  # into ``numeric``
    confidence_column: int | None  # into ``numeric``
    latency_column: int | None  # into ``numeric``
    predicted_class_column: int | None  # into ``categorical`` (and the decoder's vocabularies)
    has_model: bool  # names come from the log (fields.model), so they can be bad text
    has_version: bool

    @classmethod
    def from_fields(cls, fields: FieldsConfig) -> Layout:
        numeric, categorical = fields.numeric, fields.categorical
        return cls(
            numeric=numeric,
            categorical=categorical,
            has_timestamp=fields.timestamp is not None,
            has_ground_truth=fields.ground_truth is not None,
            regression=fields.regression,
            prediction_column=_column(numeric, fields.prediction),
            confidence_column=_column(numeric, fields.confidence),
            latency_column=_column(numeric, fields.latency),
            predicted_class_column=_column(categorical, fields.predicted_class),
            has_model=fields.model_path is not None,
            has_version=fields.version_path is not None,
        )

    @property
    def anomaly_fields(self) -> tuple[str, ...]:
        """Rows of the per-record anomaly matrix: numeric, categorical, then roles."""
        names = [f.name for f in self.numeric] + [f.name for f in self.categorical]
        for name, present in (
            ("timestamp", self.has_timestamp),
            ("ground_truth", self.has_ground_truth),
            ("model", self.has_model),
            ("version", self.has_version),
        ):
            if present:
                names.append(name)
        return tuple(names)

    @property
    def timestamp_column(self) -> int:
        return len(self.numeric) + len(self.categorical)

    @property
    def ground_truth_column(self) -> int:
        return self.timestamp_column + (1 if self.has_timestamp else 0)

    @property
    def model_column(self) -> int:
        return self.ground_truth_column + (1 if self.has_ground_truth else 0)

    @property
    def version_column(self) -> int:
        return self.model_column + (1 if self.has_model else 0)


@dataclass
class Batch:
    """The records of one chunk as columns. Row order is not meaningful."""

    groups: list[tuple[str, str]]  # distinct (model, version) pairs present
    group: IntArray  # [n] index into groups
    numeric: FloatArray  # [n, F] NaN where there is no valid value
    categorical: IntArray  # [n, C] category code, -1 where no valid value
    flags: npt.NDArray[np.int8]  # [n, A] anomaly Kind per record and anomaly field
    timestamp: FloatArray  # [n] seconds since the epoch, NaN where absent
    wrong: npt.NDArray[np.int8]  # [n] -1 no label, 0 correct, 1 wrong prediction
    parse_errors: Counter[str] = field(default_factory=Counter)
    # Label values cut to ``max_label_value_bytes``, by field (every occurrence): counted when
    # the batch is committed, so a chunk decoded twice counts its cuts once.
    labels_cut: Counter[str] = field(default_factory=Counter)
    # Regression (a score and no class): prediction − label, NaN where there is no label.
    residual: FloatArray | None = None
    # Only with ground_truth_join enabled: raw request ids and labels, for joining late labels.
    request_id: list[Any] | None = None
    label: list[Any] | None = None

    @property
    def size(self) -> int:
        return len(self.group)

    def take(self, rows: npt.NDArray[np.bool_] | npt.NDArray[np.int64]) -> Batch:
        """The records selected by a mask or an index array (parse errors and cut label values
        stay with the original batch: they are counted once, for the whole chunk)."""
        index: IntArray = (
            np.flatnonzero(rows) if rows.dtype == np.bool_ else rows.astype(np.int64, copy=False)
        )
        pick = index.tolist() if self.request_id is not None or self.label is not None else []
        return Batch(
            groups=self.groups,
            group=self.group[index],
            numeric=_take_rows(self.numeric, index),
            categorical=_take_rows(self.categorical, index),
            flags=_take_rows(self.flags, index),
            timestamp=self.timestamp[index],
            wrong=self.wrong[index],
            residual=None if self.residual is None else self.residual[index],
            request_id=None if self.request_id is None else [self.request_id[i] for i in pick],
            label=None if self.label is None else [self.label[i] for i in pick],
        )

    @classmethod
    def empty(cls, layout: Layout) -> Batch:
        """No records (a chunk whose every line was unprocessable)."""
        return cls(
            groups=[],
            group=np.zeros(0, dtype=np.int64),
            numeric=np.zeros((0, len(layout.numeric))),
            categorical=np.zeros((0, len(layout.categorical)), dtype=np.int64),
            flags=np.zeros((0, len(layout.anomaly_fields)), dtype=np.int8),
            timestamp=np.zeros(0),
            wrong=np.zeros(0, dtype=np.int8),
        )

    @classmethod
    def concat(cls, batches: list[Batch]) -> Batch:
        """One batch of the records, parse errors and cut label values of several (at least
        one) from the same decoder, e.g. the lines of a chunk decoded one by one."""
        groups: list[tuple[str, str]] = []  # the distinct groups, first seen first
        index: dict[tuple[str, str], int] = {}  # code of each of groups[:len(index)]
        codes = []
        errors: Counter[str] = Counter()
        cut: Counter[str] = Counter()
        for batch in batches:
            codes.append(_recoded(batch, groups, index))
            errors.update(batch.parse_errors)
            cut.update(batch.labels_cut)
        residuals = [b.residual for b in batches if b.residual is not None]
        requests = [b.request_id for b in batches if b.request_id is not None]
        labels = [b.label for b in batches if b.label is not None]
        return cls(
            groups=groups,
            group=np.concatenate(codes),
            numeric=_concat_rows([b.numeric for b in batches]),
            categorical=_concat_rows([b.categorical for b in batches]),
            flags=_concat_rows([b.flags for b in batches]),
            timestamp=np.concatenate([b.timestamp for b in batches]),
            wrong=np.concatenate([b.wrong for b in batches]),
            parse_errors=errors,
            labels_cut=cut,
            residual=np.concatenate(residuals) if residuals else None,
            request_id=[r for part in requests for r in part] if requests else None,
            label=[v for part in labels for v in part] if labels else None,
        )


def _recoded(
    batch: Batch, groups: list[tuple[str, str]], index: dict[tuple[str, str], int]
) -> IntArray:
    """``batch.group`` as codes into ``groups``, which gets the batch's new groups appended.

    A log with a new model on every line has a group per row, so each group costs a compiled
    dict lookup at most, and is put in ``index`` (read as ``groups[:len(index)]``) only once
    a later batch looks it up. A batch whose groups and the list start alike (the first
    batch, or one model version throughout) keeps its codes."""
    keys = batch.groups
    if keys[: len(groups)] == groups[: len(keys)]:
        groups.extend(keys[len(groups) :])
        return batch.group
    index.update(zip(groups[len(index) :], range(len(index), len(groups)), strict=True))
    found = mapped(keys, index, -1)
    new = np.flatnonzero(found < 0)
    if len(new):  # the batch's groups are distinct, so its new ones get the next codes
        found[new] = np.arange(len(groups), len(groups) + len(new))
        groups.extend(keys if len(new) == len(keys) else pick(keys, new.tolist()))
    return found[batch.group] if batch.size else batch.group


def _take_rows(matrix: npt.NDArray[Any], index: IntArray) -> npt.NDArray[Any]:
    """The rows ``index`` of a [n, k] matrix, kept field-major when it is (a decoded batch's
    arrays are: ``Decoder._classify``): one contiguous gather per field, and the statistics
    read the result without copying it into that order again."""
    fields = matrix.T
    if fields.flags.c_contiguous:
        taken: npt.NDArray[Any] = fields.take(index, axis=1).T
        return taken
    return matrix[index]


def _concat_rows(matrices: list[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    """The rows of several [n_i, k] matrices, one after another, field-major when the first
    is (as ``_take_rows`` keeps it)."""
    if matrices[0].T.flags.c_contiguous:
        joined: npt.NDArray[Any] = np.concatenate([m.T for m in matrices], axis=1).T
        return joined
    return np.concatenate(matrices)


def _column(columns: tuple[FieldSpec, ...], role: FieldSpec | None) -> int | None:
    return None if role is None else columns.index(role)


def nameless(fields: FieldsConfig) -> tuple[str, str]:
    """The (model, version) of a line that names no model: a parse error, or a record without
    the mapped name. With names from the log that is ``__unknown__`` (never the model read
    last); a static name is the only model there is, so it is charged there."""
    return (
        UNKNOWN if fields.model_path is not None else fields.model_value,
        UNKNOWN if fields.version_path is not None else fields.version_value,
    )


def label_value(value: Any, limit: int) -> tuple[str, bool, bool]:
    """A value from the log (a category, a model or version name) as a label value, spelled as
    ``category_text`` spells it: ``(text, repaired, cut)``, as ``labels.label_text`` says. The
    one function every such value passes through at ingest."""
    return labels.label_text(value if type(value) is str else category_text(value), limit)


def label_values(values: list[Any], limit: int) -> tuple[list[str], list[int], list[int]]:
    """``label_value`` of each value: ``(texts, indices repaired, indices cut)``.

    A log with a new category on every line sends every value here. Nearly always they are
    all short ASCII strings, which are their own label values: a few passes in C (types,
    lengths, one join) prove it for the whole list, which is then returned as it is (not a
    copy). Otherwise each value is looked at, the same way, and only the odd ones (a number,
    text to repair or cut) take ``label_value``.
    """
    if own_labels(values, limit):
        return values, [], []
    texts: list[str] = []
    repaired: list[int] = []
    cut: list[int] = []
    for i, value in enumerate(values):
        if type(value) is str and len(value) <= limit and value.isascii():
            texts.append(value)
            continue
        text, was_repaired, was_cut = label_value(value, limit)
        texts.append(text)
        if was_repaired:
            repaired.append(i)
        if was_cut:
            cut.append(i)
    return texts, repaired, cut


def pick(values: list[Any], rows: list[int]) -> list[Any]:
    """``[values[i] for i in rows]`` in C: a log with a new value on every line picks most
    rows of every chunk."""
    if len(rows) > 1:
        return list(itemgetter(*rows)(values))
    return [values[i] for i in rows]


def mapped(values: list[Any], mapping: dict[Any, int], default: int) -> IntArray:
    """``mapping.get(value, default)`` of each value, as int64: compiled, one dict lookup per
    object not seen lately (``codes`` in ``_scan.c``); else a pass of ``dict.get`` in numpy.
    An unhashable value raises TypeError, as ``dict.get`` does."""
    if _codes is not None and type(values) is list:
        found: IntArray = np.frombuffer(_codes(values, mapping, default), np.int64)
        return found
    return np.fromiter(map(mapping.get, values, repeat(default)), dtype=np.int64, count=len(values))


def own_labels(values: list[Any], limit: int) -> bool:
    """Whether every value is a ``str`` of at most ``limit`` ASCII characters (so at most
    ``limit`` UTF-8 bytes, and valid): its own label value. Compiled, one flag and one length
    read per value; else three passes in C."""
    if _own_labels is not None and type(values) is list:
        return bool(_own_labels(values, limit))
    return not values or (
        set(map(type, values)) == {str}
        and max(map(len, values)) <= limit
        and "".join(values).isascii()
    )


# For the error comparison only: a binary classifier may log its class as a boolean and its
# labels as 0/1 (or the other way round); those name the same class.
SAME_CLASS = {"true": "1", "false": "0"}


def class_text(value: Any) -> str:
    """A predicted class or a label as the error ratio compares them: as ``category_text``
    spells it, with ``true``/``false`` the same classes as ``1``/``0``. Labels on the page keep
    their own spelling; only the comparison is made this way."""
    text = category_text(value)
    return SAME_CLASS.get(text, text)


def category_text(value: Any) -> str:
    """A category or label as text, spelled as in the log: ``1`` and ``1.0`` are one class,
    and booleans read ``true``/``false`` as JSON writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
