"""The engine: log bytes in → decode → per-record reference checks → label join → state → counts.

The live ingest loop and ``replay`` both run it; time is the only difference. Live, every record
is added at the clock's now; ``replay`` adds each run of records at the records' own time.
Which reference is in use (loaded at start, reloaded from its file by the caller, or frozen
from the first records by ``freeze``) is decided here, and whatever follows it is rebuilt here,
in one place. The engine reads no files: the pipeline hands it a loaded profile.

Failures are idempotent. Only decoding is pure, so only decoding is retried: a chunk that trips
an unexpected error is decoded again line by line, and a line that still fails is counted
``unprocessable``. (Decoding may give new category values their codes, which a second decode
gives again; what it counts — label values cut to the limit — travels on the batch and is
counted with it.) Everything after it is worked out first without changing anything (reference
flags on the batch, what the label join would match, the state's update, the checks for a
reference frozen by this batch) and then applied in one go; if working it out fails, nothing was
applied and the batch's records are counted ``unprocessable``. So no record is counted twice
and no waiting label is taken twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from exporter.anomaly import UNPROCESSABLE, Kind
from exporter.assess import HISTORY_SECONDS, Assessment, Assessor, assessment_step
from exporter.batch import Batch
from exporter.compare import ReferenceChecks
from exporter.config_types import Config, DriftConfig
from exporter.decode import Decoder
from exporter.freeze import Freezer, Freezing
from exporter.histograms import histogram_bounds
from exporter.join import GroupKey, JoinResult, LabelJoin
from exporter.reference import Reference
from exporter.state import State

log = logging.getLogger(__name__)


@dataclass
class Counts:
    """What one ``ingest`` or ``apply`` did, for the caller's accounting."""

    records: int = 0  # predictions added to the state
    labels: int = 0  # label-only records (joined to a waiting prediction or not)
    parse_errors: Counter[str] = field(default_factory=Counter)  # lines by reason

    def add(self, other: Counts) -> None:
        self.records += other.records
        self.labels += other.labels
        self.parse_errors.update(other.parse_errors)


