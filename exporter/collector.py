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
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from itertools import chain

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
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
from exporter.cells import ReferenceCells
from exporter.compare import FleetThreshold
from exporter.exposition import COUNTER, GAUGE, HISTOGRAM, Family, Writer, encode
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
        self._labels = CategoryLabels()

    def describe(self) -> list[Metric]:
        # Returning nothing keeps registration from calling collect() (which would take a
        # snapshot at import or start-up time).
        return []

    def collect(self) -> Iterator[Metric]:
        """The prometheus_client view of ``families`` (for a registry and its encoders).

        prometheus_client's encoders fail the whole scrape on a label value that is not valid
        UTF-8 (our own writer never does): values that ingestion did not repair are repaired
        here with the ingest's ``label_text``."""
        for family in self.families():
            metric = Metric(family.name, family.help, family.type)
            for suffix, names, values, value in family.rows:
                labels = dict(zip(names, map(_valid_text, values), strict=True))
                metric.add_sample(family.name + suffix, labels, value)
            yield metric

    def registry(self) -> CollectorRegistry:
        """A registry holding only this collector (no process or platform collectors: the
        sidecar's own health metrics are the ones that say something about it)."""
        result = CollectorRegistry(auto_describe=False)
        result.register(self)
        return result

    def families(self) -> Iterator[Family]:
        yield from self.model_families()
        yield from self.health_families()

    def model_families(self) -> Iterator[Family]:
        """Everything the state and the assessment decide: unchanged until a record arrives,
        a bucket turns or the windows are judged again.

        Rendering is total: a part whose families fail to build is left out of this scrape
        (counted in model_exporter_render_errors_total, logged once), never the whole scrape.
        """
        snapshot = self._snapshot()
        parts: list[tuple[str, Callable[[], Iterable[Family]]]] = [
            ("model", lambda: _model_families(snapshot, self._labels)),
            ("reference", lambda: _reference_families(snapshot)),
            ("build_info", _build_info),
        ]
        latest = None
        if self._assessment is not None:
            latest = self._assessment()
            assessed = latest
            parts.insert(1, ("drift", lambda: _drift_families(assessed)))
        parts.insert(-1, ("fleet", lambda: _cell_families(snapshot, latest)))
        yield from self._parts(parts)

    def health_families(self) -> Iterator[Family]:
        """The sidecar's own counters (rendered for every body, never cached)."""
        if self._health is not None:
            health = self._health
            yield from self._parts([("health", lambda: _health_families(health()))])
        with self._lock:
            errors = self._render_errors
        yield _family(
            COUNTER,
            "model_exporter_render_errors",
            "Parts of a scrape left out because they failed to render.",
            value=errors,
        )

    def _parts(self, parts: list[tuple[str, Callable[[], Iterable[Family]]]]) -> Iterator[Family]:
        for name, build in parts:
            try:
                families = list(build())
            except Exception:
                self._failed(name)
                continue
            yield from families

    def _failed(self, part: str) -> None:
        with self._lock:
            self._render_errors += 1
            first = part not in self._logged
            self._logged.add(part)
        if first:  # once per part: a broken value fails every scrape until it leaves the window
            log.exception("cannot render the %s metrics; leaving them out of the scrape", part)


def _valid_text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return label_text(value, sys.maxsize)[0]
    return value


def registry(
    snapshot: Callable[[], Snapshot],
    health: Callable[[], Health] | None,
    assessment: Callable[[], Assessment] | None = None,
) -> CollectorRegistry:
    return ModelCollector(snapshot, health, assessment).registry()


