"""What a valid config would trip over on this machine: the paths it names.

``check-config`` and ``run`` both call ``check_paths``, so check-config says ok only to what
run can start with. Problems that can only get worse (a directory given as the log, a
positions file that can never be written) are refused with the fix; what may still change
(a log directory the model has not created yet) is a warning, since the tailer waits for it.
``run`` also creates the positions file's directory (``prepare``); check-config changes
nothing and only checks that it could.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from exporter.config_types import Config
from exporter.errors import ConfigError

_GLOB_CHARS = frozenset("*?[")


def _fixed_directory(pattern: str) -> Path:
    """The directory a source lives in: for a glob, the part before the first wildcard."""
    path = Path(os.path.abspath(pattern))  # noqa: PTH100 - normalises without resolving links
    parent = path.parent
    while any(c in _GLOB_CHARS for c in str(parent)):
        parent = parent.parent
    return parent


def _user() -> str:
    return f"uid {os.geteuid()}"


def _check_source(key: str, pattern: str, problems: list[str], warnings: list[str]) -> None:
    is_glob = any(c in _GLOB_CHARS for c in pattern)
    if not is_glob:
        try:
            st = os.stat(pattern)  # noqa: PTH116 - one call, the mode is all we need
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:  # no file of that name can ever appear
                problems.append(f"{key}: {pattern}: {exc.strerror}")
                return
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            glob = str(Path(pattern) / "*.jsonl")
            problems.append(
                f"{key}: {pattern} is a directory; give the log file, or a glob: {glob}"
            )
            return
        if st is not None and not stat.S_ISREG(st.st_mode):
            problems.append(f"{key}: {pattern} is not a regular file (a FIFO, socket or device)")
            return
        if st is not None and not os.access(pattern, os.R_OK):
            warnings.append(f"{key}: {pattern} is not readable by {_user()} (yet)")
            return
    directory = _fixed_directory(pattern)
    if directory.is_dir():
        if not os.access(directory, os.R_OK | os.X_OK):
            warnings.append(f"{key}: directory {directory} is not readable by {_user()}")
        return
    if directory.exists():
        problems.append(f"{key}: {directory} is not a directory, so {pattern} can never exist")
        return
    warnings.append(
        f"{key}: directory {directory} does not exist (yet); the sidecar waits for it and "
        f"reads {pattern} once it appears"
    )


def _nearest_existing(directory: Path) -> Path:
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    return directory


def _check_positions(path: str, prepare: bool, problems: list[str]) -> None:
    """The checkpoint is replaced atomically (temp file + rename in the same directory), so the
    directory must exist and be writable; the file itself, if present, must be a file."""
    key = "positions_file"
    target = Path(path)
    if target.is_dir():
        problems.append(
            f"{key}: {path} is a directory; name a file in it, such as {target / 'positions.json'}"
        )
        return
    if target.exists() and not target.is_file():
        problems.append(f"{key}: {path} is not a regular file")
        return
    directory = Path(os.path.abspath(path)).parent  # noqa: PTH100 - like the checkpoint writer
    fix = (
        f"create it as a user who can (e.g. `install -d -o {os.geteuid()} {directory}`), "
        "or set positions_file to a path in a writable directory"
    )
    if not directory.exists():
        if prepare:
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                problems.append(
                    f"{key}: {directory} does not exist and cannot be created ({exc.strerror}); "
                    + fix
                )
            return
        ancestor = _nearest_existing(directory)
        if not ancestor.is_dir():
            problems.append(f"{key}: {ancestor} is not a directory, so {directory} cannot exist")
        elif not os.access(ancestor, os.W_OK | os.X_OK):
            problems.append(
                f"{key}: {directory} does not exist and {_user()} cannot create it "
                f"({ancestor} is not writable); {fix}"
            )
        return
    if not directory.is_dir():
        problems.append(f"{key}: {directory} is not a directory")
    elif not os.access(directory, os.W_OK | os.X_OK):
        problems.append(f"{key}: directory {directory} is not writable by {_user()}; {fix}")


def _reference_problem(path: str) -> str | None:
    """Why ``path`` can never be read as a profile; None when it may (a missing file is left to
    the loader, which says so). A name the file system refuses (too long, a loop of links, a
    file as a directory) is a problem, never a crash."""
    try:
        st = os.stat(path)  # noqa: PTH116 - one call, the mode is all we need
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    return None


def check_paths(config: Config, prepare: bool = False) -> list[str]:
    """Warnings for what may still appear; ConfigError for what run would fail on.

    ``prepare`` (``run``) creates the positions file's directory when it is missing.
    """
    problems: list[str] = []
    warnings: list[str] = []
    for i, source in enumerate(config.sources):
        _check_source(f"sources[{i}].path", source.path, problems, warnings)
    if config.tail.positions_file is not None:
        _check_positions(config.tail.positions_file, prepare, problems)
    if config.reference is not None:
        problem = _reference_problem(config.reference)
        if problem is not None:
            problems.append(f"reference: {problem}")
    if problems:
        raise ConfigError(problems)
    return warnings
