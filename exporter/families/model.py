"""What each model version did: counters since start, histograms, and per-window summaries
(samples, moments, quantiles, category shares, anomaly ratios, error ratios)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from exporter.anomaly import (
    CATEGORICAL_KINDS,
    KIND_NAMES,
    LABEL_KINDS,
    NAME_KINDS,
    NUMERIC_KINDS,
    RECORD_KINDS,
    TIMESTAMP_KINDS,
    Kind,
)
from exporter.batch import Layout
from exporter.exposition import COUNTER, GAUGE, HISTOGRAM, Family
from exporter.families import MODEL_LABELS, family
from exporter.state import GroupSnapshot, Snapshot, WindowView
from exporter.validate import number_label


def anomaly_pairs(layout: Layout) -> list[tuple[int, str, tuple[Kind, ...]]]:
    """(row of the anomaly matrix, field label, kinds that can happen to it)."""
    pairs: list[tuple[int, str, tuple[Kind, ...]]] = []
    for row, name in enumerate(layout.anomaly_fields):
        kinds: tuple[Kind, ...]
        if row < len(layout.numeric):
            kinds = NUMERIC_KINDS
        elif row < len(layout.numeric) + len(layout.categorical):
            kinds = CATEGORICAL_KINDS
        elif name == "timestamp":
            kinds = TIMESTAMP_KINDS
        elif name in ("model", "version"):
            kinds = NAME_KINDS
        else:
            kinds = LABEL_KINDS
        pairs.append((row, name, kinds))
    pairs.append((len(layout.anomaly_fields), "record", RECORD_KINDS))
    return pairs


def model_families(snapshot: Snapshot) -> Iterator[Family]:
    layout = snapshot.layout
    pairs = anomaly_pairs(layout)
    cells = _AnomalyCells.of([p for p in pairs if p[1] != "record"])
    record_cells = _AnomalyCells.of([p for p in pairs if p[1] == "record"])
    categories = [_Categories(names) for names in snapshot.categories]
    quantiles = [number_label(q) for q in snapshot.quantiles]
    columns = _Columns(categories, cells, record_cells, quantiles)
    bounds = [[*map(number_label, h.bounds), "+Inf"] for h in snapshot.histograms]
    wl = [*MODEL_LABELS, "window"]
    fl = [*MODEL_LABELS, "field"]
    fwl = [*MODEL_LABELS, "field", "window"]

    predictions = family(
        COUNTER, "model_predictions", "Prediction records ingested.", labels=MODEL_LABELS
    )
    anomalies = family(
        COUNTER,
        "model_anomalies",
        "Bad or suspicious values by field and kind.",
        labels=[*fl, "kind"],
    )
    labelled = family(
        COUNTER, "model_ground_truth", "Records with a ground-truth label.", labels=MODEL_LABELS
    )
    errors = family(
        COUNTER,
        "model_prediction_errors",
        "Labelled predictions that were wrong.",
        labels=MODEL_LABELS,
    )
    overflow = family(
        COUNTER,
        "model_category_overflow",
        "Categorical values past the field's category cap, exported as __other__.",
        labels=fl,
    )
    clamped = family(
        COUNTER,
        "model_sketch_clamped",
        "Numeric values outside the field's sketch range: their quantiles are not within bound.",
        labels=fl,
    )
    join = family(
        COUNTER,
        "model_ground_truth_join",
        "Predictions waiting for a late label, by how they left the join buffer.",
        labels=[*MODEL_LABELS, "outcome"],
    )
    last_ts = family(
        GAUGE,
        "model_last_record_timestamp_seconds",
        "Largest record timestamp seen (the record's own time field).",
        labels=MODEL_LABELS,
    )
    histograms = [
        family(
            HISTOGRAM,
            f"model_{_histogram_name(h.name)}",
            _HISTOGRAM_HELP[h.name],
            labels=MODEL_LABELS,
        )
        for h in snapshot.histograms
    ]
    g = {
        name: family(GAUGE, f"model_window_{name}", help_text, labels=labels)
        for name, help_text, labels in (
            ("predictions", "Records in the window.", wl),
            ("samples", "Valid values of a field in the window.", fwl),
            ("mean", "Mean of the field's valid values in the window.", fwl),
            ("stddev", "Population standard deviation in the window.", fwl),
            ("min", "Smallest valid value in the window.", fwl),
            ("max", "Largest valid value in the window.", fwl),
            (
                "quantile",
                "Quantile from a log-bucket sketch (bounded relative error).",
                [*fwl, "q"],
            ),
            (
                "category_ratio",
                "Share of each category among valid values.",
                [*MODEL_LABELS, "field", "value", "window"],
            ),
            (
                "anomaly_ratio",
                "Anomalies of a kind per record in the window.",
                [*fl, "kind", "window"],
            ),
            ("ground_truth", "Records with a ground-truth label in the window.", wl),
            ("error_ratio", "Wrong predictions per labelled record in the window.", wl),
            ("label_delay_seconds", "Mean delay from a prediction to its joined label.", wl),
            ("mae", "Regression: mean absolute error of labelled predictions.", wl),
            ("rmse", "Regression: root mean squared error of labelled predictions.", wl),
        )
    }

    for group in snapshot.groups:
        mv = (group.model, group.version)
        t = group.totals
        predictions.add(mv, t.records)
        labelled.add(mv, t.labelled)
        if not layout.regression:  # right-or-wrong has no meaning for a regression model
            errors.add(mv, t.wrong)
        if math.isfinite(t.latest):
            last_ts.add(mv, t.latest)
        if group.join_outcomes:
            for outcome in ("matched", "expired", "unmatched"):
                join.add((*mv, outcome), group.join_outcomes.get(outcome, 0))
        for part in (cells, record_cells):
            anomalies.add_many((*mv, part.fields, part.kinds), part.take(t.anomalies).tolist())
        for c, spec in enumerate(layout.categorical):
            other_code = snapshot.categories[c][-1][0]  # __other__ is last
            overflow.add((*mv, spec.name), int(t.categories[c, other_code]))
        for f, spec in enumerate(layout.numeric):
            clamped.add((*mv, spec.name), int(t.clamped[f]))
        for h, (target, les) in enumerate(zip(histograms, bounds, strict=True)):
            counts = group.histogram_counts[h, : len(les)].cumsum().astype(np.float64)
            target.add_histogram(mv, les, counts.tolist(), float(group.histogram_sums[h]))
        for view in group.windows:
            _window_metrics(g, snapshot, group, view, columns)

    yield predictions
    yield anomalies
    yield overflow
    yield clamped
    yield labelled
    yield errors
    yield join
    yield last_ts
    yield from histograms
    yield from g.values()


def _window_metrics(
    g: Mapping[str, Family],
    snapshot: Snapshot,
    group: GroupSnapshot,
    view: WindowView,
    columns: _Columns,
) -> None:
    layout = snapshot.layout
    mv = (group.model, group.version)
    w = view.spec.name
    s = view.summary
    g["predictions"].add((*mv, w), s.records)
    for f, spec in enumerate(layout.numeric):
        n = int(s.count[f])
        labels = (*mv, spec.name, w)
        g["samples"].add(labels, n)
        if n == 0:
            continue
        g["min"].add(labels, s.low[f])
        g["max"].add(labels, s.high[f])
        mean, stddev = s.mean(f), s.stddev(f)
        if math.isfinite(mean) and math.isfinite(stddev):  # sums of values near 1e308 overflow
            g["mean"].add(labels, mean)
            g["stddev"].add(labels, stddev)
        # Beyond the sketch's range values are clamped; the exact extremes still bound them.
        bounded = np.clip(view.quantiles[f].astype(np.float64), s.low[f], s.high[f]).tolist()
        g["quantile"].add_many((*labels, columns.quantiles), bounded)
    for c, spec in enumerate(layout.categorical):
        counts = s.categories[c]
        n = int(counts.sum())
        g["samples"].add((*mv, spec.name, w), n)
        if n == 0:
            continue
        named = columns.categories[c]
        shares = (counts[named.codes] / n).tolist()  # one division, no numpy scalar per value
        g["category_ratio"].add_many((*mv, spec.name, named.values, w), shares)
    unparsed = int(s.anomalies[-1, Kind.PARSE_ERROR])
    # A record's fields are judged per record; an unparseable line is not a record, so its
    # ratio is per line read (records + unparseable lines), never above 1.
    for part, lines in ((columns.cells, s.records), (columns.record_cells, s.records + unparsed)):
        if lines:
            ratios = (part.take(s.anomalies) / lines).tolist()
            g["anomaly_ratio"].add_many((*mv, part.fields, part.kinds, w), ratios)
    if layout.has_ground_truth:
        g["ground_truth"].add((*mv, w), s.labelled)
        if s.labelled and layout.regression:
            mae, rmse = s.abs_error / s.labelled, math.sqrt(s.sq_error / s.labelled)
            if math.isfinite(mae) and math.isfinite(rmse):
                g["mae"].add((*mv, w), mae)
                g["rmse"].add((*mv, w), rmse)
        elif s.labelled:
            g["error_ratio"].add((*mv, w), s.wrong / s.labelled)
        if s.joined:
            g["label_delay_seconds"].add((*mv, w), s.delay_total / s.joined)


class _Categories:
    """A categorical field's exported values as columns: their codes (to pick their counts) and
    their names (one label column, shared by every model version and window)."""

    def __init__(self, names: list[tuple[int, str]]) -> None:
        self.codes = np.array([code for code, _ in names], dtype=np.intp)
        self.values = [value for _, value in names]


class _AnomalyCells:
    """(field, kind) pairs of the anomaly matrix as columns: the cells to take from a matrix
    and their ``field`` and ``kind`` labels."""

    def __init__(self, rows: list[int], kinds: list[int], fields: list[str]) -> None:
        self.rows = np.array(rows, dtype=np.intp)
        self.kind_codes = np.array(kinds, dtype=np.intp)
        self.fields = fields
        self.kinds = [KIND_NAMES[Kind(kind)] for kind in kinds]

    @classmethod
    def of(cls, pairs: list[tuple[int, str, tuple[Kind, ...]]]) -> _AnomalyCells:
        cells = [(row, int(kind), name) for row, name, kinds in pairs for kind in kinds]
        return cls([c[0] for c in cells], [c[1] for c in cells], [c[2] for c in cells])

    def take(self, matrix: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        taken: npt.NDArray[np.int64] = matrix[self.rows, self.kind_codes]
        return taken


@dataclass(frozen=True)
class _Columns:
    """Label columns that every model version and window shares, made once per render."""

    categories: list[_Categories]
    cells: _AnomalyCells
    record_cells: _AnomalyCells
    quantiles: list[str]


def _histogram_name(field_name: str) -> str:
    return {"prediction": "prediction_score"}.get(field_name, field_name)


_HISTOGRAM_HELP = {
    "latency_seconds": "Prediction latency in seconds.",
    "prediction": "Prediction scores.",
    "confidence": "Prediction confidence.",
}