class Bodies:
    """``/metrics`` bodies whose model part is rendered once per version and kept.

    ``version`` must be equal between two calls only if the model part would render the same
    (a record ingested, a bucket turned, a new assessment: a new version), and is read before
    the render it names, so a change in between only costs one more render. The sidecar's
    health part (and the server's own families) is small and rendered for every body.
    """

    def __init__(self, collector: ModelCollector, version: Callable[[], Hashable]) -> None:
        self._collector = collector
        self._version = version
        self._writer = Writer()
        self._lock = threading.Lock()
        self._cached: dict[bool, tuple[Hashable, bytes]] = {}
        self.renders = 0  # model-part renders so far (the other bodies reused one)

    def render(self, openmetrics: bool, extra: Iterable[Family] = ()) -> bytes:
        with self._lock:
            key = self._version()
            cached = self._cached.get(openmetrics)
            if cached is None or cached[0] != key:
                model = self._writer.render(self._collector.model_families(), openmetrics)
                cached = self._cached[openmetrics] = (key, encode(model))
                self.renders += 1
            rest = chain(self._collector.health_families(), extra)
            tail = encode(self._writer.render(rest, openmetrics))
        return cached[1] + tail + (b"# EOF\n" if openmetrics else b"")


def _family(
    kind: str,
    name: str,
    help_text: str,
    labels: Sequence[str] = (),
    value: float | None = None,
) -> Family:
    family = Family(name, kind, help_text, tuple(labels))
    if value is not None:
        family.add((), value)
    return family


def _build_info() -> Iterator[Family]:
    info = _family(
        GAUGE,
        "model_exporter_build_info",
        "Build information of the model-exporter sidecar.",
        labels=["version", "python_version"],
    )
    info.add([__version__, platform.python_version()], 1.0)
    yield info


class CategoryLabels:
    """The label values of each category-ratio series, kept between scrapes.

    They are most of a large exposition (one series per category value, field, window and
    model version), and making ~40k tuples per scrape cost more in garbage-collector passes
    than in making them. A vocabulary only grows, so the names of one (model, version, field,
    window) are the same while their count is; only the ingest thread adds names, and two
    renders at once at worst build one list twice.
    """

    def __init__(self) -> None:
        self._kept: dict[tuple[str, str, str, str], list[tuple[str, ...]]] = {}

    def of(
        self, model: str, version: str, field: str, window: str, names: list[tuple[int, str]]
    ) -> list[tuple[str, ...]]:
        key = (model, version, field, window)
        labels = self._kept.get(key)
        if labels is None or len(labels) != len(names):
            labels = self._kept[key] = [(model, version, field, v, window) for _, v in names]
        return labels


