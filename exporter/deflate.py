"""A ``/metrics`` body whose large part is kept compressed: served gzipped as it is, inflated
only for a client that does not take gzip.

Why: the model part of a body (nearly all of it) is rendered once per state version and served
to every scrape until the version moves on. Kept as text it was the largest thing a scrape left
behind (~1.8 MB for 17k series), and every scrape, fresh or repeated, gzipped all of it again.
Kept as a raw deflate stream (~0.1 MB), it is compressed once, as it is written, and a gzip
body is put together from it: the gzip header, the kept stream, the small tail of the body
compressed on its own, and the trailer. A deflate stream may be continued by blocks from
another compressor once it ends on a byte boundary (a sync flush) and the new blocks refer to
no earlier data; the CRC-32 of the whole is the kept part's continued over the tail. Prometheus
asks for gzip, so the text exists only in pieces while it is written.

Pure: bytes in, bytes out.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterable

GZIP_LEVEL = 1  # level 9 costs ~16x the CPU for 1.7x fewer bytes, competing with ingestion
# RFC 1952: magic, deflate, no flags, no modification time, no extra flags, unknown OS.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
PIECE_BYTES = 1 << 16  # a plain body is inflated in pieces of this size


class Deflated:
    """Bytes compressed as one raw deflate stream that ends on a sync flush, with their CRC-32
    and length: the opening of a gzip member that more blocks can follow."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        out, self.crc, self.size = _deflate(pieces, 0, 0, zlib.Z_SYNC_FLUSH)
        self.pieces = tuple(out)

    def inflated(self) -> list[bytes]:
        """The bytes as they were, in pieces of at most ``PIECE_BYTES`` (and a last one)."""
        decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
        out = []
        for piece in self.pieces:
            left = piece
            while left:
                out.append(decompressor.decompress(left, PIECE_BYTES))
                left = decompressor.unconsumed_tail
        out.append(decompressor.flush())
        return [piece for piece in out if piece]


class Body:
    """A body: an optional kept part (``Deflated``), then a plain tail rendered for each scrape.

    ``plain`` and ``gzipped`` give the same bytes, one as they are, the other as one gzip
    member; ``gzipped`` is built at most once per body (scrapes that share a render share it).
    """

    def __init__(self, kept: Deflated | None, tail: Iterable[bytes]) -> None:
        self.kept = kept
        self.tail = tuple(tail)
        self._gzipped: bytes | None = None
        self._lock = threading.Lock()

    def size(self) -> int:
        """Length of the plain body."""
        return (self.kept.size if self.kept is not None else 0) + sum(map(len, self.tail))

    def plain(self) -> tuple[bytes, ...]:
        """The body in pieces, served as they are: joined, it would be one more copy."""
        if self.kept is None:
            return self.tail
        return (*self.kept.inflated(), *self.tail)

    def gzipped(self) -> bytes:
        """The body as one gzip member, from the kept stream and the tail compressed alone."""
        with self._lock:
            if self._gzipped is None:
                self._gzipped = b"".join(self._gzip_pieces())
            return self._gzipped

    def _gzip_pieces(self) -> list[bytes]:
        crc, size = 0, 0
        out = [GZIP_HEADER]
        if self.kept is not None:
            out += self.kept.pieces
            crc, size = self.kept.crc, self.kept.size
        tail, crc, size = _deflate(self.tail, crc, size, zlib.Z_FINISH)  # with the final block
        return [*out, *tail, struct.pack("<II", crc, size & 0xFFFFFFFF)]


def _deflate(
    pieces: Iterable[bytes], crc: int, size: int, flush: int
) -> tuple[list[bytes], int, int]:
    """``pieces`` as raw deflate blocks that refer to no earlier data, ended by ``flush``, and
    the CRC-32 and length carried on over them (each piece is let go once compressed)."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    out: list[bytes] = []
    for piece in pieces:
        crc = zlib.crc32(piece, crc)
        size += len(piece)
        block = compressor.compress(piece)
        if block:
            out.append(block)
    out.append(compressor.flush(flush))
    return out, crc, size
