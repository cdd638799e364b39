"""Offline reading: complete lines in blocks, whatever the block size and line lengths."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.offline.read import read_chunks


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"")), max_size=40),
    ends_with_newline=st.booleans(),
    block=st.sampled_from([1, 2, 7, 64, 1000, 1 << 20]),
)
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
