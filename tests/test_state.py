"""Per-(model, version) state: batches ingested at chosen ``now``s, snapshots checked against
numpy on the same values."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.anomaly import Kind
from exporter.batch import OTHER, UNKNOWN
from exporter.config_types import Config
from exporter.state import OVERFLOW_GROUP, GroupSnapshot, Snapshot, WindowView
from tests.state_data import CONFIG, FIELD_OF, T0, build, encode, make_records, valid


def group(snapshot: Snapshot, model: str, version: str = "v1") -> GroupSnapshot:
    (found,) = [g for g in snapshot.groups if (g.model, g.version) == (model, version)]
    return found


def window(g: GroupSnapshot, name: str) -> WindowView:
    (found,) = [w for w in g.windows if w.spec.name == name]
    return found


def assert_window_matches(
    snapshot: Snapshot, view: WindowView, records: list[dict[str, Any]], accuracy: float
) -> None:
    layout = snapshot.layout
    s = view.summary
    assert s.records == len(records)
    for f, spec in enumerate(layout.numeric):
        values = valid(records, FIELD_OF[spec.name])
        assert s.count[f] == len(values), spec.name
        if not len(values):
            assert np.isnan(view.quantiles[f]).all()
            continue
        mean = s.total[f] / s.count[f]
        stddev = s.stddev(f)
        assert mean == pytest.approx(values.mean(), rel=1e-9)
        assert stddev == pytest.approx(values.std(), rel=1e-6)
        assert (s.low[f], s.high[f]) == (values.min(), values.max())
        exact = np.quantile(values, snapshot.quantiles, method="lower")
        assert np.all(np.abs(view.quantiles[f] - exact) <= accuracy * np.abs(exact) * 1.000001)
    classes = Counter(r["cls"] for r in records)
    names = {v: c for c, v in snapshot.categories[0]}
    for value, count in classes.items():
        assert s.categories[0, names[value]] == count
    labelled = [r for r in records if "truth" in r]
    assert s.labelled == len(labelled)
    assert s.wrong == sum(r["truth"] != r["cls"] for r in labelled)
    rows = layout.anomaly_fields
    assert s.anomalies[rows.index("prediction"), Kind.NOT_A_NUMBER] == sum(
        r["p"] == "abc" for r in records
    )
    assert s.anomalies[rows.index("prediction"), Kind.OUT_OF_RANGE] == sum(
        isinstance(r["p"], float) and not 0 <= r["p"] <= 1 for r in records
    )
    assert s.anomalies[rows.index("confidence"), Kind.MISSING] == sum(
        "conf" not in r for r in records
    )
    assert s.anomalies[rows.index("latency_seconds"), Kind.MISSING] == sum(
        r["lat_ms"] is None for r in records
    )
    assert s.anomalies[rows.index("amount"), Kind.TYPE_MISMATCH] == sum(
        r["f"]["amount"] is True for r in records
    )
    assert s.anomalies[rows.index("timestamp"), Kind.LATE] == sum(
        r["ts"] < snapshot.now - 1_000 for r in records
    )


def test_snapshot_matches_numpy_on_one_batch() -> None:
    config, decoder, state = build()
    records = make_records(np.random.default_rng(1), 5_000, T0)
    state.ingest(decoder.decode(encode(records), T0), T0)
    snapshot = state.snapshot(T0 + 1)
    g = group(snapshot, "fraud")
    for name in ("1m", "1h"):
        assert_window_matches(snapshot, window(g, name), records, config.sketch_relative_accuracy)
    assert g.totals.records == len(records)
    assert g.totals.sketch is None
    assert g.totals.latest == max(r["ts"] for r in records)


def test_histograms_are_cumulative_like_numpy() -> None:
    _, decoder, state = build()
    records = make_records(np.random.default_rng(2), 3_000, T0)
    records[0]["p"] = 0.5  # exactly on a bucket bound: counted in le="0.5"
    records[1]["lat_ms"] = 10.0  # exactly 0.01 s
    state.ingest(decoder.decode(encode(records), T0), T0)
    snapshot = state.snapshot(T0)
    g = group(snapshot, "fraud")
    names = {h.name for h in snapshot.histograms}
    assert names == {"prediction", "confidence", "latency_seconds"}
    for h, histogram in enumerate(snapshot.histograms):
        values = valid(records, FIELD_OF[histogram.name])
        bounds = np.array(histogram.bounds)
        cumulative = g.histogram_counts[h, : len(bounds) + 1].cumsum()
        np.testing.assert_array_equal(
            cumulative[:-1], [(values <= b).sum() for b in bounds], err_msg=histogram.name
        )
        assert cumulative[-1] == len(values)
        assert g.histogram_sums[h] == pytest.approx(values.sum(), rel=1e-9)


def test_windows_forget_old_batches_and_totals_do_not() -> None:
    config, decoder, state = build()
    rng = np.random.default_rng(3)
    first = make_records(rng, 1_000, T0)
    second = make_records(rng, 700, T0 + 120)
    state.ingest(decoder.decode(encode(first), T0), T0)
    state.ingest(decoder.decode(encode(second), T0 + 120), T0 + 120)
    accuracy = config.sketch_relative_accuracy

    g = group(state.snapshot(T0 + 121), "fraud")
    assert_window_matches(state.snapshot(T0 + 121), window(g, "1m"), second, accuracy)
    assert_window_matches(state.snapshot(T0 + 121), window(g, "1h"), first + second, accuracy)
    assert g.totals.records == 1_700

    later = group(state.snapshot(T0 + 2 * 3600), "fraud")
    for name in ("1m", "1h"):
        assert window(later, name).summary.records == 0
        assert np.isnan(window(later, name).quantiles).all()
    assert later.totals.records == 1_700
    assert later.totals.count.tolist() == g.totals.count.tolist()


def test_several_groups_are_kept_apart() -> None:
    config, decoder, state = build()
    records = make_records(np.random.default_rng(4), 2_000, T0, models=("a", "b", "c"))
    state.ingest(decoder.decode(encode(records), T0), T0)
    snapshot = state.snapshot(T0)
    assert {(g.model, g.version) for g in snapshot.groups} == {
        ("a", "v1"),
        ("b", "v1"),
        ("c", "v1"),
    }
    for model in ("a", "b", "c"):
        mine = [r for r in records if r["model"] == model]
        view = window(group(snapshot, model), "1h")
        assert_window_matches(snapshot, view, mine, config.sketch_relative_accuracy)


def test_category_names_follow_the_decoder_vocabulary_and_cap() -> None:
    _, decoder, state = build()
    records = make_records(np.random.default_rng(5), 500, T0)
    state.ingest(decoder.decode(encode(records), T0), T0)
    snapshot = state.snapshot(T0)
    countries = snapshot.categories[1]
    assert len(countries) == 3  # cap 2 + __other__
    assert countries[-1] == (2, OTHER)
    seen = [r["f"]["country"] for r in records]
    counts = window(group(snapshot, "fraud"), "1h").summary.categories[1]
    named = {value: int(counts[code]) for code, value in countries}
    kept = [value for _, value in countries[:-1]]
    assert named[OTHER] == sum(c not in kept for c in seen)
    for value in kept:
        assert named[value] == seen.count(value)


def test_a_snapshot_names_only_the_categories_of_ingested_records() -> None:
    """The decoder grows its vocabularies outside the state's lock (on the ingest thread, while
    a scrape may be reading): a snapshot shows the names of what was ingested, no more."""
    _, decoder, state = build()
    first = make_records(np.random.default_rng(6), 50, T0)
    for r in first:
        r["f"]["country"] = "DE"
    state.ingest(decoder.decode(encode(first), T0), T0)
    later = [{**first[0], "f": {"amount": 1.0, "country": "FR"}}]
    batch = decoder.decode(encode(later), T0)  # "FR" has a code now ...
    assert decoder.vocabularies[1].values == ["DE", "FR"]
    assert state.snapshot(T0).categories[1] == [(0, "DE"), (2, OTHER)]  # ... but no record yet
    state.ingest(batch, T0)
    assert state.snapshot(T0).categories[1] == [(0, "DE"), (1, "FR"), (2, OTHER)]


def test_parse_errors_are_charged_to_the_unknown_model_not_the_one_read_before() -> None:
    """docs/metrics.md: a line that names no model counts under ``__unknown__`` when names come
    from the log; before, 10 of 35 parse errors went to whichever model was read last."""
    _, decoder, state = build()
    rng = np.random.default_rng(6)
    state.ingest(decoder.decode(encode([], junk=3), T0), T0)  # nothing read yet
    state.ingest(decoder.decode(encode(make_records(rng, 10, T0, ("a",)), junk=2), T0), T0)
    state.ingest(decoder.decode(b"[1]\n{x\n", T0 + 1), T0 + 1)
    state.ingest(decoder.decode(encode(make_records(rng, 5, T0, ("b",))), T0 + 1), T0 + 1)
    snapshot = state.snapshot(T0 + 1)
    record_row = len(snapshot.layout.anomaly_fields)
    assert sorted((g.model, g.version) for g in snapshot.groups) == [
        (UNKNOWN, UNKNOWN),
        ("a", "v1"),
        ("b", "v1"),
    ]
    unknown = group(snapshot, UNKNOWN, UNKNOWN)
    assert unknown.totals.anomalies[record_row, Kind.PARSE_ERROR] == 3 + 2 + 2
    assert window(unknown, "1m").summary.anomalies[record_row, Kind.PARSE_ERROR] == 7
    assert unknown.totals.records == 0
    for name, records in (("a", 10), ("b", 5)):
        named = group(snapshot, name)
        assert named.totals.anomalies[record_row, Kind.PARSE_ERROR] == 0
        assert named.totals.records == records


def test_an_empty_model_name_counts_under_unknown() -> None:
    """Prometheus reads ``model=""`` as no label at all: an empty name names no model."""
    _, decoder, state = build()
    rng = np.random.default_rng(7)
    records = make_records(rng, 4, T0, ("a",))
    records[0]["model"] = ""
    records[1]["version"] = ""
    state.ingest(decoder.decode(encode(records), T0), T0)
    names = sorted((g.model, g.version, g.totals.records) for g in state.snapshot(T0).groups)
    assert names == [(UNKNOWN, "v1", 1), ("a", UNKNOWN, 1), ("a", "v1", 2)]


def test_parse_errors_with_a_static_name_are_charged_to_that_model() -> None:
    """With ``model_name`` there is one model: a bad line is that model's."""
    fields = {**CONFIG["fields"], "model_name": "fraud", "model_version": "v9"}
    del fields["model"], fields["version"]
    _, decoder, state = build(fields=fields)
    state.ingest(decoder.decode(b"not json\n{bad\n", T0), T0)
    state.ingest(decoder.decode(encode([{"ts": T0, "p": 0.5}]), T0), T0)
    (only,) = state.snapshot(T0).groups
    assert (only.model, only.version) == ("fraud", "v9")
    assert only.totals.anomalies[-1, Kind.PARSE_ERROR] == 2
    assert only.totals.records == 1


