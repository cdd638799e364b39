"""Calibration of the drift verdicts on every kind of feature: calm false alarms and power.

For each feature type (bench/features.py), reference size m and window size n, fresh calm
development and live samples per trial go through the sidecar's own path (ProfileBuilder, a
summarised window in a sketch anchored on the profile, compare). Printed per cell:

- calm false alarms per statistic with floors 0 and each test at 5 % (α = 0.05·d over the field's
  d tests), with the Clopper–Pearson 95 % upper bound of the observed rate;
- calm false alarms with the default config (any statistic of the field flagged; nominal 1 %);
- power with the default config for +0.25σ, +0.5σ and ×1.5 (categorical analogues: see
  features.Feature.shifted).

A calm cell passes when its count is at most the 95 % quantile of Binomial(trials, nominal).
Then every feature is replayed calm (baseline on an independent sample, 2 h at 2 records/s)
through the bundled alert rules, and any alert that fires is listed.

    .venv/bin/python bench/calibration.py            # ~10 min on one core
    .venv/bin/python bench/calibration.py --trials 60 --power-trials 20   # a quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import beta, binom

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.features import FEATURES, Feature, Window, calm_replay, config_for, reference_of
from exporter.config_types import DriftConfig

REFERENCES = (500, 20_000)
WINDOWS = (100, 1_000, 10_000)
CHANGES = ("+0.25σ", "+0.5σ", "x1.5")


def upper95(k: int, trials: int) -> float:
    """Clopper–Pearson upper 95 % bound of a rate observed k times in ``trials``."""
    return 1.0 if k >= trials else float(beta.ppf(0.975, k + 1, trials - k))


def allowed(trials: int, rate: float) -> int:
    return int(binom.ppf(0.95, trials, rate))


def cell(feature: Feature, m: int, n: int, trials: int, power_trials: int) -> dict[str, object]:
    config = config_for(feature)
    tests = 2 if feature.kind == "numeric" else 1
    per_test = DriftConfig(alpha=0.05 * tests, psi_floor=0.0, ks_floor=0.0, js_floor=0.0)
    default = DriftConfig()
    stats = ("psi", "ks") if feature.kind == "numeric" else ("js",)
    calm = dict.fromkeys(stats, 0)
    judged = dict.fromkeys(stats, 0)
    any_default = judged_default = 0
    for trial in range(trials):
        rng = np.random.default_rng([m, n, trial, 1])
        window = Window(feature, reference_of(feature, feature.draw(rng, m), config), config)
        live = feature.draw(rng, n)
        for statistic, drifted in window.verdicts(live, per_test).items():
            calm[statistic] += drifted
            judged[statistic] += 1
        found = window.verdicts(live, default)
        any_default += any(found.values())
        judged_default += bool(found)
    power = {}
    for change in CHANGES:
        hits = 0
        for trial in range(power_trials):
            rng = np.random.default_rng([m, n, trial, 2])
            window = Window(feature, reference_of(feature, feature.draw(rng, m), config), config)
            hits += any(window.verdicts(feature.shifted(rng, n, change), default).values())
        power[change] = hits / power_trials
    return {
        "calm": calm,
        "judged": judged,
        "default": any_default,
        "judged_default": judged_default,
        "power": power,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--power-trials", type=int, default=60)
    parser.add_argument("--features", nargs="*", default=list(FEATURES))
    parser.add_argument("--no-replay", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    trials = args.trials
    print(
        f"calm: {trials} trials per cell; bound = 95% quantile of Binomial({trials}, nominal): "
        f"{allowed(trials, 0.05)} at 5%, {allowed(trials, 0.01)} at 1%; "
        f"power: {args.power_trials} trials, default config\n"
    )
    header = (
        "| feature | m | n | PSI 5% | KS 5% | JS 5% | default (1%) | power +0.25σ | +0.5σ | ×1.5 |"
    )
    print(header)
    print("|---|---|---|---|---|---|---|---|---|---|")
    failures = []
    worst: dict[str, tuple[float, str]] = {}
    for name in args.features:
        feature = FEATURES[name]
        for m in REFERENCES:
            for n in WINDOWS:
                result = cell(feature, m, n, trials, args.power_trials)
                row = [name, f"{m:,}", f"{n:,}"]
                for statistic in ("psi", "ks", "js"):
                    if statistic not in result["calm"]:  # type: ignore[operator]
                        row.append("")
                        continue
                    k = result["calm"][statistic]  # type: ignore[index]
                    t = result["judged"][statistic]  # type: ignore[index]
                    if t == 0:
                        row.append("no verdict")
                        continue
                    ok = k <= allowed(t, 0.05)
                    failures += [] if ok else [f"{name} m={m} n={n} {statistic} {k}/{t}"]
                    row.append(f"{k / t:.1%} (≤{upper95(k, t):.1%}){'' if ok else ' ✗'}")
                    if k / t > worst.get(statistic, (-1.0, ""))[0]:
                        worst[statistic] = (k / t, f"{name} m={m} n={n}, CP95 {upper95(k, t):.1%}")
                k, t = result["default"], result["judged_default"]
                if t:
                    ok = k <= allowed(t, 0.01)  # type: ignore[arg-type]
                    failures += [] if ok else [f"{name} m={m} n={n} default {k}/{t}"]
                    row.append(f"{k / t:.1%} (≤{upper95(k, t):.1%}){'' if ok else ' ✗'}")  # type: ignore[operator, arg-type]
                    if k / t > worst.get("default", (-1.0, ""))[0]:  # type: ignore[operator]
                        worst["default"] = (k / t, f"{name} m={m} n={n}, CP95 {upper95(k, t):.1%}")  # type: ignore[operator, arg-type]
                else:
                    row.append("no verdict")
                row += [f"{result['power'][c]:.0%}" for c in CHANGES]  # type: ignore[index]
                print("| " + " | ".join(row) + " |", flush=True)
    print()
    for statistic, (rate, where) in worst.items():
        print(f"worst calm {statistic}: {rate:.1%} ({where})")
    print(f"calm cells over their bound: {len(failures)}" + "".join(f"\n  {f}" for f in failures))
    if not args.no_replay:
        print("\ncalm replay through the bundled alert rules (2 h at 2 records/s, m = 5 000):")
        for name in args.features:
            report = calm_replay(FEATURES[name], seed=11)
            fired = [f"{e.alert}{e.labels}" for e in report.alerts]
            print(f"  {name:<13} {report.records:>6} records: {', '.join(fired) or 'no alert'}")
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