def _model_families(snapshot: Snapshot, kept: CategoryLabels) -> Iterator[Family]:
    layout = snapshot.layout
    pairs = anomaly_pairs(layout)
    wl = [*MODEL_LABELS, "window"]
    fl = [*MODEL_LABELS, "field"]
    fwl = [*MODEL_LABELS, "field", "window"]

    predictions = _family(
        COUNTER, "model_predictions", "Prediction records ingested.", labels=MODEL_LABELS
    )
    anomalies = _family(
        COUNTER,
        "model_anomalies",
        "Bad or suspicious values by field and kind.",
        labels=[*fl, "kind"],
    )
    labelled = _family(
        COUNTER, "model_ground_truth", "Records with a ground-truth label.", labels=MODEL_LABELS
    )
    errors = _family(
        COUNTER,
        "model_prediction_errors",
        "Labelled predictions that were wrong.",
        labels=MODEL_LABELS,
    )
    overflow = _family(
        COUNTER,
        "model_category_overflow",
        "Categorical values past the field's category cap, exported as __other__.",
        labels=fl,
    )
    clamped = _family(
        COUNTER,
        "model_sketch_clamped",
        "Numeric values outside the field's sketch range: their quantiles are not within bound.",
        labels=fl,
    )
    join = _family(
        COUNTER,
        "model_ground_truth_join",
        "Predictions waiting for a late label, by how they left the join buffer.",
        labels=[*MODEL_LABELS, "outcome"],
    )
    last_ts = _family(
        GAUGE,
        "model_last_record_timestamp_seconds",
        "Largest record timestamp seen (the record's own time field).",
        labels=MODEL_LABELS,
    )
    histograms = [
        _family(
            HISTOGRAM,
            f"model_{_histogram_name(h.name)}",
            _HISTOGRAM_HELP[h.name],
            labels=MODEL_LABELS,
        )
        for h in snapshot.histograms
    ]
    g = {
        name: _family(GAUGE, f"model_window_{name}", help_text, labels=labels)
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
        predictions.add(mv, t.records)
        labelled.add(mv, t.labelled)
        if not layout.regression:  # right-or-wrong has no meaning for a regression model
            errors.add(mv, t.wrong)
        if math.isfinite(t.latest):
            last_ts.add(mv, t.latest)
        if group.join_outcomes:
            for outcome in ("matched", "expired", "unmatched"):
                join.add([*mv, outcome], group.join_outcomes.get(outcome, 0))
        for row, name, kinds in pairs:
            for kind in kinds:
                anomalies.add([*mv, name, KIND_NAMES[kind]], int(t.anomalies[row, kind]))
        for c, spec in enumerate(layout.categorical):
            other_code = snapshot.categories[c][-1][0]  # __other__ is last
            overflow.add([*mv, spec.name], int(t.categories[c, other_code]))
        for f, spec in enumerate(layout.numeric):
            clamped.add([*mv, spec.name], int(t.clamped[f]))
        for h, (family, histogram) in enumerate(zip(histograms, snapshot.histograms, strict=True)):
            counts = group.histogram_counts[h, : len(histogram.bounds) + 1].cumsum()
            buckets = [
                (number_label(b), float(c)) for b, c in zip(histogram.bounds, counts, strict=False)
            ]
            buckets.append(("+Inf", float(counts[-1])))
            family.add_histogram(mv, buckets, float(group.histogram_sums[h]))
        for view in group.windows:
            _window_metrics(g, snapshot, group, view, pairs, kept)

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
    pairs: list[tuple[int, str, tuple[Kind, ...]]],
    kept: CategoryLabels,
) -> None:
    layout = snapshot.layout
    mv = [group.model, group.version]
    w = view.spec.name
    s = view.summary
    g["predictions"].add([*mv, w], s.records)
    for f, spec in enumerate(layout.numeric):
        n = int(s.count[f])
        labels = [*mv, spec.name, w]
        g["samples"].add(labels, n)
        if n == 0:
            continue
        g["min"].add(labels, s.low[f])
        g["max"].add(labels, s.high[f])
        mean, stddev = s.mean(f), s.stddev(f)
        if math.isfinite(mean) and math.isfinite(stddev):  # sums of values near 1e308 overflow
            g["mean"].add(labels, mean)
            g["stddev"].add(labels, stddev)
        for q, value in zip(snapshot.quantiles, view.quantiles[f], strict=True):
            # Beyond the sketch's range values are clamped; the exact extremes still bound them.
            bounded = min(max(float(value), s.low[f]), s.high[f])
            g["quantile"].add([*labels, number_label(q)], bounded)
    for c, spec in enumerate(layout.categorical):
        counts = s.categories[c]
        n = int(counts.sum())
        g["samples"].add([*mv, spec.name, w], n)
        if n == 0:
            continue
        shares = (counts / n).tolist()  # one division, not a numpy scalar per value
        names = snapshot.categories[c]
        g["category_ratio"].add_many(
            kept.of(group.model, group.version, spec.name, w, names),
            [shares[code] for code, _ in names],
        )
    unparsed = int(s.anomalies[-1, Kind.PARSE_ERROR])
    for row, name, kinds in pairs:
        # A record's fields are judged per record; an unparseable line is not a record, so
        # its ratio is per line read (records + unparseable lines), never above 1.
        lines = s.records + unparsed if name == "record" else s.records
        if lines == 0:
            continue
        for kind in kinds:
            ratio = s.anomalies[row, kind] / lines
            g["anomaly_ratio"].add([*mv, name, KIND_NAMES[kind], w], ratio)
    if layout.has_ground_truth:
        g["ground_truth"].add([*mv, w], s.labelled)
        if s.labelled and layout.regression:
            mae, rmse = s.abs_error / s.labelled, math.sqrt(s.sq_error / s.labelled)
            if math.isfinite(mae) and math.isfinite(rmse):
                g["mae"].add([*mv, w], mae)
                g["rmse"].add([*mv, w], rmse)
        elif s.labelled:
            g["error_ratio"].add([*mv, w], s.wrong / s.labelled)
        if s.joined:
            g["label_delay_seconds"].add([*mv, w], s.delay_total / s.joined)


