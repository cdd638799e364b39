"""Follow log files through rotation, truncation, deletion and restarts; hand out whole lines.

One ``poll_once`` stats every matched file once and reads what is new. Nothing here sleeps or
starts a thread: the caller decides when to poll (a timer, or a watchdog wake-up from
``exporter.tail.watch``), so tests drive it by hand with a ManualClock.

Rotation, in the order a poll handles it:
1. A tracked file that is no longer at a matched path was renamed away or deleted. It is
   drained to EOF first, however many polls that takes (lines written before the rename are
   not lost), then kept open for ``rotate_wait`` to catch late writes of a writer that still
   holds it, then closed.
2. A matched path whose (device, inode) is new to us is a new file. With a trusted checkpoint
   entry it resumes there; found at start-up it follows ``start_at``; found later it is read
   from 0 (it was created after we started, so all of it is news).
3. A known file whose size fell below our offset, or whose head bytes changed, was truncated or
   rewritten in place (copytruncate): it is read again from 0.
"""

from __future__ import annotations

import errno
import logging
import os
import stat as stat_mod
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from exporter.atomic import temporary_path
from exporter.clock import Clock
from exporter.config_types import SourceConfig, TailConfig
from exporter.health import SourceStats
from exporter.tail.fileident import (
    FileOps,
    Head,
    check_head,
    is_glob,
    last_line_start,
    read_head,
    read_marker,
)
from exporter.tail.linebuf import LineAssembler, count_lines
from exporter.tail.positions import Key, Position, Positions
from exporter.tail.tracked import LogLimiter, Tracked

log = logging.getLogger(__name__)
T = TypeVar("T")

# Read at most this much per poll, then let the caller checkpoint and look again: bounds how long
# a burst can hold off a checkpoint or a shutdown, and the bytes a poll holds at once. A poll's
# chunks of one source are applied as one batch (Engine.decode_all), so the budget is also the
# largest batch. The ingest loop and the tests both use it.
POLL_BUDGET_BYTES = 2 << 20
_REOPEN_ERRNOS = frozenset({errno.ESTALE, errno.EBADF})
Matched = dict[Key, tuple[str, os.stat_result]]  # what one poll found: identity -> (path, stat)


@dataclass(frozen=True, slots=True)
class Chunk:
    """Whole lines from one file; ``source`` is the configured path (the metric label)."""

    source: str
    path: str
    data: bytes
    lines: int


