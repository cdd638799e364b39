"""Render the state as Prometheus metric families, fresh at every scrape.

Follows prometheus_client's custom-collector pattern: the store knows nothing of Prometheus;
this module walks one ``Snapshot`` (and the latest drift ``Assessment``) and builds families
from them, computing nothing. Only this module and ``server`` import prometheus_client.
"""

from __future__ import annotations

import logging
import math
import platform
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain
from operator import attrgetter

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporter import __version__
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
from exporter.assess import Assessment
from exporter.batch import Layout
from exporter.health import PREFIX, SOURCE_METRICS, Health
from exporter.labels import label_text
from exporter.state import GroupSnapshot, Snapshot, WindowView
from exporter.validate import number_label

log = logging.getLogger(__name__)

MODEL_LABELS = ["model", "version"]


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


class ModelCollector(Collector):
    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        health: Callable[[], Health] | None = None,
        assessment: Callable[[], Assessment] | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._health = health
        self._assessment = assessment
        self._lock = threading.Lock()
        self._render_errors = 0
        self._logged: set[str] = set()

    def describe(self) -> list[Metric]:
        # Returning nothing keeps registration from calling collect() (which would take a
        # snapshot at import or start-up time).
        return []

    def collect(self) -> Iterator[Metric]:
        """Every part of the scrape that can be rendered, whatever one part holds.

        Rendering is total: a part whose families fail to build is left out of this scrape
        (counted in model_exporter_render_errors_total, logged once), never the whole scrape.
        """
        snapshot = self._snapshot()
        parts: list[tuple[str, Callable[[], Iterable[Metric]]]] = [
            ("model", lambda: _model_families(snapshot)),
            ("reference", lambda: _reference_families(snapshot)),
            ("build_info", _build_info),
        ]
        if self._assessment is not None:
            assessment = self._assessment
            parts.insert(1, ("drift", lambda: _drift_families(assessment())))
        if self._health is not None:
            health = self._health
            parts.append(("health", lambda: _health_families(health())))
        for name, build in parts:
            try:
                families = list(build())
            except Exception:
                self._failed(name)
                continue
            for family in families:
                yield self._valid_text(family)
        with self._lock:
            errors = self._render_errors
        yield CounterMetricFamily(
            "model_exporter_render_errors",
            "Parts of a scrape left out because they failed to render.",
            value=errors,
        )

    def _failed(self, part: str) -> None:
        with self._lock:
            self._render_errors += 1
            first = part not in self._logged
            self._logged.add(part)
        if first:  # once per part: a broken value fails every scrape until it leaves the window
            log.exception("cannot render the %s metrics; leaving them out of the scrape", part)

    def _valid_text(self, family: Metric) -> Metric:
        """The exposition is UTF-8: a label value that is not valid Unicode (text from a log or
        a config that ingestion did not repair) would fail the whole scrape. Checked with one
        encode per family (C iteration only); repaired with the ingest's ``label_text``."""
        values = chain.from_iterable(map(dict.values, map(_labels, family.samples)))
        try:
            "".join(values).encode("utf-8")
        except UnicodeEncodeError:
            for sample in family.samples:
                for key, value in sample.labels.items():
                    sample.labels[key] = label_text(value, sys.maxsize)[0]
            with self._lock:
                first = "labels" not in self._logged
                self._logged.add("labels")
            if first:
                log.warning("%s: label values that are not valid UTF-8 repaired", family.name)
        return family


_labels = attrgetter("labels")


def registry(
    snapshot: Callable[[], Snapshot],
    health: Callable[[], Health] | None,
    assessment: Callable[[], Assessment] | None = None,
) -> CollectorRegistry:
    """A registry holding only this collector (no process or platform collectors: the
    sidecar's own health metrics are the ones that say something about it)."""
    result = CollectorRegistry(auto_describe=False)
    result.register(ModelCollector(snapshot, health, assessment))
    return result


def _build_info() -> Iterator[Metric]:
    info = GaugeMetricFamily(
        "model_exporter_build_info",
        "Build information of the model-exporter sidecar.",
        labels=["version", "python_version"],
    )
    info.add_metric([__version__, platform.python_version()], 1.0)
    yield info


