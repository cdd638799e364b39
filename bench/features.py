"""Feature types real models log, as seeded generators, and one field's drift verdicts on them.

Shared by ``bench/calibration.py`` (the full table) and the fast seeded tests in
``tests/test_verdicts.py``. Each window goes through the code the sidecar runs: the profile is
built by ``ProfileBuilder`` (sketch bins, point masses, held-out category shares, development
vocabulary), the live window is a ``summarize``d batch in a sketch anchored on that profile, and
the verdicts come from ``compare``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from exporter.anomaly import Kind
from exporter.batch import OTHER, Batch, Layout, Vocabulary
from exporter.compare import ReferenceChecks, compare
from exporter.config import parse_config
from exporter.config_types import Config, DriftConfig
from exporter.offline.baseline import ProfileBuilder
from exporter.offline.replay import replay
from exporter.offline.report import Report
from exporter.reference import Reference
from exporter.stats.sketch import Sketches
from exporter.stats.window import Shape, summarize

FloatArray = npt.NDArray[np.float64]
Draw = Callable[[np.random.Generator, int], Any]


def zipf(levels: int, s: float = 1.1) -> FloatArray:
    p = 1.0 / np.arange(1, levels + 1) ** s
    return p / p.sum()


@dataclass(frozen=True)
class Feature:
    """``draw(rng, n)`` gives calm values: floats, or category names."""

    name: str
    kind: str  # numeric | categorical
    draw: Draw
    probs: FloatArray | None = None  # categorical: the level probabilities

    def shifted(self, rng: np.random.Generator, n: int, change: str) -> Any:
        """A moved sample: ``+0.25σ``/``+0.5σ`` add that many standard deviations, ``x1.5``
        stretches around the mean. For categories the analogues move probability mass: a share
        δ = 0.25 or 0.5 of it towards the reversed order, or a flatter p^(1/1.5)."""
        if self.kind == "categorical":
            assert self.probs is not None
            p = self.probs
            if change == "x1.5":
                q = p ** (1 / 1.5)
            else:
                delta = {"+0.25σ": 0.25, "+0.5σ": 0.5}[change]
                q = (1 - delta) * p + delta * p[::-1]
            q = q / q.sum()
            return _names(rng.choice(len(q), size=n, p=q))
        mean, sigma = _moments(self)
        x = np.asarray(self.draw(rng, n))
        if change == "x1.5":
            return mean + (x - mean) * 1.5
        return x + {"+0.25σ": 0.25, "+0.5σ": 0.5}[change] * sigma


def _names(codes: npt.NDArray[np.integer]) -> list[str]:
    return [f"v{c}" for c in codes.tolist()]


def _categorical(name: str, probs: FloatArray) -> Feature:
    return Feature(
        name, "categorical", lambda r, n: _names(r.choice(len(probs), size=n, p=probs)), probs
    )


def _zeros90(r: np.random.Generator, n: int) -> FloatArray:
    return np.where(r.random(n) < 0.9, 0.0, r.exponential(1.0, n))


def _signed_with_zeros(r: np.random.Generator, n: int) -> FloatArray:
    return np.where(r.random(n) < 0.3, 0.0, r.normal(0.0, 5.0, n))


FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature("normal", "numeric", lambda r, n: r.normal(10.0, 2.0, n)),
        Feature("lognormal", "numeric", lambda r, n: r.lognormal(0.0, 1.0, n)),
        Feature("pareto", "numeric", lambda r, n: r.pareto(2.5, n) + 1.0),
        Feature("poisson3", "numeric", lambda r, n: r.poisson(3.0, n).astype(np.float64)),
        Feature("flag", "numeric", lambda r, n: (r.random(n) < 0.055).astype(np.float64)),
        Feature("zeros90", "numeric", _zeros90),
        Feature("signed_zeros", "numeric", _signed_with_zeros),
        _categorical("cat3", np.array([0.6, 0.3, 0.1])),
        _categorical("cat45", zipf(45)),
        _categorical("cat200", zipf(200)),
        Feature("epoch", "numeric", lambda r, n: r.normal(1.7e9, 1e6, n)),
    )
}

_MOMENTS: dict[str, tuple[float, float]] = {}


def _moments(feature: Feature) -> tuple[float, float]:
    if feature.name not in _MOMENTS:
        big = np.asarray(feature.draw(np.random.default_rng(12345), 400_000))
        _MOMENTS[feature.name] = (float(big.mean()), float(big.std()))
    return _MOMENTS[feature.name]


def config_for(feature: Feature, cap: int = 50) -> Config:
    spec: dict[str, Any] = {"name": "f", "type": feature.kind}
    if feature.kind == "categorical":
        spec["max_categories"] = cap
    return parse_config(
        {"sources": ["calm.jsonl"], "fields": {"timestamp": None, "features": [spec]}}
    )


def _batch(layout: Layout, values: Any, vocabulary: Vocabulary | None) -> Batch:
    n = len(values)
    numeric = np.empty((n, len(layout.numeric)))
    categorical = np.full((n, len(layout.categorical)), -1, dtype=np.int64)
    if vocabulary is None:
        numeric[:, 0] = values
    else:
        categorical[:, 0] = vocabulary.encode(list(values))[0]
    return Batch(
        groups=[("m", "v")],
        group=np.zeros(n, dtype=np.int64),
        numeric=numeric,
        categorical=categorical,
        flags=np.zeros((n, len(layout.anomaly_fields)), dtype=np.int8),
        timestamp=np.full(n, np.nan),
        wrong=np.full(n, -1, dtype=np.int8),
    )


def reference_of(feature: Feature, values: Any, config: Config) -> Reference:
    """The profile ``baseline`` would build from these development values."""
    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    layout = Layout.from_fields(config.fields)
    vocabulary = builder.vocabularies[0] if feature.kind == "categorical" else None
    builder.add_batch(_batch(layout, values, vocabulary))
    return builder.build("2026-01-01T00:00:00+00:00")


@dataclass
class Window:
    """Live windows against one profile, as the sidecar forms them."""

    feature: Feature
    reference: Reference
    config: Config

    def __post_init__(self) -> None:
        self.layout = Layout.from_fields(self.config.fields)
        cap = self.layout.categorical[0].max_categories if self.layout.categorical else 0
        self.vocabulary = Vocabulary(cap) if self.layout.categorical else None
        # Seeds the kept categories' codes and installs the development vocabulary.
        ReferenceChecks(
            self.reference, self.layout, [self.vocabulary] if self.vocabulary else [], DriftConfig()
        )
        points = [
            np.asarray(self.reference.numeric[s.name].cdf_points)
            if s.name in self.reference.numeric
            else np.empty(0)
            for s in self.layout.numeric
        ]
        self.sketch = Sketches.unanchored(len(self.layout.numeric)).anchored_on(points)
        self.shape = Shape(
            numeric=len(self.layout.numeric),
            categorical=len(self.layout.categorical),
            categories=cap + 1,
            anomaly_fields=len(self.layout.anomaly_fields) + 1,
            sketch=self.sketch,
        )

    def verdicts(self, values: Any, settings: DriftConfig) -> dict[str, bool]:
        """statistic → drifted, for the statistics that gave a verdict."""
        summary = summarize(_batch(self.layout, values, self.vocabulary), None, self.shape)
        names = (
            [[*enumerate(self.vocabulary.values), (self.vocabulary.cap, OTHER)]]
            if self.vocabulary
            else []
        )
        found = compare(summary, self.reference, self.layout, names, self.sketch, settings)
        return {f.statistic: f.verdict.drifted for f in found}

    def anomaly_share(self, values: Any, kind: int) -> float:
        """Share of live values given anomaly ``kind`` by the decoder and reference checks."""
        batch = _batch(self.layout, values, self.vocabulary)
        if self.vocabulary is not None:
            batch.flags[:, 0] = np.where(
                self.vocabulary.unseen(list(values), batch.categorical[:, 0]),
                Kind.UNSEEN_CATEGORY,
                0,
            )
        ReferenceChecks(
            self.reference, self.layout, [self.vocabulary] if self.vocabulary else [], DriftConfig()
        ).apply(batch)
        return float(np.mean(batch.flags[:, 0] == kind))


# -- a calm log replayed through the bundled alert rules ---------------------------------------


def _jsonl(values: Any, start: float, rate: float) -> bytes:
    """One record per value, ``rate`` per second from ``start``, in the mapped log format."""
    lines = []
    for i, value in enumerate(values.tolist() if hasattr(values, "tolist") else values):
        lines.append(json.dumps({"ts": start + i / rate, "f": value}))
    return ("\n".join(lines) + "\n").encode()


def replay_config(feature: Feature, cap: int = 50) -> Config:
    spec: dict[str, Any] = {"name": "f", "type": feature.kind}
    if feature.kind == "categorical":
        spec["max_categories"] = cap
    return parse_config(
        {
            "sources": ["calm.jsonl"],
            "fields": {
                "timestamp": "ts",
                "model_name": "m",
                "model_version": "v",
                "features": [spec],
            },
        }
    )


def calm_replay(
    feature: Feature, seed: int, dev: int = 5_000, hours: float = 2.0, rate: float = 2.0
) -> Report:
    """``baseline`` on an independent calm development sample, then ``replay`` of a calm log
    with the bundled rules' default thresholds and ``for:`` durations."""
    config = replay_config(feature)
    rng = np.random.default_rng(seed)
    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    builder.add(_jsonl(feature.draw(rng, dev), 1_700_000_000.0, 100.0))
    reference = builder.build("2026-01-01T00:00:00+00:00")
    live = _jsonl(feature.draw(rng, int(hours * 3600 * rate)), 1_764_000_000.0, rate)
    return replay([live], config, reference)