class Tailer:
    """Follows the files of the configured sources and hands out their new whole lines.

    Files are tracked by identity, not by path, so a rename, a truncation or a restart neither
    loses nor repeats a line. It never blocks or starts a thread: the ingest loop sets the pace
    and tests drive it by hand. ``stats`` is read from other threads (scrapes), hence the lock.
    """

    def __init__(
        self,
        sources: Sequence[SourceConfig],
        tail: TailConfig,
        clock: Clock,
        positions: Positions | None = None,
        *,
        ops: FileOps | None = None,
    ) -> None:
        self._sources = list(sources)
        self._tail = tail
        self._clock = clock
        self._pos = positions if positions is not None else Positions.load(tail.positions_file)
        self._ops = ops if ops is not None else FileOps()
        self._files: dict[str, dict[Key, Tracked]] = {s.path: {} for s in self._sources}
        self._counters = {s.path: SourceStats() for s in self._sources}
        # A source tailed before (entries in the checkpoint) reads files new to it from 0:
        # they appeared while we were stopped. start_at only governs a first deployment.
        self._history = {s.path: self._pos.has_source(s.path) for s in self._sources}
        # Files present at the first poll that start_at: end applies to, with their size then,
        # until first opened: an open that fails at start-up (EACCES, EMFILE) must neither
        # turn their history into news nor skip what was written while it kept failing.
        self._at_start: dict[str, dict[Key, int]] = {s.path: {} for s in self._sources}
        self._lock = threading.Lock()
        self._limiter = LogLimiter(clock)
        self._missing_logged: set[str] = set()
        self._base = {s.path: _base_directory(s.path) for s in self._sources}
        self._refused: dict[str, set[str]] = {s.path: set() for s in self._sources}
        self._overlap_logged: set[tuple[str, Key]] = set()
        self._first_poll = True
        self._closed = False
        self._turn = 0  # polls so far: who goes first takes turns, so nobody starves
        own = tail.positions_file
        self._own_files = _own_files((own, temporary_path(own)) if own else ())
        self.more_pending = False  # the last poll stopped on its byte budget: poll again soon
        # Reads land here, and whole lines are copied out (LineAssembler.feed): one buffer
        # kept warm rather than a fresh megabyte per read.
        self._read_buffer = bytearray(0)

    # ---- public API -------------------------------------------------------------------

    def poll_once(self, max_bytes: int | None = None) -> list[Chunk]:
        """Bring every source up to date in one bounded step; return the new whole lines.

        Every matched file is stat'ed on every call because file events can be missed: the poll
        alone must be correct. Reading stops after ``max_bytes`` (``POLL_BUDGET_BYTES`` unless
        given) so a burst cannot hold off a checkpoint or a shutdown; ``more_pending`` then asks
        the caller to poll again at once.
        """
        if self._closed:
            return []
        budget = max_bytes if max_bytes is not None else POLL_BUDGET_BYTES
        out: list[Chunk] = []
        now = self._clock.monotonic()
        self.more_pending = False
        for src in _take_turns(self._sources, self._turn):
            budget = self._poll_source(src, now, budget, out)
        self._turn += 1
        self._first_poll = False
        self._refresh_gauges()
        return out

    def stats(self) -> dict[str, SourceStats]:
        with self._lock:
            return {path: c.copy() for path, c in self._counters.items()}

    def checkpoint_errors(self) -> int:
        return self._pos.errors

    def save_positions(self) -> None:
        """Record every tracked file at the end of its last handed-out line, prune, persist."""
        now = self._clock.now()
        for src in self._sources:
            for f in self._files[src.path].values():
                self._remember(src.path, f, now)
        ttl = self._tail.positions_ttl
        self._pos.prune(now, ttl)
        # An idle file only moves its ``seen``: rewrite for that at most every 1 % of the TTL.
        self._pos.save(seen_slack=ttl / 100)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for files in self._files.values():
            for f in files.values():
                self._close_fd(f)
            files.clear()
        self._refresh_gauges()

    # ---- one source -------------------------------------------------------------------

    def _poll_source(self, src: SourceConfig, now: float, budget: int, out: list[Chunk]) -> int:
        files = self._files[src.path]
        matched = self._match(src)
        self._note_start_files(src, matched)
        for key, f in files.items():
            if key not in matched and f.rotated_at is None:
                self._mark_gone(src, f, now)
            elif key in matched:
                f.rotated_at = f.waiting_since = None  # back under a matched name (or never left)
        for key, f in list(files.items()):  # drain files that left their path, oldest first
            if f.rotated_at is None:
                continue
            if self._done_waiting(f, now):
                self._retire(src, f)
                del files[key]
            else:
                budget = self._drain_gone(src, f, budget, out, now)
        for key, (path, st) in _take_turns(list(matched.items()), self._turn):
            known = files.get(key)
            if known is None and self._followed_elsewhere(src, key, path):
                continue
            cur = known if known is not None else self._open_new(src, path, key)
            if cur is None:
                continue
            files[key] = cur
            cur.path = path
            if cur.fd < 0 and not self._reopen(src, cur):
                continue
            budget = self._advance(src, cur, st, budget, out)
        return budget

    def _note_start_files(self, src: SourceConfig, matched: Matched) -> None:
        at_start = self._at_start[src.path]
        if self._first_poll and not self._history[src.path] and src.start_at == "end":
            at_start.update((key, st.st_size) for key, (_, st) in matched.items())
        elif at_start:
            for key in at_start.keys() - matched.keys():
                del at_start[key]  # it left its path; its inode number may be reused

    def _match(self, src: SourceConfig) -> Matched:
        paths = self._ops.glob(src.path) if is_glob(src.path) else [src.path]
        matched: Matched = {}
        refused: set[str] = set()
        inside: dict[str, bool] = {}  # directory -> within the source's directory (this poll)
        for p in paths:
            if _is_own(p, self._own_files):
                continue  # a broad glob must not tail our own checkpoint
            try:
                st = self._ops.lstat(p)
                if stat_mod.S_ISLNK(st.st_mode):
                    if not self._may_follow(src, p, inside, link=True):
                        refused.add(p)
                        continue
                    st = self._ops.stat(p)
                elif not self._may_follow(src, p, inside, link=False):
                    refused.add(p)  # under a symlinked directory that leads elsewhere
                    continue
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as e:
                self._read_error(src, p, e, "stat")
                continue
            if stat_mod.S_ISREG(st.st_mode):
                matched.setdefault((st.st_dev, st.st_ino), (p, st))
        self._note_refused(src, refused)
        if matched:
            self._missing_logged.discard(src.path)
        elif src.path not in self._missing_logged:
            self._missing_logged.add(src.path)  # once per absence, not once per poll
            log.info("no file matches %s yet; waiting for it", src.path)
        return matched

    def _may_follow(
        self, src: SourceConfig, path: str, inside: dict[str, bool], link: bool
    ) -> bool:
        """Whether ``path`` stays within the source's directory (the part of its pattern
        before any wildcard), or the source opted in with ``follow_symlinks``.

        A planted ``logs/x.jsonl -> /etc/shadow`` must not be read: its lines would be counted
        and any JSON in it exported as labels. Costs nothing for a regular file matched directly
        in that directory; symlinks and files under matched subdirectories are resolved.
        """
        if src.follow_symlinks:
            return True
        base = self._base[src.path]
        parent = os.path.dirname(path) or "."  # noqa: PTH120 - no Path object per file and poll
        if link:
            return _within(os.path.realpath(path), os.path.realpath(base))
        if parent == base:
            return True
        found = inside.get(parent)
        if found is None:
            found = inside[parent] = _within(os.path.realpath(parent), os.path.realpath(base))
        return found

    def _note_refused(self, src: SourceConfig, refused: set[str]) -> None:
        """Count and log each refused path once, for as long as it stays (planted again after
        it went away, it counts again)."""
        before = self._refused[src.path]
        new = refused - before
        self._refused[src.path] = refused
        if not new:
            return
        with self._lock:
            self._counters[src.path].symlinks_refused += len(new)
        for path in sorted(new):
            log.warning(
                "not following %s: it resolves outside %s (set follow_symlinks: true on the "
                "source %s to follow it)",
                path,
                self._base[src.path],
                src.path,
            )

    def _followed_elsewhere(self, src: SourceConfig, key: Key, path: str) -> bool:
        """Whether another source already follows this file (overlapping patterns).

        Two sources reading one file would count every line twice and overwrite each other's
        checkpoint entry (keyed by the file). The first to track it keeps it; the other takes
        over only once it lets go, and then resumes from its checkpoint entry.
        """
        for other, files in self._files.items():
            if other != src.path and key in files:
                if (src.path, key) not in self._overlap_logged:
                    self._overlap_logged.add((src.path, key))
                    log.info(
                        "%s is already followed by source %s; %s skips it", path, other, src.path
                    )
                return True
        self._overlap_logged.discard((src.path, key))
        return False

    # ---- opening ----------------------------------------------------------------------

    def _open(self, src: SourceConfig, path: str) -> int:
        """Open a matched path without following a symlink by name: a symlink is opened through
        its resolved target, checked again now (it may have changed since the poll looked).
        The caller compares the opened file with the poll's (device, inode)."""
        try:
            return self._ops.open(path)
        except OSError as e:
            if e.errno != errno.ELOOP or not self._may_follow(src, path, {}, link=True):
                raise
        return self._ops.open(os.path.realpath(path))

    def _open_new(self, src: SourceConfig, path: str, key: Key) -> Tracked | None:
        try:
            fd = self._open(src, path)
        except FileNotFoundError:
            return None  # gone between stat and open; the next poll sees the new state
        except OSError as e:
            self._read_error(src, path, e, "open")
            return None
        try:
            begin = self._begin(src, fd, key)
        except OSError as e:
            self._ops.close(fd)
            self._read_error(src, path, e, "read")
            return None
        if begin is None:  # replaced between stat and open; the next poll sees which
            self._ops.close(fd)
            return None
        head, start, skipping = begin
        self._at_start[src.path].pop(key, None)
        with self._lock:
            self._counters[src.path].opens += 1
        asm = LineAssembler(self._tail.max_line_bytes, at_start=start == 0, skipping=skipping)
        return Tracked(path, fd, key, head, start, asm)

    def _begin(self, src: SourceConfig, fd: int, key: Key) -> tuple[Head, int, bool] | None:
        """Head and start of a just-opened file, or None if it is not the file we stat'ed (or
        not a regular file: replaced by a FIFO or a device between the poll and the open)."""
        st = self._ops.fstat(fd)
        if (st.st_dev, st.st_ino) != key or not stat_mod.S_ISREG(st.st_mode):
            return None
        head = read_head(self._ops, fd)
        return (head, *self._start_offset(src, fd, key, st.st_size))

    def _start_offset(self, src: SourceConfig, fd: int, key: Key, size: int) -> tuple[int, bool]:
        entry = self._pos.get(key)
        if entry is not None:
            if self._entry_valid(fd, entry, size):
                return entry.offset, False
            # Inode reused, or rewritten while we were stopped: the offset belongs elsewhere.
            log.info("checkpoint for %s does not match the file; reading it from 0", src.path)
            with self._lock:
                self._counters[src.path].checkpoint_resets += 1
            self._pos.forget(key)
            return 0, False
        size_at_start = self._at_start[src.path].get(key)
        if size_at_start is not None and size >= size_at_start:
            # The end as of start-up: lines written while the first opens failed are news.
            return last_line_start(self._ops, fd, size_at_start, self._tail.max_line_bytes)
        return 0, False

    def _entry_valid(self, fd: int, entry: Position, size: int) -> bool:
        if entry.offset > size or entry.head_len > size:
            return False
        if check_head(self._ops, fd, Head(entry.head_len, entry.head)) is None:
            return False
        return read_marker(self._ops, fd, entry.offset) == entry.marker

    def _reopen(self, src: SourceConfig, f: Tracked) -> bool:
        """Replace a stale handle; resume if the file is still the one we read, else from 0."""
        try:
            fd = self._open(src, f.path)
            st = self._ops.fstat(fd)
        except OSError as e:
            if not isinstance(e, FileNotFoundError):
                self._read_error(src, f.path, e, "open")
            return False
        if (st.st_dev, st.st_ino) != f.key:
            self._ops.close(fd)
            return False
        f.fd = fd
        # Forces the head check on the next read. The assembler is kept: its partial line, or
        # the over-long line it is skipping (already counted), continues where it stopped.
        f.size = f.mtime_ns = -1
        with self._lock:
            self._counters[src.path].opens += 1
        return True

    # ---- reading ----------------------------------------------------------------------

    def _advance(
        self, src: SourceConfig, f: Tracked, st: os.stat_result, budget: int, out: list[Chunk]
    ) -> int:
        size, mtime = st.st_size, st.st_mtime_ns
        changed = size != f.size or mtime != f.mtime_ns
        if not changed and f.read_off >= size:
            return budget  # the idle path: one stat, nothing else
        f.size, f.mtime_ns = size, mtime
        try:
            if size < f.read_off:
                self._truncated(src, f, "shrank below the read offset")
            elif changed:
                head = check_head(self._ops, f.fd, f.head)
                if head is None:
                    self._truncated(src, f, "its first bytes changed")
                else:
                    f.head = head
        except OSError as e:
            self._pread_failed(src, f, e)
            return budget
        return self._read(src, f, budget, out)

    def _truncated(self, src: SourceConfig, f: Tracked, why: str) -> None:
        log.info("%s was truncated (%s); reading it from 0", f.path, why)
        f.handed = 0
        f.asm.reset()
        f.head = read_head(self._ops, f.fd)
        with self._lock:
            self._counters[src.path].truncations += 1

    def _read(self, src: SourceConfig, f: Tracked, budget: int, out: list[Chunk]) -> int:
        piece = self._tail.read_chunk_bytes
        got = lines = 0
        too_long, nul_bytes = f.asm.too_long, f.asm.nul_bytes
        while budget > 0:
            want = min(piece, budget)
            try:
                size, complete, settled, n = self._read_piece(f, want)
            except OSError as e:
                self._pread_failed(src, f, e)
                break
            if not size:
                break
            budget -= size
            got += size
            f.handed += settled
            if complete:
                lines += n
                out.append(Chunk(src.path, f.path, complete, n))
            if size < want:
                break
        if budget <= 0:
            self.more_pending = True
        with self._lock:
            c = self._counters[src.path]
            c.bytes_read += got
            c.lines += lines
            c.lines_too_long += f.asm.too_long - too_long
            c.nul_bytes_skipped += f.asm.nul_bytes - nul_bytes
        return budget

    def _read_piece(self, f: Tracked, want: int) -> tuple[int, bytes, int, int]:
        """Up to ``want`` new bytes of ``f``: (bytes read, the whole lines they complete, the
        file bytes those settle, their line count). Compiled, the read lands behind the partial
        line in the very bytes handed out, counted as it is read; else it is read into a buffer
        kept for the purpose and fed to the line assembler."""
        head = f.asm.partial
        if self._ops.reads_lines and head is not None:
            whole, rest, size, newlines, _ = self._ops.read_lines(f.fd, head, want, f.read_off)
            if whole is not None:
                complete, settled = f.asm.take(whole, rest, size)
                # Whole lines are counted as read, unless the rules cut some away.
                n = newlines if complete is whole else count_lines(complete)
                return size, complete, settled, n
            complete, settled = f.asm.feed(rest[len(head) :])  # a NUL: the rules drop it
            return size, complete, settled, count_lines(complete)
        buffer = self._read_buffer
        if len(buffer) < want:
            buffer = self._read_buffer = bytearray(want)
        size = self._ops.pread_into(f.fd, memoryview(buffer)[:want], f.read_off)
        data = buffer if size == len(buffer) else buffer[:size]
        complete, settled = f.asm.feed(data)
        return size, complete, settled, count_lines(complete)

    def _pread_failed(self, src: SourceConfig, f: Tracked, e: OSError) -> None:
        self._read_error(src, f.path, e, "read")
        if e.errno in _REOPEN_ERRNOS:
            self._close_fd(f)  # a stale handle never recovers; reopen by path next poll

    def _read_error(self, src: SourceConfig, path: str, e: OSError, what: str) -> None:
        with self._lock:
            self._counters[src.path].read_errors += 1
        self._limiter.warn(path, e, what)

    # ---- files that left their path ---------------------------------------------------

    def _mark_gone(self, src: SourceConfig, f: Tracked, now: float) -> None:
        f.rotated_at = now
        f.waiting_since = None
        if f.fd < 0:
            return
        try:
            f.nlink = self._ops.fstat(f.fd).st_nlink
        except OSError:
            f.nlink = 0
        if f.nlink > 0:  # renamed away (a deletion is not a rotation)
            log.info("%s was rotated; draining the old file", f.path)
            with self._lock:
                self._counters[src.path].rotations += 1

    def _done_waiting(self, f: Tracked, now: float) -> bool:
        """Whether to let go of a file that left its path.

        Only once nothing we know of is left to read (or reading kept failing) and no late
        write came for ``rotate_wait``: a backlog that outlasts the grace period because of
        the byte budget is still read to its end. A dropped handle cannot be reopened by path.
        """
        if f.fd < 0:
            return True
        since = f.waiting_since
        return since is not None and now - since >= self._tail.rotate_wait

    def _drain_gone(
        self, src: SourceConfig, f: Tracked, budget: int, out: list[Chunk], now: float
    ) -> int:
        """Read a file that left its path through its fd, with the same truncation checks."""
        try:
            st = self._ops.fstat(f.fd)
        except OSError as e:
            self._pread_failed(src, f, e)
            if f.waiting_since is None:
                f.waiting_since = now
            return budget
        f.nlink = st.st_nlink
        left = self._advance(src, f, st, budget, out)
        if left <= 0 and f.read_off < st.st_size:
            f.waiting_since = None  # the budget stopped us, not the file: keep reading
        elif f.waiting_since is None:
            f.waiting_since = now  # at its end (or failing): late writes get rotate_wait
        return left

    def _retire(self, src: SourceConfig, f: Tracked) -> None:
        """Close a file whose grace period is over; keep its checkpoint only if it still exists."""
        lost = max(0, f.size - f.read_off)
        if lost:
            log.warning("giving up %d unread bytes of %s (rotated, unreadable)", lost, f.path)
            with self._lock:
                self._counters[src.path].bytes_dropped += lost
        if f.nlink > 0:
            self._remember(src.path, f, self._clock.now())
        else:
            self._pos.forget(f.key)  # deleted: its inode number will be reused
        self._close_fd(f)

    def _remember(self, source: str, f: Tracked, now: float) -> None:
        if f.fd < 0:
            return
        try:
            marker = read_marker(self._ops, f.fd, f.handed)
        except OSError as e:
            self._limiter.warn(f.path, e, "checkpoint")
            return
        self._pos.put(
            Position(
                dev=f.key[0],
                ino=f.key[1],
                offset=f.handed,
                head_len=f.head.length,
                head=f.head.hash,
                marker=marker,
                source=source,
                path=f.path,
                seen=now,
            )
        )

    def _close_fd(self, f: Tracked) -> None:
        if f.fd >= 0:
            try:
                self._ops.close(f.fd)
            except OSError as e:
                self._limiter.warn(f.path, e, "close")
            f.fd = -1

    def _refresh_gauges(self) -> None:
        with self._lock:
            for path, files in self._files.items():
                c = self._counters[path]
                c.open_files = sum(1 for f in files.values() if f.fd >= 0)
                c.files_present = sum(
                    1 for f in files.values() if f.fd >= 0 and f.rotated_at is None
                )
                c.lag_bytes = sum(max(0, f.size - f.handed) for f in files.values() if f.fd >= 0)


