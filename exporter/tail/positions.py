"""Checkpoint of how far each file was read, so a restart neither loses nor re-counts lines.

Entries are keyed by file identity (device, inode) and carry the head and marker hashes that
let the tailer refuse a stale offset (inode reuse, copytruncate while stopped). The file is
versioned JSON, decoded into the same msgspec Structs it is written from, and replaced with
``exporter.atomic.write_atomic`` (temp file, fsync, rename, fsync of the directory), so a crash
during a save leaves the previous checkpoint intact. A corrupt or unreadable checkpoint is
counted and ignored: the configured ``start_at`` applies instead.
"""

from __future__ import annotations

import logging
from typing import Annotated

import msgspec
from msgspec.structs import replace

from exporter.atomic import write_atomic

FORMAT_VERSION = 1
log = logging.getLogger(__name__)

Key = tuple[int, int]
_NonNegative = Annotated[int, msgspec.Meta(ge=0)]


class Position(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One tracked file; also the schema of an entry on disk (types and bounds checked there)."""

    dev: _NonNegative
    ino: _NonNegative
    offset: _NonNegative  # end of the last whole line handed out
    head_len: _NonNegative
    head: str
    marker: str  # hash of the bytes just before ``offset``
    source: str  # the configured source path (glob or file) that tracked it
    path: str  # where the file was last seen (informational)
    seen: float  # wall time the file was last seen; drives the TTL

    @property
    def key(self) -> Key:
        return (self.dev, self.ino)


class _Version(msgspec.Struct):
    """Read first, so a file of another version is refused as such, whatever its entries hold."""

    version: int


class _Checkpoint(msgspec.Struct, forbid_unknown_fields=True):
    version: int
    files: list[Position]


def _decode(raw: bytes) -> list[Position]:
    """Parse a checkpoint; any problem raises ValueError (the whole file is refused).

    msgspec checks every type and bound; what is left by hand is what spans entries.
    """
    try:
        version = msgspec.json.decode(raw, type=_Version).version
        if version != FORMAT_VERSION:
            raise ValueError(f"unknown checkpoint format version {version}")
        files = msgspec.json.decode(raw, type=_Checkpoint).files
    except msgspec.DecodeError as e:  # not a ValueError in older msgspec (0.18, the floor)
        raise ValueError(str(e)) from e
    if len({p.key for p in files}) != len(files):
        raise ValueError("two entries for one file (device, inode)")
    return files


def _encode(entries: list[Position]) -> bytes:
    return msgspec.json.encode(_Checkpoint(FORMAT_VERSION, entries))


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
        try:
            write_atomic(self.path, _encode(list(self._entries.values())))
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
