"""``replay --html FILE``: the back-test as one self-contained HTML page.

For a pull request that changes thresholds: the run's summary, the alert episodes on one
timeline, the fields ranked by how far past their threshold they went, and per model version and
window the timelines of error ratio against development, anomaly ratios and each field's drift
statistic against its threshold, with the alert episodes drawn as bands.

Self-contained and static: styles inline, charts as inline SVG (``offline.svg``), no script and
no network, so it opens from a mail or a CI artifact and prints. Bounded: every timeline is
downsampled to ``svg.MAX_POINTS`` points keeping each bin's maximum (a spike is never lost;
thresholds keep the bin's minimum), while the ranking, the over-threshold shading and the
episodes come from every step, so the file grows with the config, not with the log's length.
Every text from the log (model names, label values) is escaped.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape

from exporter import __version__
from exporter.offline.backtest import Episode, Row
from exporter.offline.report import Report, iso
from exporter.offline.svg import Band, Chart, Series, downsample

DRIFT_ALERTS = ("ModelFeatureDrift", "ModelPredictionDrift")
ERROR_ALERTS = ("ModelErrorRateAboveDevelopment", "ModelMAEAboveDevelopment", "ModelConfidenceDrop")
ANOMALY_ALERTS = ("ModelAnomalyRatioHigh", "ModelExporterParseErrorsHigh")
TOP_ANOMALIES = 5  # anomaly series per chart: the largest
MAX_RANKED = 60  # rows of the ranking table
SHOWN_RANKED = 12  # of which shown before "the rest"
MAX_GANTT = 60  # episodes drawn on the alert timeline (all are listed in the table)


@dataclass
class _Drift:
    times: list[float] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    thresholds: list[float | None] = field(default_factory=list)
    over: list[bool] = field(default_factory=list)


@dataclass(frozen=True)
class Ranked:
    """One field's statistic in one window, at the step where it was furthest past threshold."""

    model: str
    version: str
    window: str
    field: str
    statistic: str
    ratio: float  # value / threshold at that step
    value: float
    threshold: float
    at: float
    steps_over: int
    steps: int
    first_over: float | None


def _stamp(t: float, span: float) -> str:
    fmt = "%H:%M" if span <= 86_400 else "%m-%d %H:%M"
    return datetime.fromtimestamp(t, UTC).strftime(fmt)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def _fmt(v: float | None, digits: int = 3) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _groups(rows: Iterable[Row]) -> dict[tuple[str, str, str], list[Row]]:
    grouped: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for row in rows:
        grouped[(row.model, row.version, row.window)].append(row)
    for found in grouped.values():
        found.sort(key=lambda r: r.time)
    return grouped


def _drift_series(rows: Sequence[Row]) -> dict[tuple[str, str], _Drift]:
    series: dict[tuple[str, str], _Drift] = {}
    for key in dict.fromkeys((d.field, d.statistic) for r in rows for d in r.drift):
        series[key] = _Drift(times=[r.time for r in rows])
    for r in rows:
        found = {(d.field, d.statistic): d for d in r.drift}
        for key, s in series.items():
            d = found.get(key)
            s.values.append(None if d is None else d.value)
            s.thresholds.append(None if d is None else d.threshold)
            s.over.append(d is not None and d.exceeded)
    return series


def rank(report: Report) -> list[Ranked]:
    """Every (model, version, window, field, statistic), furthest past threshold first."""
    ranked = []
    for (model, version, window), rows in _groups(report.rows).items():
        for (name, statistic), s in _drift_series(rows).items():
            best: tuple[float, int] | None = None
            for i, (v, t) in enumerate(zip(s.values, s.thresholds, strict=True)):
                if v is not None and t and (best is None or v / t > best[0]):
                    best = (v / t, i)
            if best is None:
                continue
            ratio, i = best
            over = [s.times[j] for j, flag in enumerate(s.over) if flag]
            value, threshold = s.values[i], s.thresholds[i]
            assert value is not None
            assert threshold is not None
            ranked.append(
                Ranked(
                    model,
                    version,
                    window,
                    name,
                    statistic,
                    ratio,
                    value,
                    threshold,
                    s.times[i],
                    len(over),
                    sum(v is not None for v in s.values),
                    over[0] if over else None,
                )
            )
    return sorted(ranked, key=lambda r: (-r.ratio, r.model, r.version, r.window, r.field))