def _drift_families(assessment: Assessment) -> Iterator[Family]:
    """Drift statistics beside their thresholds, so alerts compare the two series directly;
    as assessed at the last step (``assess``), not recomputed per scrape."""
    fwl = [*MODEL_LABELS, "field", "window"]
    families: dict[str, Family] = {}
    for statistic, help_text in (
        ("psi", "Population stability index against the reference bins."),
        ("ks", "Kolmogorov-Smirnov statistic against the reference CDF."),
        ("js", "Jensen-Shannon distance (base 2) of category shares."),
    ):
        families[statistic] = _family(
            GAUGE, f"model_window_drift_{statistic}", help_text, labels=fwl
        )
        families[f"{statistic}_threshold"] = _family(
            GAUGE,
            f"model_window_drift_{statistic}_threshold",
            f"Threshold for model_window_drift_{statistic}: max(floor, critical value at alpha/d).",
            labels=fwl,
        )
    detected = _family(
        GAUGE,
        "model_window_drift_detected",
        "1 when the statistic exceeds its threshold (exported only with enough samples).",
        labels=[*fwl, "statistic"],
    )
    error_gap = _family(
        GAUGE,
        "model_window_error_ratio_gap",
        "Production error ratio divided by the development error ratio.",
        labels=[*MODEL_LABELS, "window"],
    )
    mae_gap = _family(
        GAUGE,
        "model_window_mae_gap",
        "Regression: production MAE divided by the development MAE.",
        labels=[*MODEL_LABELS, "window"],
    )
    rmse_gap = _family(
        GAUGE,
        "model_window_rmse_gap",
        "Regression: production RMSE divided by the development RMSE.",
        labels=[*MODEL_LABELS, "window"],
    )
    confidence_gap = _family(
        GAUGE,
        "model_window_confidence_gap",
        "Production mean confidence divided by the development mean confidence.",
        labels=[*MODEL_LABELS, "window"],
    )
    estimated = _family(
        GAUGE,
        "model_window_estimated_error_ratio",
        "Error ratio implied by the window's confidence under the development calibration.",
        labels=[*MODEL_LABELS, "window"],
    )
    for window in assessment.windows.values():
        mvw = [window.model, window.version, window.window]
        for found in window.drift:
            labels = [window.model, window.version, found.field, window.window]
            families[found.statistic].add(labels, found.verdict.statistic)
            families[f"{found.statistic}_threshold"].add(labels, found.verdict.threshold)
            detected.add([*labels, found.statistic], 1.0 if found.verdict.drifted else 0.0)
        for family, value in (
            (error_gap, window.gaps.error_ratio),
            (confidence_gap, window.gaps.confidence),
            (mae_gap, window.gaps.mae),
            (rmse_gap, window.gaps.rmse),
            (estimated, window.estimated_error_ratio),  # needs no label: that is its point
        ):
            if value is not None:
                family.add(mvw, value)
    yield from families.values()
    yield detected
    yield error_gap
    yield mae_gap
    yield rmse_gap
    yield confidence_gap
    yield estimated


