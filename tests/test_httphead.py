"""``HeadScan`` against the real parse: when it says a head is ready, the answer no longer depends
on bytes still to come; when a valid head is complete it says so at once; and the limits (414,
431) are decided as soon as they are crossed, not at the head deadline."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.httphead import HEAD_BUFFER, MAX_HEAD_BYTES, MAX_HEADERS, MAX_REQUEST_LINE, HeadScan
from exporter.request import Handler
from exporter.wire import Connection


class _App:
    def route(self, handler: Handler, head: bool) -> None:
        handler.reply(200, b"ok\n", head=head)


@pytest.fixture(scope="module")
def unused_socket() -> Iterator[socket.socket]:
    sock = socket.socket()
    yield sock
    sock.close()


def parse(data: bytes, sock: socket.socket) -> tuple[int, int, str, list[tuple[str, str]]]:
    """What a worker makes of ``data``: (status, bytes consumed, path, headers)."""
    conn = Connection(sock, ("127.0.0.1", 0), pending=bytearray(data))
    handler = Handler(conn, _App())
    handler.handle_one_request()
    headers = list(handler.headers.items()) if hasattr(handler, "headers") else []
    return handler.code, len(data) - len(conn.pending), handler.route_path, headers


def first_ready(data: bytes, pieces: list[int]) -> int | None:
    """Feed ``data`` cut at ``pieces``; the length at which the scan first says ready."""
    scan = HeadScan()
    cuts = sorted({min(p, len(data)) for p in pieces} | {len(data)})
    for cut in cuts:
        if scan.ready(data[: min(cut, HEAD_BUFFER)]):
            return min(cut, HEAD_BUFFER)
    return None


header_line = st.one_of(
    st.tuples(
        st.text("abcXYZ-", min_size=1, max_size=12),
        st.text("abc 123;=,/", max_size=40),
    ).map(lambda kv: f"{kv[0]}: {kv[1]}".encode()),
    st.sampled_from([b"X-Big: " + b"a" * 3000, b"", b"\r", b"no colon", b"X: \xff\xfe"]),
)
request_line = st.one_of(
    st.just(b"GET /metrics HTTP/1.1"),
    st.just(b"HEAD /healthz HTTP/1.0"),
    st.just(b"GET /" + b"a" * (MAX_REQUEST_LINE - 14) + b" HTTP/1.1"),  # near the limit
    st.just(b"GET /" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1"),  # over it
    st.just(b"NOT HTTP AT ALL"),
    st.just(b"GET /"),
    st.just(b""),
)
heads = st.tuples(
    request_line,
    st.lists(header_line, max_size=MAX_HEADERS + 4),
    st.sampled_from([b"\r\n", b"\n"]),
    st.booleans(),
).map(lambda h: h[2].join([h[0], *h[1]]) + (h[2] * 2 if h[3] else h[2]))


@settings(max_examples=300)
@given(
    head=heads,
    after=st.binary(max_size=64),
    more=st.sampled_from([b"X-More: 1\r\n\r\n", b"\r\n", b"x" * 20000 + b"\r\n\r\n"]),
    pieces=st.lists(st.integers(0, 20000), max_size=8),
)
def test_a_ready_head_parses_the_same_whatever_comes_next(
    unused_socket: socket.socket, head: bytes, after: bytes, more: bytes, pieces: list[int]
) -> None:
    data = head + after
    ready_at = first_ready(data, pieces)
    if ready_at is None:
        return
    prefix = data[:ready_at]
    assert parse(prefix, unused_socket) == parse(prefix + more, unused_socket)


@settings(max_examples=200)
@given(
    names=st.lists(st.text("abcdefXYZ-", min_size=1, max_size=20), max_size=MAX_HEADERS - 1),
    newline=st.sampled_from([b"\r\n", b"\n"]),
    pipelined=st.binary(max_size=100),
)
def test_a_valid_head_is_ready_exactly_when_its_blank_line_arrives(
    unused_socket: socket.socket, names: list[str], newline: bytes, pipelined: bytes
) -> None:
    lines = [b"GET /healthz?x=1 HTTP/1.1", *(f"{n}: v".encode() for n in names)]
    head = newline.join(lines) + newline * 2
    data = head + pipelined
    scan = HeadScan()
    readies = [scan.ready(data[:n]) for n in range(1, len(head) + 1)]
    assert readies == [False] * (len(head) - 1) + [True]
    code, consumed, path, headers = parse(data, unused_socket)
    assert (code, consumed, path) == (200, len(head), "/healthz")
    assert [name for name, _ in headers] == names


def _decided_at(data: bytes) -> int | None:
    scan = HeadScan()
    return next((n for n in range(1, len(data) + 1) if scan.ready(data[:n])), None)


def test_limits_are_decided_when_crossed(unused_socket: socket.socket) -> None:
    # A request line with no end: 414 once it is one byte over.
    long_line = b"GET /" + b"a" * (2 * MAX_REQUEST_LINE)
    assert _decided_at(long_line) == MAX_REQUEST_LINE + 1
    assert parse(long_line[: MAX_REQUEST_LINE + 1], unused_socket)[0] == 414
    # Header lines without a blank one: 431 once the line after the 64 headers would be read.
    many = b"GET / HTTP/1.1\r\n" + b"X: v\r\n" * (MAX_HEADERS + 10)
    at = _decided_at(many)
    assert at == len(b"GET / HTTP/1.1\r\n") + len(b"X: v\r\n") * (MAX_HEADERS + 1)
    assert parse(many[:at], unused_socket)[0] == 431
    # One endless header: 431 once the head is one byte over its budget.
    endless = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (2 * MAX_HEAD_BYTES)
    assert _decided_at(endless) == MAX_HEAD_BYTES + 1
    assert parse(endless[: MAX_HEAD_BYTES + 1], unused_socket)[0] == 431
    # Exactly at the limits is a request.
    at_limit = b"GET / HTTP/1.1\r\n" + b"X: v\r\n" * MAX_HEADERS + b"\r\n"
    assert _decided_at(at_limit) == len(at_limit)
    assert parse(at_limit, unused_socket)[:2] == (200, len(at_limit))