def _spans(times: Sequence[float], flags: Sequence[bool], step: float) -> list[tuple[float, float]]:
    """Runs of steps where a flag held, as (start, end) in time: every step counts, none is
    lost to downsampling."""
    spans: list[tuple[float, float]] = []
    for t, flag in zip(times, flags, strict=True):
        if not flag:
            continue
        if spans and t - spans[-1][1] <= step * 1.001:
            spans[-1] = (spans[-1][0], t)
        else:
            spans.append((t - step, t))
    return spans


def _episode_label(e: Episode) -> str:
    keep = {k: v for k, v in e.labels.items() if k not in ("model", "version")}
    return e.alert + (" " + " ".join(f"{k}={v}" for k, v in keep.items()) if keep else "")


def _short_label(e: Episode, with_model: bool) -> str:
    """The alert and what it is about, in a few words: ``ModelFeatureDrift amount KS 1h``."""
    parts = [e.labels.get("model", ""), e.labels.get("version", "")] if with_model else []
    parts.append(e.alert)
    for key in ("field", "statistic", "kind", "window", "source", "quantile"):
        value = e.labels.get(key)
        if value is not None:
            parts.append(
                value.upper()
                if key == "statistic"
                else value.replace("_", " ")
                if key == "kind"
                else value
            )
    return " ".join(p for p in parts if p)


class _Page:
    def __init__(self, report: Report) -> None:
        self.r = report
        self.t0 = report.start if report.start is not None else 0.0
        self.t1 = report.end if report.end is not None else self.t0 + 1.0
        self.span = max(self.t1 - self.t0, 1.0)
        self.out: list[str] = []
        self.anchors: list[tuple[str, str]] = []

    def add(self, *parts: str) -> None:
        self.out.extend(parts)

    def chart(
        self,
        title: str,
        width: int = 420,
        height: int = 120,
        floor: float | None = 0.0,
        percent: bool = False,
    ) -> Chart:
        chart = Chart(self.t0, self.t1, width, height, floor=floor, percent=percent, title=title)
        chart.x_labels = (_stamp(self.t0, self.span), _stamp(self.t1, self.span))
        return chart

    def bands(self, model: str, version: str, alerts: Sequence[str], **labels: str) -> list[Band]:
        found = []
        for e in self.r.alerts:
            if e.alert not in alerts or e.labels.get("model", model) != model:
                continue
            if e.labels.get("version", version) != version:
                continue
            if any(e.labels.get(k) != v for k, v in labels.items()):
                continue
            end = e.end if e.end is not None else self.t1
            label = _episode_label(e)
            found.append(Band(e.pending_since, e.start, "pending", f"{label} pending", True))
            found.append(Band(e.start, end, e.severity, f"{label} firing", True))
        return found


def render_html(report: Report) -> str:
    page = _Page(report)
    title = f"Replay of {report.source}"
    page.add(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f'<header><h1>{escape(title)}</h1><p class="muted">model-exporter {escape(__version__)}'
        " replay report: what the sidecar would have shown, and the alerts its bundled rules"
        " would have fired, had it tailed this log.</p></header><main>",
    )
    _summary(page)
    _alerts(page)
    _ranking(page)
    grouped = _groups(report.rows)
    models = list(dict.fromkeys((m, v) for m, v, _ in grouped))
    for model, version in models:
        page.add(
            f'<section class="card model"><h2>{escape(model)} '
            f'<span class="muted">{escape(version)}</span></h2>'
        )
        page.add(f'<a id="model-{len(page.anchors)}"></a>')
        page.anchors.append((model, version))
        for i, window in enumerate(report.windows):
            rows = grouped.get((model, version, window))
            if rows:
                _window(page, model, version, window, rows, open_=i == 0)
        page.add("</section>")
    page.add(
        "</main><footer>Timelines keep at most 300 points each: a point is a bin of steps "
        "showing its largest value (thresholds: the smallest), so a spike is never dropped; "
        "the red shading under a drift line and the ranking use every step.</footer>"
        "</body></html>\n"
    )
    return "".join(page.out)


