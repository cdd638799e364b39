"""Log content that once broke the exporter, rendered in-process and checked with the real
``promtool check metrics``: lone surrogates (every scrape failed), label values of any length
(a 302 MB scrape), integers longer than Python converts (a valid line lost), and rendering that
stays total whatever reaches the collector.

The budget test renders the issue's hostile log (16 model names of 10 KB, 50 class values of
100 KB) and a state filled to every cap, and holds both to the documented size budget.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.assess import Assessment, assessment_step
from exporter.batch import OTHER, UNKNOWN, Batch
from exporter.budget import FAMILIES, exposition_budget
from exporter.collector import ModelCollector
from exporter.config import parse_config
from exporter.config_types import Config
from exporter.decode import Decoder
from exporter.engine import Engine
from exporter.errors import ConfigError
from exporter.health import Health
from exporter.labels import label_text
from exporter.offline.baseline import ProfileBuilder
from exporter.reference import Reference
from exporter.state import Snapshot, State
from tests.configs import example_config
from tests.harness import promtool
from tests.served import bodies, served

T0 = 1_717_000_000.0
Labels = dict[str, str]


def setup(**overrides: Any) -> tuple[Config, Decoder, State]:
    """The documented example config (config/exporter.yaml), with ``overrides``."""
    config = parse_config(example_config("/var/log/model/predictions.jsonl", **overrides))
    decoder = Decoder(config.fields, config.late_after, config.future_after)
    state = State(config, decoder.layout, [v.values for v in decoder.vocabularies])
    return config, decoder, state


def ingest(decoder: Decoder, state: State, lines: list[bytes], now: float = T0) -> Batch:
    batch = decoder.decode(b"".join(line + b"\n" for line in lines), now)
    state.ingest(batch, now)
    decoder.commit(batch)  # as the engine does: cut label values count once the batch is kept
    return batch


def render(
    snapshot: Callable[[], Snapshot],
    health: Callable[[], Health] | None = None,
    assessment: Callable[[], Assessment] | None = None,
) -> str:
    """What the sidecar serves (``Bodies.render``, our own writer)."""
    return served(snapshot, health, assessment)


def render_fallback(
    snapshot: Callable[[], Snapshot],
    health: Callable[[], Health] | None = None,
    assessment: Callable[[], Assessment] | None = None,
) -> str:
    """prometheus_client's encoder over the same collector: the server's fallback when it is
    given no renderer (the sidecar always gives one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ModelCollector(snapshot, health, assessment))
    return generate_latest(registry).decode()


def check(text: str) -> None:
    result = promtool("check", "metrics", input=text)
    assert result.returncode == 0, result.stdout + result.stderr


def samples(text: str) -> list[tuple[str, Labels, float]]:
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def value(text: str, name: str, **labels: str) -> float:
    found = [v for n, lb, v in samples(text) if n == name and labels.items() <= lb.items()]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def line(**fields: Any) -> bytes:
    record = {"ts": T0, "model": "m", "version": "v", "prediction": 0.5, "predicted_class": "a"}
    record.update(fields)
    return json.dumps(record).encode()  # ensure_ascii: a lone surrogate is written as \ud800


# -- 1. lone surrogates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"predicted_class": "cat\ud800"}, "predicted_class"),
        ({"features": {"country": "\udfffDE"}}, "country"),
        ({"model": "fraud\ud800"}, "model"),
        ({"version": "v\udc80"}, "version"),
    ],
)
def test_a_lone_surrogate_is_repaired_counted_and_every_scrape_still_renders(
    record: dict[str, Any], field: str
) -> None:
    _, decoder, state = setup()
    batch = ingest(decoder, state, [line(**record), line()])
    assert batch.size == 2
    assert not batch.parse_errors
    text = render(lambda: state.snapshot(T0))
    check(text)
    text.encode("utf-8")
    found = [lb for n, lb, v in samples(text) if n == "model_anomalies_total" and v > 0]
    bad = {(lb["field"], lb["kind"]) for lb in found if lb["kind"] != "missing"}
    assert bad == {(field, "invalid_text")}
    assert sum(v for n, _, v in samples(text) if n == "model_predictions_total") == 2
    shown = {v for _, lb, _ in samples(text) for v in lb.values()}
    assert any("\ufffd" in v for v in shown)  # kept, with U+FFFD in place of the surrogate


