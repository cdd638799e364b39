"""Small SVG line charts as text, for the self-contained replay report (``offline.html``).

Server-side on purpose: the report is one file that opens anywhere without a network and without
running a script, prints, and diffs as text. Every piece of text is escaped here.

Bounded size: a series is downsampled to at most ``MAX_POINTS`` points (``downsample``), keeping
each bin's largest value, so a one-step spike survives; flat runs are written as two points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from exporter.downsample import bins

MAX_POINTS = 300


def downsample(
    times: Sequence[float], values: Sequence[float | None], cap: int = MAX_POINTS, keep: str = "max"
) -> tuple[list[float], list[float | None]]:
    """At most ``cap`` points: each bin of consecutive steps becomes one point at the bin's
    last time, with the bin's largest value (``keep="max"``, so a spike is never dropped) or
    smallest (``"min"``, for thresholds); None where the bin has no value."""
    pick = max if keep == "max" else min
    out_t: list[float] = []
    out_v: list[float | None] = []
    for b in bins(len(times), cap):
        found = [v for v in (values[i] for i in b) if v is not None and math.isfinite(v)]
        out_t.append(times[b[-1]])
        out_v.append(pick(found) if found else None)
    return out_t, out_v


@dataclass(frozen=True)
class Series:
    times: Sequence[float]
    values: Sequence[float | None]
    css: str  # a class: line colour and dash
    label: str


@dataclass(frozen=True)
class Band:
    """A span of time: shading over the plot, or (``strip``) a bar along its top edge."""

    start: float
    end: float
    css: str
    label: str
    strip: bool = False


@dataclass
class Chart:
    t0: float
    t1: float
    width: int = 420
    height: int = 120
    series: list[Series] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    rules: list[tuple[float, str, str]] = field(default_factory=list)  # (y, css, label)
    floor: float | None = 0.0
    percent: bool = False
    title: str = ""
    x_labels: tuple[str, str] = ("", "")  # under the left and right ends of the time axis

    def render(self) -> str:
        pad_l, pad_r, pad_t, pad_b = 46, 8, 12, 18
        w, h = self.width, self.height
        finite = [v for s in self.series for v in s.values if v is not None and math.isfinite(v)]
        finite += [y for y, _, _ in self.rules]
        label = escape(self.title, quote=True)
        head = (
            f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
            f'aria-label="{label}">'
        )
        if not finite:
            return (
                f'{head}<text x="{w / 2}" y="{h / 2}" class="nodata" text-anchor="middle">'
                "no data</text></svg>"
            )
        lo, hi = min(finite), max(finite)
        if self.floor is not None:
            lo = min(lo, self.floor)
        if hi == lo:
            hi = lo + (abs(lo) or 1.0) * 0.1
        hi += (hi - lo) * 0.08
        span = max(self.t1 - self.t0, 1e-9)

        def x(t: float) -> float:
            return pad_l + (t - self.t0) / span * (w - pad_l - pad_r)

        def y(v: float) -> float:
            return pad_t + (1 - (v - lo) / (hi - lo)) * (h - pad_t - pad_b)

        parts = [head, f"<title>{escape(self.title)}</title>"]
        for band in self.bands:
            left, right = x(max(band.start, self.t0)), x(min(band.end, self.t1))
            top, tall = (pad_t - 6, 5) if band.strip else (pad_t, h - pad_t - pad_b)
            parts.append(
                f'<rect class="band {band.css}" x="{left:.1f}" y="{top}" '
                f'width="{max(right - left, 1.5):.1f}" height="{tall}">'
                f"<title>{escape(band.label)}</title></rect>"
            )
        for v in (lo, (lo + hi) / 2, hi):
            at = f"{y(v):.1f}"
            parts.append(
                f'<line class="grid" x1="{pad_l}" x2="{w - pad_r}" y1="{at}" y2="{at}"/>'
                f'<text class="tick" x="{pad_l - 4}" y="{y(v) + 3:.1f}" text-anchor="end">'
                f"{escape(_tick(v, self.percent))}</text>"
            )
        left_label, right_label = (escape(t) for t in self.x_labels)
        parts.append(
            f'<text class="tick" x="{pad_l}" y="{h - 4}">{left_label}</text>'
            f'<text class="tick" x="{w - pad_r}" y="{h - 4}" text-anchor="end">{right_label}</text>'
        )
        for value, css, text in self.rules:
            parts.append(
                f'<line class="rule {css}" x1="{pad_l}" x2="{w - pad_r}" y1="{y(value):.1f}" '
                f'y2="{y(value):.1f}"><title>{escape(text)}</title></line>'
            )
        for s in self.series:
            parts.append(_path(s, x, y))
        parts.append("</svg>")
        return "".join(parts)


def _tick(v: float, percent: bool) -> str:
    if percent:
        return f"{v * 100:.1f}%"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.1e}"
    return f"{v:.3g}"


def _path(s: Series, x: Callable[[float], float], y: Callable[[float], float]) -> str:
    """One path; a point whose neighbours share its height is left out (flat runs cost two
    points), and a point with no value lifts the pen."""
    points = [
        None if v is None or not math.isfinite(v) else (round(x(t), 1), round(y(v), 1))
        for t, v in zip(s.times, s.values, strict=True)
    ]
    d = []
    pen = False
    for i, p in enumerate(points):
        if p is None:
            pen = False
            continue
        before = points[i - 1] if i > 0 else None
        after = points[i + 1] if i + 1 < len(points) else None
        if pen and before is not None and after is not None and before[1] == p[1] == after[1]:
            continue
        d.append(f"{'L' if pen else 'M'}{p[0]:g} {p[1]:g}")
        if not pen and after is None:  # a lone point: a short tick so it shows
            d.append("h1.5")
        pen = True
    return f'<path class="line {s.css}" d="{"".join(d)}"><title>{escape(s.label)}</title></path>'