def test_groups_beyond_the_limit_fold_into_one_overflow_group() -> None:
    _, decoder, state = build()
    MAX_GROUPS = Config().max_model_versions
    models = tuple(f"m{i:03d}" for i in range(MAX_GROUPS + 10))
    records = [{"model": m, "version": "v1", "p": 0.5} for m in models]
    state.ingest(decoder.decode(encode(records), T0), T0)
    snapshot = state.snapshot(T0)
    assert len(snapshot.groups) == MAX_GROUPS + 1  # every pair kept, and the rest's group
    assert sum(g.totals.records for g in snapshot.groups) == len(models)
    overflow = group(snapshot, *OVERFLOW_GROUP)
    assert overflow.totals.records == len(models) - MAX_GROUPS


def test_max_model_versions_pairs_keep_their_own_name() -> None:
    """``max_model_versions: 1`` keeps the one model version a sidecar usually sees under its
    own name; only a second one goes to ``__other__``."""
    _, decoder, state = build(max_model_versions=1)
    records = [{"model": "a", "version": "v1", "p": 0.5}] * 3
    state.ingest(decoder.decode(encode(records), T0), T0)
    assert [(g.model, g.version) for g in state.snapshot(T0).groups] == [("a", "v1")]
    state.ingest(decoder.decode(encode([{"model": "b", "version": "v1", "p": 0.5}]), T0), T0)
    snapshot = state.snapshot(T0)
    assert [(g.model, g.version) for g in snapshot.groups] == [("a", "v1"), OVERFLOW_GROUP]
    _, decoder, state = build(max_model_versions=1)  # both in one batch
    mixed = [{"model": m, "version": "v1", "p": 0.5} for m in ("a", "b", "a")]
    state.ingest(decoder.decode(encode(mixed), T0), T0)
    snapshot = state.snapshot(T0)
    assert [(g.model, g.version, g.totals.records) for g in snapshot.groups] == [
        ("a", "v1", 2),
        (*OVERFLOW_GROUP, 1),
    ]


