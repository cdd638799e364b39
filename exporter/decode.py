"""Bytes of complete JSON lines → a columnar ``Batch`` (numpy arrays), one chunk at a time.

Why columnar: per-line Python work is what limits speed (the README's Performance section,
measured by ``bench/bench_sidecar.py``). The fast path decodes a whole piece of a chunk with a
typed msgspec decoder built from the field mapping (``columns``), lays the records out as
columns in one pass, reads timestamps a column at a time (``timestamps``), and classifies every
bad value with array operations. A piece that fails typed decoding (a malformed line, a string
where a number belongs) is decoded again around the line msgspec's error names: good lines keep
the typed path, and only the bad ones go through a lenient parser that says *what* is wrong
with each field. A bad line costs one slow parse, never a crash and never a silent drop.

Faster still, when it is compiled in: the native scanner (``scan``, ``_scan.c``) reads plain
lines straight into the columns, and only the lines it leaves take the typed and lenient paths
above — the exact path, whose results the scanner's must equal (``tests/test_native_scan.py``).

The batch, its layout and the category vocabularies are plain value types in ``batch``.
"""

from __future__ import annotations

import json
import math
import operator
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from exporter.anomaly import INVALID_JSON, INVALID_UTF8, NOT_AN_OBJECT, Kind
from exporter.batch import (
    MISS,
    SAME_CLASS,
    Batch,
    FloatArray,
    IntArray,
    Layout,
    Vocabulary,
    class_text,
    label_value,
    mapped,
    nameless,
    own_labels,
    pick,
)
from exporter.columns import ObjectArray, RecordType
from exporter.config_types import FUTURE_AFTER, LATE_AFTER, FieldsConfig
from exporter.scan import NativeScanner, Scanned, piece_bounds
from exporter.timestamps import epoch_seconds

MAX_TIMESTAMP = 95_617_584_000.0  # 5000-01-01 in epoch seconds
PIECE_BYTES = 64 << 10  # cache-sized decode pieces; a failing one is re-decoded around its bad line
DISTINCT_HEAD = 32  # first pairs of a batch that, all distinct, suggest all its pairs are
RETRIES = 8  # bad lines found by position in one piece; past that, the rest goes line by line
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)
_AT_RECORD = re.compile(r"at `\$\[(\d+)\]")
_AT_BYTE = re.compile(r"\(byte (\d+)\)")
_JSON_SPACE = b" \t\r\n"


def _lenient_number(value: Any) -> tuple[float, Kind]:
    if value is None:
        return math.nan, Kind.MISSING
    if isinstance(value, bool | dict | list):
        return math.nan, Kind.TYPE_MISMATCH
    try:
        number = float(value)
    except (ValueError, OverflowError):  # "abc", or an integer too large for a float
        return math.nan, Kind.NOT_A_NUMBER
    if not math.isfinite(number):
        return math.nan, Kind.NOT_A_NUMBER
    return number, Kind.OK


def _lenient_category(value: Any) -> tuple[Any, Kind]:
    if value is None:
        return None, Kind.MISSING
    if isinstance(value, dict | list):
        return None, Kind.TYPE_MISMATCH
    return value, Kind.OK


def _get_path(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


@dataclass
class _Rows:
    """Raw column values gathered from decoded records, before classification."""

    numeric: list[FloatArray]
    categorical: list[list[Any]]
    timestamp: list[Any]  # raw values of the rows after the scanned ones (all rows, unscanned)
    models: list[Any]
    versions: list[Any]
    truth: list[Any]
    preset: list[tuple[int, int, Kind]]  # (row, anomaly column, kind) found by the lenient parser
    request_ids: list[Any]
    # The native scanner's first rows' timestamps, already in seconds, and whether each row
    # had one at all; the raw values of the rest are in ``timestamp``.
    scanned_seconds: FloatArray = field(default_factory=lambda: np.zeros(0))
    scanned_given: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))