def _reference_families(snapshot: Snapshot) -> Iterator[Family]:
    """The reference values themselves, labelled like each live model version, so Grafana
    draws development and production side by side and PromQL can divide one by the other."""
    reference = snapshot.reference
    fl = [*MODEL_LABELS, "field"]
    info = _family(
        GAUGE,
        "model_reference_info",
        "The loaded reference profile.",
        labels=[*MODEL_LABELS, "hash", "created"],
    )
    samples = _family(
        GAUGE,
        "model_reference_samples",
        "Records the reference was built from.",
        labels=MODEL_LABELS,
    )
    moments = {
        name: _family(
            GAUGE, f"model_reference_{name}", f"Reference {name} of the field.", labels=fl
        )
        for name in ("mean", "stddev", "min", "max")
    }
    quantile = _family(
        GAUGE, "model_reference_quantile", "Reference quantile of the field.", labels=[*fl, "q"]
    )
    ratio = _family(
        GAUGE,
        "model_reference_category_ratio",
        "Reference share of each category.",
        labels=[*fl, "value"],
    )
    error = _family(
        GAUGE, "model_reference_error_ratio", "Development error ratio.", labels=MODEL_LABELS
    )
    residuals = {
        name: _family(
            GAUGE,
            f"model_reference_{name}",
            f"Regression: development {name.upper()}.",
            labels=MODEL_LABELS,
        )
        for name in ("mae", "rmse")
    }
    if reference is not None:
        for group in snapshot.groups:
            mv = [group.model, group.version]
            info.add([*mv, reference.hash, reference.created], 1.0)
            samples.add(mv, reference.records)
            for name, numeric in reference.numeric.items():
                for moment, family in moments.items():
                    family.add([*mv, name], getattr(numeric, moment))
                for q, q_value in numeric.quantiles.items():
                    quantile.add([*mv, name, q], q_value)
            for name, categorical in reference.categorical.items():
                for category, share in categorical.shares.items():
                    ratio.add([*mv, name, category], share)
            if reference.error_ratio is not None:
                error.add(mv, reference.error_ratio)
            for name, family in residuals.items():
                value = getattr(reference, name)
                if value is not None:
                    family.add(mv, value)
    yield info
    yield samples
    yield from moments.values()
    yield quantile
    yield ratio
    yield error
    yield from residuals.values()


def _cell_families(snapshot: Snapshot, assessment: Assessment | None) -> Iterator[Family]:
    """Records per reference cell and the reference's side of the fleet statistics, every series
    labelled with the profile's hash: recording rules add the counters of the replicas that
    share a profile and compute the fleet's PSI and JS with the sidecar's own thresholds
    (docs/drift.md, "The fleet"). A replica with another profile forms a pool of its own."""
    fh = [*MODEL_LABELS, "field", "reference_hash"]
    records = _family(
        COUNTER,
        "model_field_bin_records",
        "Records per reference cell (PSI bin or kept category) since the profile was loaded.",
        labels=[*fh, "bin"],
    )
    share = _family(
        GAUGE,
        "model_reference_bin_share",
        "Development share of the reference cell: [lower, upper) of a numeric field, the "
        "category (value) a categorical cell starts with.",
        labels=[*fh, "bin", "lower", "upper", "value"],
    )
    critical = _family(
        GAUGE,
        "model_reference_drift_critical",
        "Chi-squared factor of the field's critical value at alpha/d: PSI's is "
        "factor*(1/n+1/m), JS's sqrt(factor*(1/n+1/m)).",
        labels=[*fh, "statistic"],
    )
    floor = _family(
        GAUGE,
        "model_drift_floor",
        "Practical floor of the field's drift statistic.",
        labels=[*fh, "statistic"],
    )
    reference_samples = _family(
        GAUGE,
        "model_reference_drift_samples",
        "Development values the field's shares were measured on (the m of the critical value).",
        labels=fh,
    )
    min_samples = _family(
        GAUGE,
        "model_drift_min_samples",
        "Live values the field needs before a drift verdict.",
        labels=fh,
    )
    cells = snapshot.cells
    fleet = _fleet_thresholds(cells, assessment)
    if cells is not None:
        for group in snapshot.groups:
            for field, counts in zip(cells.fields, group.cells, strict=True):
                labels = [group.model, group.version, field.name, cells.hash]
                for b in range(field.size):
                    records.add([*labels, str(b)], float(counts[b]))
                    if field.statistic == "psi":
                        lower, upper = (_bound(v) for v in field.bounds[b])
                        names = [lower, upper, ""]
                    else:
                        names = ["", "", field.values[b]]
                    share.add([*labels, str(b), *names], float(field.shares[b]))
                reference_samples.add(labels, field.reference_count)
                threshold = fleet.get(field.name)
                if threshold is not None:
                    critical.add([*labels, field.statistic], threshold.critical)
                    floor.add([*labels, field.statistic], threshold.floor)
                    min_samples.add(labels, threshold.required)
    yield records
    yield share
    yield critical
    yield floor
    yield reference_samples
    yield min_samples


