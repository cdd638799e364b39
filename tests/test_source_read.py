"""The compiled reader (``exporter/tail/_read.c``) against the plain path it replaces: a read into
a buffer fed to ``LineAssembler.feed``. Same lines, same settled offsets, same counts."""

from __future__ import annotations

import errno
import itertools
import os
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_source_linebuf import line_bytes

from exporter.clock import ManualClock
from exporter.config_types import SourceConfig, TailConfig
from exporter.tail import fileident
from exporter.tail.linebuf import BOM, LineAssembler
from exporter.tail.tailer import Tailer

read_lines = fileident.FileOps().read_lines


def test_the_test_command_builds_the_reader() -> None:
    assert fileident.FileOps.reads_lines  # else every test below would test nothing


def file_of(tmp_path: Path, data: bytes) -> int:
    path = tmp_path / "log"
    path.write_bytes(data)
    return os.open(path, os.O_RDONLY)


@settings(max_examples=300, deadline=None)
@given(
    stream=line_bytes,
    pieces=st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=8),
    max_line=st.integers(min_value=1, max_value=40),
    at_start=st.booleans(),
)
def test_compiled_reads_give_what_feed_gives(
    tmp_path_factory: pytest.TempPathFactory,
    stream: bytes,
    pieces: list[int],
    max_line: int,
    at_start: bool,
) -> None:
    """Read after read, as the tailer alternates: ``take`` while no line is being skipped and
    the read holds no NUL, ``feed`` otherwise; every state the two leave behind is compared."""
    fd = file_of(tmp_path_factory.mktemp("read"), stream)
    try:
        plain = LineAssembler(max_line, at_start=at_start)
        compiled = LineAssembler(max_line, at_start=at_start)
        offset = 0
        for size in itertools.cycle(pieces):
            expected = plain.feed(stream[offset : offset + size])
            head = compiled.partial
            if head is None:
                assert compiled.skipping
                got = compiled.feed(os.pread(fd, size, offset))
                read = len(stream[offset : offset + size])
            else:
                whole, rest, read, newlines, nuls = read_lines(fd, head, size, offset)
                piece = stream[offset : offset + read]
                assert (newlines, nuls) == (piece.count(b"\n"), piece.count(b"\0"))
                if whole is None:
                    assert nuls
                    assert rest == head + piece
                    got = compiled.feed(piece)
                else:
                    assert not nuls
                    cut = len(head) + piece.rfind(b"\n") + 1 if b"\n" in piece else 0
                    assert (whole, rest) == ((head + piece)[:cut], (head + piece)[cut:])
                    got = compiled.take(whole, rest, read)
            assert got == expected
            for name in ("pending", "too_long", "nul_bytes", "skipping", "at_start", "partial"):
                assert getattr(compiled, name) == getattr(plain, name), name
            offset += read
            if read < size:
                break
    finally:
        os.close(fd)


def tailed(path: Path, piece: int, max_line: int, *, compiled: bool) -> list[tuple[bytes, int]]:
    """Every chunk a tailer hands out for ``path``, read ``piece`` bytes at a time."""
    ops = fileident.FileOps()
    ops.reads_lines = compiled
    tail = TailConfig(read_chunk_bytes=piece, max_line_bytes=max_line, watch=False)
    tailer = Tailer(
        [SourceConfig(path=str(path), start_at="beginning")], tail, ManualClock(0.0), ops=ops
    )
    try:
        chunks = []
        for _ in range(len(path.read_bytes()) + 2):
            chunks += [(c.data, c.lines) for c in tailer.poll_once()]
        return chunks
    finally:
        tailer.close()


@settings(max_examples=200, deadline=None)
@given(
    stream=line_bytes,
    piece=st.integers(min_value=1, max_value=30),
    max_line=st.integers(min_value=1, max_value=40),
)
@example(stream=b"x" * 10 + b"yyyyyy\nok\n", piece=10, max_line=15)  # the joined line too long
@example(stream=BOM + b"a\nb\n", piece=4, max_line=8)
def test_the_tailer_hands_out_the_same_chunks_either_way(
    tmp_path_factory: pytest.TempPathFactory, stream: bytes, piece: int, max_line: int
) -> None:
    """Chunk by chunk, the compiled reads give what reads into a buffer give, and a chunk's line
    count is its newlines, also when the rules cut lines away (a BOM, over-long lines)."""
    path = tmp_path_factory.mktemp("tail") / "log"
    path.write_bytes(stream)
    compiled = tailed(path, piece, max_line, compiled=True)
    assert compiled == tailed(path, piece, max_line, compiled=False)
    for data, lines in compiled:
        assert lines == data.count(b"\n")


@pytest.mark.parametrize(
    "size", [0, 1, 15, 16, 17, 16 * 255 - 1, 16 * 255, 16 * 255 + 1, 16 * 256 * 3 + 5]
)
def test_newlines_and_nuls_are_counted_past_the_lanes_wrap(tmp_path: Path, size: int) -> None:
    """Counts are summed every 255 steps of 16 bytes, before a byte lane wraps at 256."""
    fd = file_of(tmp_path, b"\n" * size + b"\0" * size + b"x")
    try:
        whole, rest, read, newlines, nuls = read_lines(fd, b"", 2 * size + 1, 0)
        assert (read, newlines, nuls) == (2 * size + 1, size, size)
        assert whole is None if size else whole == b""
        assert rest == b"\n" * size + b"\0" * size + b"x"
        answer = read_lines(fd, b"ab", size, 0)
        if size:
            assert answer == (b"ab" + b"\n" * size, b"", size, size, 0)
        else:
            assert answer == (b"", b"ab", 0, 0, 0)
    finally:
        os.close(fd)


def test_a_read_at_or_past_the_end_returns_the_head_untouched(tmp_path: Path) -> None:
    fd = file_of(tmp_path, b"one\ntwo")
    try:
        assert read_lines(fd, b"", 100, 0) == (b"one\n", b"two", 7, 1, 0)
        assert read_lines(fd, b"two", 100, 7) == (b"", b"two", 0, 0, 0)
        assert read_lines(fd, b"", 100, 50) == (b"", b"", 0, 0, 0)
        assert read_lines(fd, BOM, 3, 4) == (b"", BOM + b"two", 3, 0, 0)
    finally:
        os.close(fd)


def test_a_failed_read_raises_what_os_pread_raises(tmp_path: Path) -> None:
    fd = file_of(tmp_path, b"x\n")
    os.close(fd)
    with pytest.raises(OSError) as raised:
        read_lines(fd, b"", 10, 0)
    assert raised.value.errno == errno.EBADF
    directory = os.open(tmp_path, os.O_RDONLY)
    try:
        with pytest.raises(IsADirectoryError):
            read_lines(directory, b"head", 10, 0)
    finally:
        os.close(directory)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((-1, b"", 1, 0), ValueError),
        ((0, b"", -1, 0), ValueError),
        ((0, b"", 1, -1), ValueError),
        ((0, bytearray(b""), 1, 0), TypeError),
        ((0, b"", 1), TypeError),
    ],
)
def test_bad_arguments_are_refused(args: tuple[object, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        fileident._read.read_lines(*args)
