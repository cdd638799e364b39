"""Summaries and sliding windows, driven by an explicit ``now`` and checked against numpy."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.anomaly import N_KINDS, Kind
from exporter.batch import Batch
from exporter.clock import ManualClock
from exporter.config_types import WindowSpec
from exporter.stats.sketch import Sketches
from exporter.stats.window import Ring, Shape, Summary, summarize

FloatArray = npt.NDArray[np.float64]

SHAPE = Shape(
    numeric=2, categorical=1, categories=4, anomaly_fields=4, sketch=Sketches.unanchored(2)
)
MINUTE = WindowSpec("1m", 60.0)
K = 12
WIDTH = 60.0 / K


def make_batch(rng: np.random.Generator, n: int, nan_share: float = 0.2) -> Batch:
    """A batch built by hand (no decoder): two numeric columns with gaps, one categorical."""
    numeric = np.column_stack([rng.normal(5.0, 2.0, n), rng.lognormal(0.0, 1.0, n)])
    numeric[rng.random((n, 2)) < nan_share] = np.nan
    codes = rng.integers(-1, SHAPE.categories, (n, 1))
    flags = rng.choice([0, 0, 0, Kind.MISSING, Kind.OUT_OF_RANGE], (n, 3)).astype(np.int8)
    return Batch(
        groups=[("m", "v")],
        group=np.zeros(n, dtype=np.int64),
        numeric=numeric,
        categorical=codes,
        flags=flags,
        timestamp=rng.uniform(1e9, 2e9, n),
        wrong=rng.integers(-1, 2, n).astype(np.int8),
    )


def concat(batches: list[Batch]) -> Batch:
    return Batch(
        groups=[("m", "v")],
        group=np.concatenate([b.group for b in batches]),
        numeric=np.concatenate([b.numeric for b in batches]),
        categorical=np.concatenate([b.categorical for b in batches]),
        flags=np.concatenate([b.flags for b in batches]),
        timestamp=np.concatenate([b.timestamp for b in batches]),
        wrong=np.concatenate([b.wrong for b in batches]),
    )


def assert_summary_matches(summary: Summary, batch: Batch) -> None:
    """Every aggregate against numpy on the raw columns."""
    assert summary.records == batch.size
    for f in range(SHAPE.numeric):
        column = batch.numeric[:, f]
        valid = column[~np.isnan(column)]
        assert summary.count[f] == len(valid)
        assert summary.total[f] == pytest.approx(valid.sum(), rel=1e-12, abs=1e-12)
        if len(valid):
            assert summary.deviations[f] == pytest.approx(
                ((valid - valid.mean()) ** 2).sum(), rel=1e-9, abs=1e-9
            )
            assert summary.low[f] == valid.min()
            assert summary.high[f] == valid.max()
            mean = summary.total[f] / summary.count[f]
            stddev = summary.stddev(f)
            assert mean == pytest.approx(valid.mean(), rel=1e-9)
            assert stddev == pytest.approx(valid.std(), rel=1e-6)
        else:
            assert summary.low[f] == np.inf
            assert summary.high[f] == -np.inf
        assert summary.sketch is not None
        np.testing.assert_array_equal(summary.sketch[f], SHAPE.sketch[f].counts(valid))
    codes = batch.categorical[:, 0]
    expected = np.bincount(codes[codes >= 0], minlength=SHAPE.categories)
    np.testing.assert_array_equal(summary.categories[0], expected)
    for row in range(batch.flags.shape[1]):
        tally = Counter(batch.flags[:, row].tolist())
        for kind in Kind:
            want = 0 if kind is Kind.OK else tally.get(int(kind), 0)
            assert summary.anomalies[row, kind] == want, (row, kind)
    assert summary.labelled == int(np.count_nonzero(batch.wrong >= 0))
    assert summary.wrong == int(np.count_nonzero(batch.wrong == 1))
    if batch.size:
        assert summary.latest == np.nanmax(batch.timestamp)


@pytest.mark.parametrize("n", [0, 1, 7, 5_000])
def test_summarize_matches_numpy(n: int) -> None:
    batch = make_batch(np.random.default_rng(n), n)
    assert_summary_matches(summarize(batch, None, SHAPE), batch)


def test_summarize_with_a_row_mask_covers_only_those_rows() -> None:
    rng = np.random.default_rng(1)
    batch = make_batch(rng, 2_000)
    rows = rng.random(2_000) < 0.3
    subset = Batch(
        groups=batch.groups,
        group=batch.group[rows],
        numeric=batch.numeric[rows],
        categorical=batch.categorical[rows],
        flags=batch.flags[rows],
        timestamp=batch.timestamp[rows],
        wrong=batch.wrong[rows],
    )
    assert_summary_matches(summarize(batch, rows, SHAPE), subset)


def test_summaries_merge_like_the_union_of_their_batches() -> None:
    rng = np.random.default_rng(2)
    batches = [make_batch(rng, n) for n in (10, 0, 300, 1)]
    merged = Summary.empty(SHAPE)
    for batch in batches:
        merged.add(summarize(batch, None, SHAPE))
    assert_summary_matches(merged, concat(batches))


def test_clear_returns_to_empty() -> None:
    summary = summarize(make_batch(np.random.default_rng(3), 50), None, SHAPE)
    summary.clear()
    empty = Summary.empty(SHAPE)
    for name in ("records", "labelled", "wrong", "latest"):
        assert getattr(summary, name) == getattr(empty, name)
    for name in (
        "count",
        "total",
        "deviations",
        "low",
        "high",
        "sketch",
        "categories",
        "anomalies",
    ):
        np.testing.assert_array_equal(getattr(summary, name), getattr(empty, name))


def one_record(value: float) -> Summary:
    batch = Batch(
        groups=[("m", "v")],
        group=np.zeros(1, dtype=np.int64),
        numeric=np.array([[value, np.nan]]),
        categorical=np.array([[-1]]),
        flags=np.zeros((1, 3), dtype=np.int8),
        timestamp=np.array([np.nan]),
        wrong=np.array([-1], dtype=np.int8),
    )
    return summarize(batch, None, SHAPE)


def test_a_record_leaves_the_window_exactly_one_window_after_its_bucket_starts() -> None:
    clock = ManualClock(1_000 * WIDTH)  # a bucket edge
    ring = Ring(MINUTE, K, SHAPE)
    ring.add(clock.now(), one_record(1.0))
    clock.advance(WIDTH - 0.001)  # still the same bucket
    ring.add(clock.now(), one_record(2.0))
    clock.advance(0.001)  # next bucket starts
    ring.add(clock.now(), one_record(4.0))

    assert ring.view(clock.now()).total[0] == 7.0
    edge = 1_000 * WIDTH + MINUTE.seconds
    assert ring.view(edge - 0.001).total[0] == 7.0  # the first bucket is K−1 full buckets old
    assert ring.view(edge).total[0] == 4.0  # a whole window after its start: both gone
    assert ring.view(edge + WIDTH - 0.001).total[0] == 4.0
    assert ring.view(edge + WIDTH).records == 0


@settings(max_examples=300)
@given(
    t_quarters=st.integers(0, 4 * 10**9),
    age_quarters=st.integers(0, 4 * 200),
)
def test_forgets_after_w_and_keeps_younger_than_k_minus_1_buckets(
    t_quarters: int, age_quarters: int
) -> None:
    """Times on a quarter-second grid are exact in binary, so the edges are tested exactly.
    Times are epoch seconds, so never negative (a fresh slot's epoch is -1)."""
    t, age = t_quarters / 4, age_quarters / 4
    ring = Ring(MINUTE, K, SHAPE)
    ring.add(t, one_record(3.0))
    present = ring.view(t + age).records == 1
    if age >= MINUTE.seconds:
        assert not present
    if age < (K - 1) / K * MINUTE.seconds:
        assert present


def test_an_idle_window_empties_itself_without_writes() -> None:
    ring = Ring(MINUTE, K, SHAPE)
    rng = np.random.default_rng(4)
    for i in range(30):
        ring.add(i * 2.0, summarize(make_batch(rng, 20), None, SHAPE))
    view = ring.view(10_000.0)
    assert view.records == 0
    assert view.count.sum() == 0
    assert np.isinf(view.low).all()
    assert view.sketch is not None
    assert np.asarray(view.sketch).sum() == 0


@settings(max_examples=60)
@given(
    steps=st.lists(st.integers(0, 40), min_size=1, max_size=40),
    sizes=st.lists(st.integers(0, 30), min_size=40, max_size=40),
    seed=st.integers(0, 2**32 - 1),
    read_after=st.integers(0, 80),
)
def test_view_equals_summary_of_the_live_records(
    steps: list[int], sizes: list[int], seed: int, read_after: int
) -> None:
    """Live means: arrived at or after the start of the bucket K−1 buckets before the
    current one (the documented span), and not after now."""
    rng = np.random.default_rng(seed)
    ring = Ring(MINUTE, K, SHAPE)
    clock = ManualClock(500.0)
    arrivals: list[tuple[float, Batch]] = []
    for step, size in zip(steps, sizes, strict=False):
        clock.advance(step / 2)
        batch = make_batch(rng, size)
        ring.add(clock.now(), summarize(batch, None, SHAPE))
        arrivals.append((clock.now(), batch))
    now = clock.now() + read_after / 2
    start = (math.floor(now / WIDTH) - (K - 1)) * WIDTH
    live = [b for t, b in arrivals if start <= t <= now]
    assert_summary_matches(ring.view(now), concat(live) if live else make_batch(rng, 0))


def test_a_late_add_for_an_epoch_the_slot_has_moved_past_is_ignored() -> None:
    ring = Ring(MINUTE, K, SHAPE)
    ring.add(100.0, one_record(1.0))
    ring.add(100.0 - MINUTE.seconds, one_record(10.0))  # same slot, older epoch
    ring.add(100.0 - 3 * MINUTE.seconds, one_record(100.0))
    assert ring.view(100.0).total[0] == 1.0
    assert ring.view(100.0).records == 1


def test_a_late_add_within_the_window_is_kept() -> None:
    """Out-of-order arrivals (replay from record timestamps) land in their own bucket."""
    ring = Ring(MINUTE, K, SHAPE)
    ring.add(100.0, one_record(1.0))
    ring.add(90.0, one_record(10.0))
    assert ring.view(100.0).total[0] == 11.0
    assert ring.view(100.0 + 56.0).total[0] == 1.0  # the 90 s bucket left first


def test_a_late_add_older_than_the_window_never_shows() -> None:
    ring = Ring(MINUTE, K, SHAPE)
    ring.add(1_000.0, one_record(1.0))
    ring.add(10.0, one_record(10.0))  # its slot is free, but its epoch is long past
    assert ring.view(1_000.0).total[0] == 1.0


def ring_nbytes(ring: Ring) -> int:
    total = 0
    for slot in ring._slots:
        for value in vars(slot).values():
            if isinstance(value, np.ndarray):
                total += value.nbytes
    return total


def test_memory_does_not_grow_with_events() -> None:
    rng = np.random.default_rng(5)
    small = Ring(MINUTE, K, SHAPE)
    small.add(0.0, summarize(make_batch(rng, 1), None, SHAPE))
    big = Ring(MINUTE, K, SHAPE)
    for i in range(1_000):
        big.add(i * 0.37, summarize(make_batch(rng, 100), None, SHAPE))
    assert ring_nbytes(small) == ring_nbytes(big)
    assert ring_nbytes(big) > 0


def test_summary_shapes_follow_the_layout() -> None:
    empty = Summary.empty(SHAPE)
    assert empty.anomalies.shape == (SHAPE.anomaly_fields, N_KINDS)
    assert empty.categories.shape == (SHAPE.categorical, SHAPE.categories)
    assert empty.sketch is not None
    assert np.asarray(empty.sketch).shape == (SHAPE.numeric, SHAPE.sketch.size)
    assert Summary.empty(SHAPE, with_sketch=False).sketch is None
