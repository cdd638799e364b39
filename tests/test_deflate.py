"""Bodies kept deflated: the gzip member put together from a kept stream and a tail, and the
plain body inflated from it, are the bytes they stand for.

Expected bytes are the inputs themselves, decoded by the standard library's gzip and zlib
(strictly: one member, nothing after it); the real Prometheus decodes the same bodies in the
end-to-end tests.
"""

from __future__ import annotations

import gzip
import random
import zlib

import pytest

from exporter.deflate import PIECE_BYTES, Body, Deflated


def _text(rng: random.Random, size: int) -> bytes:
    """Exposition-like bytes: repetitive lines with varying numbers (and some raw noise)."""
    lines = []
    while sum(map(len, lines)) < size:
        lines.append(f'model_x{{model="m{rng.randrange(50)}"}} {rng.random()!r}\n'.encode())
    noise = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    return (b"".join(lines) + noise)[:size]


def _one_member(data: bytes) -> bytes:
    """Decode ``data`` as exactly one gzip member with nothing after it."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = decompressor.decompress(data) + decompressor.flush()
    assert decompressor.eof, "the gzip member is not complete"
    assert decompressor.unused_data == b"", "bytes after the gzip member"
    return out


@pytest.mark.parametrize(
    ("kept_size", "tail_sizes"),
    [
        (0, []),
        (0, [10]),
        (1, [0]),
        (5_000, [200, 0, 37]),
        (3 * PIECE_BYTES + 17, [4_000]),
        (700_000, [1, 2, 3]),
    ],
)
def test_gzipped_and_plain_are_the_kept_bytes_and_the_tail(
    kept_size: int, tail_sizes: list[int]
) -> None:
    rng = random.Random(kept_size * 31 + len(tail_sizes))
    kept = _text(rng, kept_size)
    tail = [_text(rng, n) for n in tail_sizes]
    pieces = [kept[i : i + 9_999] for i in range(0, len(kept), 9_999)]  # pieces of any size
    body = Body(Deflated(pieces), tail)
    whole = kept + b"".join(tail)
    assert b"".join(body.plain()) == whole
    assert _one_member(body.gzipped()) == whole
    assert gzip.decompress(body.gzipped()) == whole
    assert body.size() == len(whole)
    assert all(len(piece) <= PIECE_BYTES for piece in body.plain()[: -len(tail) or None])


def test_a_body_without_a_kept_part_is_its_tail() -> None:
    body = Body(None, [b"a 1.0\n", b"", b"b 2.0\n"])
    assert b"".join(body.plain()) == b"a 1.0\nb 2.0\n"
    assert _one_member(body.gzipped()) == b"a 1.0\nb 2.0\n"


def test_one_kept_part_serves_many_bodies_and_is_compressed_once() -> None:
    """The kept stream is shared as it is: each body adds only its own tail."""
    rng = random.Random(7)
    kept = Deflated([_text(rng, 200_000)])
    assert sum(map(len, kept.pieces)) < kept.size / 2  # kept compressed, not as text
    first, second = Body(kept, [b"tail one\n"]), Body(kept, [b"tail two\n", b"# EOF\n"])
    assert _one_member(first.gzipped()).endswith(b"tail one\n")
    assert _one_member(second.gzipped()).endswith(b"tail two\n# EOF\n")
    streamed = b"".join(kept.pieces)
    assert streamed in first.gzipped()
    assert streamed in second.gzipped()
    assert first.gzipped() is first.gzipped()  # built once per body
