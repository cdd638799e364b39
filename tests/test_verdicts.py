"""Drift and anomaly verdicts on the kinds of features real models log (issue: verdicts that hold
on every kind of feature). Each test is seeded and fast, and drives the sidecar's own path: a
profile from ``ProfileBuilder`` on JSON lines, then the engine (decoder, reference checks, state)
and the window verdicts it assesses. The full table is ``bench/calibration.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exporter.anomaly import Kind
from exporter.config import parse_config
from exporter.config_types import Config
from exporter.engine import Engine
from exporter.offline.baseline import ProfileBuilder
from exporter.offline.replay import replay
from exporter.reference import Reference

T0 = 1_764_000_000.0
ROOT = Path(__file__).resolve().parent.parent


def config(kind: str = "numeric", **drift: Any) -> Config:
    return parse_config(
        {
            "sources": ["x.jsonl"],
            "windows": ["1h"],
            "fields": {
                "timestamp": "ts",
                "model_name": "m",
                "model_version": "v",
                "features": [{"name": "f", "type": kind}],
            },
            "drift": drift,
        }
    )


def lines(values: Any) -> bytes:
    items = values.tolist() if hasattr(values, "tolist") else list(values)
    return "".join(json.dumps({"ts": T0, "f": v}) + "\n" for v in items).encode()


def profile(cfg: Config, values: Any) -> Reference:
    builder = ProfileBuilder(cfg.fields, cfg.quantiles, cfg.sketch_relative_accuracy)
    builder.add(lines(values))
    return builder.build("2026-01-01T00:00:00+00:00")


class Live:
    """The sidecar's engine for one window: decode, reference checks, state, assessment."""

    def __init__(self, cfg: Config, reference: Reference | None) -> None:
        self.engine = Engine(cfg, reference)

    def ingest(self, values: Any) -> None:
        self.engine.ingest(lines(values), T0)

    def window(self) -> Any:
        return self.engine.state.snapshot(T0).groups[0].windows[0]

    def verdicts(self) -> dict[str, bool]:
        """As assessed at the next step, when the window holds what was ingested at T0."""
        assessment = self.engine.advance(T0 + self.engine.assessor.step)
        (window,) = [w for w in assessment.windows.values() if w.window == self.window().spec.name]
        return {d.statistic: d.verdict.drifted for d in window.drift}

    def anomaly_share(self, kind: Kind) -> float:
        summary = self.window().summary
        return float(summary.anomalies[0, kind] / summary.records)


def binomial_upper(trials: int, rate: float, z: float = 3.1) -> float:
    """A count of events at probability ``rate`` stays below this but for ~10⁻³ of the time."""
    return trials * rate + z * np.sqrt(trials * rate * (1 - rate)) + 1


# 1. point masses ------------------------------------------------------------------------------


def zero_inflated(rng: np.random.Generator, n: int, zeros: float) -> Any:
    return np.where(rng.random(n) < zeros, 0.0, rng.exponential(1.0, n))


