"""A simulated fraud model's prediction log, for the demo, benchmarks and end-to-end tests.

Generation is pure (the same arguments give the same bytes) and independent of how a log is cut
into calls: the random draws of line ``i`` come from a generator seeded by ``(seed, i // BLOCK)``,
so ``generate(n1) + generate(n2, first_index=n1)`` equals ``generate(n1 + n2)``. Writing is
separate: ``write_log`` for bulk files, ``Writer`` for a live log at a steady rate.

One JSON line per prediction (~300 bytes)::

    {"ts": 1764134935.123, "model": "fraud-detector", "version": "v3", "request_id": "r-00000001",
     "prediction": 0.8312, "predicted_class": "fraud", "confidence": 0.8312, "latency_ms": 12.53,
     "ground_truth": "fraud",
     "features": {"amount": 123.45, "age": 35, "country": "US", "device": "mobile",
                  "merchant_risk": 0.213}}

``ground_truth`` is present on a ``ground_truth_ratio`` share of lines. The score comes from a
fixed logistic model of the features plus noise; the label is drawn from the true probability,
which the model matches before drift, so its error rate is realistic (about 7%).

While drift is active (``drift_start <= ts - start_ts < drift_end``, intensity
``drift_strength``, 1.0 meaning "clearly visible"): ``amount`` grows x1.8, a country the model
never saw (``BR``) takes 25% of traffic and is riskier than the model believes, ``merchant_risk``
roughly doubles (its median goes from 0.2 to 0.38), 5% of labels flip (the world changed, the
model did not), latency grows x1.5. Scores and confidence follow from the shifted features.
``age`` and ``device`` never drift: they are the controls.

Malformed lines (a ``malformed_ratio`` share, kinds equally likely; ``LineTruth`` says which):

- ``not_json``: a stray text line, not JSON at all (the whole line is bad).
- ``truncated``: a valid line cut short before its closing brace (the whole line is bad).
- ``string_number``: a numeric feature (amount, age or merchant_risk) is the string ``"n/a"``.
- ``nan_string``: amount or merchant_risk is the string ``"NaN"``.
- ``missing_feature``: one of the five features is absent.
- ``negative_amount``: amount is below zero (out of any sensible range).
- ``bool_age``: age is ``true``.
- ``null_value``: one of the five features is ``null``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from exporter.clock import Clock

BLOCK = 8192
# The simulated model rotates its log at this size, keeping one old file (``Writer``).
ROTATE_BYTES = 100 << 20
NUMERIC_FEATURES = ("amount", "age", "merchant_risk")
FEATURES = ("amount", "age", "country", "device", "merchant_risk")
COUNTRIES = ("US", "GB", "DE", "FR", "IN")
COUNTRY_SHARES = (0.40, 0.15, 0.15, 0.10, 0.20)
DRIFT_COUNTRY = "BR"
DEVICES = ("mobile", "desktop", "tablet")
DEVICE_SHARES = (0.6, 0.3, 0.1)
CLASSES = ("legit", "fraud")
NOT_JSON_LINES = (
    "Traceback (most recent call last):",
    "INFO worker 3 restarted after OOM",
    "<html><body>502 Bad Gateway</body></html>",
    "predictions flushed: 512",
)


class Malformed(StrEnum):
    NOT_JSON = "not_json"
    TRUNCATED = "truncated"
    STRING_NUMBER = "string_number"
    NAN_STRING = "nan_string"
    MISSING_FEATURE = "missing_feature"
    NEGATIVE_AMOUNT = "negative_amount"
    BOOL_AGE = "bool_age"
    NULL_VALUE = "null_value"


MALFORMED_KINDS = tuple(Malformed)
WHOLE_LINE_KINDS = frozenset({Malformed.NOT_JSON, Malformed.TRUNCATED})
# Which fields each field-level kind may hit (chosen uniformly per line).
MALFORMED_FIELDS: dict[Malformed, tuple[str, ...]] = {
    Malformed.STRING_NUMBER: NUMERIC_FEATURES,
    Malformed.NAN_STRING: ("amount", "merchant_risk"),
    Malformed.MISSING_FEATURE: FEATURES,
    Malformed.NEGATIVE_AMOUNT: ("amount",),
    Malformed.BOOL_AGE: ("age",),
    Malformed.NULL_VALUE: FEATURES,
}


@dataclass(frozen=True)
class Scenario:
    model: str = "fraud-detector"
    version: str = "v3"
    seed: int = 0
    drift_start: float | None = None  # seconds after start_ts when drift begins (None: never)
    drift_end: float | None = None  # seconds after start_ts when it ends (None: never)
    drift_strength: float = 1.0
    malformed_ratio: float = 0.0
    ground_truth_ratio: float = 0.3


@dataclass(frozen=True)
class LineTruth:
    """Per-line facts, as columns, so tests count expectations without parsing the log.

    ``columns`` holds every value as written (rounded), for malformed lines too (before the
    damage): ts, prediction, confidence, latency_ms, predicted_class, label (the true class,
    whether or not the line carries it), and the five features.
    """

    index: npt.NDArray[np.int64]
    drift: npt.NDArray[np.float64]  # drift intensity applied to the line (0: none)
    kind: npt.NDArray[np.str_]  # a Malformed value, "" for a well-formed line
    bad_field: npt.NDArray[np.str_]  # the damaged feature, "" when none or the whole line
    has_ground_truth: npt.NDArray[np.bool_]
    columns: dict[str, npt.NDArray[Any]]

    @property
    def valid(self) -> npt.NDArray[np.bool_]:
        valid: npt.NDArray[np.bool_] = self.kind == ""
        return valid

    @property
    def parses(self) -> npt.NDArray[np.bool_]:
        """Lines that are JSON objects (well-formed, or with one bad field)."""
        return ~np.isin(self.kind, [str(k) for k in WHOLE_LINE_KINDS])

    @property
    def error(self) -> npt.NDArray[np.bool_]:
        """The model's class differs from the true one (count it where has_ground_truth)."""
        error: npt.NDArray[np.bool_] = self.columns["predicted_class"] != self.columns["label"]
        return error

    def count(self, kind: Malformed, field: str | None = None) -> int:
        mask = self.kind == str(kind)
        if field is not None:
            mask &= self.bad_field == field
        return int(mask.sum())


