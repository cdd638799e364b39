"""Model-based test: random writes, rotations, truncations, deletions and restarts.

The model knows which records a tailer *can* still see: records written since the last poll
are lost only when the file holding them becomes unreachable before a poll opened it (renamed
out of the pattern or deleted while untracked, or across a restart) or is truncated in place
(copytruncate). Everything else must be counted exactly once, and parse errors never appear.
After a crash (no final checkpoint) at most the records handed out since the last checkpoint
flush may be counted a second time: that is the documented kill -9 bound.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from tail_harness import count_lines

from exporter.clock import ManualClock
from exporter.config_types import SourceConfig, TailConfig
from exporter.tail.fileident import FileOps
from exporter.tail.tailer import Tailer


class TailModel(RuleBasedStateMachine):
    def ops(self) -> FileOps:
        """The compiled reader, where it is built (the test command builds it)."""
        return FileOps()

    @initialize()
    def setup(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tail-model-"))
        self.dir = self.root / "logs"
        self.dir.mkdir()
        self.path = self.dir / "p.jsonl"
        self.path.touch()
        self.source = SourceConfig(path=str(self.path), start_at="beginning")
        self.tail = TailConfig(
            rotate_wait=5.0,
            read_chunk_bytes=97,  # small and odd: lines straddle reads all the time
            positions_file=str(self.root / "pos.json"),
        )
        self.clock = ManualClock(0.0)
        self.tailer = Tailer([self.source], self.tail, self.clock, ops=self.ops())
        self.seq = 0  # next record id; also names rotated files uniquely
        self.written = self.counted = self.errors = self.lost = 0
        self.unread_cur = 0  # complete records in p not yet handed out
        self.unread_safe = 0  # unread records in files the tailer holds open
        self.tracked = False  # the tailer has opened the current p
        self.partial: bytes | None = None  # the rest of a half-written record
        self.since_flush = 0  # records handed out since the last checkpoint save
        self.recount_allowance = 0  # sum of since_flush over crashes

    def teardown(self) -> None:
        self.tailer.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # ---- writer ----------------------------------------------------------------------

    def _append(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def _record(self, pad: int) -> bytes:
        self.seq += 1
        return json.dumps({"i": self.seq, "pad": "x" * pad}).encode() + b"\n"

    @precondition(lambda self: self.partial is None)
    @rule(n=st.integers(1, 5), pad=st.integers(0, 150))
    def write_records(self, n: int, pad: int) -> None:
        if not self.path.exists():
            self.tracked = False  # the writer creates a new file (nocreate rotation)
        self._append(b"".join(self._record(pad) for _ in range(n)))
        self.written += n
        self.unread_cur += n

    @precondition(lambda self: self.partial is None)
    @rule(pad=st.integers(0, 150), cut=st.integers(1, 20))
    def write_partial(self, pad: int, cut: int) -> None:
        if not self.path.exists():
            self.tracked = False
        line = self._record(pad)
        cut = min(cut, len(line) - 1)  # the newline always stays behind
        self._append(line[:cut])
        self.partial = line[cut:]

    @precondition(lambda self: self.partial is not None)
    @rule()
    def complete_line(self) -> None:
        assert self.partial is not None
        self._append(self.partial)
        self.partial = None
        self.written += 1
        self.unread_cur += 1

    # ---- rotation --------------------------------------------------------------------

    def _file_left(self) -> None:
        """p's inode is no longer at p: its unread records survive only if we hold it open."""
        if self.tracked:
            self.unread_safe += self.unread_cur
        else:
            self.lost += self.unread_cur
        self.unread_cur = 0
        self.tracked = False
        self.partial = None  # the writer reopens; the half line stays behind, incomplete

    @precondition(lambda self: self.path.exists())
    @rule(create=st.booleans())
    def rotate_rename(self, create: bool) -> None:
        self.seq += 1
        self.path.rename(self.dir / f"p.jsonl.{self.seq}")
        self._file_left()
        if create:
            self.path.touch()

    @precondition(lambda self: self.path.exists())
    @rule()
    def copytruncate(self) -> None:
        self.seq += 1
        shutil.copyfile(self.path, self.dir / f"p.jsonl.{self.seq}")
        os.truncate(self.path, 0)
        self.lost += self.unread_cur  # only the (unwatched) copy holds them now
        self.unread_cur = 0
        self.partial = None

    @precondition(lambda self: self.path.exists())
    @rule()
    def delete(self) -> None:
        self.path.unlink()
        self._file_left()

    @precondition(lambda self: not self.path.exists())
    @rule()
    def recreate(self) -> None:
        self.path.touch()

    # ---- the tailer ------------------------------------------------------------------

    @rule(advance=st.sampled_from([0.0, 1.0, 5.0]), max_bytes=st.sampled_from([None, 150]))
    def tick(self, advance: float, max_bytes: int | None) -> None:
        while True:
            ok, bad = count_lines(self.tailer.poll_once(max_bytes))
            self.counted += ok
            self.since_flush += ok
            self.errors += bad
            if not self.tailer.more_pending:
                break
        self.unread_cur = self.unread_safe = 0
        self.tracked = self.path.exists()
        self.clock.advance(advance)

    @rule()
    def flush(self) -> None:
        self.tailer.save_positions()
        self.since_flush = 0

    @rule(clean=st.booleans())
    def restart(self, clean: bool) -> None:
        if clean:
            self.flush()
        else:  # kill -9: lines since the last flush may be handed out again
            self.recount_allowance += self.since_flush
            self.since_flush = 0
        self.tailer.close()
        self.tailer = Tailer([self.source], self.tail, self.clock, ops=self.ops())
        self.lost += self.unread_safe  # rotated files the old process still held are gone
        self.unread_safe = 0
        self.tracked = False

    @invariant()
    def every_reachable_record_counted_once(self) -> None:
        if not hasattr(self, "tailer"):
            return
        assert self.errors == 0
        seen = self.counted + self.unread_cur + self.unread_safe
        assert seen >= self.written - self.lost, "a reachable record was lost"
        assert seen <= self.written - self.lost + self.recount_allowance, "counted twice"
        if self.recount_allowance == 0:
            assert self.counted <= self.written


# TAIL_MODEL_EXAMPLES=3000 for a longer hunt; the default keeps the suite within seconds.
TailModel.TestCase.settings = settings(
    max_examples=int(os.environ.get("TAIL_MODEL_EXAMPLES", "150")),
    stateful_step_count=40,
)
test_tail_model = TailModel.TestCase


class BufferedTailModel(TailModel):
    def ops(self) -> FileOps:
        """Reads into the tailer's own buffer, as where the reader is not compiled."""
        ops = FileOps()
        ops.reads_lines = False
        return ops


BufferedTailModel.TestCase.settings = TailModel.TestCase.settings
test_buffered_tail_model = BufferedTailModel.TestCase
