"""Who may do what, and that every refusal changes nothing (real server, both backends)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from ledger.api.problems import PROBLEM_TYPE
from tests.ledger.api.server import Server, signed, token

SAMPLES = signed(4)

PROBLEM = "application/problem+json"


def tree_size(server: Server) -> int:
    return int(server.get("/api/v1/checkpoint").text.split("\n")[1])


def assert_problem(r: httpx.Response, status: int, slug: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["type"] == PROBLEM_TYPE + slug and body["status"] == status and body["detail"]
    return body


def test_no_token_is_401_and_stores_nothing(server: Server) -> None:
    before = tree_size(server)
    r = server.post("/api/v1/entries", content=SAMPLES[0])
    assert_problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = server.post("/api/v1/entries", "lgr_not-a-real-token", content=SAMPLES[0])
    assert_problem(r, 401, "unauthenticated")
    assert tree_size(server) == before


def test_wrong_scope_is_403(server: Server, tokens: dict[str, str]) -> None:
    before = tree_size(server)
    r = server.post("/api/v1/entries", tokens["read"], content=SAMPLES[1])
    body = assert_problem(r, 403, "forbidden")
    assert "append" in str(body["detail"])
    r = httpx.get(
        server.url + "/api/v1/admin/tokens",
        headers={"Authorization": f"Bearer {tokens['append']}"},
    )
    assert_problem(r, 403, "forbidden")
    assert tree_size(server) == before


def test_replay_returns_the_first_record(server: Server, tokens: dict[str, str]) -> None:
    first = server.post("/api/v1/entries", tokens["append"], content=SAMPLES[2])
    assert first.status_code == 201, first.text
    again = server.post("/api/v1/entries", tokens["append"], content=SAMPLES[2])
    assert again.status_code == 200
    a, b = first.json(), again.json()
    assert b["duplicate"] is True and a["duplicate"] is False
    assert b["index"] == a["index"] and b["leafHash"] == a["leafHash"]
    assert tree_size(server) == a["treeSize"]


def test_oversized_body_is_413_before_it_is_read(server: Server, tokens: dict[str, str]) -> None:
    before = tree_size(server)
    big = b'{"payloadType":"x","payload":"' + b"A" * (2 << 20) + b'","signatures":[]}'
    r = server.post("/api/v1/entries", tokens["append"], content=big)
    assert_problem(r, 413, "too-large")

    def chunks():  # no Content-Length: the limit must hold while streaming
        for _ in range(64):
            yield b"A" * 65536

    r = server.post("/api/v1/entries", tokens["append"], content=chunks())
    assert_problem(r, 413, "too-large")
    assert tree_size(server) == before


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"payloadType": "x"}',
        b'{"payloadType": "x", "payload": "%%%", "signatures": [{"sig": "AA=="}]}',
        b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}',
    ],
)
def test_malformed_body_is_422(server: Server, tokens: dict[str, str], body: bytes) -> None:
    before = tree_size(server)
    assert_problem(
        server.post("/api/v1/entries", tokens["append"], content=body), 422, "invalid-input"
    )
    assert tree_size(server) == before


def test_tokens_are_stored_as_hashes_never_as_text(
    server: Server, backend_db: tuple[str, Path]
) -> None:
    db, workdir = backend_db
    secret = token(db, workdir, "hash-check", "read")
    engine = create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM api_tokens")).mappings().all()
    engine.dispose()
    mine = next(r for r in rows if r["name"] == "hash-check")
    assert bytes(mine["token_hash"]) == hashlib.sha256(secret.encode()).digest()
    assert not any(secret in str(v) for r in rows for v in r.values())
    if db.startswith("sqlite"):
        path = Path(db.removeprefix("sqlite:///"))
        for f in (path, path.with_name(path.name + "-wal")):
            if f.exists():
                assert secret.encode() not in f.read_bytes()


def test_expired_and_revoked_tokens_are_401(server: Server, tokens: dict[str, str]) -> None:
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    r = httpx.post(
        server.url + "/api/v1/admin/tokens",
        headers=admin,
        json={"name": "short", "scopes": ["append"]},
    )
    assert r.status_code == 201, r.text
    short = r.json()["token"]
    listed = httpx.get(server.url + "/api/v1/admin/tokens", headers=admin).json()
    assert all(set(t) == {"name", "scopes", "created", "expires"} for t in listed)
    assert short not in json.dumps(listed)
    assert httpx.delete(server.url + "/api/v1/admin/tokens/short", headers=admin).status_code == 204
    assert_problem(
        server.post("/api/v1/entries", short, content=SAMPLES[3]), 401, "unauthenticated"
    )
    assert_problem(
        httpx.delete(server.url + "/api/v1/admin/tokens/short", headers=admin), 404, "not-found"
    )
    r = httpx.post(
        server.url + "/api/v1/admin/tokens",
        headers=admin,
        json={"name": "past", "scopes": ["append"], "expires": "2001-01-01T00:00:00Z"},
    )
    assert_problem(r, 422, "invalid-input")
