"""Metric families as runs of series, and their Prometheus text / OpenMetrics rendering.

Why our own writer: prometheus_client builds a ``Sample`` (a label dict) per series, validates
every label name on every scrape, then sorts, escapes and formats each label again. A sidecar
with 10k series paid ~12 ms of CPU per 1,000 series per scrape, under the interpreter lock the
ingest thread needs. Here a family is runs of series that share a sample name and label names,
kept as columns: each label is one value for the whole run or one value per series. A run is
written with a handful of calls that each walk a whole column in C (a slice assignment, a
dictionary lookup mapped over the numbers, one ``join``), so no Python code runs per series,
and nothing is kept per series between scrapes.

The output is byte for byte what prometheus_client's ``generate_latest`` writes for the same
families (labels sorted by name, the same escaping and number format), in both formats; the
tests hold the two to that. Rendering is total: a label value that is not valid Unicode (a lone
surrogate from a JSON ``\\ud800``) is written with a replacement character, never an error.
Imports nothing from prometheus_client.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"
# A family's kept spellings start over when they outnumber twice its series in this render plus
# this floor: memory follows the series a scrape shows, not the most it ever showed.
CACHE_FLOOR = 64
PIECE_CHARS = 1 << 16  # ``chunks`` hands text over in pieces of about this size
BATCH_SERIES = 4096  # series whose numbers are spelled together (see ``_batches``)

Row = tuple[str, tuple[str, ...], tuple[str, ...], float]  # suffix, names, values, number
Column = str | Sequence[str]  # one label's value: the same for a whole run, or one per series


@dataclass
class Run:
    """Series of one sample name (family name + ``suffix``) and label ``names``, in order.

    Filled either series by series (``rows``: each series' label values) or all at once
    (``columns``: per label, one value or one per series); ``numbers`` holds each series'
    value in both cases.
    """

    suffix: str
    names: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    columns: tuple[Column, ...] | None = None
    numbers: list[float] = field(default_factory=list)

    def label_columns(self) -> list[Column]:
        """Per label (in ``names`` order), its value for every series or one per series."""
        if self.columns is not None:
            return list(self.columns)
        return list(zip(*self.rows, strict=True))

    def samples(self) -> Iterator[tuple[tuple[str, ...], float]]:
        """(label values, number) of each series."""
        if self.columns is None:
            yield from zip(self.rows, self.numbers, strict=True)
            return
        columns = [[c] * len(self.numbers) if isinstance(c, str) else c for c in self.columns]
        yield from zip(zip(*columns, strict=True), self.numbers, strict=True)


@dataclass
class Family:
    """One metric family: its runs of series in the order they were added."""

    name: str
    type: str
    help: str
    labels: tuple[str, ...] = ()
    runs: list[Run] = field(default_factory=list)

    def add(self, values: Sequence[str], value: float) -> None:
        """One series of the family's own sample name and labels."""
        self.add_sample("_total" if self.type == COUNTER else "", self.labels, values, value)

    def add_sample(
        self, suffix: str, names: tuple[str, ...], values: Sequence[str], value: float
    ) -> None:
        """One series of any sample name of the family (``_bucket``, ``_count``, ...)."""
        run = self.runs[-1] if self.runs else None
        if run is None or run.columns is not None or (run.suffix, run.names) != (suffix, names):
            run = Run(suffix, names)
            self.runs.append(run)
        run.rows.append(values if type(values) is tuple else tuple(values))
        run.numbers.append(value)

    def add_many(self, columns: Sequence[Column], numbers: list[float]) -> None:
        """Many series at once: per label, its value for all of them (a ``str``) or a list of
        one per series, in order; ``numbers`` holds one value per series."""
        suffix = "_total" if self.type == COUNTER else ""
        if len(columns) != len(self.labels):
            raise ValueError(f"{self.name}: {len(columns)} label columns for {self.labels}")
        for column in columns:
            if not isinstance(column, str) and len(column) != len(numbers):
                raise ValueError(f"{self.name}: a label column's length is not the numbers'")
        self.runs.append(Run(suffix, self.labels, columns=tuple(columns), numbers=numbers))

    def add_histogram(
        self, values: Sequence[str], bounds: list[str], counts: list[float], total: float
    ) -> None:
        """One histogram: cumulative ``counts`` per upper bound label (``+Inf`` last)."""
        if len(bounds) != len(counts) or not counts:
            raise ValueError(f"{self.name}: {len(counts)} bucket counts for bounds {bounds}")
        values = tuple(values)
        columns = (*values, bounds)
        self.runs.append(Run("_bucket", (*self.labels, "le"), columns=columns, numbers=counts))
        self.add_sample("_count", self.labels, values, counts[-1])
        self.add_sample("_sum", self.labels, values, total)

    def samples(self) -> Iterator[Row]:
        """Every series as (suffix, label names, label values, number), in order."""
        for run in self.runs:
            for values, number_ in run.samples():
                yield run.suffix, run.names, values, number_

    def size(self) -> int:
        """Series in the family."""
        return sum(len(run.numbers) for run in self.runs)


def number(value: float) -> str:
    """prometheus_client's ``floatToGoString``: Go's spelling of a float."""
    d = float(value)
    if d == math.inf:
        return "+Inf"
    if d == -math.inf:
        return "-Inf"
    if math.isnan(d):
        return "NaN"
    s = repr(d)
    dot = s.find(".")
    if d > 0 and dot > 6:  # Go switches to an exponent sooner than Python
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def _escape(text: str) -> str:
    if "\\" not in text and "\n" not in text and '"' not in text:
        return text
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escaped(column: Sequence[str]) -> Sequence[str]:
    """A column of label values escaped; looked at as one string first, since almost no label
    value has anything to escape."""
    joined = "".join(column)
    if "\\" in joined or "\n" in joined or '"' in joined:
        return list(map(_escape, column))
    return column


def _help(text: str, openmetrics: bool) -> str:
    escaped = text.replace("\\", r"\\").replace("\n", r"\n")
    return escaped.replace('"', r"\"") if openmetrics else escaped


class Writer:
    """Renders families; keeps the spelling of each family's numbers between scrapes.

    Spelling a float is ``repr``'s shortest round trip, ~0.4 µs for a ratio of 17 digits, the
    largest cost of a render once the label text is written a column at a time; a scrape finds
    most numbers unchanged (counters, the windows of an idle model version), so spellings are
    kept by value, per family. What is kept is bounded by what the family shows now: past twice
    its series plus ``CACHE_FLOOR``, a family's spellings start over. So a burst of series costs
    memory only until the next render that finds it gone.
    """

    def __init__(self) -> None:
        self._spelled: dict[str, dict[float, str]] = {}  # per family: value → spelling + "\n"

    def spellings(self) -> int:
        """Number spellings kept, for tests (label text is written afresh on every render)."""
        return sum(map(len, self._spelled.values()))

    def render(self, families: Iterable[Family], openmetrics: bool) -> str:
        """The families as text (no ``# EOF``: the caller ends an OpenMetrics body)."""
        return "".join("".join(self._parts(family, openmetrics)) for family in families)

    def chunks(self, families: Iterable[Family], openmetrics: bool) -> Iterator[bytes]:
        """``render``, encoded, in pieces of about ``PIECE_CHARS``.

        Why pieces: a page of ~17k series is ~1.7 MB. Built as one str, then encoded, then
        joined with the rest of the body, it was three copies of the page at once. Written a
        piece at a time, only one piece's text exists beside what the caller keeps of the
        pieces before it, and a family can be dropped by its producer once written.
        """
        pending: list[str] = []
        size = 0
        for family in families:
            for part in self._parts(family, openmetrics):
                pending.append(part)
                size += len(part)
                if size >= PIECE_CHARS:
                    yield encode("".join(pending))
                    pending.clear()
                    size = 0
        if pending:
            yield encode("".join(pending))

    def _parts(self, family: Family, openmetrics: bool) -> Iterator[str]:
        """The family's text in parts: its header, then each run's lines (one string each)."""
        name = family.name
        shown = name + "_total" if family.type == COUNTER and not openmetrics else name
        yield f"# HELP {shown} {_help(family.help, openmetrics)}\n# TYPE {shown} {family.type}\n"
        size = family.size()
        if not size:  # nothing to show: nothing to keep
            self._spelled.pop(name, None)
            return
        spelled = self._spelled.setdefault(name, {})
        if len(spelled) > 2 * size + CACHE_FLOOR:
            spelled.clear()
        for runs in _batches(family.runs):
            texts = _spell(list(chain.from_iterable(run.numbers for run in runs)), spelled)
            start = 0
            for run in runs:
                end = start + len(run.numbers)
                yield "".join(_lines(name + run.suffix, run, texts[start:end]))
                start = end


def _batches(runs: list[Run]) -> Iterator[list[Run]]:
    """The runs with series, in batches of about ``BATCH_SERIES`` series: numbers are spelled a
    batch at a time (many runs are a few series each: a histogram's count and sum, one model
    version's quantiles), and a batch's text is all that exists of a family at once."""
    batch: list[Run] = []
    size = 0
    for run in runs:
        if run.numbers:
            batch.append(run)
            size += len(run.numbers)
            if size >= BATCH_SERIES:
                yield batch
                batch, size = [], 0
    if batch:
        yield batch


def _lines(sample: str, run: Run, texts: list[str]) -> list[str]:
    """A run's lines as parts to join: ``name{label="value",...} number\\n`` for each series.

    The parts of one line form a template: the literal text between the columns that vary
    (constant labels are folded into the literal text) and slots for the varying columns and
    the number. The template is repeated once per series and each slot is filled a column at
    a time with a slice assignment.
    """
    columns = run.label_columns()
    template: list[str] = []
    slots: list[Sequence[str]] = []
    literal = sample + ("{" if run.names else "")
    for j, opening in _openings(run.names):
        literal += opening
        column = columns[j]
        if isinstance(column, str):
            literal += _escape(column) + '"'
        else:
            template.append(literal)
            template.append("")
            slots.append(_escaped(column))
            literal = '"'
    template.append(literal + ("} " if run.names else " "))
    template.append("")
    slots.append(texts)
    width = len(template)
    parts = template * len(texts)
    for offset, column in zip(range(1, width, 2), slots, strict=True):
        parts[offset::width] = column
    return parts


@functools.lru_cache(maxsize=256)
def _openings(names: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
    """Each label's position in ``names`` and the text that opens its value (``,name="``), in
    the order labels are written: sorted by name, as prometheus_client does."""
    order = sorted(range(len(names)), key=names.__getitem__)
    return tuple((j, f'{"," if i else ""}{names[j]}="') for i, j in enumerate(order))


def _spell(numbers: list[float], spelled: dict[float, str]) -> list[str]:
    """Each number as ``number`` spells it, with its newline; ``spelled`` keeps the spellings
    of this family by value. Each value missing from it is spelled once, however many series
    share it (the category shares of a window take a few values among hundreds of series).
    Zeros (0.0 and -0.0 are one key) and NaN (never equal to itself) are not kept: they are
    found by a scan for the gaps they leave and spelled each time."""
    for value in set(numbers).difference(spelled):
        if value and not math.isnan(value):
            spelled[value] = number(value) + "\n"
    texts: list[str | None] = list(map(spelled.get, numbers))
    i = -1
    try:
        while True:
            i = texts.index(None, i + 1)  # a scan in C, from the last gap on
            value = numbers[i]
            zero = value == 0 and math.copysign(1.0, value) > 0
            texts[i] = "0.0\n" if zero else number(value) + "\n"
    except ValueError:  # no gap left
        return texts  # type: ignore[return-value]  # every None was replaced


def encode(text: str) -> bytes:
    """UTF-8, with anything that cannot be encoded (a lone surrogate) replaced."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace")
