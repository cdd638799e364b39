"""Freezing the first production records into the reference profile (``drift.freeze_first``).

Without a profile file, the first ``freeze_first`` records become the reference, built as
``baseline`` builds one (``profile.build``, with a seeded random half of the records held out
to choose the categories that are kept). Which reference is in use — loaded at start, reloaded
from its file, or frozen here — is the engine's decision; the store only holds the one it is
given, so this lives beside the engine, not in the state.

The profile holds exactly the first ``freeze_first`` records in log order, however many one read
returned: the engine cuts the chunk that crosses the count at the line that completes it.

Two halves, like the store's: ``prepare`` works out what a batch adds (possibly the frozen
profile) without changing anything, so a batch that fails later leaves no trace; ``commit``
keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from exporter.config_types import Config
from exporter.profile import build
from exporter.reference import Reference
from exporter.state import State, Update
from exporter.stats.window import Summary, category_counts


@dataclass(frozen=True)
class Freezing:
    """What one batch adds to the records being frozen."""

    summary: Summary  # the first records so far, this batch included
    held_out: npt.NDArray[np.int64]  # the category counts of their held-out half
    split: np.random.Generator  # the generator that drew that half, advanced
    frozen: Reference | None  # the reference they became, when this batch crossed the count


class Freezer:
    def __init__(self, config: Config, state: State) -> None:
        self._config = config
        self._state = state
        shape = state.shape
        self._summary = Summary.empty(shape)
        self._held_out = np.zeros((shape.categorical, shape.categories), np.int64)
        # Made at the first frozen batch: numpy.random costs ~2 MiB of RSS to import, and a
        # sidecar with a profile from a file never freezes.
        self._split: np.random.Generator | None = None

    @property
    def wanted(self) -> int:
        """Records still to take before the profile is frozen."""
        return self._config.drift.freeze_first - self._summary.records

    def prepare(self, update: Update) -> Freezing | None:
        """The first records with this update's, frozen into a profile once there are enough.
        The engine cuts the batch that crosses ``freeze_first`` at the record that completes
        it (``Engine.decode_pieces``), so the profile holds exactly that many."""
        if not update.records:
            return None
        state = self._state
        shape = update.shape if update.shape is not None else state.shape
        summary = Summary.empty(shape)
        summary.add(self._summary)
        held_out = self._held_out.copy()
        split = np.random.default_rng(0)
        if self._split is not None:  # drawn here, kept at commit
            split.bit_generator.state = self._split.bit_generator.state
        for part in update.parts:
            summary.add(part.summary)
            half = split.random(len(part.codes)) < 0.5
            held_out += category_counts(part.codes[half], shape)
        frozen = None
        if summary.records >= self._config.drift.freeze_first:
            created = datetime.fromtimestamp(update.now, UTC).isoformat(timespec="seconds")
            frozen = build(
                summary,
                state.layout,
                state.names(update.named),
                shape.sketch,
                self._config.quantiles,
                created,
                {"frozen_first_records": summary.records},
                regression=self._config.fields.regression,
                held_out=held_out,
            )
        return Freezing(summary, held_out, split, frozen)

    def commit(self, freezing: Freezing) -> None:
        self._summary, self._held_out, self._split = (
            freezing.summary,
            freezing.held_out,
            freezing.split,
        )
