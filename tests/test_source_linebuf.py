"""LineAssembler against a plain oracle: split the whole stream at newlines, drop long lines."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.tail import linebuf
from exporter.tail.linebuf import BOM, LineAssembler, count_lines


def oracle(stream: bytes, max_line: int) -> tuple[list[bytes], int, int]:
    """(kept lines, over-long count, settled bytes) computed the obvious way. NUL bytes are
    no part of a line: dropped, and not counted in its length."""
    end = stream.rfind(b"\n") + 1
    body = stream[:end]
    kept: list[bytes] = []
    too_long = 0
    for i, raw in enumerate(body.split(b"\n")[:-1]):
        line = raw.replace(b"\0", b"")
        content = line[len(BOM) :] if i == 0 and line.startswith(BOM) else line
        if len(line) > max_line:
            too_long += 1
        else:
            kept.append(content)
    tail = len(stream[end:].replace(b"\0", b""))
    return kept, too_long + (1 if tail > max_line else 0), end


line_bytes = st.lists(
    st.one_of(
        st.binary(max_size=12),
        st.sampled_from([b"\n", b"\r\n", BOM, b"\xff", "é€".encode(), b"\0" * 7]),
    ),
    max_size=40,
).map(b"".join)


@settings(max_examples=400)
@given(
    stream=line_bytes,
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=12),
    max_line=st.integers(min_value=1, max_value=40),
)
def test_any_split_gives_the_same_lines(stream: bytes, cuts: list[int], max_line: int) -> None:
    asm = LineAssembler(max_line, at_start=True)
    bounds = sorted({c for c in cuts if c < len(stream)} | {0, len(stream)})
    out = b""
    settled = 0
    for a, b in itertools.pairwise(bounds):
        data, n = asm.feed(stream[a:b])
        out += data
        settled += n
        assert settled + asm.pending == b
        nuls = stream[:b].count(b"\0")  # the pending line is held without its NULs
        assert asm.pending <= b - a + max_line + 1 + nuls or asm.skipping
    kept, too_long, end = oracle(stream, max_line)
    assert out == b"".join(line + b"\n" for line in kept)
    assert asm.too_long == too_long
    assert settled == end
    assert asm.nul_bytes == stream.count(b"\0")


def test_settled_offset_never_points_inside_a_skipped_line() -> None:
    asm = LineAssembler(4, at_start=True)
    assert asm.feed(b"ab\nlonglong") == (b"ab\n", 3)
    assert asm.skipping
    assert asm.feed(b"more") == (b"", 0)
    assert asm.feed(b"x\nok\n") == (b"ok\n", len(b"longlongmorex\nok\n"))


def test_reset_forgets_partial_and_skip_state() -> None:
    asm = LineAssembler(4, at_start=False)
    asm.feed(b"toolongline")
    asm.reset()
    assert (asm.pending, asm.skipping, asm.at_start) == (0, False, True)
    assert asm.feed(BOM + b"a\n") == (b"a\n", len(BOM) + 2)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([b"\n", b"a", b"\xff", b"\0", b"\x8a", b"\n\n"]), max_size=600),
    st.integers(0, 17),
)
def test_lines_are_counted_as_bytes_count_them(parts: list[bytes], shift: int) -> None:
    """The compiled count and numpy's, at any length and alignment (a buffer slice at an odd
    offset), both give ``bytes.count``."""
    data = (b"x" * shift + b"".join(parts))[shift:]
    assert linebuf._count_native is not None  # the test command builds the extension
    assert count_lines(data) == data.count(b"\n")
    assert count_lines(memoryview(b"." + data)[1:]) == data.count(b"\n")


def test_a_long_run_of_newlines_is_counted_past_the_lanes_wrap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The compiled count sums its byte lanes every 255 steps of 16 bytes, before they wrap at
    256; the numpy count goes a window at a time."""
    for size in (16 * 255 - 1, 16 * 255, 16 * 255 + 1, 16 * 256 * 3 + 5, (1 << 16) * 3 + 7):
        data = b"\n" * size
        assert count_lines(data) == size
        with monkeypatch.context() as patch:
            patch.setattr(linebuf, "_count_native", None)
            assert count_lines(data) == size
            assert count_lines(data[:100] + b"a" * 5) == 100
