"""How close the label-free error estimate comes to the measured error ratio, on real data.

scikit-learn's breast-cancer set (569 tumours), a logistic regression as in
tests/test_e2e_drift.py: per seed, a stratified half is development (out-of-fold predictions: an
honest error rate and calibration table, through ``ProfileBuilder`` as ``baseline`` builds it),
the model is fitted on it, and production windows are drawn from the other half in several
phases. Each window goes through the sidecar's own path (decode, State, the profile's cells) and
its ``model_window_estimated_error_ratio`` is compared with the error ratio of its labels.

Phases (production rows, resampled with replacement to WINDOW records):
- calm: the production half as it is;
- harder cases: rows weighted towards the model's decision boundary (weight e^(−4·|logit|/s),
  s the logit spread): a covariate shift that keeps P(label | inputs), so calibration holds;
- more malignant: malignant rows three times as likely (a prior/label shift);
- moved inputs k σ: two features (mean radius, worst concave points) moved by k development
  standard deviations before the model sees them, the labels unchanged — the inputs no longer
  mean what they meant in development, the shift that breaks calibration.

    .venv/bin/python bench/estimate.py [--seeds 40]

Prints per phase the mean measured and estimated error ratios, the mean absolute gap and the
share of windows where the estimate is within 0.02 (absolute) or within a factor 1.5.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from exporter.config import parse_config
from exporter.engine import Engine
from exporter.offline.baseline import ProfileBuilder
from exporter.reference import Reference

T0 = 1_764_000_000.0
WINDOW = 400
MOVED = ("mean radius", "worst concave points")
CONFIG = parse_config(
    {
        "sources": ["/dev/null"],
        "windows": ["1h"],
        "fields": {
            "timestamp": None,
            "model_name": "cancer-screen",
            "model_version": "lr-1",
            "predicted_class": "label",
            "confidence": {"path": "top", "min": 0, "max": 1},
            "ground_truth": "truth",
        },
    }
)


def lines(proba: np.ndarray, truth: np.ndarray) -> bytes:
    predicted = proba.argmax(axis=1)
    return "".join(
        json.dumps({"label": str(p), "top": float(row.max()), "truth": str(t)}) + "\n"
        for row, p, t in zip(proba, predicted, truth, strict=True)
    ).encode()


def estimate(reference: Reference, proba: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(measured, estimated) error ratio of one window, through the sidecar's engine."""
    engine = Engine(CONFIG, reference)
    engine.ingest(lines(proba, truth), T0)
    window = engine.state.snapshot(T0).groups[0].windows[0].summary
    (assessed,) = engine.advance(T0 + engine.assessor.step).windows.values()
    assert assessed.estimated_error_ratio is not None
    return window.wrong / window.labelled, assessed.estimated_error_ratio


def _phases(
    model: Any,
    x_dev: np.ndarray,
    x_prod: np.ndarray,
    y_prod: np.ndarray,
    names: list[str],
    seed: int,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each phase's window: the model's probabilities and the labels of WINDOW drawn rows."""
    logit = model.decision_function(x_prod)
    spread = x_dev.std(axis=0)

    def sample(weights: np.ndarray, x: np.ndarray = x_prod) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        rows = rng.choice(len(x), WINDOW, p=weights / weights.sum())
        return model.predict_proba(x[rows]), y_prod[rows]

    def moved(k: float) -> tuple[np.ndarray, np.ndarray]:
        x = x_prod.copy()
        for column in MOVED:
            x[:, names.index(column)] += k * spread[names.index(column)]
        return sample(np.ones(len(x)), x)

    return {
        "calm": sample(np.ones(len(x_prod))),
        "harder cases": sample(np.exp(-4 * np.abs(logit) / logit.std())),
        "more malignant": sample(np.where(y_prod == 0, 3.0, 1.0)),
        "moved inputs 0.5σ": moved(0.5),
        "moved inputs 1σ": moved(1.0),
        "moved inputs 1.5σ": moved(1.5),
        "moved inputs 3σ": moved(3.0),
    }


def run(seeds: int) -> dict[str, list[tuple[float, float]]]:
    data = load_breast_cancer()
    names = list(data.feature_names)
    results: dict[str, list[tuple[float, float]]] = {}
    for seed in range(seeds):
        x_dev, x_prod, y_dev, y_prod = train_test_split(
            data.data, data.target, test_size=0.5, random_state=seed, stratify=data.target
        )
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        dev_proba = cross_val_predict(model, x_dev, y_dev, cv=folds, method="predict_proba")
        model.fit(x_dev, y_dev)
        builder = ProfileBuilder(CONFIG.fields, CONFIG.quantiles, CONFIG.sketch_relative_accuracy)
        builder.add(lines(dev_proba, y_dev))
        reference = builder.build("2026-01-01T00:00:00+00:00")
        phases = _phases(model, x_dev, x_prod, y_prod, names, seed)
        for name, (proba, truth) in phases.items():
            results.setdefault(name, []).append(estimate(reference, proba, truth))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    args = parser.parse_args()
    results = run(args.seeds)
    print(
        f"{args.seeds} development/production splits, windows of {WINDOW} records\n"
        "| phase | measured | estimated | mean abs. gap | within 0.02 | within ×1.5 |\n"
        "|---|---|---|---|---|---|"
    )
    for name, pairs in results.items():
        measured, estimated = np.array(pairs).T
        gap = np.abs(estimated - measured)
        ratio = np.maximum(estimated, 1e-9) / np.maximum(measured, 1e-9)
        within = np.mean((ratio <= 1.5) & (ratio >= 1 / 1.5))
        print(
            f"| {name} | {measured.mean():.3f} | {estimated.mean():.3f} | {gap.mean():.3f} "
            f"| {np.mean(gap <= 0.02):.0%} | {within:.0%} |"
        )


if __name__ == "__main__":
    main()