def _sigmoid(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-x))


def _draws(seed: int, first: int, n: int) -> npt.NDArray[np.float64]:
    """Uniform and normal draws for lines first..first+n, as rows; see the module docstring."""
    rows = []
    for block in range(first // BLOCK, (first + n - 1) // BLOCK + 1):
        rng = np.random.default_rng([seed, block])
        rows.append(np.vstack([rng.random((12, BLOCK)), rng.standard_normal((5, BLOCK))]))
    draws = np.hstack(rows)
    start = first - (first // BLOCK) * BLOCK
    return draws[:, start : start + n]


def _drift(elapsed: npt.NDArray[np.float64], s: Scenario) -> npt.NDArray[np.float64]:
    if s.drift_start is None:
        return np.zeros_like(elapsed)
    end = np.inf if s.drift_end is None else s.drift_end
    return np.where((elapsed >= s.drift_start) & (elapsed < end), s.drift_strength, 0.0)


def _columns(
    n: int, start_ts: float, rate: float, s: Scenario, first: int
) -> tuple[dict[str, npt.NDArray[Any]], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """All values of lines first..first+n as written, the drift per line, and the raw draws."""
    u = _draws(s.seed, first, n)
    z = u[12:]
    index = np.arange(first, first + n, dtype=np.int64)
    ts = np.round(start_ts + (index + u[0]) / rate, 3)
    d = _drift(ts - start_ts, s)

    amount = np.maximum(np.round(np.exp(np.log(40.0) + 0.9 * z[0]) * (1 + 0.8 * d), 2), 0.01)
    age = np.clip(np.round(40 + 12 * z[1]), 18, 90).astype(np.int64)
    base_country = np.searchsorted(np.cumsum(COUNTRY_SHARES), u[1] * 0.999999, side="right")
    is_new = u[2] < np.minimum(0.25 * d, 1.0)
    country = np.where(is_new, DRIFT_COUNTRY, np.asarray(COUNTRIES)[base_country])
    device_code = np.searchsorted(np.cumsum(DEVICE_SHARES), u[3] * 0.999999, side="right")
    device = np.asarray(DEVICES)[device_code]
    merchant_risk = np.round(_sigmoid(-1.4 + 0.6 * z[2] + 0.9 * d), 3)

    known = -4.2 + 1.5 * np.log(amount / 40.0) + 10.0 * (merchant_risk - 0.2)
    known += 0.6 * (device_code == 0) + 0.8 * (country == "IN")
    score = np.round(_sigmoid(known + 0.5 * z[3]), 4)
    true_p = _sigmoid(known + 1.5 * is_new)
    label_fraud = (u[4] < true_p) ^ (u[5] < 0.05 * d)
    predicted_fraud = score >= 0.5
    latency = np.round(np.exp(np.log(12.0) + 0.35 * z[4]) * (1 + 0.5 * d), 2)

    cls = np.asarray(CLASSES)
    columns: dict[str, npt.NDArray[Any]] = {
        "ts": ts,
        "prediction": score,
        "confidence": np.round(np.maximum(score, 1 - score), 4),
        "predicted_class": cls[predicted_fraud.astype(np.int64)],
        "label": cls[label_fraud.astype(np.int64)],
        "latency_ms": latency,
        "amount": amount,
        "age": age,
        "country": country,
        "device": device,
        "merchant_risk": merchant_risk,
    }
    return columns, d, u


def _templates(s: Scenario) -> tuple[str, str]:
    """printf templates for a whole line and for a line whose features text is given whole."""

    def lit(v: str) -> str:
        return str(json.dumps(v)).replace("%", "%%")

    head = (
        f'{{"ts": %.3f, "model": {lit(s.model)}, "version": {lit(s.version)}, '
        '"request_id": "r-%08d", "prediction": %.4f, "predicted_class": "%s", '
        '"confidence": %.4f, "latency_ms": %.2f%s, "features": {'
    )
    features = (
        '"amount": %.2f, "age": %d, "country": "%s", "device": "%s", "merchant_risk": %.3f}}\n'
    )
    return head + features, head + "%s}}\n"


def _feature_tokens(row: tuple[Any, ...]) -> dict[str, str]:
    amount, age, country, device, risk = row[7:]
    return {
        "amount": f"{amount:.2f}",
        "age": f"{age:d}",
        "country": json.dumps(country),
        "device": json.dumps(device),
        "merchant_risk": f"{risk:.3f}",
    }


def _damage(kind: Malformed, field: str, tokens: dict[str, str]) -> None:
    if kind is Malformed.STRING_NUMBER:
        tokens[field] = '"n/a"'
    elif kind is Malformed.NAN_STRING:
        tokens[field] = '"NaN"'
    elif kind is Malformed.MISSING_FEATURE:
        del tokens[field]
    elif kind is Malformed.NEGATIVE_AMOUNT:
        tokens[field] = "-" + tokens[field]
    elif kind is Malformed.BOOL_AGE:
        tokens[field] = "true"
    elif kind is Malformed.NULL_VALUE:
        tokens[field] = "null"


def _malformed_line(
    kind: Malformed, field: str, row: tuple[Any, ...], draws: npt.NDArray[np.float64], s: Scenario
) -> str:
    full, partial = _templates(s)
    if kind is Malformed.NOT_JSON:
        return NOT_JSON_LINES[min(int(draws[11] * len(NOT_JSON_LINES)), 3)] + "\n"
    if kind is Malformed.TRUNCATED:
        text = (full % row)[:-1]
        return text[: 1 + int(draws[10] * (len(text) - 2))] + "\n"
    tokens = _feature_tokens(row)
    _damage(kind, field, tokens)
    features = ", ".join(f'"{k}": {v}' for k, v in tokens.items())
    return partial % (*row[:7], features)


def generate_with_truth(
    n: int, start_ts: float, rate: float, scenario: Scenario, first_index: int = 0
) -> tuple[list[bytes], LineTruth]:
    """Like ``generate``, plus what each line is, for tests that count expectations."""
    s = scenario
    if n <= 0:
        columns, d, u = _columns(1, start_ts, rate, s, first_index)
        empty = LineTruth(
            np.zeros(0, np.int64),
            d[:0],
            np.zeros(0, "<U16"),
            np.zeros(0, "<U16"),
            np.zeros(0, bool),
            {k: v[:0] for k, v in columns.items()},
        )
        return [], empty
    c, d, u = _columns(n, start_ts, rate, s, first_index)
    has_gt = u[6] < s.ground_truth_ratio
    gt_code = has_gt * (1 + (c["label"] == CLASSES[1]))
    gt_text = np.asarray(["", ', "ground_truth": "legit"', ', "ground_truth": "fraud"'])[gt_code]
    index = np.arange(first_index, first_index + n, dtype=np.int64)
    rows = list(
        zip(
            *(c[k].tolist() for k in ("ts",)),
            index.tolist(),
            *(c[k].tolist() for k in ("prediction", "predicted_class", "confidence")),
            c["latency_ms"].tolist(),
            gt_text.tolist(),
            *(c[k].tolist() for k in FEATURES),
            strict=True,
        )
    )
    full, _ = _templates(s)
    lines = [(full % row).encode() for row in rows]

    kind = np.zeros(n, "<U16")
    bad_field = np.zeros(n, "<U16")
    kind_code = np.minimum((u[8] * len(MALFORMED_KINDS)).astype(np.int64), len(MALFORMED_KINDS) - 1)
    for k in np.flatnonzero(u[7] < s.malformed_ratio).tolist():
        mk = MALFORMED_KINDS[kind_code[k]]
        fields = MALFORMED_FIELDS.get(mk, ("",))
        field = fields[min(int(u[9, k] * len(fields)), len(fields) - 1)]
        lines[k] = _malformed_line(mk, field, rows[k], u[:, k], s).encode()
        kind[k], bad_field[k] = mk.value, field
    truth = LineTruth(index, d, kind, bad_field, has_gt, c)
    return lines, truth


def generate(
    n: int, start_ts: float, rate: float, scenario: Scenario, first_index: int = 0
) -> list[bytes]:
    """Lines ``first_index .. first_index+n`` (each ending in a newline) of a model writing
    ``rate`` predictions per second from ``start_ts``: line ``i`` is stamped within
    ``[start_ts + i/rate, start_ts + (i+1)/rate)``. Deterministic for the same arguments."""
    return generate_with_truth(n, start_ts, rate, scenario, first_index)[0]


def write_log(
    path: Path | str,
    n: int,
    start_ts: float = 1_764_000_000.0,
    rate: float = 1000.0,
    scenario: Scenario = Scenario(),
    chunk: int = 65_536,
) -> None:
    """Write a whole log (replacing the file) in bounded chunks, for benchmarks and tests."""
    with Path(path).open("wb") as f:
        for first in range(0, n, chunk):
            f.write(b"".join(generate(min(chunk, n - first), start_ts, rate, scenario, first)))


class Writer:
    """A live model: appends the lines due by the clock, from a thread, until ``stop()``.

    The file is opened for each batch, so a log rotated by rename (or deleted) is re-created,
    as most model servers' loggers do. Like Python's ``RotatingFileHandler``, it also rotates
    its log itself once it holds ``rotate_bytes`` (renamed to ``.1``, replacing the older one):
    in compose and on Kubernetes the simulator stands in for the model on a volume with a size
    limit, which a log growing forever would fill (an emptyDir past its ``sizeLimit`` gets the
    Pod evicted).
    """

    def __init__(
        self,
        path: Path | str,
        rate: float,
        scenario: Scenario,
        clock: Clock,
        interval: float = 0.1,
        max_batch: int = 100_000,
        rotate_bytes: int | None = ROTATE_BYTES,
    ) -> None:
        self.path = Path(path)
        self._rotate_bytes = rotate_bytes
        self.rate = rate
        self.scenario = scenario
        self.written = 0
        self._clock = clock
        self._interval = interval
        self._max_batch = max_batch
        self._start_ts: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> int:
        """Append every line due by now (at most ``max_batch``); returns how many.

        The first call anchors the log's start at the current time. Tests call this with a
        ManualClock instead of starting the thread.
        """
        now = self._clock.now()
        if self._start_ts is None:
            self._start_ts = now
        due = int((now - self._start_ts) * self.rate)
        n = min(due - self.written, self._max_batch)
        if n <= 0:
            return 0
        lines = generate(n, self._start_ts, self.rate, self.scenario, self.written)
        self._rotate()
        with self.path.open("ab") as f:
            f.write(b"".join(lines))
        self.written += n
        return n

    def _rotate(self) -> None:
        """Rename a full log to ``.1`` before the next append (the append re-creates it)."""
        if self._rotate_bytes is None:
            return
        try:
            full = self.path.stat().st_size >= self._rotate_bytes
        except FileNotFoundError:
            return
        if full:
            self.path.replace(self.path.with_name(self.path.name + ".1"))

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a Writer starts once")
        self.tick()
        self._thread = threading.Thread(target=self._run, name="simulated-model", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.tick()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