@pytest.mark.parametrize("seed", range(5))
def test_psi_sees_the_zero_share_of_a_zero_inflated_feature_move(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cfg = config()
    reference = profile(cfg, zero_inflated(rng, 2_000, 0.9))
    shares = reference.numeric["f"].bin_shares
    assert sum(s > 0 for s in shares) >= 2  # never one bin while there are several values
    live = Live(cfg, reference)
    live.ingest(zero_inflated(rng, 2_000, 0.5))
    assert live.verdicts()["psi"]


@pytest.mark.parametrize("values", [[0.0, 1.0], [0.0, 0.0, 0.0, 5.0], [-1.0, 0.0, 2.0, 3.0]])
def test_a_profile_never_has_one_bin_while_there_are_several_values(values: list[float]) -> None:
    repeated = np.repeat(values, [90 if v == 0 else 5 for v in values])
    reference = profile(config(), repeated)
    assert sum(s > 0 for s in reference.numeric["f"].bin_shares) >= 2


# 2. unseen means never seen in development -----------------------------------------------------


def zipf_names(rng: np.random.Generator, n: int, levels: int = 200) -> list[str]:
    p = 1.0 / np.arange(1, levels + 1) ** 1.1
    return [f"v{c}" for c in rng.choice(levels, size=n, p=p / p.sum()).tolist()]


def test_a_folded_but_known_category_is_not_unseen() -> None:
    rng = np.random.default_rng(2)
    cfg = config("categorical")
    dev = zipf_names(rng, 20_000)
    live = Live(cfg, profile(cfg, dev))
    calm = [v for v in zipf_names(rng, 5_000) if v in set(dev)]  # only development values
    live.ingest([*calm, "never-seen", "never-seen"])
    assert live.anomaly_share(Kind.UNSEEN_CATEGORY) == pytest.approx(2 / (len(calm) + 2))
    summary = live.window().summary
    assert summary.categories[0, 50] > 0  # past the live cap of 50: __other__, counted


def test_without_a_reference_nothing_is_unseen() -> None:
    live = Live(config("categorical"), None)
    live.ingest(zipf_names(np.random.default_rng(3), 3_000))
    assert live.anomaly_share(Kind.UNSEEN_CATEGORY) == 0.0


# 3. and 4. calm windows stay within α ---------------------------------------------------------


def calm_alarms(kind: str, draw: Any, m: int, n: int, seeds: int, **drift: Any) -> dict[str, int]:
    cfg = config(kind, **drift)
    alarms: dict[str, int] = {}
    for seed in range(seeds):
        rng = np.random.default_rng(100 + seed)
        live = Live(cfg, profile(cfg, draw(rng, m)))
        live.ingest(draw(rng, n))
        for statistic, drifted in live.verdicts().items():
            alarms[statistic] = alarms.get(statistic, 0) + drifted
    return alarms


PER_TEST_5 = {"psi_floor": 0.0, "ks_floor": 0.0, "js_floor": 0.0}


def test_a_large_window_against_a_small_reference_stays_within_alpha() -> None:
    """m = 500, n = 10 000, floors 0, each test at 5 % (α = 0.1 over PSI and KS)."""
    seeds = 60
    alarms = calm_alarms(
        "numeric", lambda r, n: r.normal(10.0, 2.0, n), 500, 10_000, seeds, alpha=0.1, **PER_TEST_5
    )
    assert alarms["psi"] <= binomial_upper(seeds, 0.05), alarms
    assert alarms["ks"] <= binomial_upper(seeds, 0.05), alarms


def test_a_45_level_category_with_the_default_config_stays_quiet() -> None:
    seeds = 40
    alarms = calm_alarms("categorical", lambda r, n: zipf_names(r, n, 45), 500, 10_000, seeds)
    assert alarms["js"] <= binomial_upper(seeds, 0.01), alarms


def test_choosing_the_kept_categories_does_not_bias_js() -> None:
    """A small reference of a long-tailed category, the top categories kept: JS at 5 %."""
    seeds = 60
    alarms = calm_alarms(
        "categorical",
        lambda r, n: zipf_names(r, n, 200),
        500,
        2_000,
        seeds,
        alpha=0.05,
        **PER_TEST_5,
    )
    assert alarms["js"] <= binomial_upper(seeds, 0.05), alarms


# 5. the whole float range ----------------------------------------------------------------------


@pytest.mark.parametrize("centre", [1.7e9, 1e10, 1e-10, 1.7e18])
def test_quantiles_keep_the_bound_far_from_one(centre: float) -> None:
    rng = np.random.default_rng(5)
    values = centre * rng.lognormal(0.0, 0.5, 3_000)
    live = Live(config(), None)
    live.ingest(values)
    window = live.window()
    for q, estimate in zip((0.5, 0.9, 0.99), window.quantiles[0], strict=True):
        exact = float(np.quantile(values, q, method="lower"))
        assert abs(estimate - exact) <= 0.01 * exact * (1 + 1e-9), (q, estimate, exact)
    assert window.summary.clamped[0] == 0


def test_an_epoch_sized_feature_moved_by_500_sigma_drifts() -> None:
    rng = np.random.default_rng(6)
    cfg = config()
    live = Live(cfg, profile(cfg, rng.normal(1.7e9, 1e6, 2_000)))
    live.ingest(rng.normal(1.7e9 + 5e8, 1e6, 1_000))
    assert live.verdicts()["ks"]


# 6. outliers of a rare flag ---------------------------------------------------------------------


def test_a_calm_rare_flag_has_no_outliers() -> None:
    rng = np.random.default_rng(7)
    cfg = config()
    flag = lambda n: (rng.random(n) < 0.055).astype(float)  # noqa: E731
    live = Live(cfg, profile(cfg, flag(5_000)))
    live.ingest(flag(5_000))
    assert live.anomaly_share(Kind.OUTLIER) == 0.0


def test_a_value_beyond_the_development_range_and_z_sigma_is_an_outlier() -> None:
    rng = np.random.default_rng(8)
    cfg = config(outlier_z=4.0, range_margin=10.0)  # a wide range margin: outlier, not range
    live = Live(cfg, profile(cfg, rng.normal(0.0, 1.0, 5_000)))
    live.ingest([0.5, -1.0, 9.0, -9.5])
    assert live.anomaly_share(Kind.OUTLIER) == 0.5


# 7. the quantile convention is documented next to the metric ----------------------------------


def test_the_quantile_rank_convention_is_documented_with_the_quantile_metric() -> None:
    metrics = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    section = metrics[metrics.index("### Window gauges") : metrics.index("### Timestamps")]
    assert "model_window_quantile" in section
    assert "⌊q·(n−1)⌋" in section
    assert 'method="lower"' in section


# no bundled alert fires on a calm replay -------------------------------------------------------


@pytest.mark.parametrize("feature", ["flag", "cat200", "zeros90", "pareto"])
def test_no_bundled_alert_fires_on_a_calm_replay(feature: str) -> None:
    rng = np.random.default_rng(9)
    draws = {
        "flag": lambda n: (rng.random(n) < 0.055).astype(float),
        "cat200": lambda n: zipf_names(rng, n),
        "zeros90": lambda n: zero_inflated(rng, n, 0.9),
        "pareto": lambda n: rng.pareto(2.5, n) + 1.0,
    }
    draw = draws[feature]
    cfg = config("categorical" if feature.startswith("cat") else "numeric")
    cfg = parse_config(
        {
            "sources": ["x.jsonl"],
            "fields": {
                "timestamp": "ts",
                "model_name": "m",
                "model_version": "v",
                "features": [{"name": "f", "type": cfg.fields.features[0].kind}],
            },
        }
    )
    reference = profile(cfg, draw(5_000))
    values = draw(int(1.75 * 3600 * 2))
    items = values.tolist() if hasattr(values, "tolist") else values
    log = "".join(json.dumps({"ts": T0 + i / 2, "f": v}) + "\n" for i, v in enumerate(items))
    report = replay([log.encode()], cfg, reference)
    assert report.records == len(items)
    assert report.alerts == [], [(e.alert, e.labels) for e in report.alerts]