def _summary(page: _Page) -> None:
    r = page.r
    errors = sum(r.parse_errors.values())
    reasons = ", ".join(f"{escape(k)} {v}" for k, v in sorted(r.parse_errors.items()))
    t = r.thresholds
    facts = [
        ("log time", f"{iso(r.start)} → {iso(r.end)} ({_duration(page.span)})"),
        ("records", f"{r.records:,}"),
        ("unparseable lines", f"{errors:,}" + (f" ({reasons})" if reasons else "")),
        ("records retimed", f"{r.retimed:,} (no timestamp, or out of order)"),
        ("step", f"{r.every:g} s"),
        ("reference", escape(r.reference or "none: no drift or gaps")),
        ("windows", escape(", ".join(r.windows))),
        ("alert episodes", f"{len(r.alerts)}"),
    ]
    thresholds = [
        ("error ratio", f"> {t.error_factor:g}× development, ≥ {t.error_min_labels} labels"),
        ("MAE", f"> {t.mae_factor:g}× development, ≥ {t.mae_min_labels} labels"),
        ("confidence", f"< {t.confidence_min:g}× development"),
        ("anomaly share", f"> {t.anomaly_max:g}"),
        ("parse errors", f"> {t.parse_error_max:g} of lines"),
        ("latency p99", f"> {t.latency_p99_max:g} s"),
        ("drift", f"statistic > {t.drift_ratio_max:g}× its threshold"),
        *[
            (
                escape(f"{o.threshold}, {o.model}" + (f" {o.field}" if o.field else "")),
                f"{o.value:g} (override)",
            )
            for o in t.overrides
        ],
    ]
    fors = ", ".join(f"{escape(k)} {_duration(v)}" for k, v in sorted(r.for_seconds.items()))
    page.add('<section class="card"><h2>Run</h2><div class="cols"><dl class="facts">')
    for k, v in facts:
        page.add(f"<dt>{k}</dt><dd>{v}</dd>")
    page.add('</dl><dl class="facts">')
    for k, v in thresholds:
        page.add(f"<dt>{k}</dt><dd>{escape(v)}</dd>")
    page.add(f'<dt>for:</dt><dd class="small">{fors}</dd></dl></div></section>')


def _alerts(page: _Page) -> None:
    r = page.r
    page.add(
        f'<section class="card" id="alerts"><h2>Alerts that would have fired ({len(r.alerts)})</h2>'
    )
    if not r.alerts:
        page.add(
            '<p class="muted">None: no alert condition held for its <code>for:</code> '
            "duration.</p></section>"
        )
        return
    shown = r.alerts[:MAX_GANTT]
    with_model = len({(e.labels.get("model"), e.labels.get("version")) for e in shown}) > 1
    row_h, label_w, width = 20, 380, 1300
    height = row_h * len(shown) + 22
    span = page.span

    def x(t: float) -> float:
        return label_w + (min(max(t, page.t0), page.t1) - page.t0) / span * (width - label_w - 10)

    svg = [
        f'<svg class="gantt" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="alert episodes">'
    ]
    for i, e in enumerate(shown):
        y = i * row_h + 2
        end = e.end if e.end is not None else page.t1
        until = iso(e.end) if e.end is not None else "the end of the log"
        text = _short_label(e, with_model)
        svg.append(
            f'<text class="glabel" x="{label_w - 8}" y="{y + 13}" text-anchor="end">'
            f"{escape(text if len(text) <= 80 else text[:79] + '…')}</text>"
        )
        svg.append(
            f'<rect class="band pending" x="{x(e.pending_since):.1f}" y="{y + 2}" '
            f'width="{max(x(e.start) - x(e.pending_since), 1):.1f}" height="{row_h - 6}">'
            f"<title>pending since {iso(e.pending_since)}</title></rect>"
        )
        svg.append(
            f'<rect class="bar {escape(e.severity)}" x="{x(e.start):.1f}" y="{y + 2}" '
            f'width="{max(x(end) - x(e.start), 2):.1f}" height="{row_h - 6}">'
            f"<title>{escape(_episode_label(e))}: firing {iso(e.start)} to {until}</title></rect>"
        )
    y = len(shown) * row_h + 16
    svg.append(f'<text class="tick" x="{label_w}" y="{y}">{iso(page.t0)}</text>')
    svg.append(
        f'<text class="tick" x="{width - 10}" y="{y}" text-anchor="end">{iso(page.t1)}</text>'
    )
    svg.append("</svg>")
    page.add('<div class="scroll">', "".join(svg), "</div>")
    page.add(
        f"<details><summary>Every episode ({len(r.alerts)})</summary>"
        '<table class="grid episodes"><thead><tr><th>alert</th><th>severity</th><th>model</th>'
        "<th>labels</th><th>pending since</th><th>fired</th><th>resolved</th><th>firing for</th>"
        "</tr></thead><tbody>"
    )
    for e in r.alerts:
        keep = " ".join(f"{k}={v}" for k, v in e.labels.items() if k not in ("model", "version"))
        end = e.end if e.end is not None else page.t1
        resolved = iso(e.end) if e.end is not None else "still firing at the end"
        page.add(
            f'<tr class="{escape(e.severity)}"><td class="strong">{escape(e.alert)}</td>'
            f"<td>{escape(e.severity)}</td>"
            f'<td class="nowrap">{escape(e.labels.get("model", ""))} '
            f"{escape(e.labels.get('version', ''))}</td>"
            f'<td>{escape(keep)}</td><td class="nowrap">{iso(e.pending_since)}</td>'
            f'<td class="nowrap">{iso(e.start)}</td><td>{escape(resolved)}</td>'
            f'<td class="num">{_duration(end - e.start)}</td></tr>'
        )
    page.add("</tbody></table></details></section>")


