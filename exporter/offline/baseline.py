"""``baseline``: stream a development log into one ``Summary`` and build the reference profile.

The offline half of profile building: it owns the decoder (a wide category scan) and the file's
bytes; ``profile.build`` turns the summary into the profile with the same functions the live
side uses.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from exporter.batch import OTHER, Batch, Layout, Vocabulary
from exporter.config_types import FieldsConfig, FieldSpec
from exporter.decode import Decoder
from exporter.profile import CALIBRATED, build, calibration_counts
from exporter.reference import VOCABULARY_CAP, Reference
from exporter.stats.sketch import Sketches
from exporter.stats.window import Shape, Summary, category_counts, summarize


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
        self, fields: FieldsConfig, qs: tuple[float, ...], relative_accuracy: float
    ) -> None:
        wide = replace(
            fields,
            predicted_class=_widen(fields.predicted_class),
            features=tuple(_widen(f) for f in fields.features),
        )
        self._decoder = Decoder(wide)
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
        sketch = self._shape.sketch.anchored_on(list(batch.numeric.T))
        if sketch is not self._shape.sketch:  # fields are anchored by their first values
            self._shape = replace(self._shape, sketch=sketch)
        self._summary.add(summarize(batch, None, self._shape))
        if self._confidence is not None:
            f = self._confidence
            self._calibration += calibration_counts(sketch[f], batch.numeric[:, f], batch.wrong)
        half = self._split.random(batch.size) < 0.5
        self._held_out += category_counts(batch.categorical[half], self._shape)

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
