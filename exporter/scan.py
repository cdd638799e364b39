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


# Up to this many spans of a chunk decoded the exact way, their rows are put into the scanned
# object columns in place (a slice assignment each: a move of the pointers after it); past it,
# the columns are built anew from their parts, which costs a reference per row but not a move
# per span.
IN_PLACE_SPANS = 16


@dataclass
class Scanned:
    """Mapped columns of the records of a chunk, in line order (lines the exact path read
    leniently are not here: the decoder appends them after)."""

    matrix: FloatArray  # the numeric columns, field-major [fields, rows]
    numbers: dict[Path, FloatArray]  # each a row of ``matrix``
    objects: dict[Path, list[Any]]
    seconds: FloatArray  # the timestamp in epoch seconds (scaled), NaN where none was read
    given: BoolArray  # whether the record had a timestamp value at all (not null, not absent)

    @property
    def size(self) -> int:
        return len(self.seconds)

    def merge(self, exact: Scanned, swaps: list[tuple[int, int, int, int]]) -> Scanned:
        """These rows with rows of ``exact`` put in: each (first, last, start, stop) replaces
        rows [first, last) of these (none, for lines the scanner left) by rows [start, stop)
        of ``exact``; in order, and together covering ``exact``. The object columns of
        ``self`` are changed in place (they are this chunk's own), so the merge moves
        pointers rather than making every column twice over."""
        keep: list[tuple[Scanned, int, int]] = []
        row = 0
        for first, last, start, stop in swaps:
            keep += [(self, row, first), (exact, start, stop)]
            row = last
        keep.append((self, row, self.size))
        matrix = np.concatenate([part.matrix[:, a:b] for part, a, b in keep], axis=1)
        paths = list(self.numbers)
        objects = self.objects
        if len(swaps) <= IN_PLACE_SPANS:
            for path, column in objects.items():
                source = exact.objects[path]
                for first, last, start, stop in reversed(swaps):
                    column[first:last] = source[start:stop]
        else:
            objects = {}
            for path in self.objects:
                column = objects[path] = []
                for part, a, b in keep:
                    column += part.objects[path][a:b]
        return Scanned(
            matrix,
            {path: matrix[j] for j, path in enumerate(paths)},
            objects,
            np.concatenate([part.seconds[a:b] for part, a, b in keep]),
            np.concatenate([part.given[a:b] for part, a, b in keep]),
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
        matrix = matrix[:, :rows]
        native = Scanned(
            matrix,
            {path: matrix[j] for j, path in enumerate(self._numeric)},
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
        swaps = []
        for (start, stop), first, last in zip(spans, rows_at[::2], rows_at[1::2], strict=True):
            done = len(typed)
            exact(view[start:stop], typed)
            swaps.append((first, last, done, len(typed)))
        return native.merge(self._from_records(typed), swaps)

    def _from_records(self, typed: list[Any]) -> Scanned:
        """Typed records of the exact path as scanned columns (as ``Decoder._rows`` reads
        them: a numeric column of floats and None converts in one call, None → NaN)."""
        columns = self._record.columns(typed) if typed else {}
        n = len(typed)

        def values(path: Path) -> list[Any]:
            return columns[path].tolist() if typed else []

        matrix = np.array([values(p) for p in self._numeric], dtype=np.float64)
        matrix = matrix.reshape(len(self._numeric), n)
        objects = {path: values(path) for path in self._objects}
        if self._timestamp is None:
            seconds = np.full(n, math.nan)
            given = np.zeros(n, dtype=np.bool_)
        else:
            stamps = values(self._timestamp)
            seconds = epoch_seconds(stamps, self._scale)
            given = np.array([v is not None for v in stamps], dtype=np.bool_)
        numbers = {path: matrix[j] for j, path in enumerate(self._numeric)}
        return Scanned(matrix, numbers, objects, seconds, given)


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
