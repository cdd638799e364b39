"""Late labels joined by request id: every waiting prediction leaves the buffer exactly once."""

from __future__ import annotations

import json

from exporter.config import parse_config
from exporter.decode import Decoder
from exporter.join import LabelJoin

CONFIG = {
    "sources": ["/unused"],
    "fields": {
        "model_name": "m",
        "model_version": "v1",
        "prediction": "score",
        "predicted_class": "cls",
        "ground_truth": "label",
        "request_id": "id",
    },
    "ground_truth_join": {"enabled": True, "timeout": "10m", "capacity": 3},
}


def _setup(capacity: int = 3, timeout: float = 600.0) -> tuple[Decoder, LabelJoin]:
    config = parse_config(CONFIG)
    decoder = Decoder(config.fields, keep_labels=True)
    join = LabelJoin(decoder.layout, decoder.vocabularies[0].values, timeout, capacity)
    return decoder, join


def _lines(*records: dict[str, object]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def test_a_label_on_its_own_line_is_joined_and_not_counted_as_a_prediction() -> None:
    decoder, join = _setup()
    first = join.process(
        decoder.decode(_lines({"id": "a", "score": 0.9, "cls": "fraud"})), now=100.0
    )
    assert first.predictions.size == 1
    assert join.pending == 1
    later = join.process(decoder.decode(_lines({"id": "a", "label": "legit"})), now=160.0)
    assert later.predictions.size == 0
    joined = later.joined[("m", "v1")]
    assert (joined.matched, joined.labelled, joined.wrong, joined.delay_total) == (1, 1, 1, 60.0)
    assert later.outcomes == {(("m", "v1"), "matched"): 1}
    assert join.pending == 0


def test_unknown_ids_are_unmatched_and_inline_labels_never_wait() -> None:
    decoder, join = _setup()
    batch = decoder.decode(
        _lines(
            {"id": "x", "label": "fraud"},
            {"id": "b", "score": 0.2, "cls": "legit", "label": "legit"},
        )
    )
    result = join.process(batch, now=0.0)
    assert result.outcomes == {(("m", "v1"), "unmatched"): 1}
    assert result.predictions.size == 1
    assert join.pending == 0


def test_the_buffer_is_bounded_by_capacity_and_timeout() -> None:
    decoder, join = _setup(capacity=3, timeout=60.0)
    records = [{"id": str(i), "score": 0.5, "cls": "fraud"} for i in range(5)]
    result = join.process(decoder.decode(_lines(*records)), now=0.0)
    assert join.pending == 3
    assert result.outcomes == {(("m", "v1"), "expired"): 2}
    result = join.process(decoder.decode(_lines({"id": "4", "label": "fraud"})), now=30.0)
    assert result.outcomes == {(("m", "v1"), "matched"): 1}
    result = join.process(decoder.decode(b""), now=100.0)
    assert result.outcomes == {(("m", "v1"), "expired"): 2}
    assert join.pending == 0
