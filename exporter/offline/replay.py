"""``replay``: the sidecar's engine over a historical log, with the records' timestamps as clock.

Why: thresholds and ``for:`` durations are cheap to change and expensive to get wrong. Replaying
last month's log shows which alerts they would have raised, and when, before anyone is paged.

Time. A record's time is the largest timestamp seen so far: its own when the log is in order; a
record without a timestamp, or older than one already seen, takes that latest time (as live, where
a record lands in the bucket of its arrival), and one older than ``late_after`` is counted
``late``. Records before the first timestamp take the first one. A chunk is cut into runs whose
times share every window bucket and report step, and each run is ingested at its time, so the
windows hold what they would have held live. Every ``every`` seconds of log time the windows are
read (as a scrape would) and the bundled alert rules are evaluated on them, their ``for:``
durations counted in log time. The engine is the live one (``exporter.engine``): decoding,
reference checks, the label join, the state and the drift assessment are the same code, and the
records are counted the same way.

No I/O and no wall clock: bytes in, a ``Report`` out; the CLI reads the file and prints. The
rules themselves are in ``offline.backtest``, the report and its renderings in ``offline.report``.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from exporter.anomaly import KIND_NAMES, Kind
from exporter.assess import READ_BEFORE, Assessment, WindowAssessment, assessment_step
from exporter.batch import Batch
from exporter.compare import Gaps
from exporter.config_types import Config, WindowSpec
from exporter.engine import Counts, Engine
from exporter.errors import ConfigError
from exporter.offline.backtest import (
    AlertTracker,
    DriftStat,
    FleetHistory,
    Row,
    conditions,
    parse_for,
)
from exporter.offline.read import APPLY_BYTES
from exporter.offline.report import Report
from exporter.offline.thresholds import Thresholds
from exporter.reference import Reference
from exporter.state import Snapshot, WindowView
from exporter.stats.sketch import Sketches, quantiles

FloatArray = npt.NDArray[np.float64]

MAX_PENDING_RECORDS = 100_000  # records held back while no timestamp has been seen yet


class ReplayError(Exception):
    """The log cannot be replayed (no records, or no timestamps to drive time)."""


# -- reading windows into rows ------------------------------------------------------------------


def _rows(
    snapshot: Snapshot,
    assessment: Assessment,
    time: float,
    latency: int | None,
    sketch: Sketches,
) -> list[Row]:
    rows = []
    for group in snapshot.groups:
        for view in group.windows:
            assessed = assessment.window(group.model, group.version, view.spec.name)
            p99 = _p99(view, latency, sketch)
            rows.append(_row(view, assessed, snapshot, (group.model, group.version), time, p99))
    return rows


def _p99(view: WindowView, latency: int | None, sketch: Sketches) -> float | None:
    s = view.summary
    if latency is None or s.sketch is None or not s.count[latency]:
        return None
    return float(quantiles(sketch[latency], s.sketch[latency], (0.99,))[0])


def _row(
    view: WindowView,
    assessed: WindowAssessment | None,
    snapshot: Snapshot,
    key: tuple[str, str],
    time: float,
    p99: float | None,
) -> Row:
    s = view.summary
    anomalies: dict[str, dict[str, float]] = {}
    if s.records:
        for r, name in enumerate(snapshot.layout.anomaly_fields):
            for kind in np.flatnonzero(s.anomalies[r]).tolist():
                ratio = float(s.anomalies[r, kind]) / s.records
                anomalies.setdefault(name, {})[KIND_NAMES[kind]] = ratio
    gaps = assessed.gaps if assessed is not None else Gaps(None, None)
    regression = snapshot.layout.regression
    labelled = s.labelled if s.labelled else None
    return Row(
        time=time,
        model=key[0],
        version=key[1],
        window=view.spec.name,
        records=s.records,
        labelled=s.labelled,
        wrong=s.wrong,
        error_ratio=None if regression or labelled is None else s.wrong / labelled,
        error_ratio_gap=gaps.error_ratio,
        confidence_gap=gaps.confidence,
        latency_p99_seconds=p99,
        parse_errors=int(s.anomalies[-1, Kind.PARSE_ERROR]),
        anomalies=anomalies,
        drift=[
            DriftStat(
                d.field,
                d.statistic,
                d.verdict.statistic,
                d.verdict.threshold,
                d.verdict.drifted,
            )
            for d in (assessed.drift if assessed is not None else ())
        ],
        mae=None if not regression or labelled is None else s.abs_error / labelled,
        rmse=None if not regression or labelled is None else math.sqrt(s.sq_error / labelled),
        mae_gap=gaps.mae,
        rmse_gap=gaps.rmse,
    )


# -- the engine driven by the log's own time ----------------------------------------------------


def with_alert_windows(config: Config) -> Config:
    """The config plus the 5m and 1h windows the bundled rules read, when it lacks them."""
    have = {w.seconds for w in config.windows}
    extra = [WindowSpec(name, s) for name, s in (("5m", 300.0), ("1h", 3600.0)) if s not in have]
    return replace(config, windows=(*config.windows, *extra)) if extra else config


def _window_named(config: Config, seconds: float) -> str:
    return next(w.name for w in config.windows if w.seconds == seconds)


def effective_times(stamps: FloatArray, latest: float) -> FloatArray:
    """Each record's time, in batch row order.

    Its own timestamp, but never before ``latest`` (the largest of earlier blocks, which the
    windows have moved past); without one, the largest timestamp before it in the block. Records
    before any timestamp take the block's earliest; with none at all, the result is all -inf.
    """
    carried = np.fmax.accumulate(np.concatenate([[latest], stamps]))[1:]
    times: FloatArray = np.where(np.isnan(stamps), carried, np.maximum(stamps, latest))
    known = times > -math.inf
    if known.any() and not known.all():
        times[~known] = times[known].min()
    return times


def run_bounds(times: FloatArray, widths: Sequence[float]) -> list[tuple[int, int]]:
    """[lo, hi) runs of non-decreasing ``times`` that share their epoch ⌊t / w⌋ for every
    width: each run lands in one bucket of every window and in one report step."""
    n = len(times)
    cut = np.zeros(n, dtype=bool)
    for width in widths:
        epoch = np.floor(times / width)
        cut[1:] |= epoch[1:] != epoch[:-1]
    starts = [0, *np.flatnonzero(cut).tolist(), n]
    return [(lo, hi) for lo, hi in itertools.pairwise(starts) if hi > lo]


def _apportion(errors: Counter[str], sizes: Sequence[int]) -> list[Counter[str]]:
    """A chunk's unparseable lines spread over its runs in proportion to the runs' records
    (the decoder does not say where they were); every count is kept exactly."""
    shares: list[Counter[str]] = [Counter() for _ in sizes]
    total = sum(sizes)
    if not total:
        return shares
    cumulative = np.cumsum([0, *sizes])
    for reason, count in errors.items():
        upto = (count * cumulative) // total
        for i, part in enumerate(np.diff(upto).tolist()):
            if part:
                shares[i][reason] = int(part)
    return shares


class Replayer:
    """Feed it the log's bytes (complete lines) in order, then ``finish()`` for the report."""

    def __init__(
        self,
        config: Config,
        reference: Reference | None,
        every: float = 60.0,
        thresholds: Thresholds | None = None,
        for_seconds: Mapping[str, float] | None = None,
        source: str = "log",
    ) -> None:
        if config.fields.timestamp is None:
            raise ConfigError(["fields.timestamp: replay needs the records' timestamps"])
        if every <= 0:
            raise ConfigError(["--every: must be positive"])
        step = assessment_step(config)  # the sidecar's, before the alert windows are added
        config = with_alert_windows(config)
        self._config = config
        self.engine = Engine(config, reference, history_seconds=0.0, assess_every=step)
        self._layout = self.engine.decoder.layout
        self._every = every
        self._widths = [every, *(w.seconds / config.window_buckets for w in config.windows)]
        self._horizon = max(w.seconds for w in config.windows) + max(self._widths) + every
        self._slow = _window_named(config, 3600.0)
        self._fast = _window_named(config, 300.0)
        self._latency = self._layout.latency_column
        self._thresholds = thresholds if thresholds is not None else Thresholds()
        self._for = dict(for_seconds) if for_seconds is not None else parse_for(())
        self._tracker = AlertTracker(self._for)
        self._fleet = FleetHistory()
        self._source = source
        self._latest = -math.inf  # largest timestamp seen
        self._last_ingest = -math.inf
        self._first: float | None = None
        self._step: int | None = None
        self._pending: list[Batch] = []
        self._counts = Counts()
        self._retimed = 0
        self.rows: list[Row] = []

    def feed(self, data: bytes) -> None:
        self.feed_all([data])

    def feed_all(self, chunks: Iterable[bytes]) -> None:
        """Chunks of the log in turn, applied as one batch (``Engine.decode_all``)."""
        # Records held for want of a time are not in the engine yet, nor in the count that
        # completes ``freeze_first``: they come first when the engine takes them.
        held = sum(self.engine.predictions(b) for b in self._pending)
        for batch in self.engine.decode_all(chunks, ahead=held):
            self._feed(batch)

    def _feed(self, batch: Batch) -> None:
        if not batch.size and not batch.parse_errors:
            return
        if not batch.size:  # only unparseable lines: they happened "now"
            if self._first is None:
                self._hold(batch)
            else:
                self._ingest(batch, self._latest)
            return
        times = effective_times(batch.timestamp, self._latest)
        if times[0] == -math.inf:
            self._hold(batch)
            return
        # Row order is not line order (lines the decoder had to parse leniently come last), so
        # a block is put in time order; across blocks, time only moves forward.
        unparsed = batch.parse_errors
        if not (times[1:] >= times[:-1]).all():  # usually in order already: no copy then
            order = np.argsort(times, kind="stable")
            batch, times = batch.take(order), times[order]
        self._mark_retimed(batch, times)
        self._latest = float(times[-1])
        if self._first is None:
            self._start(float(times[0]))
        bounds = run_bounds(times, self._widths)
        errors = _apportion(unparsed, [hi - lo for lo, hi in bounds])
        for (lo, hi), share in zip(bounds, errors, strict=True):
            run = batch if hi - lo == batch.size else batch.take(np.arange(lo, hi))
            run.parse_errors = share
            self._ingest(run, float(times[hi - 1]))

    def _hold(self, batch: Batch) -> None:
        self._pending.append(batch)
        if sum(b.size for b in self._pending) > MAX_PENDING_RECORDS:
            raise ReplayError(
                f"the first {MAX_PENDING_RECORDS} records have no timestamp: nothing to drive "
                f"time{self._why_no_time()}"
            )

    def _why_no_time(self) -> str:
        """What the held records' timestamps were, when they had one that is not a time: the
        usual cause is epoch milliseconds read as seconds (a date after the year 5000)."""
        column = self._layout.timestamp_column
        unusable = sum(
            int(np.count_nonzero(b.flags[:, column] == Kind.TYPE_MISMATCH)) for b in self._pending
        )
        if not unusable:
            return ""
        assert self._config.fields.timestamp is not None
        path = ".".join(self._config.fields.timestamp)
        return (
            f" ({unusable} record(s) carry a {path} that is not a time: ISO 8601, or epoch "
            f"seconds from 1970 to the year 5000; epoch milliseconds, microseconds or "
            f"nanoseconds need fields.timestamp: {{path: {path}, unit: ms | us | ns}})"
        )

    def _start(self, t: float) -> None:
        self._first = t
        self._step = math.floor(t / self._every)
        pending, self._pending = self._pending, []
        for batch in pending:
            self._retimed += batch.size
            self._ingest(batch, t)

    def _mark_retimed(self, batch: Batch, times: FloatArray) -> None:
        """Count records that did not keep their own time; those moved by more than
        ``late_after`` are ``late``, as live."""
        own = batch.timestamp
        with np.errstate(invalid="ignore"):
            self._retimed += int(np.count_nonzero(~(own >= times)))
            late = own < times - self._config.late_after
        column = batch.flags[:, self._layout.timestamp_column]
        column[late & (column == 0)] = Kind.LATE

    def _ingest(self, batch: Batch, t: float) -> None:
        self._advance(math.floor(t / self._every))
        assert self._step is not None
        # The next report shows the drift assessed when its assessment step began (as live):
        # when that step begins before the report boundary, assess it before its records.
        step = self.engine.assessor.step
        if math.floor(t / step) == math.floor((self._step + 1) * self._every / step):
            self.engine.advance(t)
        self._counts.add(self.engine.apply(batch, t))
        self._last_ingest = max(self._last_ingest, t)

    def _advance(self, step: int) -> None:
        """Report every boundary before ``step``; past the point where every window is empty,
        skip ahead (a gap of days in a log costs nothing)."""
        assert self._step is not None
        while self._step < step:
            boundary = (self._step + 1) * self._every
            if boundary - self._last_ingest > self._horizon:
                self._step = step
                return
            self._report(boundary)
            self._step += 1

    def _report(self, boundary: float) -> None:
        assessment = self.engine.advance(boundary)
        snapshot = self.engine.state.snapshot(boundary - READ_BEFORE)
        rows = _rows(snapshot, assessment, boundary, self._latency, self.engine.state.shape.sketch)
        self.rows.extend(rows)
        fleet = self._fleet.observe(boundary, snapshot, assessment)
        holding = conditions(rows, self._thresholds, self._slow, self._fast, self._source, fleet)
        self._tracker.observe(boundary, holding)

    def finish(self) -> Report:
        if self._first is None or self._step is None:
            if self._pending:
                raise ReplayError(
                    f"no record has a timestamp: nothing to drive time{self._why_no_time()}"
                )
            raise ReplayError("the log holds no records")
        end = (self._step + 1) * self._every  # the step holding the last record is reported
        self._advance(self._step + 1)
        reference = self.engine.state.reference
        return Report(
            source=self._source,
            every=self._every,
            start=self._first,
            end=end,
            records=self._counts.records,
            parse_errors=dict(self._counts.parse_errors),
            retimed=self._retimed,
            reference=None if reference is None else reference.hash,
            windows=[w.name for w in self._config.windows],
            thresholds=self._thresholds,
            for_seconds=self._for,
            rows=self.rows,
            alerts=self._tracker.finish(),
            regression=self._layout.regression,
        )


def replay(
    chunks: Iterable[bytes],
    config: Config,
    reference: Reference | None,
    every: float = 60.0,
    thresholds: Thresholds | None = None,
    for_seconds: Mapping[str, float] | None = None,
    source: str = "log",
) -> Report:
    replayer = Replayer(config, reference, every, thresholds, for_seconds, source)
    blocks = iter(chunks)
    for first in blocks:
        group = _group(first, blocks)
        del first  # the group holds it until the engine takes it
        replayer.feed_all(group)
    return replayer.finish()


def _group(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    """``first`` and the blocks after it, up to ``APPLY_BYTES`` in all, read as they are
    taken: the engine decodes one at a time, so one block is held, as live."""
    size = len(first)
    yield first
    del first
    while size < APPLY_BYTES:
        block = next(rest, None)
        if block is None:
            return
        size += len(block)
        yield block
        del block