def _ranking(page: _Page) -> None:
    ranked = rank(page.r)
    page.add(
        '<section class="card" id="ranking">'
        "<h2>Fields ranked by how far past threshold they went</h2>"
        '<p class="muted">Each field\'s statistic in each window at its worst step: the value '
        "÷ its threshold (above 1: drift detected), the steps over threshold and the first one.</p>"
    )
    if not ranked:
        page.add(
            '<p class="muted">No drift verdict: no reference, or too few samples.</p></section>'
        )
        return
    page.add(
        '<table class="grid ranking"><thead><tr><th>field</th><th>statistic</th><th>window</th>'
        '<th>model</th><th class="num">worst ÷ threshold</th><th class="num">value</th>'
        '<th class="num">threshold</th><th>at</th><th class="num">steps over</th>'
        "<th>first over</th></tr></thead><tbody>"
    )
    for i, r in enumerate(ranked[:MAX_RANKED]):
        over = r.ratio > 1
        if i == SHOWN_RANKED:
            page.add(
                "</tbody></table><details><summary>The rest of the ranking</summary>"
                '<table class="grid ranking"><tbody>'
            )
        page.add(
            f'<tr class="{"drifted" if over else ""}" data-field="{escape(r.field, quote=True)}" '
            f'data-window="{escape(r.window, quote=True)}">'
            f'<td class="strong">{escape(r.field)}</td><td>{escape(r.statistic.upper())}</td>'
            f'<td>{escape(r.window)}</td><td class="nowrap">{escape(r.model)} '
            f"{escape(r.version)}</td>"
            f'<td class="num ratio">{r.ratio:.2f}×</td><td class="num">{_fmt(r.value)}</td>'
            f'<td class="num">{_fmt(r.threshold)}</td><td>{iso(r.at)}</td>'
            f'<td class="num">{r.steps_over} / {r.steps}</td>'
            f"<td>{iso(r.first_over) if r.first_over is not None else '–'}</td></tr>"
        )
    if len(ranked) > MAX_RANKED:
        page.add(
            f'<tr><td colspan="10" class="muted">… and {len(ranked) - MAX_RANKED} more, '
            "each below the last shown.</td></tr>"
        )
    rest = "</details>" if len(ranked) > SHOWN_RANKED else ""
    page.add(f"</tbody></table>{rest}</section>")


