"""Replace a file we own so that a reader, or a crash, only ever sees the old or the new one.

The checkpoint (``tail/positions.py``) and the reference profile (``baseline``) are both read by
a process that may start, or reload, at any moment: a half-written file must never be there.
The bytes go to a temp file beside the target (same file system, so the rename is atomic), are
fsynced, renamed over the target, and the directory is fsynced so the rename itself survives a
power cut.
"""

from __future__ import annotations

import os
from pathlib import Path


def temporary_path(path: str) -> str:
    """Where ``write_atomic`` stages ``path`` (the tailer must never tail it)."""
    return path + ".tmp"


def unwritable(path: str) -> str | None:
    """Why ``write_atomic(path)`` cannot succeed for want of a place to write (None: it may).
    Checked before a long pass over a log whose result would otherwise be lost at the end."""
    if Path(path).is_dir():
        return "it is a directory"
    directory = Path(os.path.abspath(path)).parent  # noqa: PTH100 - where the temp file goes
    if not directory.is_dir():
        return f"directory {directory} does not exist"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"directory {directory} is not writable by uid {os.geteuid()}"
    return None


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing; raises OSError and leaves ``path`` as it was."""
    directory = Path(path).resolve().parent
    tmp = temporary_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        Path(tmp).replace(path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)  # a full disk must not keep a half file around
        raise
    dfd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