def _fleet_thresholds(
    cells: ReferenceCells | None, assessment: Assessment | None
) -> dict[str, FleetThreshold]:
    """Per field, the thresholds' parts assessed for this very profile (after a reload they
    are left out until the next assessment step)."""
    if cells is None or assessment is None or assessment.reference is None:
        return {}
    if assessment.reference.hash != cells.hash:
        return {}
    return {t.field: t for t in assessment.fleet}


def _bound(value: float) -> str:
    """A cell bound as a label, spelled like Prometheus' ``le`` at infinity."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return number_label(value)


def _histogram_name(field_name: str) -> str:
    return {"prediction": "prediction_score"}.get(field_name, field_name)


_HISTOGRAM_HELP = {
    "latency_seconds": "Prediction latency in seconds.",
    "prediction": "Prediction scores.",
    "confidence": "Prediction confidence.",
}


def _health_families(health: Health) -> Iterator[Family]:
    p = PREFIX
    for metric in SOURCE_METRICS:
        family = _family(metric.type, p + metric.name, metric.help, labels=["source"])
        for source, stats in health.sources.items():
            family.add([source], float(getattr(stats, metric.attribute)))
        yield family
    up = _family(
        GAUGE,
        f"{p}source_up",
        "1 when a file of the source is present and readable.",
        labels=["source"],
    )
    for source, stats in health.sources.items():
        up.add([source], 1.0 if stats.files_present > 0 else 0.0)
    yield up
    parse = _family(
        COUNTER,
        f"{p}parse_errors",
        "Lines that are not a JSON object, by reason.",
        labels=["source", "reason"],
    )
    for (source, reason), count in sorted(health.parse_errors.items()):
        parse.add([source, reason], count)
    yield parse
    last = _family(
        GAUGE,
        f"{p}last_read_timestamp_seconds",
        "Wall time the last line was read.",
        labels=["source"],
    )
    for source, when in health.last_read.items():
        last.add([source], when)
    yield last
    yield _family(
        COUNTER,
        f"{p}checkpoint_errors",
        "Corrupt or unwritable positions file.",
        value=float(health.checkpoint_errors),
    )
    yield _family(
        COUNTER,
        f"{p}ingest_seconds",
        "Time spent parsing lines and updating state.",
        value=float(health.ingest_seconds),
    )
    cut = _family(
        COUNTER,
        f"{p}label_values_truncated",
        "Values from the log cut to max_label_value_bytes before becoming a label value.",
        labels=["field"],
    )
    for name, count in health.labels_cut.items():
        cut.add([name], count)
    yield cut
    reloads = _family(
        COUNTER, f"{p}reference_reloads", "Reference profile loads by outcome.", labels=["outcome"]
    )
    for outcome in ("ok", "error"):
        reloads.add([outcome], health.reference_reloads.get(outcome, 0))
    yield reloads
