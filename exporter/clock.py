"""The only place that reads wall time.

Everything that decides something takes ``now`` as an argument; the shell passes
``SystemClock().now()``, tests pass a ``ManualClock`` they drive themselves, and ``replay``
passes times taken from the records' own timestamps.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for grace periods and intervals)."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to, so tests cross bucket edges exactly."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = start

    def now(self) -> float:
        return self._t

    def monotonic(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a ManualClock never goes backwards")
        self._t += seconds

    def set(self, t: float) -> None:
        """Jump forward to ``t``; a time in the past is ignored (the clock is monotonic)."""
        self._t = max(self._t, t)
