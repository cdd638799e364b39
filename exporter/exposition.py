"""Metric families as plain rows, and their Prometheus text / OpenMetrics rendering.

Why our own writer: prometheus_client builds a ``Sample`` (a label dict) per series, validates
every label name on every scrape, then sorts, escapes and formats each label again. A sidecar
with 10k series paid ~12 ms of CPU per 1,000 series per scrape, under the interpreter lock the
ingest thread needs. Here a family is rows of (label values, number); the text before the
number — ``name{label="value",...}`` — is built once per series and kept, so a scrape costs a
dictionary lookup and a number format per series.

The output is byte for byte what prometheus_client's ``generate_latest`` writes for the same
families (labels sorted by name, the same escaping and number format), in both formats; the
tests hold the two to that. Rendering is total: a label value that is not valid Unicode (a lone
surrogate from a JSON ``\\ud800``) is written with a replacement character, never an error.
Imports nothing from prometheus_client.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"
SUFFIXES = ("", "_total", "_bucket", "_count", "_sum")  # every sample name a family can have
# A family's kept prefixes or spellings start over when they outnumber twice its rows in this
# render plus this floor: memory follows the series a scrape shows, not the most it ever showed.
CACHE_FLOOR = 64

Row = tuple[str, tuple[str, ...], tuple[str, ...], float]  # suffix, names, values, number


@dataclass
class Family:
    """One metric family: its rows in the order they were added."""

    name: str
    type: str
    help: str
    labels: tuple[str, ...] = ()
    rows: list[Row] = field(default_factory=list)

    def add(self, values: Sequence[str], value: float) -> None:
        suffix = "_total" if self.type == COUNTER else ""
        row = values if type(values) is tuple else tuple(values)
        self.rows.append((suffix, self.labels, row, value))

    def add_many(self, values: Iterable[tuple[str, ...]], numbers: Iterable[float]) -> None:
        """``add`` for many series at once (label value tuples and their numbers, in order)."""
        suffix = "_total" if self.type == COUNTER else ""
        self.rows.extend(zip(repeat(suffix), repeat(self.labels), values, numbers, strict=False))

    def add_histogram(
        self, values: Sequence[str], buckets: Sequence[tuple[str, float]], total: float
    ) -> None:
        """Cumulative ``buckets`` (upper bound label, count), ``+Inf`` last."""
        values = tuple(values)
        with_le = (*self.labels, "le")
        for bound, count in buckets:
            self.rows.append(("_bucket", with_le, (*values, bound), count))
        self.rows.append(("_count", self.labels, values, buckets[-1][1]))
        self.rows.append(("_sum", self.labels, values, total))


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
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _help(text: str, openmetrics: bool) -> str:
    escaped = text.replace("\\", r"\\").replace("\n", r"\n")
    return escaped.replace('"', r"\"") if openmetrics else escaped


class Writer:
    """Renders families; keeps each series' rendered name and labels between scrapes.

    What is kept is bounded family by family by what the family shows now: past twice its rows
    plus ``CACHE_FLOOR``, a family's prefixes (or spellings) start over. So a burst of label
    churn (a log naming new models, categories coming and going, a new reference hash on every
    reference series) costs memory only until the next render that finds it gone, and a family
    whose rows churn on every scrape keeps at most about two scrapes' worth.
    """

    def __init__(self) -> None:
        # Per sample name (family name + suffix): label values → ``name{labels}``.
        self._prefixes: dict[str, dict[tuple[str, ...], str]] = {}
        # Per family name: value → its spelling (``_numbers``).
        self._spelled: dict[str, dict[float, str]] = {}

    def cached(self) -> tuple[int, int]:
        """(series prefixes, number spellings) kept, for tests and benchmarks."""
        prefixes = sum(map(len, self._prefixes.values()))
        return prefixes, sum(map(len, self._spelled.values()))

    def render(self, families: Iterable[Family], openmetrics: bool) -> str:
        """The families as text (no ``# EOF``: the caller ends an OpenMetrics body)."""
        return "".join(self._text(family, openmetrics) for family in families)

    def chunks(self, families: Iterable[Family], openmetrics: bool) -> Iterator[bytes]:
        """``render``, encoded, one piece per family.

        Why pieces: a page of ~17k series is ~1.7 MB. Built as one str, then encoded, then
        joined with the rest of the body, it was three copies of the page at once, on top of
        the lines it was joined from and every family's rows: ~14 MiB of peak RSS for one
        render. Written family by family, only one family's lines and text exist beside the
        bytes written so far, and a family can be dropped by its producer once written.
        """
        for family in families:
            yield encode(self._text(family, openmetrics))

    def _text(self, family: Family, openmetrics: bool) -> str:
        name = family.name
        shown = name + "_total" if family.type == COUNTER and not openmetrics else name
        head = f"# HELP {shown} {_help(family.help, openmetrics)}\n# TYPE {shown} {family.type}\n"
        if not family.rows:  # nothing to show: nothing to keep
            self._spelled.pop(name, None)
            for suffix in SUFFIXES:
                self._prefixes.pop(name + suffix, None)
            return head
        prefixes, texts = self._row_prefixes(family), self._numbers(family)
        lines = [head]
        lines += [f"{prefix} {text}\n" for prefix, text in zip(prefixes, texts, strict=True)]
        return "".join(lines)

    def _row_prefixes(self, family: Family) -> list[str]:
        """``name{labels}`` of each row, from the cache where the series was seen before."""
        name = family.name
        suffixes = {row[0] for row in family.rows}
        kept = [self._prefixes.get(name + suffix) for suffix in suffixes]
        if sum(len(k) for k in kept if k is not None) > 2 * len(family.rows) + CACHE_FLOOR:
            for suffix in suffixes:
                self._prefixes.pop(name + suffix, None)
        if len(suffixes) == 1:  # every row of one sample name: one cache, looked up in C
            known = self._prefixes.setdefault(name + suffixes.pop(), {})
            found = list(map(known.get, [row[2] for row in family.rows]))
            if None not in found:
                return found  # type: ignore[return-value]  # no None: checked above
        prefixes = []
        for suffix, names, values, _ in family.rows:
            known = self._prefixes.setdefault(name + suffix, {})
            prefix = known.get(values)
            if prefix is None:
                prefix = known[values] = _prefix(name + suffix, names, values)
            prefixes.append(prefix)
        return prefixes

    def _numbers(self, family: Family) -> list[str]:
        """Each row's value as ``number`` spells it. Spelling a float is ``repr``'s shortest
        round trip, ~0.4 µs for a ratio of 17 digits, so spellings are kept by value: the
        windows a scrape finds unchanged cost a lookup. Zeros (0.0 and -0.0 are one key) and
        NaN (never equal to itself) are spelled each time."""
        spelled = self._spelled.setdefault(family.name, {})
        if len(spelled) > 2 * len(family.rows) + CACHE_FLOOR:
            spelled.clear()
        values = list(map(float, [row[3] for row in family.rows]))
        texts = list(map(spelled.get, values))
        if None in texts:
            for i in [i for i, text in enumerate(texts) if text is None]:
                value = values[i]
                text = repr(value)  # ``number`` inline: Go spells most floats as repr does
                if "n" in text or text.find(".") > 6:  # inf, nan, 7+ digits before the dot
                    text = number(value)
                elif value:
                    spelled[value] = text
                texts[i] = text
        return texts  # type: ignore[return-value]  # every None was replaced


def _prefix(sample: str, names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return sample
    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(zip(names, values, strict=True)))
    return f"{sample}{{{labels}}}"


def encode(text: str) -> bytes:
    """UTF-8, with anything that cannot be encoded (a lone surrogate) replaced."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace")
