"""Roles are found through ``Layout``'s role columns, never by position: a mapping whose columns
come in another order (features first) must give the same residuals, errors and joins."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pytest

from exporter.batch import Batch, Layout
from exporter.config_types import FieldsConfig, FieldSpec
from exporter.decode import Decoder
from exporter.join import Joined, LabelJoin
from tests.configs import unread_config

CLASSES = ("legit", "fraud", "review")
COUNTRIES = ("US", "DE", "BR")


@dataclass(frozen=True)
class FeaturesFirst(FieldsConfig):
    """The same mapping with its columns in reverse order: features before the built-in roles."""

    @property
    def numeric(self) -> tuple[FieldSpec, ...]:
        return tuple(reversed(super().numeric))

    @property
    def categorical(self) -> tuple[FieldSpec, ...]:
        return tuple(reversed(super().categorical))


def mapping(**roles: Any) -> FieldsConfig:
    config = unread_config(
        {
            "model_name": "m",
            "model_version": "v1",
            "confidence": "conf",
            "latency": {"path": "lat_ms", "unit": "ms"},
            "features": [
                {"name": "amount", "path": "amount"},
                {"name": "age", "path": "age"},
                {"name": "country", "path": "country", "type": "categorical"},
            ],
            **roles,
        }
    )
    return config.fields


def reordered(original: FieldsConfig) -> FieldsConfig:
    return FeaturesFirst(**{f.name: getattr(original, f.name) for f in fields(original)})


def records(rng: np.random.Generator, n: int, regression: bool) -> bytes:
    lines = []
    for i in range(n):
        record: dict[str, Any] = {
            "id": f"r{i}",
            "conf": round(float(rng.uniform(0.5, 1.0)), 3),
            "lat_ms": round(float(rng.uniform(1, 50)), 2),
            "amount": round(float(rng.lognormal(3, 1)), 2),
            "age": int(rng.integers(18, 90)),
            "country": COUNTRIES[int(rng.integers(len(COUNTRIES)))],
        }
        if regression:
            record["score"] = round(float(rng.normal(10, 3)), 3)
        else:
            record["cls"] = CLASSES[int(rng.integers(len(CLASSES)))]
        if i % 3 == 0:  # inline label
            record["label"] = (
                round(float(rng.normal(10, 3)), 3)
                if regression
                else CLASSES[int(rng.integers(len(CLASSES)))]
            )
        lines.append(json.dumps(record))
        if i % 3 == 1:  # a label that arrives later, on its own line
            label: Any = 7.5 if regression else CLASSES[i % len(CLASSES)]
            lines.append(json.dumps({"id": f"r{i}", "label": label}))
    return ("\n".join(lines) + "\n").encode()


def joined_after(decoder: Decoder, data: bytes) -> tuple[Batch, dict[Any, Joined], dict[Any, int]]:
    join = LabelJoin(decoder.layout, decoder.class_names, timeout=600.0, capacity=1000)
    batch = decoder.decode(data, 0.0)
    result = join.match(batch, now=30.0)
    join.commit(result)
    return batch, result.joined, dict(result.outcomes)


@pytest.mark.parametrize("regression", [False, True], ids=["classification", "regression"])
def test_reordered_columns_give_the_same_residuals_errors_and_joins(regression: bool) -> None:
    roles = {"prediction": "score"} if regression else {"predicted_class": "cls"}
    roles |= {"ground_truth": "label", "request_id": "id"}
    usual = mapping(**roles)
    other = reordered(usual)
    a, b = Decoder(usual, keep_labels=True), Decoder(other, keep_labels=True)
    # The test means something only if the roles really moved.
    if regression:
        assert (a.layout.prediction_column, b.layout.prediction_column) == (0, 4)
    else:
        assert (a.layout.predicted_class_column, b.layout.predicted_class_column) == (0, 1)
    assert a.layout.confidence_column != b.layout.confidence_column

    data = records(np.random.default_rng(5), 600, regression)
    batch_a, joined_a, outcomes_a = joined_after(a, data)
    batch_b, joined_b, outcomes_b = joined_after(b, data)
    assert batch_a.request_id == batch_b.request_id  # the rows line up
    if regression:
        assert batch_a.residual is not None
        assert batch_b.residual is not None
        np.testing.assert_array_equal(batch_a.residual, batch_b.residual)
        assert np.isfinite(batch_a.residual).sum() > 100
    else:
        np.testing.assert_array_equal(batch_a.wrong, batch_b.wrong)
        assert (batch_a.wrong == 1).sum() > 50
        assert sorted(a.class_names) == sorted(b.class_names) == sorted(CLASSES)
    assert joined_a == joined_b
    assert outcomes_a == outcomes_b
    assert sum(outcomes_a.values()) > 100


def test_a_mapping_without_a_role_has_no_role_column() -> None:
    layout = Layout.from_fields(mapping())
    assert layout.prediction_column is None
    assert layout.predicted_class_column is None
    assert layout.confidence_column is not None
    assert layout.latency_column is not None
    assert layout.numeric[layout.confidence_column].name == "confidence"
    assert layout.numeric[layout.latency_column].name == "latency_seconds"
