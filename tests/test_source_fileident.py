"""Head fingerprints and the start_at: end position, on real files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from exporter.tail.fileident import (
    HEAD_BYTES,
    FileOps,
    Head,
    check_head,
    digest,
    last_line_start,
    read_head,
    read_marker,
)

OPS = FileOps()


@pytest.fixture
def fd_for(tmp_path: Path) -> Iterator[Callable[[bytes], int]]:
    opened: list[int] = []

    def make(content: bytes) -> int:
        p = tmp_path / f"f{len(opened)}"
        p.write_bytes(content)
        fd = OPS.open(str(p))
        opened.append(fd)
        return fd

    yield make
    for fd in opened:
        os.close(fd)


def test_head_grows_with_the_file_up_to_its_cap(fd_for: Callable[[bytes], int]) -> None:
    small = b"a" * 10
    fd = fd_for(small)
    head = read_head(OPS, fd)
    assert head == Head(10, digest(small))
    with Path(f"/proc/self/fd/{fd}").open("ab") as f:
        f.write(b"b" * 5000)
    grown = check_head(OPS, fd, head)
    assert grown is not None
    assert grown.length == HEAD_BYTES
    assert check_head(OPS, fd, grown) == grown


def test_rewritten_or_shrunk_head_is_refused(fd_for: Callable[[bytes], int]) -> None:
    fd = fd_for(b"0123456789")
    head = read_head(OPS, fd)
    with Path(f"/proc/self/fd/{fd}").open("r+b") as f:
        f.seek(3)
        f.write(b"X")
    assert check_head(OPS, fd, head) is None
    fd2 = fd_for(b"01234")
    assert check_head(OPS, fd2, head) is None


def test_marker_is_the_hash_of_the_bytes_before_the_offset(fd_for: Callable[[bytes], int]) -> None:
    content = bytes(range(256)) * 2
    fd = fd_for(content)
    for offset in (0, 1, 63, 64, 65, 300, len(content)):
        assert read_marker(OPS, fd, offset) == digest(content[max(0, offset - 64) : offset])


@pytest.mark.parametrize(
    ("content", "limit", "expected"),
    [
        (b"", 100, (0, False)),
        (b"a\nb\n", 100, (4, False)),
        (b"a\nbc", 100, (2, False)),
        (b"abc", 100, (0, False)),
        (b"x" * 10 + b"\n" + b"y" * 50, 20, (61, True)),
        (b"x\n" + b"y" * 200_000, 300_000, (2, False)),  # found across several 64 KiB blocks
    ],
)
def test_last_line_start(
    fd_for: Callable[[bytes], int], content: bytes, limit: int, expected: tuple[int, bool]
) -> None:
    assert last_line_start(OPS, fd_for(content), len(content), limit) == expected
