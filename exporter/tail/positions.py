"""Checkpoint of how far each file was read, so a restart neither loses nor re-counts lines.

Entries are keyed by file identity (device, inode) and carry the head and marker hashes that
let the tailer refuse a stale offset (inode reuse, copytruncate while stopped). The file is
versioned JSON, replaced atomically (temp file in the same directory, fsync, rename, fsync of
the directory), so a crash during a save leaves the previous checkpoint intact. A corrupt or
unreadable checkpoint is counted and ignored: the configured ``start_at`` applies instead.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
log = logging.getLogger(__name__)

Key = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Position:
    dev: int
    ino: int
    offset: int  # end of the last whole line handed out
    head_len: int
    head: str
    marker: str  # hash of the bytes just before ``offset``
    source: str  # the configured source path (glob or file) that tracked it
    path: str  # where the file was last seen (informational)
    seen: float  # wall time the file was last seen; drives the TTL

    @property
    def key(self) -> Key:
        return (self.dev, self.ino)


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "dev": int,
    "ino": int,
    "offset": int,
    "head_len": int,
    "head": str,
    "marker": str,
    "source": str,
    "path": str,
    "seen": (int, float),
}


def _decode(raw: bytes) -> list[Position]:
    """Parse a checkpoint; any structural problem raises ValueError (the whole file is refused)."""
    doc = json.loads(raw)
    if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
        raise ValueError("unknown checkpoint format")
    files = doc.get("files")
    if not isinstance(files, list):
        raise ValueError("files: must be a list")
    out: list[Position] = []
    for item in files:
        if not isinstance(item, dict) or set(item) != set(_FIELDS):
            raise ValueError("malformed entry")
        for name, kind in _FIELDS.items():
            value: Any = item[name]
            if isinstance(value, bool) or not isinstance(value, kind):
                raise ValueError(f"{name}: wrong type")
        if item["offset"] < 0 or item["head_len"] < 0:
            raise ValueError("negative offset")
        out.append(Position(**{**item, "seen": float(item["seen"])}))
    return out


class Positions:
    """In-memory checkpoint bound to an optional file (``None``: nothing is persisted)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.errors = 0  # corrupt/unreadable loads and failed saves
        self._entries: dict[Key, Position] = {}
        self._saved: dict[Key, Position] | None = None  # what the file holds, if known

    @classmethod
    def load(cls, path: str | None) -> Positions:
        pos = cls(path)
        if path is None:
            return pos
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return pos  # first run
        except OSError as e:
            pos.errors += 1
            log.warning("positions file %s unreadable (%s); starting without it", path, e)
            return pos
        try:
            entries = _decode(raw)
        except (ValueError, TypeError, RecursionError) as e:
            pos.errors += 1
            log.warning("positions file %s is corrupt (%s); starting without it", path, e)
            return pos
        pos._entries = {p.key: p for p in entries}
        pos._saved = dict(pos._entries)
        return pos

    def get(self, key: Key) -> Position | None:
        return self._entries.get(key)

    def put(self, entry: Position) -> None:
        self._entries[entry.key] = entry

    def forget(self, key: Key) -> None:
        self._entries.pop(key, None)

    def has_source(self, source: str) -> bool:
        """Whether this source was tailed before (then a file new to us is read from 0)."""
        return any(p.source == source for p in self._entries.values())

    def entries(self) -> list[Position]:
        return list(self._entries.values())

    def prune(self, now: float, ttl: float) -> int:
        """Drop entries of files not seen for ``ttl`` seconds, so the file cannot grow forever."""
        stale = [k for k, p in self._entries.items() if now - p.seen > ttl]
        for k in stale:
            del self._entries[k]
        return len(stale)

    def save(self, seen_slack: float = 0.0) -> bool:
        """Write atomically; on failure count it, keep the previous file and return False.

        A save costs two fsyncs, so it is skipped when the file already holds these entries.
        ``seen`` moves on every save of a live file; a move of at most ``seen_slack`` seconds
        alone is not worth a write (on disk an entry may then look that much older).
        """
        if self.path is None:
            return True
        if self._unchanged(seen_slack):
            return True
        doc = {"version": FORMAT_VERSION, "files": [asdict(p) for p in self._entries.values()]}
        data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        try:
            _atomic_write(self.path, data)
        except OSError as e:
            self.errors += 1
            log.warning("cannot save positions to %s: %s", self.path, e)
            return False
        self._saved = dict(self._entries)
        return True

    def _unchanged(self, seen_slack: float) -> bool:
        saved = self._saved
        if saved is None or saved.keys() != self._entries.keys():
            return False
        for key, p in self._entries.items():
            old = saved[key]
            if abs(p.seen - old.seen) > seen_slack or replace(p, seen=old.seen) != old:
                return False
        return True


def _atomic_write(path: str, data: bytes) -> None:
    directory = Path(path).resolve().parent
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    Path(tmp).replace(path)
    dfd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