def _model_families(snapshot: Snapshot) -> Iterator[Metric]:
    layout = snapshot.layout
    pairs = anomaly_pairs(layout)
    wl = [*MODEL_LABELS, "window"]
    fl = [*MODEL_LABELS, "field"]
    fwl = [*MODEL_LABELS, "field", "window"]

    predictions = CounterMetricFamily(
        "model_predictions", "Prediction records ingested.", labels=MODEL_LABELS
    )
    anomalies = CounterMetricFamily(
        "model_anomalies", "Bad or suspicious values by field and kind.", labels=[*fl, "kind"]
    )
    labelled = CounterMetricFamily(
        "model_ground_truth", "Records with a ground-truth label.", labels=MODEL_LABELS
    )
    errors = CounterMetricFamily(
        "model_prediction_errors", "Labelled predictions that were wrong.", labels=MODEL_LABELS
    )
    overflow = CounterMetricFamily(
        "model_category_overflow",
        "Categorical values past the field's category cap, exported as __other__.",
        labels=fl,
    )
    clamped = CounterMetricFamily(
        "model_sketch_clamped",
        "Numeric values outside the field's sketch range: their quantiles are not within bound.",
        labels=fl,
    )
    join = CounterMetricFamily(
        "model_ground_truth_join",
        "Predictions waiting for a late label, by how they left the join buffer.",
        labels=[*MODEL_LABELS, "outcome"],
    )
    last_ts = GaugeMetricFamily(
        "model_last_record_timestamp_seconds",
        "Largest record timestamp seen (the record's own time field).",
        labels=MODEL_LABELS,
    )
    histograms = [
        HistogramMetricFamily(
            f"model_{_histogram_name(h.name)}",
            _HISTOGRAM_HELP[h.name],
            labels=MODEL_LABELS,
        )
        for h in snapshot.histograms
    ]
    g = {
        name: GaugeMetricFamily(f"model_window_{name}", help_text, labels=labels)
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
        mv = [group.model, group.version]
        t = group.totals
        predictions.add_metric(mv, t.records)
        labelled.add_metric(mv, t.labelled)
        errors.add_metric(mv, t.wrong)
        if math.isfinite(t.latest):
            last_ts.add_metric(mv, t.latest)
        if group.join_outcomes:
            for outcome in ("matched", "expired", "unmatched"):
                join.add_metric([*mv, outcome], group.join_outcomes.get(outcome, 0))
        for row, name, kinds in pairs:
            for kind in kinds:
                anomalies.add_metric([*mv, name, KIND_NAMES[kind]], int(t.anomalies[row, kind]))
        for c, spec in enumerate(layout.categorical):
            other_code = snapshot.categories[c][-1][0]  # __other__ is last
            overflow.add_metric([*mv, spec.name], int(t.categories[c, other_code]))
        for f, spec in enumerate(layout.numeric):
            clamped.add_metric([*mv, spec.name], int(t.clamped[f]))
        for h, (family, histogram) in enumerate(zip(histograms, snapshot.histograms, strict=True)):
            counts = group.histogram_counts[h, : len(histogram.bounds) + 1].cumsum()
            buckets = [
                (number_label(b), float(c)) for b, c in zip(histogram.bounds, counts, strict=False)
            ]
            buckets.append(("+Inf", float(counts[-1])))
            family.add_metric(mv, buckets, float(group.histogram_sums[h]))
        for view in group.windows:
            _window_metrics(g, snapshot, group, view, pairs)

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
    g: Mapping[str, GaugeMetricFamily],
    snapshot: Snapshot,
    group: GroupSnapshot,
    view: WindowView,
    pairs: list[tuple[int, str, tuple[Kind, ...]]],
) -> None:
    layout = snapshot.layout
    mv = [group.model, group.version]
    w = view.spec.name
    s = view.summary
    g["predictions"].add_metric([*mv, w], s.records)
    for f, spec in enumerate(layout.numeric):
        n = int(s.count[f])
        labels = [*mv, spec.name, w]
        g["samples"].add_metric(labels, n)
        if n == 0:
            continue
        g["min"].add_metric(labels, s.low[f])
        g["max"].add_metric(labels, s.high[f])
        mean, stddev = s.mean(f), s.stddev(f)
        if math.isfinite(mean) and math.isfinite(stddev):  # sums of values near 1e308 overflow
            g["mean"].add_metric(labels, mean)
            g["stddev"].add_metric(labels, stddev)
        for q, value in zip(snapshot.quantiles, view.quantiles[f], strict=True):
            # Beyond the sketch's range values are clamped; the exact extremes still bound them.
            bounded = min(max(float(value), s.low[f]), s.high[f])
            g["quantile"].add_metric([*labels, number_label(q)], bounded)
    for c, spec in enumerate(layout.categorical):
        counts = s.categories[c]
        n = int(counts.sum())
        g["samples"].add_metric([*mv, spec.name, w], n)
        if n == 0:
            continue
        for code, value in snapshot.categories[c]:
            g["category_ratio"].add_metric([*mv, spec.name, value, w], counts[code] / n)
    unparsed = int(s.anomalies[-1, Kind.PARSE_ERROR])
    for row, name, kinds in pairs:
        # A record's fields are judged per record; an unparseable line is not a record, so
        # its ratio is per line read (records + unparseable lines), never above 1.
        lines = s.records + unparsed if name == "record" else s.records
        if lines == 0:
            continue
        for kind in kinds:
            ratio = s.anomalies[row, kind] / lines
            g["anomaly_ratio"].add_metric([*mv, name, KIND_NAMES[kind], w], ratio)
    if layout.has_ground_truth:
        g["ground_truth"].add_metric([*mv, w], s.labelled)
        if s.labelled and layout.regression:
            mae, rmse = s.abs_error / s.labelled, math.sqrt(s.sq_error / s.labelled)
            if math.isfinite(mae) and math.isfinite(rmse):
                g["mae"].add_metric([*mv, w], mae)
                g["rmse"].add_metric([*mv, w], rmse)
        elif s.labelled:
            g["error_ratio"].add_metric([*mv, w], s.wrong / s.labelled)
        if s.joined:
            g["label_delay_seconds"].add_metric([*mv, w], s.delay_total / s.joined)


