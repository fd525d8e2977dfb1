"""``ledger serve``'s HTTP protocol sends a response's head and body in one write
(``ledger/api/http_protocol.py``). On a real socket transport: what is written is what arrives,
byte for byte and in order; two writes in one loop step reach the socket as one; a lone write
leaves on the loop's next turn; close flushes, abort drops. Against a real server: pipelined
requests are answered in order, and a large answer arrives whole."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from ledger.api.http_protocol import CoalescingTransport
from tests.ledger.api.server import Server, init_ledger, serve, signed, token


class _Sink(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport


def _read_all(sock: socket.socket, size: int) -> bytes:
    got = b""
    sock.settimeout(5)
    while len(got) < size:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


async def _pair() -> tuple[CoalescingTransport, list[bytes], socket.socket]:
    """A coalescing transport over a real socket transport whose writes are recorded."""
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(_Sink, ours)
    writes: list[bytes] = []
    real_write = transport.write

    def recording(data: bytes) -> None:
        writes.append(bytes(data))
        real_write(data)

    transport.write = recording  # type: ignore[method-assign]
    return CoalescingTransport(transport, loop), writes, theirs  # type: ignore[arg-type]


def test_two_writes_in_one_step_leave_as_one_and_arrive_unchanged() -> None:
    async def go() -> tuple[list[bytes], bytes]:
        t, writes, peer = await _pair()
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
        t.write(b"hello")
        assert len(writes) == 1  # at once, not on a later turn
        t.write(b"tail")  # a lone write
        assert len(writes) == 1
        await asyncio.sleep(0)  # the loop's next turn
        await asyncio.sleep(0)
        got = await asyncio.to_thread(_read_all, peer, 43)
        t.close()
        peer.close()
        return writes, got

    writes, got = asyncio.run(go())
    assert writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", b"tail"]
    assert got == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhellotail"


def test_close_flushes_what_is_held_and_abort_drops_it() -> None:
    async def go() -> tuple[bytes, bytes]:
        t, _, peer = await _pair()
        t.write(b"last words")
        t.close()
        closed = await asyncio.to_thread(_read_all, peer, 64)  # until EOF
        peer.close()
        t2, writes2, peer2 = await _pair()
        t2.write(b"never sent")
        t2.abort()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        aborted = await asyncio.to_thread(_read_all, peer2, 64)
        peer2.close()
        assert writes2 == []
        return closed, aborted

    closed, aborted = asyncio.run(go())
    assert closed == b"last words"
    assert aborted == b""


def test_the_buffer_size_counts_what_is_held() -> None:
    async def go() -> tuple[int, int]:
        t, _, peer = await _pair()
        t.write(b"12345")
        held = t.get_write_buffer_size()
        t.close()
        peer.close()
        return held, len(b"12345")

    held, size = asyncio.run(go())
    assert held >= size


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    work = tmp_path_factory.mktemp("http-protocol")
    db = f"sqlite:///{work / 'ledger.db'}"
    key = init_ledger(db, work)
    append = token(db, work, "appender", "append")
    with serve(db, work, key) as server:
        yield server, append


def _response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One HTTP/1.1 response (content-length framed) from ``sock``: (head, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "the server closed before a whole head"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed mid-body"
        rest += chunk
    assert len(rest) == length, "bytes past the body before anything else was asked"
    return head, rest


def test_pipelined_requests_are_answered_in_order(sqlite_server: tuple[Server, str]) -> None:
    server, append = sqlite_server
    host, port = server.url.removeprefix("http://").split(":")
    bodies = signed(3)
    requests = b"".join(
        b"POST /api/v1/entries HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"authorization: Bearer {append}\r\ncontent-length: {len(b)}\r\n\r\n".encode()
        + b
        for b in bodies
    )
    requests += b"GET /api/v1/entries/1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(requests)  # every request before any answer
        answers = [_response(sock) for _ in range(4)]
        assert sock.recv(1) == b""  # closed after the last, as asked
    indices = []
    for head, body in answers[:3]:
        assert head.startswith(b"HTTP/1.1 201 "), head
        indices.append(server_json(body)["index"])
    assert indices == sorted(indices) and len(set(indices)) == 3
    head, body = answers[3]
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in head.lower()
    assert server_json(body)["index"] == 1


def server_json(body: bytes) -> Any:
    return json.loads(body)


def test_a_large_answer_arrives_whole_before_the_next(sqlite_server: tuple[Server, str]) -> None:
    server, append = sqlite_server
    batch = json.dumps({"entries": [base64.b64encode(b).decode() for b in signed(300)]})
    host, port = server.url.removeprefix("http://").split(":")
    request = (
        b"POST /api/v1/entries:batch HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"authorization: Bearer {append}\r\ncontent-length: {len(batch)}\r\n\r\n".encode()
        + batch.encode()
        + b"GET /api/v1/checkpoint HTTP/1.1\r\nhost: x\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(request)
        (head, body), (head2, note) = _response(sock), _response(sock)
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert len(body) > 100_000  # past the transport's 64 KiB high-water mark
    results = json.loads(body)["results"]
    assert len(results) == 300 and all("index" in r for r in results)
    assert head2.startswith(b"HTTP/1.1 200 ")
    assert int(note.split(b"\n")[1]) > max(r["index"] for r in results)
