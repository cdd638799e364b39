"""File identity for tailing: which bytes on disk are "the same file" we read before.

A path is not an identity (rotation moves it), and device+inode alone is not either: an inode
freed by a deleted log is soon reused by the next one, and copytruncate keeps the inode while
replacing every byte. So a tracked file is (st_dev, st_ino) plus two short hashes: the *head*
(its first bytes, up to ``HEAD_BYTES``) and the *marker* (the bytes just before the offset we
resume at). A saved offset is trusted only when all three still agree.

All system calls go through ``FileOps`` so tests inject faults (EACCES, ESTALE) and count calls.
"""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass

HEAD_BYTES = 1024
MARKER_BYTES = 64
_GLOB_CHARS = frozenset("*?[")

try:  # built without a C compiler: the tailer reads into a buffer of its own (os.preadv)
    from exporter.tail import _read  # type: ignore[attr-defined]
except ImportError:
    _read = None


def digest(data: bytes) -> str:
    """A short content hash; 64 bits is plenty to tell two log heads apart."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def is_glob(pattern: str) -> bool:
    return any(c in _GLOB_CHARS for c in pattern)


class FileOps:
    """The system calls the tailer makes, and nothing else.

    Tests subclass it to raise errors from a chosen call or to count calls (the idle poll of an
    unchanged file must cost one ``stat`` per file and nothing more).
    """

    def glob(self, pattern: str) -> list[str]:
        return sorted(glob.glob(pattern))  # noqa: PTH207 - patterns are absolute or cwd-relative strings

    def lstat(self, path: str) -> os.stat_result:
        """The path itself, a symlink not followed: the one call per file and poll."""
        return os.lstat(path)

    def stat(self, path: str) -> os.stat_result:
        """What a symlink points to (only for symlinks the source may follow)."""
        return os.stat(path)  # noqa: PTH116 - the raw call is the point: one syscall

    def open(self, path: str) -> int:
        # O_NONBLOCK: a FIFO matched by a glob must not block the poll. O_NOFOLLOW: a symlink
        # is opened only through its checked target, never by a name that may have changed.
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW)

    def fstat(self, fd: int) -> os.stat_result:
        return os.fstat(fd)

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        return os.pread(fd, size, offset)

    def pread_into(self, fd: int, buffer: memoryview, offset: int) -> int:
        """``pread`` into a buffer the caller keeps: reading a megabyte into new memory each
        time cost more than the read (page faults)."""
        return os.preadv(fd, [buffer], offset)

    reads_lines = _read is not None  # whether ``read_lines`` can be called

    def read_lines(
        self, fd: int, head: bytes, size: int, offset: int
    ) -> tuple[bytes | None, bytes, int, int, int]:
        """``pread`` written behind ``head`` and cut at the read's last newline, in one copy
        (``_read.c``): (whole lines or None if the read holds a NUL, rest, bytes read,
        newlines read, NULs read). Only called when ``reads_lines``."""
        assert _read is not None
        return _read.read_lines(fd, head, size, offset)  # type: ignore[no-any-return]

    def close(self, fd: int) -> None:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Head:
    """Hash of the first ``length`` bytes (``length`` < HEAD_BYTES while the file is small)."""

    length: int
    hash: str


def read_head(ops: FileOps, fd: int) -> Head:
    data = ops.pread(fd, HEAD_BYTES, 0)
    return Head(len(data), digest(data))


def check_head(ops: FileOps, fd: int, known: Head) -> Head | None:
    """Return the (possibly longer) head if the file still starts with ``known``, else None.

    A growing file's head is extended up to HEAD_BYTES, so a small file becomes better
    identified as it grows; a shrunken or rewritten head means the file was replaced in place.
    """
    data = ops.pread(fd, HEAD_BYTES, 0)
    if len(data) < known.length or digest(data[: known.length]) != known.hash:
        return None
    if len(data) == known.length:
        return known
    return Head(len(data), digest(data))


def read_marker(ops: FileOps, fd: int, offset: int) -> str:
    """Hash of the bytes just before ``offset``: what we last read, so a resume can verify it."""
    start = max(0, offset - MARKER_BYTES)
    data = ops.pread(fd, offset - start, start)
    return digest(data)


def last_line_start(ops: FileOps, fd: int, size: int, limit: int) -> tuple[int, bool]:
    """Where ``start_at: end`` should begin: after the last newline at or before ``size``.

    Starting exactly at ``size`` would hand out the tail of a line the writer is still writing
    as if it were a whole line. Returns (offset, inside_long_line): when no newline exists in the
    last ``limit`` bytes the pending line is too long anyway and is skipped to its end.
    """
    if size == 0 or ops.pread(fd, 1, size - 1) == b"\n":
        return size, False
    block = 64 << 10
    end = size
    floor = max(0, size - limit - 1)
    while end > floor:
        start = max(floor, end - block)
        pos = ops.pread(fd, end - start, start).rfind(b"\n")
        if pos >= 0:
            return start + pos + 1, False
        end = start
    if floor == 0:
        return 0, False
    return size, True
