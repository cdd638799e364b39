# ruff: noqa: E501  (PromQL expressions and their descriptions read better unbroken)
"""Generate the bundled Grafana dashboards (grafana/dashboards/*.json).

The dashboards are written as code so that every panel gets the same datasource reference,
a unit, thresholds and a description, and so that the many per-field panels stay consistent.
They are built with Grafana's own typed SDK (grafana-foundation-sdk, the build for the Grafana
version compose.yaml runs): every panel option, field config and query goes through a typed
builder, so a misspelt option is an AttributeError and a wrong value a mypy error (mypy checks
this file), in the test command rather than in a user's Grafana.
Edit this file, then run ``python scripts/gen_dashboards.py``; ``--check`` exits 1 when the
committed JSON differs from what this file generates (the test suite runs it).

Threshold *values* that are tunable live in config/prometheus/rules/thresholds.yml and are drawn
here as dashed series (``model_alert:*``, resolved per model), never copied into the dashboards.
Panels that only a regression model fills (MAE, RMSE) go in rows whose title starts with
"Regression"; the tests query those for a regression model and all others for a classifier.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dashboard_b
from grafana_foundation_sdk.builders import prometheus as prometheus_b
from grafana_foundation_sdk.builders import stat as stat_b
from grafana_foundation_sdk.builders import table as table_b
from grafana_foundation_sdk.builders import timeseries as timeseries_b
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dash
from grafana_foundation_sdk.models import prometheus as prom

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "grafana" / "dashboards"

DS = dash.DataSourceRef(type_val="prometheus", uid="${datasource}")
GREEN, ORANGE, RED = "green", "orange", "red"

# Label matchers shared by the panels. Recording-rule series carry only model/version.
SIDECAR = 'job=~"$job", instance=~"$instance"'
FLEET_RAW = f'{SIDECAR}, model=~"$model", version=~"$version"'
FLEET_REC = 'model=~"$model", version=~"$version"'
# The resolved thresholds (model_alert:*:per_model) carry only model (and field), no version.
FLEET_MODEL = 'model=~"$model"'
ONE_RAW = f'{SIDECAR}, model="$model", version=~"$version"'
ONE_REC = 'model="$model", version=~"$version"'
# Pooling a per-replica window ratio weighted by its denominator gives the exact fleet ratio.
REPLICA = "job, instance, model, version, window"

Thresholds = dashboard_b.ThresholdsConfig
Query = prometheus_b.Dataquery
Panel = timeseries_b.Panel | stat_b.Panel | table_b.Panel


@dataclass
class Sized:
    """A panel with its width and height on the 24-column grid (placed by ``layout``)."""

    panel: Panel
    w: int
    h: int


Item = Sized | dashboard_b.Row


Steps = tuple[tuple[float | None, str], ...]


def steps(*pairs: tuple[float | None, str]) -> Steps:
    """Threshold steps as (from value, colour); the first starts at -infinity (None)."""
    return pairs


def thresholds_config(pairs: Steps) -> Thresholds:
    return (
        Thresholds()
        .mode(dash.ThresholdsMode.ABSOLUTE)
        .steps([dash.Threshold(value=value, color=color) for value, color in pairs])
    )


OK_ONLY = steps((None, GREEN))


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> Query:
    query = Query().datasource(DS).expr(expr).legend_format(legend or "__auto").ref_id(ref)
    return query.instant().format(prom.PromQueryFormat.TABLE) if instant else query.range()


def targets(*pairs: tuple[str, str]) -> list[Builder[Dataquery]]:
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(pairs)]


# Series whose legend names development values, thresholds or SLOs are drawn dashed, unfilled.
DASHED_LEGEND = ".*(development|threshold|SLO).*"
DASHED = [
    dash.DynamicConfigValue(
        id_val="custom.lineStyle", value=common.LineStyle(fill="dash", dash=[10, 10])
    ),
    dash.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
]


def timeseries(
    title: str,
    description: str,
    tgts: list[Builder[Dataquery]],
    unit: str,
    thresholds: Steps = OK_ONLY,
    threshold_line: bool = False,
    w: int = 12,
    h: int = 8,
    maximum: float | None = None,
) -> Sized:
    style = (
        common.GraphThresholdsStyleMode.LINE_AND_AREA
        if threshold_line
        else common.GraphThresholdsStyleMode.OFF
    )
    panel = (
        timeseries_b.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .targets(tgts)
        .unit(unit)
        .min(0)
        .color_scheme(dashboard_b.FieldColor().mode(dash.FieldColorModeId.PALETTE_CLASSIC))
        .thresholds(thresholds_config(thresholds))
        .draw_style(common.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .span_nulls(False)
        .thresholds_style(common_b.GraphThresholdsStyleConfig().mode(style))
        .override_by_regexp(DASHED_LEGEND, DASHED)
        .legend(
            common_b.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_b.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if maximum is not None:
        panel = panel.max(maximum)
    return Sized(panel, w, h)


def stat(
    title: str,
    description: str,
    expr: str,
    unit: str,
    thresholds: Steps = OK_ONLY,
    legend: str = "",
    text_mode: common.BigValueTextMode = common.BigValueTextMode.AUTO,
    w: int = 4,
    h: int = 4,
) -> Sized:
    panel = (
        stat_b.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .with_target(target(expr, legend))
        .unit(unit)
        .color_scheme(dashboard_b.FieldColor().mode(dash.FieldColorModeId.THRESHOLDS))
        .thresholds(thresholds_config(thresholds))
        .reduce_options(
            common_b.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)
        )
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.AREA)
        .text_mode(text_mode)
        .justify_mode(common.BigValueJustifyMode.AUTO)
        .orientation(common.VizOrientation.AUTO)
    )
    return Sized(panel, w, h)


def table(
    title: str,
    description: str,
    expr: str,
    unit: str,
    thresholds: Steps,
    w: int = 12,
) -> Sized:
    panel = (
        table_b.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .with_target(target(expr, "", instant=True))
        .unit(unit)
        .thresholds(thresholds_config(thresholds))
        .cell_options(common.TableColoredBackgroundCellOptions())
        .show_header(True)
        .sort_by([common_b.TableSortByFieldState().display_name("Value").desc(True)])
        .with_transformation(
            dash.DataTransformerConfig(id_val="organize", options={"excludeByName": {"Time": True}})
        )
    )
    return Sized(panel, w, 8)


def row(title: str, repeat: str | None = None) -> dashboard_b.Row:
    built = dashboard_b.Row(title).collapsed(False)
    return built.repeat(repeat) if repeat else built


def layout(board: dashboard_b.Dashboard, items: list[Item]) -> dashboard_b.Dashboard:
    """Assign ids and grid positions: panels flow left to right, rows start a new line."""
    x = y = line_h = 0
    for n, item in enumerate(items, start=1):
        if isinstance(item, dashboard_b.Row):
            y += line_h
            board = board.with_row(item.id(n).grid_pos(dash.GridPos(h=1, w=24, x=0, y=y)))
            x, line_h = 0, 0
            y += 1
            continue
        if x + item.w > 24:
            x, y, line_h = 0, y + line_h, 0
        position = dash.GridPos(h=item.h, w=item.w, x=x, y=y)
        board = board.with_panel(item.panel.id(n).grid_pos(position))
        x += item.w
        line_h = max(line_h, item.h)
    return board


# --- template variables --------------------------------------------------------------------------


def datasource_var() -> dashboard_b.DatasourceVariable:
    return (
        dashboard_b.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .hide(dash.VariableHide.DONT_HIDE)
        .include_all(False)
        .multi(False)
    )


def query_var(
    name: str, label: str, query: str, multi: bool = True, all_: bool = True
) -> dashboard_b.QueryVariable:
    var = (
        dashboard_b.QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query({"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"})
        .hide(dash.VariableHide.DONT_HIDE)
        .include_all(all_)
        .multi(multi)
        .refresh(dash.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .regex("")
        .sort(dash.VariableSort.ALPHABETICAL_ASC)
    )
    return var.all_value(".*") if all_ else var


Variable = Builder[dash.VariableModel]


def sidecar_vars() -> list[Variable]:
    return [
        datasource_var(),
        query_var("job", "Job", "label_values(model_exporter_build_info, job)"),
        query_var(
            "instance", "Instance", 'label_values(model_exporter_build_info{job=~"$job"}, instance)'
        ),
    ]


def model_vars(single_model: bool) -> list[Variable]:
    return [
        *sidecar_vars(),
        query_var(
            "model",
            "Model",
            'label_values(model_predictions_total{job=~"$job", instance=~"$instance"}, model)',
            multi=not single_model,
            all_=not single_model,
        ),
        query_var(
            "version",
            "Version",
            'label_values(model_predictions_total{job=~"$job", instance=~"$instance", model=~"$model"}, version)',
        ),
        query_var(
            "window",
            "Window",
            'label_values(model_window_predictions{job=~"$job", model=~"$model"}, window)',
            multi=False,
            all_=False,
        ),
    ]


def dashboard(
    uid: str, title: str, description: str, variables: list[Variable], panels: list[Item]
) -> dashboard_b.Dashboard:
    board = (
        dashboard_b.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["model-exporter"])
        .editable()
        .tooltip(dash.DashboardCursorSync.CROSSHAIR)
        .time("now-3h", "now")
        .timezone("")
        .week_start("")
        .fiscal_year_start_month(0)
        .refresh("30s")
        .version(1)
        .annotation(
            dashboard_b.AnnotationQuery()
            .name("Annotations & Alerts")
            .datasource(dash.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True)
            .hide(True)
            .icon_color("rgba(0, 211, 255, 1)")
            .type("dashboard")
            .built_in(1)
        )
        .link(
            dashboard_b.DashboardLink("model-exporter")
            .type(dash.DashboardLinkType.DASHBOARDS)
            .tags(["model-exporter"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .variables(variables)
    )
    return layout(board, panels)


# --- fleet overview ------------------------------------------------------------------------------


def fleet() -> dashboard_b.Dashboard:
    drift = f'model_version_field:model_window_drift_threshold_ratio:median{{{FLEET_REC}, window="$window"}}'
    fleet_drift = f"model_version_field:model_fleet_drift_threshold_ratio:1h{{{FLEET_REC}}}"
    panels: list[Item] = [
        row("Fleet"),
        stat(
            "Model versions reporting",
            "Distinct (model, version) pairs the selected sidecars have seen records for.",
            f"count(count by (model, version) (model_predictions_total{{{FLEET_RAW}}}))",
            "none",
            steps((None, RED), (1, GREEN)),
        ),
        stat(
            "Sidecars up",
            "Share of model-exporter scrape targets Prometheus reached at the last scrape.",
            f"sum(up{{{SIDECAR}}}) / count(up{{{SIDECAR}}})",
            "percentunit",
            steps((None, RED), (0.99, ORANGE), (1, GREEN)),
        ),
        stat(
            "Predictions per second",
            "All selected models and replicas, from the recording rule over 5 minutes.",
            f"sum(model_version:model_predictions:rate5m{{{FLEET_REC}}})",
            "recps",
        ),
        stat(
            "Fields drifting",
            "Fields whose drift statistic exceeds its threshold on the median replica, in the "
            "selected window, summed over the selected models (0 when none).",
            f"sum({drift} > bool 1) or vector(0)",
            "none",
            steps((None, GREEN), (1, ORANGE)),
        ),
        stat(
            "Alerts firing",
            "model-exporter alerts currently firing in this Prometheus (see docs/alerts.md).",
            'count(ALERTS{alertstate="firing", alertname=~"Model.*"}) or vector(0)',
            "none",
            steps((None, GREEN), (1, RED)),
        ),
        stat(
            "Sources readable",
            "Share of configured log sources with at least one readable file.",
            f"sum(model_exporter_source_up{{{SIDECAR}}}) / count(model_exporter_source_up{{{SIDECAR}}})",
            "percentunit",
            steps((None, RED), (1, GREEN)),
        ),
        row("Traffic and data quality"),
        timeseries(
            "Prediction rate",
            "Records ingested per second per model version, summed over replicas.",
            targets(
                (f"model_version:model_predictions:rate5m{{{FLEET_REC}}}", "{{model}} {{version}}")
            ),
            "recps",
            w=8,
        ),
        timeseries(
            "Worst anomaly ratio",
            "For each model version, the highest share of records with one kind of anomaly in one "
            "field (missing, out_of_range, outlier...). Dashed: the ModelAnomalyRatioHigh threshold "
            "of each model (its lowest over fields, with per-field overrides).",
            targets(
                (
                    "max by (model, version) (model_version_field_kind:model_anomalies:ratio_rate5m"
                    f'{{{FLEET_REC}, kind!="parse_error"}})',
                    "{{model}} {{version}}",
                ),
                (
                    f"min by (model) (model_alert:anomaly_ratio_max:per_model_field{{{FLEET_MODEL}}})",
                    "alert threshold {{model}}",
                ),
            ),
            "percentunit",
            w=8,
        ),
        timeseries(
            "Parse-error ratio",
            "Share of log lines each sidecar could not parse. Dashed: the "
            "ModelExporterParseErrorsHigh threshold.",
            targets(
                (
                    f"instance_source:model_exporter_parse_errors:ratio_rate5m{{{SIDECAR}}}",
                    "{{instance}} {{source}}",
                ),
                ("model_alert:parse_error_ratio_max", "alert threshold"),
            ),
            "percentunit",
            w=8,
        ),
        row("Production vs development"),
        timeseries(
            "Fields drifting per model",
            "Number of fields (inputs and predictions) whose drift statistic is above its "
            "threshold on the median replica, in the selected window.",
            targets((f"sum by (model, version) ({drift} > bool 1)", "{{model}} {{version}}")),
            "none",
            steps((None, GREEN), (1, ORANGE)),
            threshold_line=True,
            w=8,
        ),
        timeseries(
            "Fleet drift ÷ threshold (all replicas pooled)",
            "Each field's PSI (numeric) or Jensen-Shannon distance (categorical) computed by the "
            "recording rules on the records of every replica with the same reference profile, "
            "over the last hour (solid) and 5 minutes, divided by the sidecar's threshold at the "
            "fleet's sample size. Above 1 (red line): the fleet drifted, even when no replica has "
            "the records to tell (compare the median-replica panel beside it). ModelFleetDrift "
            "watches the 1h series.",
            targets(
                (fleet_drift, "{{model}} {{version}} {{field}} 1h"),
                (
                    f"model_version_field:model_fleet_drift_threshold_ratio:5m{{{FLEET_REC}}}",
                    "{{model}} {{version}} {{field}} 5m",
                ),
            ),
            "suffix:×",
            steps((None, GREEN), (1, RED)),
            threshold_line=True,
            w=8,
        ),
        timeseries(
            "Error ratio ÷ development",
            "Wrong predictions per labelled prediction over the last hour, divided by the "
            "development error ratio (1 = as in validation). Dashed: the alert factor.",
            targets(
                (
                    f"model_version:model_prediction_errors:ratio_rate1h{{{FLEET_REC}}}"
                    f" / on (model, version) model_version:model_reference_error_ratio:max{{{FLEET_REC}}}",
                    "{{model}} {{version}}",
                ),
                (
                    f"model_alert:error_ratio_factor:per_model{{{FLEET_MODEL}}}",
                    "alert threshold {{model}}",
                ),
            ),
            "suffix:×",
            w=8,
        ),
        timeseries(
            "Confidence ÷ development",
            "Mean confidence in the selected window divided by the development mean, median "
            "replica. Dashed: the ModelConfidenceDrop threshold.",
            targets(
                (
                    f'model_version_window:model_window_confidence_gap:median{{{FLEET_REC}, window="$window"}}',
                    "{{model}} {{version}}",
                ),
                (
                    f"model_alert:confidence_gap_min:per_model{{{FLEET_MODEL}}}",
                    "alert threshold {{model}}",
                ),
            ),
            "percentunit",
            w=8,
        ),
        table(
            "Drift by field",
            "Largest drift statistic ÷ threshold per field in the selected window (median "
            "replica); above 1 means the field no longer looks like development.",
            f"max by (model, version, field) ({drift})",
            "suffix:×",
            steps((None, GREEN), (1, RED)),
        ),
        table(
            "Fleet drift by field",
            "Drift statistic ÷ threshold per field over the last hour, all replicas with the same "
            "profile pooled (one row per profile hash); above 1 means the fleet's records no "
            "longer look like development.",
            f"max by (model, version, field, reference_hash) ({fleet_drift})",
            "suffix:×",
            steps((None, GREEN), (1, RED)),
        ),
        table(
            "Replicas per reference profile",
            "How many sidecars of each model version loaded each profile (by hash). More than one "
            "hash per version: fleet drift is judged per profile (ModelReferenceMismatch).",
            f"model_version_hash:model_reference_info:replicas{{{FLEET_REC}}}",
            "none",
            steps((None, GREEN)),
        ),
        timeseries(
            "Error ratio: estimated vs measured",
            "Classification models with a confidence field: the error ratio the 1h window's "
            "confidence implies under the development calibration (all replicas, no labels "
            "needed), beside the measured error ratio over the last hour (labels). The estimate "
            "fails when a shift breaks the calibration: confidently wrong (docs/drift.md).",
            targets(
                (
                    f'model_version_window:model_window_estimated_error_ratio:pooled{{{FLEET_REC}, window="1h"}}',
                    "estimated {{model}} {{version}}",
                ),
                (
                    f"model_version:model_prediction_errors:ratio_rate1h{{{FLEET_REC}}}",
                    "measured {{model}} {{version}}",
                ),
            ),
            "percentunit",
        ),
        timeseries(
            "Latency p99",
            "99th percentile of prediction latency over all replicas (from the histograms). "
            "Dashed: the SLO of ModelLatencyHigh.",
            targets(
                (
                    f'model_version:model_latency_seconds:quantile_rate5m{{{FLEET_REC}, quantile="0.99"}}',
                    "{{model}} {{version}}",
                ),
                (
                    f"model_alert:latency_p99_slo_seconds:per_model{{{FLEET_MODEL}}}",
                    "SLO {{model}}",
                ),
            ),
            "s",
        ),
        row("Regression models: MAE and RMSE vs development"),
        timeseries(
            "MAE ÷ development",
            "Regression models only (no data for classification models): mean absolute error of "
            "the labelled predictions in the 1h window over all replicas, divided by the "
            "development MAE (1 = as in validation). Dashed: the ModelMAEAboveDevelopment factor.",
            targets(
                (
                    f'model_version_window:model_window_mae:pooled{{{FLEET_REC}, window="1h"}}'
                    f" / on (model, version) model_version:model_reference_mae:max{{{FLEET_REC}}}",
                    "{{model}} {{version}}",
                ),
                (f"model_alert:mae_factor:per_model{{{FLEET_MODEL}}}", "alert threshold {{model}}"),
            ),
            "suffix:×",
        ),
        timeseries(
            "MAE and RMSE",
            "Regression models only: MAE and RMSE of the labelled predictions in the selected "
            "window over all replicas (each replica weighted by its labels). RMSE well above MAE "
            "means a few large misses.",
            targets(
                (
                    f'model_version_window:model_window_mae:pooled{{{FLEET_REC}, window="$window"}}',
                    "MAE {{model}} {{version}}",
                ),
                (
                    f'model_version_window:model_window_rmse:pooled{{{FLEET_REC}, window="$window"}}',
                    "RMSE {{model}} {{version}}",
                ),
            ),
            "short",
        ),
    ]
    return dashboard(
        "model-exporter-fleet",
        "Models / Fleet overview",
        "Every model the sidecars watch: traffic, data quality, drift, errors and latency against "
        "development.",
        model_vars(single_model=False),
        panels,
    )


# --- one model: development vs production --------------------------------------------------------


def pooled(metric: str, sel: str, weight: str, weight_sel: str, by: str, on: str = REPLICA) -> str:
    """Exact fleet value of a per-replica window ratio: sum(ratio * weight) / sum(weight).

    ``weight`` is the ratio's denominator in each replica's window (records, labelled records,
    a field's valid samples), so the result is what one sidecar seeing all traffic would export.
    """
    w = f"{weight}{{{weight_sel}}}"
    return (
        f"sum by ({by}) ({metric}{{{sel}}} * on ({on}) group_left {w})"
        f" / on (version) group_left sum by (version) ({w})"
    )


def field_pooled(metric: str, sel: str, by: str) -> str:
    """As ``pooled``, weighted by the field's valid samples (means, category shares)."""
    return pooled(metric, sel, "model_window_samples", sel, by, on=f"{REPLICA}, field")


def drift_panel(field_var: str, stats: tuple[str, ...], w: int) -> Sized:
    sel = f'{ONE_RAW}, field="${field_var}", window="$window"'
    pairs: list[tuple[str, str]] = []
    for s in stats:
        pairs.append(
            (
                f"quantile by (version) (0.5, model_window_drift_{s}{{{sel}}})",
                f"{s.upper()} {{{{version}}}}",
            )
        )
        pairs.append(
            (
                f"quantile by (version) (0.5, model_window_drift_{s}_threshold{{{sel}}})",
                f"{s.upper()} threshold {{{{version}}}}",
            )
        )
    names = " and ".join(s.upper() for s in stats)
    return timeseries(
        f"${field_var}: drift ({names}) vs threshold",
        f"{names} of this field's window distribution against the development reference, median "
        "replica; dashed, the threshold (sample-size critical value, floored). No value while "
        "the window holds fewer than drift.min_samples samples.",
        targets(*pairs),
        "none",
        w=w,
    )


def anomaly_panel(field_var: str, w: int) -> Sized:
    sel = f'{ONE_RAW}, field="${field_var}", window="$window"'
    return timeseries(
        f"${field_var}: anomalies by kind",
        "Share of records with an anomaly of each kind in this field, over all selected "
        "replicas, in the selected window.",
        targets(
            (
                pooled(
                    "model_window_anomaly_ratio",
                    sel,
                    "model_window_predictions",
                    f'{ONE_RAW}, window="$window"',
                    "version, kind",
                ),
                "{{kind}} {{version}}",
            )
        ),
        "percentunit",
        w=w,
    )


def model_detail() -> dashboard_b.Dashboard:
    win = f'{ONE_RAW}, window="$window"'
    conf = f'{ONE_RAW}, field="confidence", window="$window"'
    cls = f'{ONE_RAW}, field="predicted_class", window="$window"'
    num = f'{ONE_RAW}, field="$numeric_field", window="$window"'
    cat = f'{ONE_RAW}, field="$categorical_field", window="$window"'
    drift = f'model_version_field:model_window_drift_threshold_ratio:median{{{ONE_REC}, window="$window"}}'
    error_ratio = pooled(
        "model_window_error_ratio", win, "model_window_ground_truth", win, "version"
    )
    panels: list[Item] = [
        row("Summary"),
        stat(
            "Predictions per second",
            "Records ingested per second over all replicas (5 minute rate).",
            f"sum(model_version:model_predictions:rate5m{{{ONE_REC}}})",
            "recps",
        ),
        stat(
            "Error ratio (window)",
            "Wrong predictions per labelled prediction in the selected window, over all selected "
            "replicas. Compare with the development ratio beside it.",
            f"sum(model_window_error_ratio{{{win}}} * on ({REPLICA}) model_window_ground_truth{{{win}}})"
            f" / sum(model_window_ground_truth{{{win}}})",
            "percentunit",
        ),
        stat(
            "Development error ratio",
            "Error ratio of the reference profile (built from validation data by model-exporter "
            "baseline).",
            f"max(model_reference_error_ratio{{{ONE_RAW}}})",
            "percentunit",
        ),
        stat(
            "Confidence ÷ development",
            "Mean confidence in the selected window divided by the development mean, median replica.",
            f"quantile(0.5, model_window_confidence_gap{{{win}}})",
            "percentunit",
            steps((None, RED), (0.9, ORANGE), (0.97, GREEN)),
        ),
        stat(
            "Fields drifting",
            "Fields above their drift threshold in the selected window (median replica).",
            f"sum({drift} > bool 1) or vector(0)",
            "none",
            steps((None, GREEN), (1, ORANGE)),
        ),
        stat(
            "Reference profile",
            "Content hash of the loaded development reference (model_reference_info); replicas "
            "showing different hashes run with different references.",
            f"count by (hash) (model_reference_info{{{ONE_RAW}}})",
            "none",
            legend="{{hash}}",
            text_mode=common.BigValueTextMode.NAME,
        ),
        row("Predictions vs development"),
        timeseries(
            "Error ratio vs development",
            "Wrong predictions per labelled prediction: in the selected window (all replicas), over "
            "the last hour (what the alert uses), in development, and the alert threshold "
            '(development × model_alert:error_ratio_factor). "Estimated from confidence" needs '
            "no label: the error ratio the window's confidence implies under the development "
            "calibration (model_window_estimated_error_ratio).",
            targets(
                (error_ratio, "production, window {{version}}"),
                (
                    f"model_version:model_prediction_errors:ratio_rate1h{{{ONE_REC}}}",
                    "production, 1h {{version}}",
                ),
                (
                    f'model_version_window:model_window_estimated_error_ratio:pooled{{{ONE_REC}, window="$window"}}',
                    "estimated from confidence, window {{version}}",
                ),
                (
                    f"max by (version) (model_reference_error_ratio{{{ONE_RAW}}})",
                    "development {{version}}",
                ),
                (
                    f"max by (version) (model_reference_error_ratio{{{ONE_RAW}}})"
                    ' * on () group_left () model_alert:error_ratio_factor:per_model{model="$model"}',
                    "alert threshold {{version}}",
                ),
            ),
            "percentunit",
        ),
        timeseries(
            "Predicted class shares vs development",
            "Share of each predicted class in the selected window over all replicas; dashed, the "
            "share in development.",
            targets(
                (
                    field_pooled("model_window_category_ratio", cls, "version, value"),
                    "{{value}} {{version}}",
                ),
                (
                    f'max by (version, value) (model_reference_category_ratio{{{ONE_RAW}, field="predicted_class"}})',
                    "{{value}} development {{version}}",
                ),
            ),
            "percentunit",
            maximum=1,
        ),
        timeseries(
            "Confidence vs development",
            "Mean confidence: window mean over all replicas, 5 minute mean from the histogram, and "
            "the development mean (dashed).",
            targets(
                (field_pooled("model_window_mean", conf, "version"), "window mean {{version}}"),
                (f"model_version:model_confidence:mean_rate5m{{{ONE_REC}}}", "5m mean {{version}}"),
                (
                    f'max by (version) (model_reference_mean{{{ONE_RAW}, field="confidence"}})',
                    "development mean {{version}}",
                ),
            ),
            "percentunit",
            maximum=1,
        ),
        timeseries(
            "Latency quantiles",
            "Prediction latency quantiles over all replicas from the histograms (5 minute rate); "
            "dashed, the p99 SLO of ModelLatencyHigh.",
            targets(
                (
                    f"model_version:model_latency_seconds:quantile_rate5m{{{ONE_REC}}}",
                    "p{{quantile}} {{version}}",
                ),
                ('model_alert:latency_p99_slo_seconds:per_model{model="$model"}', "SLO"),
            ),
            "s",
        ),
        row("Regression: MAE and RMSE vs development (no data for classification models)"),
        timeseries(
            "MAE vs development",
            "Mean absolute error of the labelled predictions over all replicas (each weighted by "
            "its labels): in the selected window, in the 1h window the alert reads, in "
            "development, and the alert threshold (development × model_alert:mae_factor).",
            targets(
                (
                    f'model_version_window:model_window_mae:pooled{{{ONE_REC}, window="$window"}}',
                    "production, window {{version}}",
                ),
                (
                    f'model_version_window:model_window_mae:pooled{{{ONE_REC}, window="1h"}}',
                    "production, 1h {{version}}",
                ),
                (
                    f"max by (version) (model_reference_mae{{{ONE_RAW}}})",
                    "development {{version}}",
                ),
                (
                    f"max by (version) (model_reference_mae{{{ONE_RAW}}})"
                    ' * on () group_left () model_alert:mae_factor:per_model{model="$model"}',
                    "alert threshold {{version}}",
                ),
            ),
            "short",
            w=8,
        ),
        timeseries(
            "RMSE vs development",
            "Root mean squared error of the labelled predictions in the selected window over all "
            "replicas (squares pooled), against development (dashed). RMSE grows faster than MAE "
            "when a few predictions are far off.",
            targets(
                (
                    f'model_version_window:model_window_rmse:pooled{{{ONE_REC}, window="$window"}}',
                    "production {{version}}",
                ),
                (
                    f"max by (version) (model_reference_rmse{{{ONE_RAW}}})",
                    "development {{version}}",
                ),
            ),
            "short",
            w=8,
        ),
        timeseries(
            "MAE ÷ development per replica",
            "Each sidecar's own MAE in the selected window divided by the development MAE "
            "(model_window_mae_gap): one replica far from the others points at that replica's "
            "traffic or inputs rather than the model.",
            targets(
                (
                    f"model_window_mae_gap{{{win}}}",
                    "{{instance}} {{version}}",
                ),
            ),
            "suffix:×",
            w=8,
        ),
        row("Drift"),
        timeseries(
            "Drift statistic ÷ threshold",
            "Each field's drift statistic divided by its threshold (median replica, selected "
            "window). Above 1 (red line): the field's distribution differs from development.",
            targets((drift, "{{field}} {{statistic}} {{version}}")),
            "suffix:×",
            steps((None, GREEN), (1, RED)),
            threshold_line=True,
            w=24,
        ),
        row("Numeric field: $numeric_field", repeat="numeric_field"),
        timeseries(
            "$numeric_field: quantiles vs development",
            "Window quantiles of this field (mean of the replicas' sketch quantiles; pick one "
            "instance for exact values) against the development quantiles (dashed).",
            targets(
                (f"avg by (version, q) (model_window_quantile{{{num}}})", "q{{q}} {{version}}"),
                (
                    f'max by (version, q) (model_reference_quantile{{{ONE_RAW}, field="$numeric_field"}})',
                    "q{{q}} development {{version}}",
                ),
            ),
            "short",
            w=8,
        ),
        drift_panel("numeric_field", ("psi", "ks"), w=8),
        anomaly_panel("numeric_field", w=8),
        row("Categorical field: $categorical_field", repeat="categorical_field"),
        timeseries(
            "$categorical_field: shares vs development",
            "Share of each category in the selected window over all replicas; dashed, the share "
            "in development. __other__ collects values beyond the category cap.",
            targets(
                (
                    field_pooled("model_window_category_ratio", cat, "version, value"),
                    "{{value}} {{version}}",
                ),
                (
                    f'max by (version, value) (model_reference_category_ratio{{{ONE_RAW}, field="$categorical_field"}})',
                    "{{value}} development {{version}}",
                ),
            ),
            "percentunit",
            w=8,
            maximum=1,
        ),
        drift_panel("categorical_field", ("js",), w=8),
        anomaly_panel("categorical_field", w=8),
    ]
    variables = [
        *model_vars(single_model=True),
        query_var(
            "numeric_field",
            "Numeric field",
            f"label_values(model_window_quantile{{{ONE_RAW}}}, field)",
        ),
        query_var(
            "categorical_field",
            "Categorical field",
            f"label_values(model_window_category_ratio{{{ONE_RAW}}}, field)",
        ),
    ]
    return dashboard(
        "model-exporter-model",
        "Models / Development vs production",
        "One model: every field's live distribution, drift statistics, class shares, confidence, "
        "errors and latency against the development reference.",
        variables,
        panels,
    )


# --- the sidecar's health ------------------------------------------------------------------------


def sidecar() -> dashboard_b.Dashboard:
    rate = "[$__rate_interval]"
    panels: list[Item] = [
        row("Status"),
        stat(
            "Sidecars up",
            "Scrape targets Prometheus reached at the last scrape.",
            f"sum(up{{{SIDECAR}}})",
            "none",
            steps((None, RED), (1, GREEN)),
        ),
        stat(
            "Sources readable",
            "Configured log sources with at least one readable file, over all sidecars.",
            f"sum(model_exporter_source_up{{{SIDECAR}}}) / count(model_exporter_source_up{{{SIDECAR}}})",
            "percentunit",
            steps((None, RED), (1, GREEN)),
        ),
        stat(
            "Longest time since a line was read",
            "time() - model_exporter_last_read_timestamp_seconds, worst source. Compare with the "
            "ModelExporterLogStalled threshold (model_alert:log_stall_seconds).",
            f"max(time() - model_exporter_last_read_timestamp_seconds{{{SIDECAR}}})",
            "s",
            steps((None, GREEN), (60, ORANGE)),
        ),
        stat(
            "Largest lag",
            "Bytes written to a log but not yet read, worst source.",
            f"max(model_exporter_source_lag_bytes{{{SIDECAR}}})",
            "bytes",
            steps((None, GREEN), (1048576, ORANGE)),
        ),
        stat(
            "Version",
            "model-exporter version the sidecars run (model_exporter_build_info).",
            f"count by (version) (model_exporter_build_info{{{SIDECAR}}})",
            "none",
            legend="{{version}}",
            text_mode=common.BigValueTextMode.NAME,
        ),
        stat(
            "Ingest CPU",
            "Share of one core spent parsing lines and updating statistics, busiest sidecar.",
            f"max(rate(model_exporter_ingest_seconds_total{{{SIDECAR}}}{rate}))",
            "percentunit",
            steps((None, GREEN), (0.5, ORANGE), (0.9, RED)),
        ),
        row("Reading the log"),
        timeseries(
            "Lines read per second",
            "Complete lines read from each source, before parsing.",
            targets(
                (
                    f"sum by (instance, source) (rate(model_exporter_lines_total{{{SIDECAR}}}{rate}))",
                    "{{instance}} {{source}}",
                )
            ),
            "rps",
            w=8,
        ),
        timeseries(
            "Bytes read per second",
            "Bytes read from each source's files.",
            targets(
                (
                    f"sum by (instance, source) (rate(model_exporter_bytes_read_total{{{SIDECAR}}}{rate}))",
                    "{{instance}} {{source}}",
                )
            ),
            "Bps",
            w=8,
        ),
        timeseries(
            "Lag behind the log",
            "Bytes written to the files but not yet read. A growing line means the sidecar cannot "
            "keep up; dashed, the ModelExporterLagging threshold.",
            targets(
                (f"model_exporter_source_lag_bytes{{{SIDECAR}}}", "{{instance}} {{source}}"),
                ("model_alert:source_lag_bytes_max", "alert threshold"),
            ),
            "bytes",
            w=8,
        ),
        timeseries(
            "Time since the last line was read",
            "time() - model_exporter_last_read_timestamp_seconds. Dashed: the "
            "ModelExporterLogStalled threshold.",
            targets(
                (
                    f"time() - model_exporter_last_read_timestamp_seconds{{{SIDECAR}}}",
                    "{{instance}} {{source}}",
                ),
                ("model_alert:log_stall_seconds", "alert threshold"),
            ),
            "s",
            w=8,
        ),
        timeseries(
            "Source up",
            "1 while at least one file of the source is present and readable.",
            targets((f"model_exporter_source_up{{{SIDECAR}}}", "{{instance}} {{source}}")),
            "bool_yes_no",
            steps((None, RED), (1, GREEN)),
            w=8,
            maximum=1,
        ),
        timeseries(
            "Open files",
            "File descriptors held per source; rotated files stay open for tail.rotate_wait.",
            targets((f"model_exporter_open_files{{{SIDECAR}}}", "{{instance}} {{source}}")),
            "short",
            w=8,
        ),
        row("Rotation and errors"),
        timeseries(
            "Rotations and truncations per hour",
            "Rename rotations followed and truncations (copytruncate) detected.",
            targets(
                (
                    f"sum by (instance, source) (increase(model_exporter_rotations_total{{{SIDECAR}}}[1h]))",
                    "rotations {{instance}} {{source}}",
                ),
                (
                    f"sum by (instance, source) (increase(model_exporter_truncations_total{{{SIDECAR}}}[1h]))",
                    "truncations {{instance}} {{source}}",
                ),
            ),
            "short",
            w=8,
        ),
        timeseries(
            "Parse errors per second",
            "Lines that did not become a record, by reason (invalid JSON, not an object, "
            "invalid UTF-8, unprocessable).",
            targets(
                (
                    f"sum by (instance, reason) (rate(model_exporter_parse_errors_total{{{SIDECAR}}}{rate}))",
                    "{{reason}} {{instance}}",
                )
            ),
            "eps",
            w=8,
        ),
        timeseries(
            "Parse-error ratio",
            "Share of lines that could not be parsed (5 minutes); dashed, the "
            "ModelExporterParseErrorsHigh threshold.",
            targets(
                (
                    f"instance_source:model_exporter_parse_errors:ratio_rate5m{{{SIDECAR}}}",
                    "{{instance}} {{source}}",
                ),
                ("model_alert:parse_error_ratio_max", "alert threshold"),
            ),
            "percentunit",
            w=8,
        ),
        timeseries(
            "Skipped and failed reads per second",
            "Lines longer than tail.max_line_bytes (skipped), errors opening or reading files, "
            "and saved positions not trusted after a restart.",
            targets(
                (
                    f"sum by (instance) (rate(model_exporter_lines_too_long_total{{{SIDECAR}}}{rate}))",
                    "too long {{instance}}",
                ),
                (
                    f"sum by (instance) (rate(model_exporter_read_errors_total{{{SIDECAR}}}{rate}))",
                    "read errors {{instance}}",
                ),
                (
                    f"sum by (instance) (rate(model_exporter_checkpoint_resets_total{{{SIDECAR}}}{rate}))",
                    "checkpoint resets {{instance}}",
                ),
                (
                    f"sum by (instance) (rate(model_exporter_checkpoint_errors_total{{{SIDECAR}}}{rate}))",
                    "checkpoint errors {{instance}}",
                ),
            ),
            "eps",
            w=12,
        ),
        timeseries(
            "Files opened per hour",
            "Files opened per source; steady growth without rotations means files come and go.",
            targets(
                (
                    f"sum by (instance, source) (increase(model_exporter_file_opens_total{{{SIDECAR}}}[1h]))",
                    "{{instance}} {{source}}",
                )
            ),
            "short",
            w=12,
        ),
    ]
    return dashboard(
        "model-exporter-sidecar",
        "Models / Sidecar health",
        "The model-exporter sidecars themselves: are they reading the log, keeping up, following "
        "rotations, and parsing what they read.",
        sidecar_vars(),
        panels,
    )


DASHBOARDS = {
    "model-exporter-fleet.json": fleet,
    "model-exporter-model.json": model_detail,
    "model-exporter-sidecar.json": sidecar,
}


def render() -> dict[str, str]:
    return {
        name: json.dumps(build().build(), cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the files are out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(
            "out of date (run python scripts/gen_dashboards.py):",
            *stale,
            sep="\n  ",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