def _window(
    page: _Page, model: str, version: str, window: str, rows: list[Row], open_: bool
) -> None:
    r = page.r
    times = [row.time for row in rows]
    step = r.every
    page.add(
        f"<details{' open' if open_ else ''}><summary>Window {escape(window)}</summary>"
        '<div class="charts">'
    )
    # error ratio (or MAE and RMSE) against development
    t = r.thresholds
    if r.regression:
        chart = page.chart("MAE and RMSE ÷ development", floor=0.0, width=620, height=150)
        for name, css in (("mae_gap", "s1"), ("rmse_gap", "s2")):
            tt, vv = downsample(times, [getattr(row, name) for row in rows])
            chart.series.append(Series(tt, vv, css, name.replace("_", " ")))
        chart.rules += [(1.0, "dev", "development"), (t.mae_factor, "limit", "alert factor")]
        caption = (
            "MAE (blue) and RMSE (orange) ÷ development; dashed: development and the alert factor"
        )
    else:
        chart = page.chart("error ratio ÷ development", floor=0.0, width=620, height=150)
        tt, vv = downsample(times, [row.error_ratio_gap for row in rows])
        chart.series.append(Series(tt, vv, "s1", "error ratio ÷ development"))
        chart.rules += [(1.0, "dev", "development"), (t.error_factor, "limit", "alert factor")]
        caption = (
            "error ratio ÷ development; dashed: development (1) and the alert factor "
            f"({t.error_factor:g})"
        )
    chart.bands = page.bands(model, version, ERROR_ALERTS)
    page.add(f"<figure><figcaption>{escape(caption)}</figcaption>{chart.render()}</figure>")
    # anomaly ratios: the largest few
    peaks: dict[tuple[str, str], float] = defaultdict(float)
    for row in rows:
        for name, kinds in row.anomalies.items():
            for kind, ratio in kinds.items():
                peaks[(name, kind)] = max(peaks[(name, kind)], ratio)
    top = sorted(peaks, key=lambda k: -peaks[k])[:TOP_ANOMALIES]
    chart = page.chart("anomaly ratios", floor=0.0, percent=True, width=620, height=150)
    legend = []
    for i, (name, kind) in enumerate(top):
        values = [row.anomalies.get(name, {}).get(kind, 0.0) for row in rows]
        tt, vv = downsample(times, values)
        chart.series.append(Series(tt, vv, f"a{i}", f"{name} {kind}"))
        legend.append(
            f'<span class="key"><span class="swatch a{i}"></span>{escape(name)} · '
            f"{escape(kind.replace('_', ' '))}</span>"
        )
    chart.rules.append((t.anomaly_max, "limit", "alert threshold"))
    chart.bands = page.bands(model, version, ANOMALY_ALERTS)
    page.add(
        f"<figure><figcaption>anomaly share of records (largest {len(top)}); dashed: the alert "
        "threshold</figcaption>"
        f'{chart.render()}<div class="legend">{"".join(legend)}</div></figure></div>'
    )
    # drift: one small chart per field and statistic
    series = _drift_series(rows)
    if not series:
        page.add(
            '<p class="muted">No drift verdict in this window (no reference, or too few '
            "samples).</p></details>"
        )
        return
    page.add(
        f"<h3>Drift statistic against its threshold · {escape(window)}</h3>"
        '<p class="muted small">Line: the statistic; dashed: its threshold; red shading: steps '
        "over "
        "threshold; the bar along the top: a drift alert of the field (pale: pending, orange: "
        'firing).</p><div class="small-multiples">'
    )
    for (name, statistic), s in series.items():
        chart = page.chart(f"{name} {statistic}", width=340, height=96, floor=0.0)
        tt, vv = downsample(times, s.values)
        _, th = downsample(times, s.thresholds, keep="min")
        over = any(s.over)
        chart.series += [
            Series(tt, th, "threshold", "threshold"),
            Series(tt, vv, "bad" if over else "s1", statistic),
        ]
        chart.bands = [
            Band(a, b, "over", "over threshold") for a, b in _spans(times, s.over, step)
        ] + page.bands(model, version, DRIFT_ALERTS, field=name, statistic=statistic)
        worst = max(
            (
                v / th_
                for v, th_ in zip(s.values, s.thresholds, strict=True)
                if v is not None and th_
            ),
            default=0.0,
        )
        flag = (
            '<span class="badge bad">DRIFT</span>' if over else '<span class="badge ok">ok</span>'
        )
        page.add(
            f'<figure class="drift{" drifted" if over else ""}" '
            f'data-field="{escape(name, quote=True)}" '
            f'data-statistic="{escape(statistic, quote=True)}"><figcaption><b>{escape(name)}</b> '
            f"{escape(statistic.upper())} {flag} "
            f'<span class="muted">worst {worst:.2f}× threshold</span>'
            f"</figcaption>{chart.render()}</figure>"
        )
    page.add("</div></details>")


