"""Request limits, on a server started with small ones: the body size limit holds for every body
(single, in a batch, admin), slow bodies time out, and settings out of range stop `ledger serve`
with one line."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from attest.dsse import sign_envelope
from attest.signers import KeySigner
from ledger.api.problems import PROBLEM_TYPE
from tests.ledger.api.server import (
    SAMPLE_KEY,
    TEST_PREDICATE,
    Server,
    init_ledger,
    run_ledger,
    serve,
    signed,
    token,
)

BODY_LIMIT = 2048
JSON = "application/json"


@pytest.fixture(scope="module")
def limited(backend_db: tuple[str, Path]) -> Iterator[tuple[Server, dict[str, str]]]:
    db, workdir = backend_db
    key = init_ledger(db, workdir)
    toks = {s: token(db, workdir, s, s) for s in ("append", "admin")}
    env = {"LEDGER_MAX_BODY_BYTES": str(BODY_LIMIT), "LEDGER_BODY_TIMEOUT_SECONDS": "1"}
    with serve(db, workdir, key, **env) as srv:
        yield srv, toks


def size(server: Server) -> int:
    return int(server.get("/api/v1/checkpoint").text.split("\n")[1])


def padded(length: int) -> bytes:
    """A validly signed envelope of at least ``length`` bytes (a padded predicate)."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "big", "digest": {"sha256": hashlib.sha256(b"big").hexdigest()}}],
        "predicateType": TEST_PREDICATE,
        "predicate": {"pad": "a" * length},
    }
    return sign_envelope(json.dumps(statement).encode(), [KeySigner(SAMPLE_KEY)]).to_json()


def test_the_configured_body_limit_holds_inside_a_batch(
    limited: tuple[Server, dict[str, str]],
) -> None:
    server, toks = limited
    big, small = padded(BODY_LIMIT), signed(1)[0]
    before = size(server)
    r = server.post("/api/v1/entries", toks["append"], content=big)
    assert r.status_code == 413, r.text
    r = server.post(
        "/api/v1/entries:batch",
        toks["append"],
        json={"entries": [base64.b64encode(b).decode() for b in (big, small)]},
    )
    assert r.status_code == 200, r.text
    first, second = r.json()["results"]
    assert first["type"] == PROBLEM_TYPE + "too-large" and first["status"] == 413
    assert f"the limit is {BODY_LIMIT}" in first["detail"]
    assert "index" in second
    assert size(server) == before + 1


def test_a_body_limit_above_what_a_ledger_holds_stops_serve_with_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'l.db'}"
    key = init_ledger(db, tmp_path, register_samples=False)
    args = ("serve", "--db", db, "--key-file", str(key), "--port", "0")
    p = run_ledger(tmp_path, *args, LEDGER_MAX_BODY_BYTES=str(4 << 20))
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == [
        "ledger: error: LEDGER_MAX_BODY_BYTES: Input should be less than or equal to 1048576"
    ]


def _raw(server: Server, request: bytes) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(request)
    return sock


def _partial_post(path: str, tok: str, declared: int, sent: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    )
    return head.encode() + sent


def _log(server: Server, workdir: Path) -> str:
    return (workdir / f"serve-{server.url.rsplit(':', 1)[1]}.log").read_text()


@pytest.mark.parametrize("path", ["/api/v1/entries", "/api/v1/entries:batch"])
def test_a_body_that_does_not_arrive_in_time_is_408(
    limited: tuple[Server, dict[str, str]], path: str
) -> None:
    server, toks = limited
    before = size(server)
    started = time.monotonic()
    with _raw(server, _partial_post(path, toks["append"], 1000, b'{"payloadType"')) as sock:
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert time.monotonic() - started < 8
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), reply
    problem = json.loads(body)
    assert problem["type"] == PROBLEM_TYPE + "body-timeout"
    assert "did not arrive within 1 s" in problem["detail"]
    assert size(server) == before


def test_a_client_that_disconnects_mid_body_is_logged_in_one_line(
    limited: tuple[Server, dict[str, str]], backend_db: tuple[str, Path]
) -> None:
    server, toks = limited
    before = size(server)
    for _ in range(3):
        _raw(server, _partial_post("/api/v1/entries", toks["append"], 1000, b"{")).close()
    deadline = time.monotonic() + 10
    while _log(server, backend_db[1]).count("disconnected after") < 3:
        assert time.monotonic() < deadline, _log(server, backend_db[1])
        time.sleep(0.1)
    log = _log(server, backend_db[1])
    assert "Traceback" not in log and "ClientDisconnect" not in log, log
    assert "POST /api/v1/entries: client 127.0.0.1 disconnected after 1 body bytes" in log
    assert size(server) == before


ADMIN_POSTS = ["/api/v1/admin/signers", "/api/v1/admin/signers/ci:revoke", "/api/v1/admin/tokens"]


