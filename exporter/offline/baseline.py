"""``baseline``: stream a development log into one ``Summary`` and build the reference profile.

The offline half of profile building: it owns the decoder (a wide category scan) and the file's
bytes; ``profile.build`` turns the summary into the profile with the same functions the live
side uses.

With ``ground_truth_join`` enabled, labels on their own line are joined to their prediction by
request id, as the live sidecar joins them (``join.LabelJoin``): they are not records, and their
errors count in the development error ratio (or MAE and RMSE). Offline there is no clock, so a
prediction waits for its label however far down the log it comes; only the join's ``capacity``
bounds the memory.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np

from exporter.batch import OTHER, Batch, Layout, Vocabulary
from exporter.config_types import FieldsConfig, FieldSpec
from exporter.decode import Decoder
from exporter.join import LabelJoin
from exporter.profile import CALIBRATED, build, calibration_counts
from exporter.reference import VOCABULARY_CAP, Reference
from exporter.stats.sketch import Sketches
from exporter.stats.window import Shape, Summary, category_counts, summarize

TRACKED_VERSIONS = 1_000  # distinct (model, version) pairs counted (and named) at most
NAMED_VERSIONS = 5  # of which the warning names the largest


class ProfileBuilder:
    """Streams a development log into one Summary, then builds the profile from it.

    Categories are scanned with a wide vocabulary so the profile keeps the *most frequent*
    values, not the first ones seen, and knows every development value (up to
    ``VOCABULARY_CAP``); the configured cap then picks the top of them. A seeded random half of
    the records is counted apart: the kept categories are chosen on one half and their shares
    measured on the other (``profile._categorical``), reproducibly for the same log.
    """

    SCAN_CATEGORIES = VOCABULARY_CAP

    def __init__(
        self,
        fields: FieldsConfig,
        qs: tuple[float, ...],
        relative_accuracy: float,
        join_capacity: int | None = None,
    ) -> None:
        """``join_capacity``: join labels on their own line (``ground_truth_join``), with at
        most this many predictions waiting; None reads every line as a record."""
        wide = replace(
            fields,
            predicted_class=_widen(fields.predicted_class),
            features=tuple(_widen(f) for f in fields.features),
        )
        self._decoder = Decoder(wide, keep_labels=join_capacity is not None)
        self._join: LabelJoin | None = None
        if join_capacity is not None:
            self._join = LabelJoin(
                self._decoder.layout, self._decoder.class_names, math.inf, join_capacity
            )
        self._shape = Shape(
            numeric=len(self._decoder.layout.numeric),
            categorical=len(self._decoder.layout.categorical),
            categories=self.SCAN_CATEGORIES + 1,
            anomaly_fields=len(self._decoder.layout.anomaly_fields) + 1,
            sketch=Sketches.unanchored(len(self._decoder.layout.numeric), relative_accuracy),
        )
        self._summary = Summary.empty(self._shape)
        self._held_out = np.zeros((self._shape.categorical, self._shape.categories), np.int64)
        self._split = np.random.default_rng(0)
        self._qs = qs
        self._layout = Layout.from_fields(fields)
        self._regression = fields.regression
        names = [spec.name for spec in self._layout.numeric]
        self._confidence = names.index(CALIBRATED) if CALIBRATED in names else None
        self._calibration = np.zeros((2, self._shape.sketch.size), dtype=np.int64)
        self.parse_errors = 0
        # Records per (model, version): a profile describes one model, so a log of several
        # is pooled into one profile, which ``pooling`` says.
        self.model_versions: Counter[tuple[str, str]] = Counter()

    def add(self, data: bytes) -> None:
        batch = self._decoder.decode(data)
        self.parse_errors += sum(batch.parse_errors.values())
        self.add_batch(batch)

    @property
    def vocabularies(self) -> list[Vocabulary]:
        """The wide scan vocabularies, for callers that build batches themselves."""
        return self._decoder.vocabularies

    def add_batch(self, batch: Batch) -> None:
        """Add decoded records (coded with ``vocabularies``)."""
        if self._join is not None:
            joined = self._join.match(batch, 0.0)
            self._join.commit(joined)
            batch = joined.predictions
            for found in joined.joined.values():
                self._summary.labelled += found.labelled
                self._summary.wrong += found.wrong
                self._summary.abs_error += found.abs_error
                self._summary.sq_error += found.sq_error
        self._count_versions(batch)
        sketch = self._shape.sketch.anchored_on(list(batch.numeric.T))
        if sketch is not self._shape.sketch:  # fields are anchored by their first values
            self._shape = replace(self._shape, sketch=sketch)
        self._summary.add(summarize(batch, None, self._shape))
        if self._confidence is not None:
            f = self._confidence
            self._calibration += calibration_counts(sketch[f], batch.numeric[:, f], batch.wrong)
        half = self._split.random(batch.size) < 0.5
        self._held_out += category_counts(batch.categorical[half], self._shape)

    def _count_versions(self, batch: Batch) -> None:
        counts = np.bincount(batch.group, minlength=len(batch.groups)).tolist()
        for key, count in zip(batch.groups, counts, strict=True):
            if count and (
                key in self.model_versions or len(self.model_versions) < TRACKED_VERSIONS
            ):
                self.model_versions[key] += count

    def pooling(self) -> str | None:
        """What to tell the user when the log named more than one model version: the profile
        mixes them, and the sidecar judges every version against that mix."""
        if len(self.model_versions) < 2:
            return None
        largest = self.model_versions.most_common(NAMED_VERSIONS)
        named = ", ".join(f"{m}/{v} ({count} records)" for (m, v), count in largest)
        more = len(self.model_versions) - len(largest)
        if more:
            named += f" and {more} more"
        return (
            f"{len(self.model_versions)} model versions: {named}; the profile pools them all, "
            "and the sidecar compares every model version with it: build each model version's "
            "profile from a log of that version alone"
        )

    @property
    def records(self) -> int:
        return self._summary.records

    def build(self, created: str, source: dict[str, Any] | None = None) -> Reference:
        names = [[*enumerate(v.values), (v.cap, OTHER)] for v in self._decoder.vocabularies]
        return build(
            self._summary,
            self._layout,
            names,
            self._shape.sketch,
            self._qs,
            created,
            source,
            regression=self._regression,
            held_out=self._held_out,
            calibration=self._calibration,
        )


def _widen(spec: FieldSpec | None) -> Any:
    if spec is None or spec.kind != "categorical":
        return spec
    return replace(spec, max_categories=ProfileBuilder.SCAN_CATEGORIES)
