"""The kinds of bad or suspicious values, and which kinds can happen to which role.

A value has at most one kind (the first that applies), so a record's anomalies are a small
int8 matrix rather than a list of objects. Kinds are numbered in the order they were added;
``invalid_text`` is judged before every other kind of its field.
"""

from __future__ import annotations

from enum import IntEnum


class Kind(IntEnum):
    OK = 0
    MISSING = 1
    NOT_A_NUMBER = 2
    TYPE_MISMATCH = 3
    OUT_OF_RANGE = 4
    OUTLIER = 5
    UNSEEN_CATEGORY = 6
    LATE = 7
    FUTURE = 8
    PARSE_ERROR = 9
    # Text that is not Unicode (a lone surrogate escape such as "\ud800"): the value is kept
    # with U+FFFD in its place, since it is still the class or name the model meant.
    INVALID_TEXT = 10


KIND_NAMES: tuple[str, ...] = tuple(k.name.lower() for k in Kind)
N_KINDS = len(Kind)

NUMERIC_KINDS = (
    Kind.MISSING,
    Kind.NOT_A_NUMBER,
    Kind.TYPE_MISMATCH,
    Kind.OUT_OF_RANGE,
    Kind.OUTLIER,
)
CATEGORICAL_KINDS = (Kind.MISSING, Kind.TYPE_MISMATCH, Kind.UNSEEN_CATEGORY, Kind.INVALID_TEXT)
TIMESTAMP_KINDS = (Kind.MISSING, Kind.TYPE_MISMATCH, Kind.LATE, Kind.FUTURE)
LABEL_KINDS = (Kind.TYPE_MISMATCH,)
NAME_KINDS = (Kind.INVALID_TEXT,)  # model and version names read from the log
RECORD_KINDS = (Kind.PARSE_ERROR,)

# Whole lines that are not a record, counted per source by reason (the ``reason`` label of
# model_exporter_parse_errors_total, documented in docs/metrics.md). The decoder finds the
# first three; the ingest loop counts a line that still fails with an unexpected error, after
# the line-by-line retry, as unprocessable.
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
INVALID_UTF8 = "invalid_utf8"
UNPROCESSABLE = "unprocessable"
PARSE_ERROR_REASONS = (INVALID_JSON, NOT_AN_OBJECT, INVALID_UTF8, UNPROCESSABLE)