def _drift_families(assessment: Assessment) -> Iterator[Metric]:
    """Drift statistics beside their thresholds, so alerts compare the two series directly;
    as assessed at the last step (``assess``), not recomputed per scrape."""
    fwl = [*MODEL_LABELS, "field", "window"]
    families: dict[str, GaugeMetricFamily] = {}
    for statistic, help_text in (
        ("psi", "Population stability index against the reference bins."),
        ("ks", "Kolmogorov-Smirnov statistic against the reference CDF."),
        ("js", "Jensen-Shannon distance (base 2) of category shares."),
    ):
        families[statistic] = GaugeMetricFamily(
            f"model_window_drift_{statistic}", help_text, labels=fwl
        )
        families[f"{statistic}_threshold"] = GaugeMetricFamily(
            f"model_window_drift_{statistic}_threshold",
            f"Threshold for model_window_drift_{statistic}: max(floor, critical value at alpha/d).",
            labels=fwl,
        )
    detected = GaugeMetricFamily(
        "model_window_drift_detected",
        "1 when the statistic exceeds its threshold (exported only with enough samples).",
        labels=[*fwl, "statistic"],
    )
    error_gap = GaugeMetricFamily(
        "model_window_error_ratio_gap",
        "Production error ratio divided by the development error ratio.",
        labels=[*MODEL_LABELS, "window"],
    )
    mae_gap = GaugeMetricFamily(
        "model_window_mae_gap",
        "Regression: production MAE divided by the development MAE.",
        labels=[*MODEL_LABELS, "window"],
    )
    rmse_gap = GaugeMetricFamily(
        "model_window_rmse_gap",
        "Regression: production RMSE divided by the development RMSE.",
        labels=[*MODEL_LABELS, "window"],
    )
    confidence_gap = GaugeMetricFamily(
        "model_window_confidence_gap",
        "Production mean confidence divided by the development mean confidence.",
        labels=[*MODEL_LABELS, "window"],
    )
    for window in assessment.windows.values():
        mvw = [window.model, window.version, window.window]
        for found in window.drift:
            labels = [window.model, window.version, found.field, window.window]
            families[found.statistic].add_metric(labels, found.verdict.statistic)
            families[f"{found.statistic}_threshold"].add_metric(labels, found.verdict.threshold)
            detected.add_metric([*labels, found.statistic], 1.0 if found.verdict.drifted else 0.0)
        for family, value in (
            (error_gap, window.gaps.error_ratio),
            (confidence_gap, window.gaps.confidence),
            (mae_gap, window.gaps.mae),
            (rmse_gap, window.gaps.rmse),
        ):
            if value is not None:
                family.add_metric(mvw, value)
    yield from families.values()
    yield detected
    yield error_gap
    yield mae_gap
    yield rmse_gap
    yield confidence_gap


