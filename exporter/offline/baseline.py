"""``baseline``: stream a development log into one ``Summary`` and build the reference profile.

The offline half of profile building: it owns the decoder (a wide category scan) and the file's
bytes; ``profile.build`` turns the summary into the profile with the same functions the live
side uses.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from exporter.batch import OTHER, Layout
from exporter.config_types import FieldsConfig, FieldSpec
from exporter.decode import Decoder
from exporter.profile import build
from exporter.reference import Reference
from exporter.stats.sketch import SketchLayout
from exporter.stats.window import Shape, Summary, summarize


class ProfileBuilder:
    """Streams a development log into one Summary, then builds the profile from it.

    Categories are scanned with a wide vocabulary so the profile keeps the *most frequent*
    values, not the first ones seen; the configured cap then picks the top of them.
    """

    SCAN_CATEGORIES = 10_000

    def __init__(
        self, fields: FieldsConfig, qs: tuple[float, ...], relative_accuracy: float
    ) -> None:
        wide = replace(
            fields,
            predicted_class=_widen(fields.predicted_class),
            features=tuple(_widen(f) for f in fields.features),
        )
        self._decoder = Decoder(wide)
        self._caps = [spec.max_categories for spec in fields.categorical]
        self._shape = Shape(
            numeric=len(self._decoder.layout.numeric),
            categorical=len(self._decoder.layout.categorical),
            categories=self.SCAN_CATEGORIES + 1,
            anomaly_fields=len(self._decoder.layout.anomaly_fields) + 1,
            sketch=SketchLayout(relative_accuracy=relative_accuracy),
        )
        self._summary = Summary.empty(self._shape)
        self._qs = qs
        self._layout = Layout.from_fields(fields)
        self._regression = fields.regression
        self.parse_errors = 0

    def add(self, data: bytes) -> None:
        batch = self._decoder.decode(data)
        self._summary.add(summarize(batch, None, self._shape))
        self.parse_errors += sum(batch.parse_errors.values())

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
        )


def _widen(spec: FieldSpec | None) -> Any:
    if spec is None or spec.kind != "categorical":
        return spec
    return replace(spec, max_categories=ProfileBuilder.SCAN_CATEGORIES)