@pytest.mark.parametrize("path", ADMIN_POSTS)
def test_admin_routes_check_the_token_before_reading_the_body(
    limited: tuple[Server, dict[str, str]], path: str
) -> None:
    server, toks = limited
    r = server.post(path, content=b"{not json")
    assert r.status_code == 401 and r.json()["type"] == PROBLEM_TYPE + "unauthenticated"
    r = server.post(path, toks["append"], content=b"{not json")
    assert r.status_code == 403 and r.json()["type"] == PROBLEM_TYPE + "forbidden"
    # a chunked body that never ends: the answer comes before the server reads any of it
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    with _raw(server, head.encode() + b"10000\r\n" + b"A" * 0x10000) as sock:
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 401"), reply


@pytest.mark.parametrize("path", ADMIN_POSTS)
def test_admin_bodies_are_bounded_by_the_body_limit(
    limited: tuple[Server, dict[str, str]], path: str
) -> None:
    server, toks = limited
    before = size(server)
    body = json.dumps({"name": "big", "key": "A" * BODY_LIMIT, "at": "2030-01-01T00:00:00Z"})
    r = server.post(path, toks["admin"], content=body.encode())
    assert r.status_code == 413 and r.json()["type"] == PROBLEM_TYPE + "too-large", r.text
    r = server.post(path, toks["admin"], content=b'{"name": "a", "name": "b", "scopes": []}')
    assert r.status_code == 422 and "duplicate key" in r.json()["detail"], r.text
    assert size(server) == before


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    """A server whose reads need a token (the body-before-auth question is the backend's not)."""
    workdir = tmp_path_factory.mktemp("private")
    db = f"sqlite:///{workdir / 'ledger.db'}"
    key = init_ledger(db, workdir, register_samples=False)
    toks = {s: token(db, workdir, s, s) for s in ("read", "append")}
    env = {
        "LEDGER_PUBLIC_READS": "false",
        "LEDGER_MAX_BODY_BYTES": str(BODY_LIMIT),
        "LEDGER_BODY_TIMEOUT_SECONDS": "1",
    }
    with serve(db, workdir, key, **env) as srv:
        yield srv, toks


def test_post_evidence_checks_the_read_token_before_reading_the_body(
    private: tuple[Server, dict[str, str]],
) -> None:
    """h34 #5: the body of POST /api/v1/evidence was read whole and parsed before the token."""
    server, toks = private
    path = "/api/v1/evidence"
    r = httpx.post(server.url + path, content=b"{bad", headers={"Content-Type": JSON})
    assert r.status_code == 401 and r.json()["type"] == PROBLEM_TYPE + "unauthenticated", r.text
    big = json.dumps({"subjects": ["sha256:" + "a" * 64], "pad": "a" * BODY_LIMIT}).encode()
    r = server.post(path, content=big)
    assert r.status_code == 401 and r.json()["type"] == PROBLEM_TYPE + "unauthenticated", r.text
    r = server.post(path, toks["append"], content=b"{bad")
    assert r.status_code == 403 and r.json()["type"] == PROBLEM_TYPE + "forbidden", r.text
    # a body far past the limit, declared and never sent: the 401 comes before any of it is read
    with _raw(server, _partial_post(path, "nope", 200 << 20, b'{"subjects": [')) as sock:
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 401"), reply
    # chunked, no length: the same
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    with _raw(server, head.encode() + b"10000\r\n" + b"A" * 0x10000) as sock:
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 401"), reply


def test_post_evidence_bodies_are_bounded_and_parsed_strictly(
    private: tuple[Server, dict[str, str]],
) -> None:
    server, toks = private
    path = "/api/v1/evidence"
    big = json.dumps({"subjects": ["sha256:" + "a" * 64], "pad": "a" * BODY_LIMIT}).encode()
    r = server.post(path, toks["read"], content=big)
    assert r.status_code == 413 and r.json()["type"] == PROBLEM_TYPE + "too-large", r.text
    r = server.post(path, toks["read"], content=b"{bad")
    assert r.status_code == 422 and r.json()["type"] == PROBLEM_TYPE + "invalid-input", r.text
    dup = b'{"subjects": ["sha256:' + b"a" * 64 + b'"], "subjects": []}'
    r = server.post(path, toks["read"], content=dup)
    assert r.status_code == 422 and "duplicate key" in r.json()["detail"], r.text
    r = server.post(path, toks["read"], json={"subjects": []})
    assert r.status_code == 422 and r.json()["type"] == PROBLEM_TYPE + "invalid-input", r.text
    r = server.post(path, toks["read"], json={"subjects": ["sha256:" + "a" * 64]})
    assert r.status_code == 200 and r.json()["entries"] == [], r.text
    spec = server.get("/openapi.json").json()["paths"][path]["post"]
    schema = spec["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["subjects"]["maxItems"] == 1000