@pytest.mark.parametrize("together", [False, True], ids=["batch by batch", "one batch"])
def test_lines_that_name_no_model_take_no_model_version_slot(together: bool) -> None:
    """``__unknown__`` (a record without a model or version, or with an empty one, and every
    line that is not a record) comes on top of ``max_model_versions``, like ``__other__``: a
    log with a few such lines keeps as many real model versions as the cap says."""
    _, decoder, state = build(max_model_versions=2)
    records = [
        {"model": "a", "version": "v1", "p": 0.5},
        {"p": 0.5},  # no model or version
        {"model": "", "version": "", "p": 0.5},  # empty names
        {"model": "b", "version": "v1", "p": 0.5},
        {"model": "c", "version": "v1", "p": 0.5},  # the third real one: past the cap
    ]
    batches = [records] if together else [[r] for r in records]
    for batch in batches:
        state.ingest(decoder.decode(encode(batch, junk=1), T0), T0)
    got = {(g.model, g.version): g.totals.records for g in state.snapshot(T0).groups}
    assert got == {("a", "v1"): 1, (UNKNOWN, UNKNOWN): 2, ("b", "v1"): 1, OVERFLOW_GROUP: 1}
    unknown = group(state.snapshot(T0), UNKNOWN, UNKNOWN)
    assert unknown.totals.anomalies[-1, Kind.PARSE_ERROR] == len(batches)  # the junk lines


