"""Offline reading: complete lines in blocks, whatever the block size and line lengths, by the
compiled reader (a regular file) and by the buffered one (a pipe, or no C compiler)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from exporter.offline import read
from exporter.offline.read import read_chunks


@contextmanager
def buffered() -> Iterator[None]:
    """Read as where the reader is not compiled."""
    assert read._read is not None  # the test command builds the extension
    compiled, read._read = read._read, None
    try:
        yield
    finally:
        read._read = compiled


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"")), max_size=40),
    ends_with_newline=st.booleans(),
    block=st.sampled_from([1, 2, 7, 64, 1000, 1 << 20]),
)
@example(lines=[b"a\0b", b"", b"\0"], ends_with_newline=False, block=2)  # NULs stay in lines
def test_chunks_are_whole_lines_that_add_up_to_the_file(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
    ends_with_newline: bool,
    block: int,
) -> None:
    data = b"\n".join(lines) + (b"\n" if ends_with_newline and lines else b"")
    path = tmp_path_factory.mktemp("read") / "log.jsonl"
    path.write_bytes(data)
    chunks = list(read_chunks(str(path), block))
    assert all(chunk.endswith(b"\n") for chunk in chunks)
    assert b"".join(chunks) == (data if not data or data.endswith(b"\n") else data + b"\n")
    with buffered():  # the same chunks, block for block
        assert list(read_chunks(str(path), block)) == chunks


def test_a_pipe_is_read_too(tmp_path: Path) -> None:
    """A named pipe (``replay <(zcat log.gz)``) cannot be read at an offset: it is read in
    order, into a buffer."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    data = b"".join(b'{"n": %d}\n' % i for i in range(5000)) + b"last"

    def write() -> None:
        with fifo.open("wb") as f:
            f.write(data)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        chunks = list(read_chunks(str(fifo), 4096))
    finally:
        writer.join(timeout=30)
    assert b"".join(chunks) == data + b"\n"
    assert all(chunk.endswith(b"\n") for chunk in chunks)
