"""Ground truth that arrives later, on its own line, joined to its prediction by request id.

Many systems learn the true label minutes or days after the prediction (a chargeback, a
click). The model then logs a second line ``{"request_id": ..., "ground_truth": ...}``. The
join keeps the recent predictions that still wait for a label in a bounded, insertion-ordered
buffer: memory is capped by ``capacity`` and by ``timeout``, whatever the traffic, and every
prediction leaves it one way — matched, or expired — so the outcome counters add up.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field

import numpy as np

from exporter.batch import Batch, Layout, category_text

GroupKey = tuple[str, str]


@dataclass
class Joined:
    """Labels matched in one batch, per model version."""

    matched: int = 0
    labelled: int = 0  # of the matched, those whose prediction had a class to compare
    wrong: int = 0
    delay_total: float = 0.0


@dataclass
class JoinResult:
    predictions: Batch  # the batch without its label-only records
    joined: dict[GroupKey, Joined] = field(default_factory=dict)
    outcomes: Counter[tuple[GroupKey, str]] = field(default_factory=Counter)


class LabelJoin:
    def __init__(
        self, layout: Layout, class_names: list[str], timeout: float, capacity: int
    ) -> None:
        """``class_names`` is the predicted-class vocabulary (append-only), read for the
        class text of a waiting prediction."""
        self._timeout = timeout
        self._capacity = capacity
        self._class_names = class_names
        self._pending: OrderedDict[str, tuple[float, str | None, GroupKey]] = OrderedDict()
        self._prediction_columns = [
            c for c in (layout.prediction_column, layout.confidence_column) if c is not None
        ]
        self._class_column = layout.predicted_class_column

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _expire(self, now: float, outcomes: Counter[tuple[GroupKey, str]]) -> None:
        while self._pending:
            request, (arrived, _, key) = next(iter(self._pending.items()))
            if arrived >= now - self._timeout and len(self._pending) <= self._capacity:
                break
            del self._pending[request]
            outcomes[(key, "expired")] += 1

    def process(self, batch: Batch, now: float) -> JoinResult:
        if batch.request_id is None or batch.label is None:
            return JoinResult(batch)
        result = JoinResult(batch)
        self._expire(now, result.outcomes)
        has_prediction = np.zeros(batch.size, dtype=bool)
        for column in self._prediction_columns:
            has_prediction |= ~np.isnan(batch.numeric[:, column])
        classes = None if self._class_column is None else batch.categorical[:, self._class_column]
        if classes is not None:
            has_prediction |= classes >= 0
        label_only = ~has_prediction & np.array([v is not None for v in batch.label], dtype=bool)
        label_only &= np.array([r is not None for r in batch.request_id], dtype=bool)

        for i in np.flatnonzero(has_prediction & (batch.wrong < 0)).tolist():
            request = batch.request_id[i]
            if request is None:
                continue
            code = -1 if classes is None else int(classes[i])
            guess = self._class_names[code] if 0 <= code < len(self._class_names) else None
            self._pending[category_text(request)] = (now, guess, batch.groups[batch.group[i]])
            self._pending.move_to_end(category_text(request))
        for i in np.flatnonzero(label_only).tolist():
            waiting = self._pending.pop(category_text(batch.request_id[i]), None)
            if waiting is None:
                result.outcomes[(batch.groups[batch.group[i]], "unmatched")] += 1
                continue
            arrived, guess, key = waiting
            result.outcomes[(key, "matched")] += 1
            joined = result.joined.setdefault(key, Joined())
            joined.matched += 1
            joined.delay_total += now - arrived
            if guess is not None:
                joined.labelled += 1
                joined.wrong += int(category_text(batch.label[i]) != guess)
        self._expire(now, result.outcomes)
        if label_only.any():
            result.predictions = batch.take(~label_only)
            result.predictions.parse_errors = batch.parse_errors
        return result