def test_interleaved_known_and_new_groups_past_the_limit() -> None:
    """Rows of one batch are grouped by sorting: known groups keep their rows wherever they
    sit in the batch, and every name past the limit lands in the overflow group."""
    _, decoder, state = build()
    limit = Config().max_model_versions
    first = [f"m{i:03d}" for i in range(limit)]
    state.ingest(decoder.decode(encode([{"model": m, "version": "v1"} for m in first]), T0), T0)
    later = [first[i % len(first)] if i % 3 else f"new{i:04d}" for i in range(300)]
    state.ingest(decoder.decode(encode([{"model": m, "version": "v1"} for m in later]), T0), T0)
    snapshot = state.snapshot(T0)
    for name in first:
        assert group(snapshot, name).totals.records == 1 + later.count(name)
    new = sum(m.startswith("new") for m in later)
    assert group(snapshot, *OVERFLOW_GROUP).totals.records == new
    assert len(snapshot.groups) == limit + 1


@given(
    st.lists(
        st.lists(st.sampled_from(["a", "b", "c", "d", "e", OTHER, None]), max_size=12), max_size=5
    ),
    st.integers(1, 3),
)
def test_groups_past_the_limit_follow_the_record_by_record_rule(
    batches: list[list[str | None]], limit: int
) -> None:
    """Each record, in order: a pair with a group keeps it; a new pair gets its own group while
    there is room; the rest (and a log's own ``__other__``) share the overflow group. A record
    that names no model has the ``__unknown__`` group, which takes no room. Checked against the
    batched grouping, whose full-table path looks keys up in C."""
    check_slots(batches, limit)


def check_slots(batches: list[list[str | None]], limit: int) -> None:
    """Ingest the batches (each name a model of version ``v1``, None no model) and compare the
    groups with the record-by-record rule (also ``tests/test_unique_keys.py``)."""
    _, decoder, state = build(max_model_versions=limit)
    nameless = (UNKNOWN, UNKNOWN)
    unslotted = {OVERFLOW_GROUP, nameless}
    want: dict[tuple[str, str], int] = {}
    for models in batches:
        records = [
            {"p": 0.5} if m is None else {"model": m, "version": OTHER if m == OTHER else "v1"}
            for m in models
        ]
        state.ingest(decoder.decode(encode(records), T0), T0)
        for model in models:
            key = nameless if model is None else (model, OTHER if model == OTHER else "v1")
            named = len(want.keys() - unslotted)
            if key not in want and key not in unslotted and named >= limit:
                key = OVERFLOW_GROUP
            want[key] = want.get(key, 0) + 1
    got = [((g.model, g.version), g.totals.records) for g in state.snapshot(T0).groups]
    assert got == list(want.items())


def test_a_snapshot_is_not_changed_by_later_ingestion() -> None:
    _, decoder, state = build()
    rng = np.random.default_rng(7)
    state.ingest(decoder.decode(encode(make_records(rng, 100, T0)), T0), T0)
    before = state.snapshot(T0)
    state.ingest(decoder.decode(encode(make_records(rng, 100, T0)), T0), T0)
    g = group(before, "fraud")
    assert g.totals.records == 100
    assert window(g, "1m").summary.records == 100
    assert group(state.snapshot(T0), "fraud").totals.records == 200


def test_static_model_and_version_label_every_record() -> None:
    fields = {**CONFIG["fields"], "model_name": "fraud", "model_version": "v9"}
    del fields["model"], fields["version"]
    _, decoder, state = build(fields=fields)
    state.ingest(decoder.decode(encode(make_records(np.random.default_rng(8), 50, T0))), T0)
    snapshot = state.snapshot(T0)
    assert [(g.model, g.version) for g in snapshot.groups] == [("fraud", "v9")]