def test_hostile_label_values_fed_straight_to_the_state_and_collector_render() -> None:
    """Whatever reaches the renderer (a value ingestion did not repair, a source path from the
    config), the exposition is valid UTF-8 and promtool accepts it. Protects any writer that
    replaces the collector's rendering."""
    config, decoder, state = setup()
    hostile = ["\ud800", 'q"uo\\te\nnew', "\x00nul", "\udcff\udcfe", "e\u0301\u2028", "x" * 300]
    state = State(config, decoder.layout, [list(hostile), [], []])  # vocabularies as given
    n = len(hostile)
    layout = decoder.layout
    categorical = np.full((n, len(layout.categorical)), -1, dtype=np.int64)
    categorical[:, 0] = np.arange(n)
    numeric = np.full((n, len(layout.numeric)), np.nan)
    numeric[:, 0] = 0.5
    batch = Batch(
        groups=[(m, v) for m, v in zip(hostile, reversed(hostile), strict=True)],
        group=np.arange(n, dtype=np.int64),
        numeric=numeric,
        categorical=categorical,
        flags=np.zeros((n, len(layout.anomaly_fields)), dtype=np.int8),
        timestamp=np.full(n, T0),
        wrong=np.full(n, -1, dtype=np.int8),
    )
    state.ingest(batch, T0)

    def health() -> Health:
        return Health(parse_errors={("/logs/\udcff*.jsonl", "invalid_json"): 1})

    for text in (
        render(lambda: state.snapshot(T0), health),
        render_fallback(lambda: state.snapshot(T0), health),  # collect() repairs for its encoder
    ):
        check(text)
        assert value(text, "model_exporter_render_errors_total") == 0
        assert sum(v for n, _, v in samples(text) if n == "model_predictions_total") == n


def test_a_part_that_fails_to_render_is_left_out_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, decoder, state = setup()
    ingest(decoder, state, [line()])

    def broken() -> Health:
        raise RuntimeError("boom")

    served_bodies = bodies(lambda: state.snapshot(T0), broken)
    caplog.set_level(logging.ERROR)
    first = served_bodies.render(False).decode()
    second = served_bodies.render(False).decode()
    for text, errors in ((first, 1), (second, 2)):
        check(text)
        assert value(text, "model_predictions_total", model="m") == 1
        assert value(text, "model_exporter_render_errors_total") == errors
        assert not [n for n, _, _ in samples(text) if n == "model_exporter_lines_total"]
    assert len([r for r in caplog.records if "cannot render" in r.getMessage()]) == 1


# -- 2. length cap and the size budget -----------------------------------------------------


@given(st.text(st.characters(codec=None), max_size=60), st.integers(16, 64))
def test_label_text_is_valid_utf8_within_the_limit_and_cut_at_a_boundary(
    text: str, limit: int
) -> None:
    got, repaired, cut = label_text(text, limit)
    data = got.encode("utf-8")  # never raises
    assert len(data) <= limit
    whole = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    assert whole.startswith(got)
    assert repaired == (whole != text)
    assert cut == (got != whole)
    if cut:  # cut at the last whole character that fits
        assert len(data) + len(whole[len(got)].encode()) > limit