STYLE = """
:root { --text: #1c2430; --muted: #667085; --line: #e3e8ef; --head: #f8fafc; --bg: #f4f6f9;
  --bad: #c62828; --bad-bg: #fde2e1; --ok: #1a7f37; --ok-bg: #dcfce7; --warn: #b45309;
  --s1: #1f6feb; --s2: #d97706; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 14px 24px; }
h1 { margin: 0; font-size: 1.35rem; }
h2 { margin: 0 0 10px; font-size: 1.15rem; }
h3 { font-size: .95rem; color: var(--muted); margin: 14px 0 6px; }
.muted { color: var(--muted); }
.small { font-size: .85em; }
main { max-width: 1500px; margin: 0 auto; padding: 18px 24px; display: grid; gap: 18px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px; }
.cols { display: flex; flex-wrap: wrap; gap: 12px 48px; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; }
table.grid { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums;
  margin-top: 8px; }
table.grid th { background: var(--head); color: var(--muted); font-size: .78rem; text-align: left;
  padding: 5px 8px; border-bottom: 1px solid var(--line); }
table.grid td { padding: 4px 8px; border-bottom: 1px solid var(--line); }
.num { text-align: right; white-space: nowrap; }
.nowrap { white-space: nowrap; }
.strong { font-weight: 600; }
tr.drifted td { background: var(--bad-bg); }
tr.drifted .ratio { color: var(--bad); font-weight: 700; }
tr.critical td:first-child { border-left: 3px solid var(--bad); }
tr.warning td:first-child { border-left: 3px solid var(--warn); }
.badge { display: inline-block; padding: 0 8px; border-radius: 999px; font-size: .75rem;
  font-weight: 700; }
.badge.bad { background: var(--bad-bg); color: var(--bad); }
.badge.ok { background: var(--ok-bg); color: var(--ok); }
details { margin-top: 10px; border-top: 1px solid var(--line); padding-top: 8px; }
summary { cursor: pointer; font-weight: 600; font-size: 1rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 28px;
  margin-top: 8px; }
svg.chart { width: 100%; height: auto; display: block; }
figure { margin: 0; }
figcaption { color: var(--muted); font-size: .8rem; margin-bottom: 2px; }
.small-multiples { display: grid; grid-template-columns: repeat(auto-fill, minmax(350px, 1fr));
  gap: 14px 18px; }
figure.drifted figcaption b { color: var(--bad); }
.scroll { overflow-x: auto; }
svg .line { fill: none; stroke: var(--s1); stroke-width: 1.6; stroke-linejoin: round; }
svg .line.s2 { stroke: var(--s2); }
svg .line.bad { stroke: var(--bad); }
svg .line.threshold { stroke: var(--muted); stroke-dasharray: 4 3; stroke-width: 1.1; }
svg .line.a0 { stroke: #1f6feb; }
svg .line.a1 { stroke: #d97706; }
svg .line.a2 { stroke: #8250df; }
svg .line.a3 { stroke: #1a7f37; }
svg .line.a4 { stroke: #bf3989; }
svg .grid { stroke: var(--line); }
svg .tick { fill: var(--muted); font-size: 10px; }
svg .nodata { fill: var(--muted); font-size: 11px; }
svg .rule { stroke-dasharray: 4 3; stroke-width: 1.1; }
svg .rule.dev { stroke: var(--muted); }
svg .rule.limit { stroke: var(--bad); opacity: .7; }
svg .band.over { fill: rgba(198, 40, 40, .12); }
svg .band.pending { fill: rgba(217, 119, 6, .35); }
svg .band.warning, svg .bar.warning { fill: #d97706; }
svg .band.critical, svg .bar.critical { fill: var(--bad); }
svg .glabel { font-size: 11px; fill: var(--text); }
.legend { display: flex; flex-wrap: wrap; gap: 12px; font-size: .78rem; color: var(--muted); }
.key { display: inline-flex; align-items: center; gap: 4px; }
.swatch { display: inline-block; width: 14px; border-top: 2px solid; }
.swatch.a0 { border-color: #1f6feb; }
.swatch.a1 { border-color: #d97706; }
.swatch.a2 { border-color: #8250df; }
.swatch.a3 { border-color: #1a7f37; }
.swatch.a4 { border-color: #bf3989; }
footer { max-width: 1500px; margin: 0 auto; padding: 4px 24px 28px; color: var(--muted);
  font-size: .85rem; }
"""
