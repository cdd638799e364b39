"""Errors that cross module boundaries."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration (or reference profile) was refused; ``problems`` lists every reason.

    Each problem names the key it is about, e.g. ``sources[0].path: must be a string``,
    so a user fixes all of them in one round instead of one per restart.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