def _take_turns(items: list[T], turn: int) -> list[T]:
    """Start at a different item each poll: whoever goes first cannot take the whole budget."""
    if len(items) < 2:
        return items
    k = turn % len(items)
    return items[k:] + items[:k]


def _base_directory(pattern: str) -> str:
    """The directory a source's files must stay in: the pattern's path before any wildcard
    (``/var/log/model`` for ``/var/log/model/*.jsonl``; a plain file's own directory)."""
    head = os.path.dirname(pattern)  # noqa: PTH120 - the same string ops as the per-file check
    while head and is_glob(head):
        head = os.path.dirname(head)  # noqa: PTH120
    return head or "."


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _own_files(paths: Sequence[str]) -> dict[str, frozenset[str]]:
    """Base name -> real paths of the files we write, to recognise them however spelled."""
    own: dict[str, set[str]] = {}
    for p in paths:
        own.setdefault(Path(p).name, set()).add(os.path.realpath(p))
    return {name: frozenset(real) for name, real in own.items()}


def _is_own(path: str, own: dict[str, frozenset[str]]) -> bool:
    """Whether ``path`` is our checkpoint (or its temp file), however either is spelled.

    Real paths are compared (a relative ``positions_file`` against an absolute glob, symlinks),
    but only for a matching base name, so a poll still costs one stat per other file.
    """
    real = own.get(path.rpartition(os.sep)[2])  # Path(path).name, without building a Path
    return real is not None and os.path.realpath(path) in real
