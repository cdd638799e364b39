"""Ground truth that arrives later, on its own line, joined to its prediction by request id.

Many systems learn the true label minutes or days after the prediction (a chargeback, a
click). The model then logs a second line ``{"request_id": ..., "ground_truth": ...}``. The
join keeps the recent predictions that still wait for a label in a bounded, insertion-ordered
buffer: memory is capped by ``capacity`` and by ``timeout``, whatever the traffic, and every
prediction leaves it one way — matched, or expired — so the outcome counters add up.

A classifier's waiting prediction keeps its class, to count the label as right or wrong; a
regression model's keeps its score, to add the label's absolute and squared error (MAE, RMSE).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from exporter.batch import Batch, Layout, category_text, class_text

GroupKey = tuple[str, str]


@dataclass
class Joined:
    """Labels matched in one batch, per model version."""

    matched: int = 0
    labelled: int = 0  # of the matched, those with a class (or a score) and label to compare
    wrong: int = 0
    delay_total: float = 0.0
    abs_error: float = 0.0  # regression: sum of |score − label| over the labelled
    sq_error: float = 0.0  # regression: sum of (score − label)²


# Arrival time, predicted class, model version, and the score of a regression model (else NaN).
Waiting = tuple[float, str | None, GroupKey, float]


@dataclass
class JoinResult:
    """What one batch does to the buffer, worked out by ``match`` without changing it;
    ``commit`` then applies it with plain dictionary operations."""

    predictions: Batch  # the batch without its label-only records
    joined: dict[GroupKey, Joined] = field(default_factory=dict)
    outcomes: Counter[tuple[GroupKey, str]] = field(default_factory=Counter)
    labels: int = 0  # label-only records (matched or not): not predictions
    expired: int = 0  # waiting predictions dropped from the front first (too old, or over capacity)
    added: list[tuple[str, Waiting]] = field(default_factory=list)  # in batch order
    removed: list[str] = field(default_factory=list)  # requests whose label arrived
    evicted: int = 0  # dropped from the front last (over capacity)


class LabelJoin:
    def __init__(
        self, layout: Layout, class_names: list[str], timeout: float, capacity: int
    ) -> None:
        """``class_names`` is the predicted-class vocabulary (append-only), read for the
        class text of a waiting prediction."""
        self._timeout = timeout
        self._capacity = capacity
        self._class_names = class_names
        self._pending: OrderedDict[str, Waiting] = OrderedDict()
        self._prediction_columns = [
            c for c in (layout.prediction_column, layout.confidence_column) if c is not None
        ]
        self._class_column = layout.predicted_class_column
        self._score_column = layout.prediction_column if layout.regression else None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def match(self, batch: Batch, now: float) -> JoinResult:
        """Pure: what a batch whose records arrived at ``now`` does to the buffer, leaving it
        unchanged (``commit`` applies it).

        The buffer is in arrival order, so what expires is always at its front: first the
        predictions older than ``timeout`` (or past ``capacity``), then, after this batch's
        predictions are added at the end and its labels have taken theirs, whatever is still
        past ``capacity``.
        """
        result = JoinResult(batch)
        if batch.request_id is None or batch.label is None:
            return result
        expired = self._expiring(now, len(self._pending), result.outcomes)
        result.expired = len(expired)
        has_prediction, label_only = self._kinds(batch, batch.label, batch.request_id)
        classes = None if self._class_column is None else batch.categorical[:, self._class_column]

        added: dict[str, Waiting] = {}  # the buffer's new end, in order (a repeated id moves)
        unlabelled = batch.wrong < 0
        if batch.residual is not None:  # regression: a label on the line gives a residual
            unlabelled &= np.isnan(batch.residual)
        for i in np.flatnonzero(has_prediction & unlabelled).tolist():
            request = batch.request_id[i]
            if request is None:
                continue
            code = -1 if classes is None else int(classes[i])
            guess = self._class_names[code] if 0 <= code < len(self._class_names) else None
            score = math.nan
            if self._score_column is not None:
                score = float(batch.numeric[i, self._score_column])
            entry = (now, guess, batch.groups[batch.group[i]], score)
            result.added.append((category_text(request), entry))
            added.pop(category_text(request), None)
            added[category_text(request)] = entry
        removed: set[str] = set()
        for i in np.flatnonzero(label_only).tolist():
            request = category_text(batch.request_id[i])
            waiting = added.get(request)
            if waiting is None and request not in expired:
                waiting = self._pending.get(request)
            if waiting is None or request in removed:
                result.outcomes[(batch.groups[batch.group[i]], "unmatched")] += 1
                continue
            removed.add(request)
            result.removed.append(request)
            arrived, guess, key, score = waiting
            result.outcomes[(key, "matched")] += 1
            joined = result.joined.setdefault(key, Joined())
            joined.matched += 1
            joined.delay_total += now - arrived
            if guess is not None:
                joined.labelled += 1
                joined.wrong += int(class_text(batch.label[i]) != class_text(guess))
            elif self._score_column is not None:
                error = score - _number(batch.label[i])
                if not math.isnan(error):  # a score and a label that is a number
                    joined.labelled += 1
                    joined.abs_error += abs(error)
                    joined.sq_error += error * error
        result.labels = int(label_only.sum())
        result.evicted = self._evicting(now, expired, added, removed, result.outcomes)
        if label_only.any():
            result.predictions = batch.take(~label_only)
            result.predictions.parse_errors = batch.parse_errors
        return result

    def predictions(self, batch: Batch) -> int:
        """Pure: how many of a batch's records are predictions, i.e. not label-only records
        (a property of each record alone, whatever waits in the buffer)."""
        if batch.request_id is None or batch.label is None:
            return batch.size
        _, label_only = self._kinds(batch, batch.label, batch.request_id)
        return batch.size - int(label_only.sum())

    def _kinds(
        self, batch: Batch, labels: list[Any], requests: list[Any]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Which records carry a prediction, and which are label-only (no prediction, a label
        and a request id)."""
        has_prediction = np.zeros(batch.size, dtype=bool)
        for column in self._prediction_columns:
            has_prediction |= ~np.isnan(batch.numeric[:, column])
        if self._class_column is not None:
            has_prediction |= batch.categorical[:, self._class_column] >= 0
        label_only = ~has_prediction & np.array([v is not None for v in labels], dtype=bool)
        label_only &= np.array([r is not None for r in requests], dtype=bool)
        return has_prediction, label_only

    def expiring(self, now: float, outcomes: Counter[tuple[GroupKey, str]]) -> int:
        """Pure: how many waiting predictions are past ``timeout`` at ``now`` with no batch
        arriving, counted as ``expired`` in ``outcomes`` (``drop`` removes them). A quiet log
        sends no batch, and its predictions must not wait on past their timeout uncounted."""
        return len(self._expiring(now, len(self._pending), outcomes))

    def drop(self, count: int) -> None:
        """Remove ``count`` predictions from the front, as ``expiring`` found them."""
        for _ in range(count):
            self._pending.popitem(last=False)

    def _expiring(self, now: float, size: int, outcomes: Counter[tuple[GroupKey, str]]) -> set[str]:
        """The requests at the front that expire before the batch is added."""
        gone: set[str] = set()
        for request, (arrived, _, key, _) in self._pending.items():
            if arrived >= now - self._timeout and size - len(gone) <= self._capacity:
                break
            gone.add(request)
            outcomes[(key, "expired")] += 1
        return gone

    def _evicting(
        self,
        now: float,
        expired: set[str],
        added: dict[str, Waiting],
        removed: set[str],
        outcomes: Counter[tuple[GroupKey, str]],
    ) -> int:
        """How many entries leave the front after the batch, as the buffer will then be."""
        moved = {r for r in itertools.chain(added, removed) if r in self._pending}
        size = len(self._pending) - len(expired | moved) + len(added.keys() - removed)
        old = (
            item
            for item in self._pending.items()
            if item[0] not in expired and item[0] not in moved
        )
        new = (item for item in added.items() if item[0] not in removed)
        survivors = itertools.chain(old, new)
        evicted = 0
        for _, (arrived, _, key, _) in survivors:
            if arrived >= now - self._timeout and size - evicted <= self._capacity:
                break
            evicted += 1
            outcomes[(key, "expired")] += 1
        return evicted

    def commit(self, result: JoinResult) -> None:
        """Apply a ``match`` result: dictionary operations only."""
        for _ in range(result.expired):
            self._pending.popitem(last=False)
        for request, entry in result.added:
            self._pending[request] = entry
            self._pending.move_to_end(request)
        for request in result.removed:
            del self._pending[request]
        for _ in range(result.evicted):
            self._pending.popitem(last=False)


def _number(value: Any) -> float:
    """A regression label as a number, read as the decoder reads one on a prediction's own
    line (a numeric string counts); NaN when it is not one."""
    if value is None or isinstance(value, bool | dict | list):
        return math.nan
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return math.nan
    return number if math.isfinite(number) else math.nan