def test_the_issue_hostile_log_scrape_stays_within_the_budget() -> None:
    """16 model names of 10 KB and 50 class values of 100 KB (a 5 MB log) made a 302 MB scrape."""
    config, decoder, state = setup()
    models = [f"{m:02d}" + "M" * 10_000 for m in range(16)]
    classes = [f"{c:02d}" + "C" * 100_000 for c in range(50)]
    lines = [line(model=models[c % 16], predicted_class=classes[c]) for c in range(50)]
    lines += [line(model=model) for model in models]
    assert sum(map(len, lines)) > 5_000_000
    ingest(decoder, state, lines)
    assert all(len(v.encode()) <= 128 for v in decoder.vocabularies[0].values)
    budget = exposition_budget(config)
    text = render(lambda: state.snapshot(T0), lambda: Health(labels_cut=decoder.labels_cut()))
    check(text)
    assert len(text.encode()) <= budget.bytes
    got = samples(text)
    assert len(got) <= budget.series
    cut = {lb["field"]: v for n, lb, v in got if n == "model_exporter_label_values_truncated_total"}
    assert cut == {"model": 66, "version": 0, "predicted_class": 50, "country": 0, "device": 0}
    models = {lb["model"] for n, lb, _ in got if n == "model_predictions_total"}
    assert len(models) == config.max_model_versions
    assert all(len(m.encode()) <= 128 for m in models)


def _filled_profile(config: Config, name: Callable[[str, int], str]) -> Reference:
    """A development profile that fills every fleet-cell cap: each numeric field with nine
    point masses of a tenth of the data and the rest spread (the most cells a profile gives a
    numeric field), each categorical field with more values than its cap, all kept ones common."""
    rng = np.random.default_rng(4)
    masses = np.linspace(0.05, 0.85, 9)

    def value(scale: float) -> float:
        spread = rng.random() < 0.055
        return scale * float(rng.uniform(0.0, 0.95) if spread else rng.choice(masses))

    rows = [
        line(
            prediction=value(1.0),
            confidence=value(1.0),
            latency_ms=value(100.0),
            predicted_class=name("c", i % 60),
            ground_truth=name("c", (i + 1) % 60),
            features={
                "amount": value(1000.0),
                "age": value(100.0),
                "merchant_risk": value(1.0),
                "country": name("k", i % 55),
                "device": name("d", i % 70),
            },
        )
        for i in range(4_000)
    ]
    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    builder.add(b"".join(row + b"\n" for row in rows))
    return builder.build("2026-01-01T00:00:00+00:00")


def test_a_state_filled_to_every_cap_stays_within_the_budget() -> None:
    """Every model version, every category up to its cap with the longest values (multibyte,
    and characters the exposition escapes), a reference filling every fleet-cell cap and drift
    verdicts: the largest scrape this config can produce, held to the budget, which must also
    not be loose in series."""
    drift = {"min_samples": 1}
    config = parse_config(example_config("/var/log/p.jsonl", max_label_value_bytes=64, drift=drift))
    long = '"\\\n€' * 20  # 7 bytes per repeat in UTF-8, up to 14 escaped

    def name(prefix: str, i: int) -> str:
        return f"{prefix}{i:02d}{long}"

    reference = _filled_profile(config, name)
    assert max(len(r.bin_shares) - 2 for r in reference.numeric.values()) >= 18  # near 20
    engine = Engine(config, reference)
    rng = np.random.default_rng(3)

    lines = []
    for i in range(400):
        m = i % (config.max_model_versions + 1)  # one more than the cap: __other__
        lines.append(
            line(
                model=name("m", m),
                version=name("v", m),
                prediction=float(rng.uniform()),
                confidence=float(rng.uniform()),
                latency_ms=float(rng.uniform(1, 100)),
                predicted_class=name("c", i % 60),
                ground_truth=name("c", (i + 1) % 60),
                features={
                    "amount": float(rng.uniform(0, 1000)),
                    "age": float(rng.uniform(18, 90)),
                    "merchant_risk": float(rng.uniform()),
                    "country": name("k", i % 55),
                    "device": name("d", i % 70),
                },
            )
        )
    engine.ingest(b"".join(x + b"\n" for x in lines), T0)
    engine.ingest(b"not json\n" + line(model=None, version=None) + b"\n", T0)
    assert engine.state.reference is not None
    later = T0 + assessment_step(config)  # the next step judges every window
    assessment = engine.advance(later)
    assert sum(len(w.drift) for w in assessment.windows.values()) > 0
    budget = exposition_budget(config)
    text = render(
        lambda: engine.state.snapshot(later),
        lambda: Health(labels_cut=engine.decoder.labels_cut()),
        lambda: assessment,
    )
    check(text)
    series = [row for row in text.splitlines() if not row.startswith("#")]  # one per series
    # 16 model versions fill the slots, the 17th goes to __other__, and the line that names no
    # model to __unknown__, which takes no slot
    predictions = [row for row in series if row.startswith("model_predictions_total{")]
    assert len(predictions) == config.max_model_versions + 2
    assert sum(f'model="{OTHER}"' in row or f'model="{UNKNOWN}"' in row for row in predictions) == 2
    assert len(series) <= budget.series
    assert len(text.encode()) <= budget.bytes
    assert len(series) >= 0.8 * budget.series  # the formula counts what is there, not far more
    assert len([row for row in text.splitlines() if row.startswith("# TYPE ")]) <= FAMILIES