class Engine:
    def __init__(
        self,
        config: Config,
        reference: Reference | None = None,
        history_seconds: float = HISTORY_SECONDS,
        assess_every: float | None = None,
    ) -> None:
        """``history_seconds`` is how much drift history the assessor keeps (0: none);
        ``assess_every`` the assessment step, by default the config's (``assess``)."""
        # Histogram buckets are decided once, here: a reload never changes them (Prometheus
        # adds histograms up bucket by bucket, across replicas and over time).
        bounds = histogram_bounds(config.histograms, config.explicit_histograms, reference)
        for (name, default), (_, chosen) in zip(config.histograms, bounds, strict=True):
            if chosen != default:
                log.info("histogram %s: buckets follow the reference profile: %s", name, chosen)
        config = replace(config, histograms=bounds)
        self.config = config
        self.decoder = Decoder(
            config.fields, config.late_after, config.future_after, config.label_join
        )
        layout = self.decoder.layout
        self.state = State(config, layout, [v.values for v in self.decoder.vocabularies])
        self.join: LabelJoin | None = None
        if config.label_join:
            self.join = LabelJoin(
                layout,
                self.decoder.class_names,
                config.label_join_timeout,
                config.label_join_capacity,
            )
        self.assessor = Assessor(
            self.state,
            config.drift,
            assess_every if assess_every is not None else assessment_step(config),
            config.window_buckets,
            history_seconds,
            config.quantiles,
        )
        self._checks: ReferenceChecks | None = None
        # Without a profile, the first records become one (a profile loaded later wins).
        self._freezer: Freezer | None = None
        if config.drift.freeze_first > 0:
            self._freezer = Freezer(config, self.state)
        if reference is not None:
            self._use(reference, self._checks_for(reference))

    # -- the reference ----------------------------------------------------------------------

    def _checks_for(self, reference: Reference) -> ReferenceChecks:
        """Per-record checks against a reference. Built in the ingest thread only: it gives
        the reference's categories vocabulary codes, and the vocabularies belong to it."""
        return ReferenceChecks(
            reference, self.decoder.layout, self.decoder.vocabularies, self.config.drift
        )

    def _use(self, reference: Reference, checks: ReferenceChecks) -> None:
        self.state.set_reference(reference)
        self._checks = checks
        self._freezer = None  # a profile in use ends freezing the first records

    def set_drift(self, drift: DriftConfig) -> None:
        """New drift thresholds (a config reload; ``freeze_first`` keeps its value from start):
        the per-record checks are rebuilt with them and every window is judged again."""
        drift = replace(drift, freeze_first=self.config.drift.freeze_first)
        self.config = replace(self.config, drift=drift)
        reference = self.state.reference
        if reference is not None:
            self._checks = self._checks_for(reference)
        self.assessor.set_settings(drift)

    def reload(self, reference: Reference) -> None:
        """Use a newly loaded profile. One whose checks cannot be built raises before anything
        changes, so the caller can refuse it like a file that does not parse, and the profile
        in use stays."""
        self._use(reference, self._checks_for(reference))

    # -- time -------------------------------------------------------------------------------

    def advance(self, now: float) -> Assessment:
        """Bring drift verdicts and gaps up to ``now`` (see ``assess``); call it before adding
        records that arrived at ``now``. A failure to assess never stops ingestion: it is
        logged, and no drift or gap is exported until an assessment succeeds."""
        self._expire_labels(now)
        try:
            return self.assessor.advance(now)
        except Exception:
            log.exception("assessing drift failed; no drift or gap series until it succeeds")
            return self.assessor.latest

    def _expire_labels(self, now: float) -> None:
        """Waiting predictions past the join's timeout leave it at ``now``, even when no line
        arrives (a batch expires them too): all counted, or none."""
        if self.join is None:
            return
        try:
            outcomes: Counter[tuple[GroupKey, str]] = Counter()
            expired = self.join.expiring(now, outcomes)
            if not expired:
                return
            update = self.state.prepare(None, now, None, outcomes)
        except Exception:
            log.exception("expiring waiting predictions failed; they wait for the next batch")
            return
        self.state.commit(update)
        self.join.drop(expired)

    # -- records ----------------------------------------------------------------------------

    def ingest(self, data: bytes, now: float) -> Counts:
        """Live: complete lines that arrived at ``now``."""
        return self.ingest_all([data], now)

    def ingest_all(self, chunks: Iterable[bytes], now: float) -> Counts:
        """Live: chunks of complete lines, read in turn from one source, that arrived at
        ``now`` (see ``decode_all``)."""
        self.advance(now)
        counts = Counts()
        for batch in self.decode_all(chunks, now):
            counts.add(self.apply(batch, now))
        return counts

    def decode_all(
        self, chunks: Iterable[bytes], now: float | None = None, ahead: int = 0
    ) -> list[Batch]:
        """Chunks read in turn, decoded one at a time (a chunk is sized for the decoder's
        caches) and returned as one batch to apply: what follows decoding costs dozens of
        numpy calls per field and batch, so it is paid once for several chunks. No chunk is
        held past its decoding, so an iterator that lets each go keeps one chunk in memory.
        While ``freeze_first`` is counting, the batches are kept apart (``decode_pieces``),
        the records held before each chunk counted in ``ahead``."""
        batches: list[Batch] = []
        for data in chunks:
            freezing = self._freezer is not None
            held = ahead + sum(self.predictions(b) for b in batches) if freezing else 0
            batches.extend(self.decode_pieces(data, now, held))
            del data
        if self._freezer is not None or len(batches) < 2:
            return batches
        return [Batch.concat(batches)]

    def decode_pieces(self, data: bytes, now: float | None = None, ahead: int = 0) -> list[Batch]:
        """``decode``, in two batches to apply in order when the chunk holds the record that
        completes ``freeze_first`` (``ahead``: records decoded before it and not applied yet):
        the lines up to that record, then the rest. A backlog read in one chunk would otherwise
        freeze every record of the chunk, and a batch's rows are not in line order, so the cut
        is made in the bytes, at the line found by decoding prefixes (once in a lifetime)."""
        batch = self.decode(data, now)
        if self._freezer is None:
            return [batch]
        wanted = self._freezer.wanted - ahead
        if wanted <= 0 or self.predictions(batch) <= wanted:
            return [batch]
        cut = self._freeze_cut(data, wanted)
        return [self.decode(data[:cut], now), self.decode(data[cut:], now)]

    def _freeze_cut(self, data: bytes, wanted: int) -> int:
        """The end of the shortest run of whole lines holding ``wanted`` records (there is one:
        ``data`` holds more, and a line is at most one record), by bisection on line ends."""
        ends = []
        at = data.find(b"\n")
        while at >= 0:
            ends.append(at + 1)
            at = data.find(b"\n", at + 1)
        if not ends or ends[-1] != len(data):
            ends.append(len(data))
        lo, hi = 0, len(ends) - 1  # the answer is ends[k] for some lo <= k <= hi
        while lo < hi:
            mid = (lo + hi) // 2
            if self.predictions(self.decode(data[: ends[mid]])) >= wanted:
                hi = mid
            else:
                lo = mid + 1
        return ends[lo]

    def predictions(self, batch: Batch) -> int:
        """Records of a batch the state would count (label-only records are not)."""
        return batch.size if self.join is None else self.join.predictions(batch)

    def decode(self, data: bytes, now: float | None = None) -> Batch:
        """Decode complete lines (``now`` marks late and future timestamps, live only)."""
        return self._optional_timestamp(self._decode(data, now))

    def _optional_timestamp(self, batch: Batch) -> Batch:
        """A timestamp the config does not name is looked for at ``ts`` and used when there;
        a log without one is not a log of records that all miss it."""
        layout = self.decoder.layout
        if layout.has_timestamp and not self.config.fields.timestamp_required:
            column = batch.flags[:, layout.timestamp_column]
            column[column == Kind.MISSING] = 0
        return batch

    def _decode(self, data: bytes, now: float | None) -> Batch:
        try:
            return self.decoder.decode(data, now)
        except Exception:
            log.exception("unexpected error decoding %d bytes; decoding line by line", len(data))
        batches = []
        unprocessable = 0
        for line in data.splitlines(keepends=True):
            try:
                batches.append(self.decoder.decode(line, now))
            except Exception:
                unprocessable += 1
        batch = Batch.concat(batches or [Batch.empty(self.decoder.layout)])
        if unprocessable:
            batch.parse_errors[UNPROCESSABLE] += unprocessable
        return batch

    def apply(self, batch: Batch, now: float) -> Counts:
        """Add a decoded batch whose records arrived at ``now``: all of it, or nothing."""
        try:
            if self._checks is not None:
                self._checks.apply(batch)  # flags on the batch only
            joined = self.join.match(batch, now) if self.join is not None else JoinResult(batch)
            update = self.state.prepare(joined.predictions, now, joined.joined, joined.outcomes)
            freezing: Freezing | None = None
            if self._freezer is not None:
                freezing = self._freezer.prepare(update)
            frozen = freezing.frozen if freezing is not None else None
            checks = self._checks_for(frozen) if frozen is not None else None
        except Exception:
            log.exception(
                "unexpected error ingesting %d records; counted unprocessable", batch.size
            )
            errors = Counter(batch.parse_errors)
            errors[UNPROCESSABLE] += batch.size
            return Counts(parse_errors=errors)
        self.state.commit(update)
        self.decoder.commit(batch)
        if self.join is not None:
            self.join.commit(joined)
        if self._freezer is not None and freezing is not None:
            self._freezer.commit(freezing)
        if frozen is not None and checks is not None:
            self._use(frozen, checks)
        return Counts(update.records, joined.labels, Counter(batch.parse_errors))
