"""Columns of a chunk read by the native scanner, with the lines it left merged back in order.

Why: the typed msgspec decode and the move of its Structs into numpy columns were the largest
per-line costs of ingestion. The C scanner (``_scan.c``) reads the mapped fields of plain JSON
lines straight into columns, and hands back every line it is not sure about. Those lines go
through the exact path (``Decoder._decode_piece``), and their records are put back in their
place: the merged columns are the very columns the exact path alone would have made, in the
same order, so everything after decoding (classification, vocabularies, grouping) runs
unchanged and gives the same counts.

Where a line stands can matter on the exact path: msgspec reads a piece as a stream of values,
so a line that closes what a line above opened, or holds two values, decodes with its
neighbours. The scanner marks such lines *entangled*; the whole piece around one is then decoded
the exact way, exactly as it would have been without the scanner.

Without the compiled extension (installed where no C compiler was), or with
``MODEL_EXPORTER_NATIVE=0``, the decoder uses the exact path alone.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from exporter.columns import CATEGORY, LABEL, NAME, NUMBER, TIMESTAMP, Path, RecordType
from exporter.config_types import FieldsConfig
from exporter.timestamps import epoch_seconds

try:
    from exporter import _scan  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler: the exact path does all the decoding
    _scan = None

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ENVIRONMENT = "MODEL_EXPORTER_NATIVE"
# Leaf kinds as _scan.c knows them, by the type msgspec decodes the path to (``columns``).
_KINDS = {NUMBER: 0, CATEGORY: 1, TIMESTAMP: 2, NAME: 3, LABEL: 4}
_warned = False


def available() -> bool:
    """Whether the native scanner can be used: compiled, and not turned off in the
    environment. Says once per process (in the log) why not, when it is missing."""
    global _warned  # noqa: PLW0603 - one log line per process, not per decoder
    if os.environ.get(ENVIRONMENT, "1") == "0":
        return False
    if _scan is None and not _warned:
        _warned = True
        log.warning(
            "the native JSON scanner is not compiled in (no C compiler at install time?): "
            "decoding takes the slower exact path"
        )
    return _scan is not None


def piece_bounds(data: bytes, size: int) -> list[tuple[int, int]]:
    """Split at newlines into pieces of about ``size`` bytes; one line longer than a piece is
    taken whole. The exact path decodes piece by piece, and an entangled line sends its whole
    piece there, so both must cut the chunk at the same places."""
    bounds = []
    start, end = 0, len(data)
    while start < end:
        stop = data.rfind(b"\n", start, start + size) + 1 if start + size < end else end
        if stop <= start:
            stop = data.find(b"\n", start + size)
            stop = end if stop < 0 else stop + 1
        bounds.append((start, stop))
        start = stop
    return bounds


@dataclass
class Scanned:
    """Mapped columns of the records of a chunk, in line order (lines the exact path read
    leniently are not here: the decoder appends them after)."""

    numbers: dict[Path, FloatArray]
    objects: dict[Path, list[Any]]
    seconds: FloatArray  # the timestamp in epoch seconds (scaled), NaN where none was read
    given: BoolArray  # whether the record had a timestamp value at all (not null, not absent)

    @property
    def size(self) -> int:
        return len(self.seconds)

    def rows(self, start: int, stop: int) -> Scanned:
        return Scanned(
            {path: column[start:stop] for path, column in self.numbers.items()},
            {path: column[start:stop] for path, column in self.objects.items()},
            self.seconds[start:stop],
            self.given[start:stop],
        )

    @classmethod
    def concat(cls, parts: list[Scanned]) -> Scanned:
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        objects: dict[Path, list[Any]] = {}
        for path in first.objects:
            column = objects[path] = []
            for part in parts:
                column += part.objects[path]
        return cls(
            {path: np.concatenate([p.numbers[path] for p in parts]) for path in first.numbers},
            objects,
            np.concatenate([p.seconds for p in parts]),
            np.concatenate([p.given for p in parts]),
        )


# Decodes a span of the chunk the exact way, adding its typed records to the list (and its
# lenient ones and parse errors where the decoder keeps them).
Exact = Callable[[memoryview, list[Any]], None]


class NativeScanner:
    """The native scanner for one record type."""

    def __init__(self, record: RecordType, timestamp: Path | None, scale: float) -> None:
        self._record = record
        self._timestamp = timestamp
        self._scale = scale
        self._numeric: list[Path] = []
        self._objects: list[Path] = []
        kinds: list[int] = []
        nodes: list[list[tuple[bytes, int, int]]] = [[]]
        children: dict[Path, int] = {(): 0}
        for path, typ in record.leaves.items():
            kind = _KINDS[typ]
            if typ == NUMBER:
                self._numeric.append(path)
            elif typ != TIMESTAMP:
                self._objects.append(path)
            for depth, key in enumerate(path[:-1]):
                prefix = path[: depth + 1]
                if prefix not in children:
                    children[prefix] = len(nodes)
                    nodes[children[path[:depth]]].append((key.encode(), -1, len(nodes)))
                    nodes.append([])
            nodes[children[path[:-1]]].append((path[-1].encode(), len(kinds), -1))
            kinds.append(kind)
        assert _scan is not None
        self._scanner = _scan.Scanner(nodes, kinds, scale)

    @classmethod
    def build(cls, record: RecordType, fields: FieldsConfig) -> NativeScanner | None:
        """The scanner for a mapping, or None where the exact path must do it all."""
        if not available() or record.mixed:  # mixed: classified value by value, exactly
            return None
        return cls(record, fields.timestamp, fields.timestamp_scale)

    def scan(self, data: bytes, exact: Exact, piece_bytes: int) -> Scanned:
        """The mapped columns of every record of ``data`` (complete lines), in line order."""
        rows, numbers, objects, seconds, given, raw, starts, bad = self._scanner.scan(data)
        capacity = len(given)
        matrix = np.frombuffer(numbers, dtype=np.float64).reshape(len(self._numeric), capacity)
        native = Scanned(
            {path: matrix[j, :rows] for j, path in enumerate(self._numeric)},
            dict(zip(self._objects, objects, strict=True)),
            np.frombuffer(seconds, dtype=np.float64)[:rows],
            np.frombuffer(given, dtype=np.bool_)[:rows],
        )
        if raw:  # timestamps not of the common shape: the exact reading, in one call
            at = [row for row, _ in raw]
            native.seconds[at] = epoch_seconds([text for _, text in raw], self._scale)
        if not bad:
            return native
        offsets = np.frombuffer(starts, dtype=np.int64)[:rows]
        view = memoryview(data)
        spans = _exact_spans(data, bad, piece_bytes)
        rows_at = np.searchsorted(offsets, np.array(spans, dtype=np.int64).ravel()).tolist()
        # Every span decoded the exact way into one list, made columns in one call (a log whose
        # every line is left, e.g. one that escapes all non-ASCII text, must not pay per line).
        typed: list[Any] = []
        ends = []
        for start, stop in spans:
            exact(view[start:stop], typed)
            ends.append(len(typed))
        decoded = self._from_records(typed) if typed else None
        parts: list[Scanned] = []
        row = done = 0
        for first, last, end in zip(rows_at[::2], rows_at[1::2], ends, strict=True):
            if first > row:
                parts.append(native.rows(row, first))
            if decoded is not None and end > done:
                parts.append(decoded.rows(done, end))
            row, done = last, end
        if row < rows or not parts:
            parts.append(native.rows(row, rows))
        return Scanned.concat(parts)

    def _from_records(self, typed: list[Any]) -> Scanned:
        """Typed records of the exact path as scanned columns (as ``Decoder._rows`` reads
        them: a numeric column of floats and None converts in one call, None → NaN)."""
        columns = self._record.columns(typed)
        numbers = {p: np.array(columns[p].tolist(), dtype=np.float64) for p in self._numeric}
        objects = {path: columns[path].tolist() for path in self._objects}
        if self._timestamp is None:
            seconds = np.full(len(typed), math.nan)
            given = np.zeros(len(typed), dtype=np.bool_)
        else:
            values = columns[self._timestamp].tolist()
            seconds = epoch_seconds(values, self._scale)
            given = np.array([v is not None for v in values], dtype=np.bool_)
        return Scanned(numbers, objects, seconds, given)


def _exact_spans(
    data: bytes, bad: list[tuple[int, int, bool]], piece_bytes: int
) -> list[tuple[int, int]]:
    """Byte spans for the exact path, in order: the lines the scanner left, or the whole
    piece around an entangled one. A piece is never joined to anything: it must be decoded as
    the piece it is (its retries, its stream). Lines that are not entangled decode alike on
    their own or together, so neighbouring ones are joined, up to a piece's size: a log whose
    every line is left costs one exact call per piece, not per line."""
    spans: list[tuple[int, int]] = []
    joinable = False  # whether the last span is lines that more lines may join
    pieces = piece_bounds(data, piece_bytes) if any(e for _, _, e in bad) else []
    at = 0
    for line_start, line_stop, entangled in bad:
        if spans and line_start < spans[-1][1]:
            continue  # in a piece already taken whole
        if entangled:
            while pieces[at][1] <= line_start:
                at += 1
            piece = pieces[at]
            while spans and spans[-1][0] >= piece[0]:
                spans.pop()  # lines of this piece already listed: the piece takes them
            if spans and spans[-1][1] > piece[0]:  # joined lines that run into the piece
                spans[-1] = (spans[-1][0], piece[0])
            spans.append(piece)
            joinable = False
        elif joinable and spans[-1][1] == line_start and line_stop - spans[-1][0] <= piece_bytes:
            spans[-1] = (spans[-1][0], line_stop)
        else:
            spans.append((line_start, line_stop))
            joinable = True
    return spans