# -- 4. integers longer than Python converts -------------------------------------------------


def test_an_integer_of_5000_digits_is_not_a_number_on_its_field_and_keeps_the_record() -> None:
    _, decoder, state = setup()
    digits = "9" * 5000
    huge = (
        b'{"ts": %d, "model": "m", "version": "v", "prediction": 0.5, '
        b'"latency_ms": -%s, "predicted_class": %s, "features": {"amount": %s, "age": 40}}'
        % (int(T0), digits.encode(), digits.encode(), digits.encode())
    )
    batch = ingest(decoder, state, [huge, line()])
    assert batch.size == 2
    assert not batch.parse_errors
    text = render(lambda: state.snapshot(T0))
    check(text)
    for field in ("amount", "latency_seconds"):
        assert value(text, "model_anomalies_total", field=field, kind="not_a_number") == 1
    assert value(text, "model_window_samples", field="age", window="1m") == 1
    assert value(text, "model_window_samples", field="prediction", window="1m") == 2
    classes = {lb["value"] for n, lb, _ in samples(text) if n == "model_window_category_ratio"}
    assert "9" * 128 in classes  # a category is its digits, cut to the limit


# -- the config keys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"max_label_value_bytes": 8}, "max_label_value_bytes: must be a whole number"),
        ({"max_label_value_bytes": 1 << 20}, "max_label_value_bytes: must be a whole number"),
        ({"max_label_value_bytes": True}, "max_label_value_bytes: must be a whole number"),
        ({"fields": {"prediction": "p", "model_name": "x" * 200}}, "fields.model_name: must be"),
        ({"fields": {"prediction": "p", "model_version": "\ud800"}}, "fields.model_version:"),
    ],
)
def test_label_limits_in_the_config_are_checked(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(example_config("/var/log/p.jsonl", **overrides))
    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems


def test_lines_that_name_no_model_count_under_unknown() -> None:
    _, decoder, state = setup()
    ingest(decoder, state, [line(model="123"), b"{bad", line(model=None), line(model=[1])])
    text = render(lambda: state.snapshot(T0))
    check(text)
    unknown = {"model": UNKNOWN, "version": "v"}
    assert value(text, "model_predictions_total", **unknown) == 2
    assert value(text, "model_predictions_total", model="123") == 1
    parse_errors = {"field": "record", "kind": "parse_error"}
    assert value(text, "model_anomalies_total", model="123", **parse_errors) == 0
    assert value(text, "model_anomalies_total", model=UNKNOWN, version=UNKNOWN, **parse_errors) == 1


def test_the_smallest_limit_keeps_the_reserved_names_intact() -> None:
    for name in (OTHER, UNKNOWN):
        assert label_text(name, 16) == (name, False, False)
