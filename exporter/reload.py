"""Load the reference profile, and load it again when its file changes.

The ingest loop calls ``poll()`` on every pass (one ``stat``), and a watchdog event on the
file's directory wakes the loop sooner. A bad new file is refused, counted and logged once per
version of the file; the profile in use stays. A profile must fit the config it serves
(``reference_fit``): a new file built for another model is refused like a corrupt one.
"""

from __future__ import annotations

import logging
import stat
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from exporter.config_types import FieldsConfig
from exporter.errors import ConfigError
from exporter.reference import Reference, check_compatible, load
from exporter.reference_fit import field_mismatches

log = logging.getLogger(__name__)


class ReferenceFile:
    def __init__(
        self, path: str, relative_accuracy: float, fields: FieldsConfig | None = None
    ) -> None:
        """``relative_accuracy`` is the sidecar's sketch accuracy, which a profile must share;
        ``fields`` the config's mapping, whose fields a profile must describe."""
        self.path = path
        self._accuracy = relative_accuracy
        self._fields = fields
        self.outcomes: Counter[str] = Counter()  # "ok" / "error"
        self._seen: tuple[int, int, int] | None = None

    def load_now(self) -> Reference:
        """The first load, at start: a missing or bad profile is a configuration error."""
        try:
            reference = self._load()
        except ConfigError as exc:
            raise ConfigError([f"reference: {problem}" for problem in exc.problems]) from exc
        self._seen = self._identity()
        self.outcomes["ok"] += 1
        return reference

    def _load(self) -> Reference:
        """Load and check the file: only a regular file is read (a FIFO would block)."""
        try:
            regular = stat.S_ISREG(Path(self.path).stat().st_mode)
        except OSError:
            regular = True  # missing or unreadable: ``load`` says why
        if not regular:
            raise ConfigError([f"{self.path}: not a regular file"])
        reference = load(self.path)
        check_compatible(reference, self._accuracy)
        if self._fields is not None:
            mismatches = field_mismatches(reference, self._fields)
            if mismatches:
                raise ConfigError([f"{self.path}: {problem}" for problem in mismatches])
        return reference

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            st = Path(self.path).stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def invalidate(self) -> None:
        """Make the next ``poll`` read the file whether or not it looks changed (SIGHUP)."""
        self._seen = None

    def poll(self, accept: Callable[[Reference], None] | None = None) -> Reference | None:
        """A newly loaded profile when the file changed and is valid, else None.

        ``accept`` takes the profile into use, or refuses one that parses but cannot be used
        by raising before it changes anything; a refused profile counts as an error.
        """
        identity = self._identity()
        if identity is None or identity == self._seen:
            if identity is None and self._seen is not None:
                log.warning("reference %s disappeared; keeping the profile in use", self.path)
                self._seen = None
            return None
        self._seen = identity
        try:
            reference = self._load()
            if accept is not None:
                accept(reference)
        except Exception as exc:  # a bad profile is refused and counted, never fatal
            self.outcomes["error"] += 1
            problems = exc.problems if isinstance(exc, ConfigError) else [repr(exc)]
            log.error(
                "reference %s refused, keeping the profile in use: %s",
                self.path,
                "; ".join(problems),
            )
            return None
        self.outcomes["ok"] += 1
        log.info(
            "reference %s loaded (hash %s, %d records)",
            self.path,
            reference.hash,
            reference.records,
        )
        return reference
