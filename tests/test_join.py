"""Late labels joined by request id: every waiting prediction leaves the buffer exactly once."""

from __future__ import annotations

import json
from collections import Counter, OrderedDict

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.batch import Batch
from exporter.config import parse_config
from exporter.decode import Decoder
from exporter.join import JoinResult, LabelJoin
from tests.configs import unread_data

FIELDS = {
    "model_name": "m",
    "model_version": "v1",
    "prediction": "score",
    "predicted_class": "cls",
    "ground_truth": "label",
    "request_id": "id",
}
CONFIG = unread_data(FIELDS, ground_truth_join={"enabled": True, "timeout": "10m", "capacity": 3})


def _setup(capacity: int = 3, timeout: float = 600.0) -> tuple[Decoder, LabelJoin]:
    config = parse_config(CONFIG)
    decoder = Decoder(config.fields, keep_labels=True)
    join = LabelJoin(decoder.layout, decoder.vocabularies[0].values, timeout, capacity)
    return decoder, join


def _process(join: LabelJoin, batch: Batch, now: float) -> JoinResult:
    result = join.match(batch, now)
    join.commit(result)
    return result


def _lines(*records: dict[str, object]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def test_a_label_on_its_own_line_is_joined_and_not_counted_as_a_prediction() -> None:
    decoder, join = _setup()
    first = _process(
        join, decoder.decode(_lines({"id": "a", "score": 0.9, "cls": "fraud"})), now=100.0
    )
    assert first.predictions.size == 1
    assert join.pending == 1
    later = _process(join, decoder.decode(_lines({"id": "a", "label": "legit"})), now=160.0)
    assert later.predictions.size == 0
    joined = later.joined[("m", "v1")]
    assert (joined.matched, joined.labelled, joined.wrong, joined.delay_total) == (1, 1, 1, 60.0)
    assert later.outcomes == {(("m", "v1"), "matched"): 1}
    assert join.pending == 0


def test_a_boolean_class_joined_with_a_0_1_label_is_the_same_class() -> None:
    decoder, join = _setup()
    predictions = [{"id": "a", "score": 0.9, "cls": True}, {"id": "b", "score": 0.2, "cls": False}]
    _process(join, decoder.decode(_lines(*predictions)), now=100.0)
    later = _process(
        join, decoder.decode(_lines({"id": "a", "label": 1}, {"id": "b", "label": 1})), now=110.0
    )
    joined = later.joined[("m", "v1")]
    assert (joined.matched, joined.labelled, joined.wrong) == (2, 2, 1)  # only b is wrong


def test_unknown_ids_are_unmatched_and_inline_labels_never_wait() -> None:
    decoder, join = _setup()
    batch = decoder.decode(
        _lines(
            {"id": "x", "label": "fraud"},
            {"id": "b", "score": 0.2, "cls": "legit", "label": "legit"},
        )
    )
    result = _process(join, batch, now=0.0)
    assert result.outcomes == {(("m", "v1"), "unmatched"): 1}
    assert result.predictions.size == 1
    assert join.pending == 0


def test_the_buffer_is_bounded_by_capacity_and_timeout() -> None:
    decoder, join = _setup(capacity=3, timeout=60.0)
    records = [{"id": str(i), "score": 0.5, "cls": "fraud"} for i in range(5)]
    result = _process(join, decoder.decode(_lines(*records)), now=0.0)
    assert join.pending == 3
    assert result.outcomes == {(("m", "v1"), "expired"): 2}
    result = _process(join, decoder.decode(_lines({"id": "4", "label": "fraud"})), now=30.0)
    assert result.outcomes == {(("m", "v1"), "matched"): 1}
    result = _process(join, decoder.decode(b""), now=100.0)
    assert result.outcomes == {(("m", "v1"), "expired"): 2}
    assert join.pending == 0


class _OldJoin:
    """The buffer as it was applied in place, operation by operation: the model ``match`` +
    ``commit`` must agree with."""

    def __init__(self, timeout: float, capacity: int) -> None:
        self.timeout, self.capacity = timeout, capacity
        self.pending: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def _expire(self, now: float, outcomes: Counter[str]) -> None:
        while self.pending:
            arrived, _ = next(iter(self.pending.values()))
            if arrived >= now - self.timeout and len(self.pending) <= self.capacity:
                break
            self.pending.popitem(last=False)
            outcomes["expired"] += 1

    def process(
        self, predictions: list[tuple[str, str]], labels: list[str], now: float
    ) -> tuple[Counter[str], int]:
        outcomes: Counter[str] = Counter()
        wrong = 0
        self._expire(now, outcomes)
        for request, guess in predictions:
            self.pending[request] = (now, guess)
            self.pending.move_to_end(request)
        for request in labels:
            waiting = self.pending.pop(request, None)
            if waiting is None:
                outcomes["unmatched"] += 1
                continue
            outcomes["matched"] += 1
            wrong += waiting[1] != "legit"
        self._expire(now, outcomes)
        return outcomes, wrong


steps = st.lists(
    st.tuples(
        st.lists(st.tuples(st.integers(0, 8), st.sampled_from(["fraud", "legit"])), max_size=6),
        st.lists(st.integers(0, 8), max_size=4),
        st.floats(0.0, 40.0),
        st.booleans(),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(steps=steps, capacity=st.integers(1, 5))
def test_match_then_commit_agrees_with_applying_in_place(
    steps: list[tuple[list[tuple[int, str]], list[int], float, bool]], capacity: int
) -> None:
    """Random predictions (ids repeat), labels and time steps: the outcomes, the errors and the
    buffer's contents in order are those of the in-place model; a ``match`` that is never
    committed (as when a later step fails) changes nothing."""
    decoder, join = _setup(capacity=capacity, timeout=60.0)
    model = _OldJoin(60.0, capacity)
    now = 0.0
    for predictions, labels, delta, committed in steps:
        now += delta
        records: list[dict[str, object]] = [
            {"id": f"p{i}", "score": 0.5, "cls": guess} for i, guess in predictions
        ]
        records += [{"id": f"p{i}", "label": "legit"} for i in labels]
        batch = decoder.decode(_lines(*records)) if records else decoder.decode(b"")
        before = list(join._pending.items())
        result = join.match(batch, now)
        if not committed:
            assert list(join._pending.items()) == before
            continue
        join.commit(result)
        # The decoder puts rows in line order here (every line takes the typed path).
        outcomes, wrong = model.process(
            [(f"p{i}", g) for i, g in predictions], [f"p{i}" for i in labels], now
        )
        assert {o: n for (_, o), n in result.outcomes.items()} == dict(outcomes)
        assert sum(j.wrong for j in result.joined.values()) == wrong
        assert result.labels == len(labels)
        assert [(r, a, g) for r, (a, g, _, _) in join._pending.items()] == [
            (r, a, g) for r, (a, g) in model.pending.items()
        ]