class Decoder:
    """Decodes chunks for one field mapping. Holds the category vocabularies (bounded)."""

    def __init__(
        self,
        fields: FieldsConfig,
        late_after: float = LATE_AFTER,
        future_after: float = FUTURE_AFTER,
        keep_labels: bool = False,
        native: bool = True,
    ) -> None:
        """``keep_labels`` keeps raw request ids and labels on the batch for joining labels
        that arrive on their own line; off, no per-record cost is paid for it. ``native``
        reads plain lines with the compiled scanner (``scan``) when it is there; off, every
        line takes the exact path, which the scanner's results must equal."""
        self.fields = fields
        self._late_after = late_after
        self._future_after = future_after
        self.layout = Layout.from_fields(fields)
        limit = fields.label_value_bytes
        self.vocabularies = [
            Vocabulary(spec.max_categories, limit=limit) for spec in self.layout.categorical
        ]
        # Label values cut to the limit, by field (cumulative): added by ``commit``, not while
        # decoding, so decoding a chunk again (the engine's line-by-line retry) counts nothing.
        self._cut: Counter[str] = Counter()
        self._nameless = nameless(fields)
        self._keep_labels = keep_labels and fields.request_id is not None
        self._regression = fields.regression
        self._record = RecordType(fields, with_request_id=self._keep_labels)
        # The numeric fields to scale, and each field's bounds (in base units) as [F, 1]
        # columns for classifying every field at once; ±inf where a field has no bound.
        numeric = self.layout.numeric
        self._scaled = [(j, spec.scale) for j, spec in enumerate(numeric) if spec.scale != 1.0]
        self._minimum = np.array(
            [[-np.inf if s.minimum is None else s.minimum * s.scale] for s in numeric]
        ).reshape(len(numeric), 1)
        self._maximum = np.array(
            [[np.inf if s.maximum is None else s.maximum * s.scale] for s in numeric]
        ).reshape(len(numeric), 1)
        self._bounded = any(s.minimum is not None or s.maximum is not None for s in numeric)
        self._typed: msgspec.json.Decoder[Any] = msgspec.json.Decoder(self._record.type)
        self._native = NativeScanner.build(self._record, fields) if native else None
        # Accepts NaN/Infinity (they become not_a_number) and integers of any length.
        self._generic = json.JSONDecoder(parse_int=_parse_int)

    @property
    def class_names(self) -> list[str]:
        """The predicted-class vocabulary (append-only, owned by the ingest thread), or an
        empty list when the log carries no class."""
        column = self.layout.predicted_class_column
        return [] if column is None else self.vocabularies[column].values

    def labels_cut(self) -> dict[str, int]:
        """Label values cut to ``label_value_bytes`` so far, by field (read by scrapes: plain
        int reads of counters the ingest thread owns)."""
        names = [spec.name for spec in self.layout.categorical]
        names += ["model"] if self.fields.model_path is not None else []
        names += ["version"] if self.fields.version_path is not None else []
        return {name: self._cut[name] for name in names}

    def commit(self, batch: Batch) -> None:
        """Count the label values a decoded batch cut, once its records are kept: decoding
        stays free of side effects a retry could repeat."""
        self._cut.update(batch.labels_cut)

    # -- decoding -------------------------------------------------------------------------

    def decode(self, data: bytes, now: float | None = None) -> Batch:
        """Decode complete lines. ``now`` (live mode) marks late and future timestamps."""
        lenient: list[dict[str, Any]] = []
        errors: Counter[str] = Counter()
        if self._native is not None:

            def exact(span: memoryview, records: list[Any]) -> None:
                self._decode_piece(span, records, lenient, errors)

            rows = self._scanned_rows(self._native.scan(data, exact, PIECE_BYTES), lenient)
        else:
            typed: list[Any] = []
            for piece in _pieces(data, PIECE_BYTES):
                self._decode_piece(piece, typed, lenient, errors)
            rows = self._rows(typed, lenient)
        batch = self._classify(rows, now)
        batch.parse_errors = errors
        return batch

    def _decode_piece(
        self,
        piece: memoryview,
        typed: list[Any],
        lenient: list[dict[str, Any]],
        errors: Counter[str],
    ) -> None:
        """One typed call for the piece; when it fails, msgspec's error says where, so the
        lines before the bad one are decoded again in one call, the bad line (or two, when
        the error shows at the start of the next) goes line by line, and the rest is retried.
        A wrong guess of the bad line costs speed, never a record: every byte still goes
        through the typed or the line-by-line path exactly once."""
        rest: memoryview | bytes = piece
        for _ in range(RETRIES):
            try:
                typed.extend(self._typed.decode_lines(rest))
                return
            except _DECODE_ERRORS as exc:
                rest = bytes(rest)  # a view of the chunk: copied only when it fails
                span = _bad_span(exc, rest)
            if span is None:
                break
            start, end = span
            if rest[:start].strip():
                try:
                    typed.extend(self._typed.decode_lines(rest[:start]))
                except _DECODE_ERRORS:
                    self._decode_lines_one_by_one(rest[:start], typed, lenient, errors)
            self._decode_lines_one_by_one(rest[start:end], typed, lenient, errors)
            rest = rest[end:]
            if not rest.strip():
                return
        self._decode_lines_one_by_one(bytes(rest), typed, lenient, errors)

    def _decode_lines_one_by_one(
        self, piece: bytes, typed: list[Any], lenient: list[dict[str, Any]], errors: Counter[str]
    ) -> None:
        for line in piece.split(b"\n"):
            if not line.strip():
                continue
            try:
                typed.append(self._typed.decode(line))
                continue
            except _DECODE_ERRORS:
                pass
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                errors[INVALID_UTF8] += 1
                continue
            try:
                obj = self._generic.decode(text.strip().lstrip("\ufeff"))
            except (ValueError, RecursionError):  # RecursionError: nesting deeper than any record
                errors[INVALID_JSON] += 1
                continue
            if not isinstance(obj, dict):
                errors[NOT_AN_OBJECT] += 1
                continue
            lenient.append(obj)

    def _rows(self, typed: list[Any], lenient: list[dict[str, Any]]) -> _Rows:
        columns = self._record.columns(typed)

        def values(path: tuple[str, ...] | None) -> list[Any]:
            return columns[path].tolist() if path is not None else []

        f = self.fields
        rows = _Rows(
            numeric=[],
            categorical=[values(spec.path) for spec in self.layout.categorical],
            timestamp=values(f.timestamp),
            models=values(f.model_path),
            versions=values(f.version_path),
            truth=values(f.ground_truth),
            preset=[],
            request_ids=values(f.request_id) if self._keep_labels else [],
        )
        for j, spec in enumerate(self.layout.numeric):
            rows.numeric.append(self._numbers(columns[spec.path], j, rows.preset))
        if lenient:
            self._add_lenient(rows, len(typed), lenient)
        return rows

    def _scanned_rows(self, scanned: Scanned, lenient: list[dict[str, Any]]) -> _Rows:
        """The rows of scanned columns, laid out as ``_rows`` lays out the exact path's."""
        taken: set[int] = set()

        def values(path: tuple[str, ...] | None) -> list[Any]:
            if path is None:
                return []
            column = scanned.objects[path]
            if id(column) in taken:  # one path, two roles: each role appends its own rows
                return list(column)
            taken.add(id(column))
            return column

        f = self.fields
        rows = _Rows(
            numeric=[scanned.numbers[spec.path] for spec in self.layout.numeric],
            categorical=[values(spec.path) for spec in self.layout.categorical],
            timestamp=[],
            models=values(f.model_path),
            versions=values(f.version_path),
            truth=values(f.ground_truth),
            preset=[],
            request_ids=values(f.request_id) if self._keep_labels else [],
        )
        if f.timestamp is not None:
            rows.scanned_seconds, rows.scanned_given = scanned.seconds, scanned.given
        if lenient:
            self._add_lenient(rows, scanned.size, lenient)
        return rows

    def _numbers(
        self, column: ObjectArray, j: int, preset: list[tuple[int, int, Kind]]
    ) -> FloatArray:
        """A numeric column in one numpy call (two when a JSON null left a None in it); per
        value only when the path is also mapped to a role of another type."""
        try:
            result: FloatArray = column.astype(np.float64)
            return result
        except (TypeError, ValueError, OverflowError):
            pass
        try:
            return np.array(column.tolist(), dtype=np.float64)  # None → NaN
        except (TypeError, ValueError, OverflowError):
            pass
        numbers = np.empty(len(column))
        for r, value in enumerate(column.tolist()):
            numbers[r], kind = _lenient_number(value)
            if kind is not Kind.OK and kind is not Kind.MISSING:
                preset.append((r, j, kind))
        return numbers

    def _add_lenient(self, rows: _Rows, base: int, lenient: list[dict[str, Any]]) -> None:
        """Append the records the lenient parser read, classifying their odd values here."""
        f = self.fields
        extra: list[list[float]] = [[] for _ in self.layout.numeric]
        n_num = len(self.layout.numeric)
        for i, obj in enumerate(lenient):
            r = base + i
            for j, spec in enumerate(self.layout.numeric):
                value, kind = _lenient_number(_get_path(obj, spec.path))
                extra[j].append(value)
                if kind is not Kind.OK and kind is not Kind.MISSING:
                    rows.preset.append((r, j, kind))
            for j, spec in enumerate(self.layout.categorical):
                value, kind = _lenient_category(_get_path(obj, spec.path))
                rows.categorical[j].append(value)
                if kind is Kind.TYPE_MISMATCH:
                    rows.preset.append((r, n_num + j, kind))
            if f.timestamp is not None:
                stamp = _get_path(obj, f.timestamp)
                if isinstance(stamp, bool | dict | list):
                    rows.preset.append((r, self.layout.timestamp_column, Kind.TYPE_MISMATCH))
                    stamp = None
                rows.timestamp.append(stamp)
            if f.model_path is not None:
                rows.models.append(_scalar(_get_path(obj, f.model_path)))
            if f.version_path is not None:
                rows.versions.append(_scalar(_get_path(obj, f.version_path)))
            if f.ground_truth is not None:
                label = _get_path(obj, f.ground_truth)
                if isinstance(label, dict | list):  # a structured label cannot be compared
                    rows.preset.append((r, self.layout.ground_truth_column, Kind.TYPE_MISMATCH))
                    label = None
                rows.truth.append(label)
            if self._keep_labels and f.request_id is not None:
                rows.request_ids.append(_get_path(obj, f.request_id))
        rows.numeric = [
            np.concatenate([typed, np.array(more, dtype=np.float64)])
            for typed, more in zip(rows.numeric, extra, strict=True)
        ]

    # -- classification -------------------------------------------------------------------

    def _classify(self, rows: _Rows, now: float | None) -> Batch:
        """The batch of the rows, every bad value flagged.

        The arrays are built field-major ([fields, rows], each field's values contiguous) and
        handed to the batch as transposed views ([rows, fields], as ``Batch`` documents them):
        classifying a field, summarising it (``summarize``), judging it against the reference
        and counting its anomalies all read one field's values at a time, which numpy does
        several times faster along contiguous memory, and none of them has to copy the matrix
        into that order first."""
        layout = self.layout
        n = _row_count(rows)
        n_num, n_cat = len(layout.numeric), len(layout.categorical)
        marks = np.zeros((len(layout.anomaly_fields), n), dtype=np.int8)  # flags, field-major
        for r, col, kind in rows.preset:
            marks[col, r] = kind

        values = np.empty((n_num, n), dtype=np.float64)
        for j, column_values in enumerate(rows.numeric):
            values[j] = column_values
        if n_num:
            self._classify_numeric(values, marks[:n_num])

        codes = np.full((n_cat, n), -1, dtype=np.int64)
        cut: Counter[str] = Counter()
        for j, category_values in enumerate(rows.categorical):
            codes[j], kinds, cut[layout.categorical[j].name] = self._encode(j, category_values)
            column = marks[n_num + j]
            np.copyto(column, kinds, where=column == 0)

        flags, numeric, categorical = marks.T, values.T, codes.T
        timestamp = np.full(n, np.nan)
        if layout.has_timestamp:
            timestamp = self._timestamps(rows, marks[layout.timestamp_column], now)

        groups, group, names = self._groups(rows, n)
        cut.update(self._check_names(names, group, flags))
        if names:  # relabelled: names that differ in the log may now be spelled alike
            groups, group = _merged(groups, group)
        wrong = self._wrong(rows, codes, n)
        batch = Batch(groups, group, numeric, categorical, flags, timestamp, wrong)
        batch.labels_cut = +cut  # only the fields that cut something
        if self._regression:
            batch.residual = self._residual(rows, numeric, marks[layout.ground_truth_column])
        if self._keep_labels:
            batch.request_id = rows.request_ids
            batch.label = rows.truth or [None] * n
        return batch

    def _classify_numeric(self, values: FloatArray, kind: npt.NDArray[np.int8]) -> None:
        """Scale, then flag (in ``kind``) and blank (NaN in ``values``) every value that is
        missing, not finite or outside its configured bounds; both are field-major [F, n].

        All fields in one pass of each operation, per-field bounds as [F, 1] columns; the few
        values that are not finite are found once and judged one by one, and the rare steps
        (an infinity, a value out of bounds) only run when some value needs them.
        """
        for j, scale in self._scaled:
            values[j] *= scale
        finite = np.isfinite(values)
        if not finite.all():  # a few values missing or infinite: judged one by one
            f, r = np.divmod(np.flatnonzero(~finite), values.shape[1])
            infinite = np.isinf(values[f, r])  # 1e400 parses as infinity: no number to average
            missing = ~infinite & (kind[f, r] == 0)
            kind[f[missing], r[missing]] = Kind.MISSING
            if infinite.any():
                kind[f[infinite], r[infinite]] = Kind.NOT_A_NUMBER
                values[f[infinite], r[infinite]] = np.nan
        if self._bounded:
            # Configured bounds say what a valid value is: outside them, the value is counted
            # and kept out of the statistics, so one garbage value cannot swing a mean.
            with np.errstate(invalid="ignore"):
                bad = values < self._minimum
                bad |= values > self._maximum
            if bad.any():
                kind[bad] = Kind.OUT_OF_RANGE
                values[bad] = np.nan

    def _encode(self, j: int, values: list[Any]) -> tuple[IntArray, npt.NDArray[np.int8], int]:
        vocabulary = self.vocabularies[j]
        codes, invalid, kinds, cut = vocabulary.encode(values)
        kinds[invalid] = Kind.INVALID_TEXT
        return codes, kinds, cut

    def _timestamps(self, rows: _Rows, kind: npt.NDArray[np.int8], now: float | None) -> FloatArray:
        values, head = rows.timestamp, len(rows.scanned_seconds)
        if not values:  # every row scanned (the usual chunk): its seconds are all there is
            ts = np.array(rows.scanned_seconds, dtype=np.float64)  # a copy: flagged ones go
        else:
            ts = epoch_seconds(values, self.fields.timestamp_scale)
            if head:
                ts = np.concatenate([rows.scanned_seconds, ts])
        # No log line comes from before 1970 or after the year 5000: such a value (or an
        # infinity) is a broken field, and it must not drive time in a replay. NaN (none
        # read) is implausible too, so a chunk of plausible times skips all the rest.
        with np.errstate(invalid="ignore"):
            implausible = ~((ts >= 0) & (ts < MAX_TIMESTAMP))
        if implausible.any():
            for i in np.flatnonzero(implausible & (kind == 0)).tolist():
                given = rows.scanned_given[i] if i < head else values[i - head] is not None
                if given:  # given, but no time: a broken field, not a missing one
                    kind[i] = Kind.TYPE_MISMATCH
            ts[implausible] = np.nan
            kind[np.isnan(ts) & (kind == 0)] = Kind.MISSING
        if now is not None:
            with np.errstate(invalid="ignore"):
                kind[(ts < now - self._late_after) & (kind == 0)] = Kind.LATE
                future = (ts > now + self._future_after) & (kind == 0)
            kind[future] = Kind.FUTURE
            ts[future] = np.nan  # a clock far ahead must not pin the last-record gauge
        return ts

    def _groups(
        self, rows: _Rows, n: int
    ) -> tuple[list[tuple[str, str]], IntArray, list[tuple[str, int, _Names]]]:
        """The distinct (model, version) pairs of the batch (as found: two that relabelling
        spells alike are merged by the caller once their names are checked) as label values,
        each record's pair, and the names found in them, as (role, anomaly column, names)
        per named role (none when every name is its own label value: nothing to flag or
        count, and the pairs are distinct labels already).

        Grouping costs O(rows) in C and naming O(pairs): a log with a new model on every line
        pays one dict pass per batch, and each distinct name is made a label value once."""
        f = self.fields
        if f.model_path is None and f.version_path is None:
            return [(f.model_value, f.version_value)], np.zeros(n, dtype=np.int64), []
        models = rows.models or [None] * n
        versions = rows.versions or [None] * n
        limit = f.label_value_bytes
        keys: list[tuple[Any, Any]]
        if n and _all_alike(models, n) and _all_alike(versions, n):
            keys = [(models[0], versions[0])]  # one model version: the usual sidecar
            codes = np.zeros(n, dtype=np.int64)
        elif _own_names(models, limit) and _own_names(versions, limit):
            # Every name is its own label value (a log with a new model on every line, too):
            # the distinct pairs are the groups, and no name has anything to flag or count.
            return (*_first_seen_codes(zip(models, versions, strict=True), n), [])
        else:
            models, versions = _bools_as_text(models), _bools_as_text(versions)
            keys, codes = _first_seen_codes(zip(models, versions, strict=True), n)
        (model, version), layout = self._nameless, self.layout
        model_names = _name_labels([m for m, _ in keys], model, limit)
        version_names = _name_labels([v for _, v in keys], version, limit)
        groups = list(zip(model_names.texts, version_names.texts, strict=True))
        names = []
        if layout.has_model:
            names.append(("model", layout.model_column, model_names))
        if layout.has_version:
            names.append(("version", layout.version_column, version_names))
        return groups, codes, names

    def _check_names(
        self,
        names: list[tuple[str, int, _Names]],
        group: IntArray,
        flags: npt.NDArray[np.int8],
    ) -> Counter[str]:
        """Model and version names are label values too: flag the records whose name was not
        valid Unicode (``invalid_text``), and return how many names were cut to the limit.

        Works per group, not per record: the rows of a group share their names.
        """
        cut: Counter[str] = Counter()
        if not len(group) or not any(found.repaired or found.cut for _, _, found in names):
            return cut  # the usual batch: clean names, nothing to count per group
        sizes = np.bincount(group)
        for role, column, found in names:
            if found.repaired:
                flags[np.isin(group, found.repaired), column] = Kind.INVALID_TEXT
            if found.cut:
                cut[role] += int(sizes[found.cut].sum())
        return cut

    def _residual(self, rows: _Rows, numeric: FloatArray, kind: npt.NDArray[np.int8]) -> FloatArray:
        """Prediction − label per record; a label that is not a number is a type_mismatch."""
        try:
            labels = np.array(rows.truth, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            parsed = [
                _lenient_number(v) if v is not None else (math.nan, Kind.OK) for v in rows.truth
            ]
            labels = np.array([value for value, _ in parsed])
            bad = np.array([k not in (Kind.OK, Kind.MISSING) for _, k in parsed], dtype=bool)
            kind[bad & (kind == 0)] = Kind.TYPE_MISMATCH
        infinite = np.isinf(labels)
        kind[infinite & (kind == 0)] = Kind.TYPE_MISMATCH
        labels[infinite] = np.nan
        assert self.layout.prediction_column is not None  # regression means a score is mapped
        with np.errstate(over="ignore"):
            residual = numeric[:, self.layout.prediction_column] - labels
        # Two finite values whose difference is past the largest float (a score of 1e308, a
        # label of -1e308) have no error to average either: the label is judged as an infinite
        # one, and kept out of MAE and RMSE.
        overflow = np.isinf(residual)
        kind[overflow & (kind == 0)] = Kind.TYPE_MISMATCH
        residual[overflow] = np.nan
        return residual

    def _wrong(self, rows: _Rows, codes: IntArray, n: int) -> npt.NDArray[np.int8]:
        """Classification error per record: the label against the predicted class, compared
        as vocabulary codes (both are class names). ``codes`` is field-major [C, n]."""
        wrong = np.full(n, -1, dtype=np.int8)
        column = self.layout.predicted_class_column
        if not rows.truth or column is None:
            return wrong
        vocabulary = self.vocabularies[column]
        labels = vocabulary.lookup(rows.truth)
        guesses = codes[column]
        both = (labels >= 0) & (guesses >= 0)
        np.copyto(wrong, labels != guesses, where=both)
        # A label the class vocabulary does not hold (a class never predicted, a number), or a
        # class past the cap (__other__): compare those pairs as text.
        unsure = (guesses >= 0) & ((labels == MISS) | (guesses == vocabulary.other))
        unsure &= labels != -1
        if not unsure.any():
            return wrong
        unsure_rows = np.flatnonzero(unsure)
        chosen = unsure_rows.tolist()
        said, guessed = pick(rows.truth, chosen), pick(rows.categorical[column], chosen)
        if _all_text(said) and _all_text(guessed):  # text is its own spelling
            if mapped(said, _RESPELT, 0).any() or mapped(guessed, _RESPELT, 0).any():
                same = SAME_CLASS.get
                said, guessed = list(map(same, said, said)), list(map(same, guessed, guessed))
            differs = map(operator.ne, said, guessed)
        else:
            differs = map(_differ, said, guessed)
        wrong[unsure_rows] = np.fromiter(differs, dtype=bool, count=len(chosen))
        return wrong


_RESPELT = dict.fromkeys(SAME_CLASS, 1)  # the texts ``class_text`` spells otherwise


def _all_text(values: list[Any]) -> bool:
    """Whether every value is a ``str`` (not a subclass): one compiled pass when they are
    ASCII (``own_labels`` with no length limit), else a set of their types."""
    return own_labels(values, sys.maxsize) or set(map(type, values)) <= {str}


def _differ(said: Any, guessed: Any) -> bool:
    """Whether a label and a predicted class name different classes (``class_text``)."""
    return class_text(said) != class_text(guessed)


def _first_seen_codes(
    pairs: Iterable[tuple[Any, Any]], n: int
) -> tuple[list[tuple[Any, Any]], IntArray]:
    """The distinct pairs, first seen first, and each row's index into them. When every pair
    is distinct (a log with a new model on every line: its first rows are, and a set in C
    says whether all are) the rows are the codes. Else one dict pass in C maps every pair to
    the row where it was first seen (built from the last row back, so the first row's write
    stands), and ranking each row's first row (a sort of integers) gives the codes. No step
    here may cost a Python call per row."""
    listed = list(pairs)
    head = min(n, DISTINCT_HEAD)
    if len(set(listed[:head])) == head and len(set(listed)) == n:
        return listed, np.arange(n, dtype=np.int64)
    first = dict(zip(reversed(listed), range(n - 1, -1, -1), strict=True))
    firsts, codes = np.unique(mapped(listed, first, -1), return_inverse=True)
    return pick(listed, firsts.tolist()), codes.astype(np.int64, copy=False)


def _merged(
    groups: list[tuple[str, str]], group: IntArray
) -> tuple[list[tuple[str, str]], IntArray]:
    """One group per label pair (``Batch.groups`` are distinct): names that differ in the log
    may be spelled alike as labels (no name and the empty name are both ``__unknown__``, two
    long names may be cut alike). Passes in C: there may be a group per row."""
    distinct = list(dict.fromkeys(groups))
    if len(distinct) == len(groups):
        return groups, group
    index = dict(zip(distinct, range(len(distinct)), strict=True))
    merged: IntArray = mapped(groups, index, 0)[group]
    return distinct, merged


def _all_alike(values: list[Any], n: int) -> bool:
    """Whether every name of the batch is the first one, as a label: equal, and not a boolean
    beside a number (``False == 0`` in Python, but the labels are ``false`` and ``0``)."""
    first = values[0]
    if values[-1] != first or values.count(first) != n:  # a new name per line: seen at once
        return False
    return first not in (0, 1) or len(set(map(type, values))) == 1


def _own_names(values: list[Any], limit: int) -> bool:
    """Whether every name is its own label value (``_name_labels`` keeps it as it is): text
    of a label's length, none of it empty (``all`` of strings: none is empty)."""
    return own_labels(values, limit) and all(values)


def _bools_as_text(values: list[Any]) -> list[Any]:
    """Booleans as their label text, so that grouping by value (a dict) keeps ``true`` apart
    from ``1``: they are equal and hash alike in Python. A pass in C when there are none."""
    if bool not in set(map(type, values)):
        return values
    return [("true" if v else "false") if type(v) is bool else v for v in values]


def _scalar(value: Any) -> Any:
    """A model or version name must be a scalar; anything else names no model."""
    return None if isinstance(value, dict | list) else value


@dataclass(frozen=True)
class _Names:
    """A batch's model (or version) names, one per group, as label values; and the groups
    whose name was repaired or cut (indices into the groups)."""

    texts: list[str]
    repaired: list[int] = field(default_factory=list)
    cut: list[int] = field(default_factory=list)


def _name_labels(values: list[Any], default: str, limit: int) -> _Names:
    """Model or version names as label values (``label_value``); none, a structure or the
    empty string (which Prometheus reads as no label at all) names no model: ``default``."""
    if _own_names(values, limit):
        return _Names(values)
    names = _Names([])
    for i, value in enumerate(values):
        if value is None or value == "" or isinstance(value, dict | list):
            names.texts.append(default)
            continue
        text, repaired, cut = label_value(value, limit)
        names.texts.append(text)
        if repaired:
            names.repaired.append(i)
        if cut:
            names.cut.append(i)
    return names


def _parse_int(text: str) -> int | str:
    """An integer literal of the lenient parser. One longer than Python converts (4,300
    digits) stays text, so the line still parses and only that field is judged: as a number it
    is not_a_number (``float`` of the digits overflows), as a category it is its digits."""
    try:
        return int(text)
    except ValueError:
        return text


def _row_count(rows: _Rows) -> int:
    if rows.numeric:
        return len(rows.numeric[0])
    for column in rows.categorical:
        return len(column)
    return len(rows.scanned_seconds) + len(rows.timestamp)  # the timestamp column is next


def _bad_span(exc: Exception, piece: bytes) -> tuple[int, int] | None:
    """Bytes of the line(s) that a failed ``decode_lines`` call tripped on, from its error
    message (``$[k]``: the k-th record; ``(byte n)``: an offset), or the first byte that is
    not UTF-8. None when the error does not say: the caller then goes line by line."""
    text = str(exc)
    record = _AT_RECORD.search(text) if isinstance(exc, msgspec.ValidationError) else None
    if record is not None:
        return _nth_record_line(piece, int(record.group(1)))
    found = _AT_BYTE.search(text)
    if found is not None:
        offset = min(int(found.group(1)), len(piece))
    elif "UTF-8" in text:
        try:
            piece.decode("utf-8")
            return None
        except UnicodeDecodeError as bad:
            offset = bad.start
    else:
        return None
    # JSON whitespace spans newlines, so a record cut short shows its error at the start of
    # the next one: the span starts at the line of the last byte before the offset.
    before = offset - 1
    while before >= 0 and piece[before] in _JSON_SPACE:
        before -= 1
    start = piece.rfind(b"\n", 0, max(before, 0)) + 1 if before >= 0 else 0
    end = piece.find(b"\n", offset)
    return start, len(piece) if end < 0 else end + 1


def _nth_record_line(piece: bytes, k: int) -> tuple[int, int] | None:
    """The k-th non-blank line (``decode_lines`` skips blank ones)."""
    start, seen = 0, -1
    while start < len(piece):
        end = piece.find(b"\n", start)
        end = len(piece) if end < 0 else end + 1
        if piece[start:end].strip(_JSON_SPACE):
            seen += 1
            if seen == k:
                return start, end
        start = end
    return None


def _pieces(data: bytes, size: int) -> Iterable[memoryview]:
    """Split at newlines into pieces of about ``size`` bytes (views: a chunk is a megabyte,
    and copying it out piece by piece cost ~0.1 µs a line)."""
    view = memoryview(data)
    for start, stop in piece_bounds(data, size):
        yield view[start:stop]