def _reference_families(snapshot: Snapshot) -> Iterator[Metric]:
    """The reference values themselves, labelled like each live model version, so Grafana
    draws development and production side by side and PromQL can divide one by the other."""
    reference = snapshot.reference
    fl = [*MODEL_LABELS, "field"]
    info = GaugeMetricFamily(
        "model_reference_info",
        "The loaded reference profile.",
        labels=[*MODEL_LABELS, "hash", "created"],
    )
    samples = GaugeMetricFamily(
        "model_reference_samples", "Records the reference was built from.", labels=MODEL_LABELS
    )
    moments = {
        name: GaugeMetricFamily(
            f"model_reference_{name}", f"Reference {name} of the field.", labels=fl
        )
        for name in ("mean", "stddev", "min", "max")
    }
    quantile = GaugeMetricFamily(
        "model_reference_quantile", "Reference quantile of the field.", labels=[*fl, "q"]
    )
    ratio = GaugeMetricFamily(
        "model_reference_category_ratio", "Reference share of each category.", labels=[*fl, "value"]
    )
    error = GaugeMetricFamily(
        "model_reference_error_ratio", "Development error ratio.", labels=MODEL_LABELS
    )
    residuals = {
        name: GaugeMetricFamily(
            f"model_reference_{name}",
            f"Regression: development {name.upper()}.",
            labels=MODEL_LABELS,
        )
        for name in ("mae", "rmse")
    }
    if reference is not None:
        for group in snapshot.groups:
            mv = [group.model, group.version]
            info.add_metric([*mv, reference.hash, reference.created], 1.0)
            samples.add_metric(mv, reference.records)
            for name, numeric in reference.numeric.items():
                for moment, family in moments.items():
                    family.add_metric([*mv, name], getattr(numeric, moment))
                for q, q_value in numeric.quantiles.items():
                    quantile.add_metric([*mv, name, q], q_value)
            for name, categorical in reference.categorical.items():
                for category, share in categorical.shares.items():
                    ratio.add_metric([*mv, name, category], share)
            if reference.error_ratio is not None:
                error.add_metric(mv, reference.error_ratio)
            for name, family in residuals.items():
                value = getattr(reference, name)
                if value is not None:
                    family.add_metric(mv, value)
    yield info
    yield samples
    yield from moments.values()
    yield quantile
    yield ratio
    yield error
    yield from residuals.values()


def _histogram_name(field_name: str) -> str:
    return {"prediction": "prediction_score"}.get(field_name, field_name)


_HISTOGRAM_HELP = {
    "latency_seconds": "Prediction latency in seconds.",
    "prediction": "Prediction scores.",
    "confidence": "Prediction confidence.",
}


def _health_families(health: Health) -> Iterator[Metric]:
    p = PREFIX
    for metric in SOURCE_METRICS:
        family_type = CounterMetricFamily if metric.type == "counter" else GaugeMetricFamily
        family = family_type(p + metric.name, metric.help, labels=["source"])
        for source, stats in health.sources.items():
            family.add_metric([source], float(getattr(stats, metric.attribute)))
        yield family
    up = GaugeMetricFamily(
        f"{p}source_up", "1 when a file of the source is present and readable.", labels=["source"]
    )
    for source, stats in health.sources.items():
        up.add_metric([source], 1.0 if stats.files_present > 0 else 0.0)
    yield up
    parse = CounterMetricFamily(
        f"{p}parse_errors",
        "Lines that are not a JSON object, by reason.",
        labels=["source", "reason"],
    )
    for (source, reason), count in sorted(health.parse_errors.items()):
        parse.add_metric([source, reason], count)
    yield parse
    last = GaugeMetricFamily(
        f"{p}last_read_timestamp_seconds", "Wall time the last line was read.", labels=["source"]
    )
    for source, when in health.last_read.items():
        last.add_metric([source], when)
    yield last
    yield CounterMetricFamily(
        f"{p}checkpoint_errors",
        "Corrupt or unwritable positions file.",
        value=health.checkpoint_errors,
    )
    yield CounterMetricFamily(
        f"{p}ingest_seconds",
        "Time spent parsing lines and updating state.",
        value=health.ingest_seconds,
    )
    cut = CounterMetricFamily(
        f"{p}label_values_truncated",
        "Values from the log cut to max_label_value_bytes before becoming a label value.",
        labels=["field"],
    )
    for name, count in health.labels_cut.items():
        cut.add_metric([name], count)
    yield cut
    reloads = CounterMetricFamily(
        f"{p}reference_reloads", "Reference profile loads by outcome.", labels=["outcome"]
    )
    for outcome in ("ok", "error"):
        reloads.add_metric([outcome], health.reference_reloads.get(outcome, 0))
    yield reloads
