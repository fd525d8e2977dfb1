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


def _admin_post(server: Server, tokens: dict[str, str], path: str, body: object) -> httpx.Response:
    return server.post("/api/v1/admin" + path, tokens["admin"], json=body)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/tokens", {"name": "t1", "scopes": ["read"], "expires": "3000000d"}),
        ("/tokens", {"name": "t2", "scopes": ["read"], "expires": "99999999999d"}),
        ("/tokens", {"name": "t3", "scopes": ["read"], "expires": "999999999999999999999m"}),
        ("/tokens", {"name": "t4", "scopes": ["read"], "expires": "9999-12-31T23:59:59-23:00"}),
        ("/signers", {"name": "s1", "key": "x", "validUntil": "9999-12-31T23:59:59-23:00"}),
        ("/signers", {"name": "s2", "key": "x", "validFrom": "0001-01-01T00:00:00+23:00"}),
        ("/signers/samples:revoke", {"at": "0001-01-01T00:00:00+23:00"}),
        ("/signers/samples:revoke", {"at": "9999-12-31T23:59:59-23:00"}),
    ],
)
def test_times_past_the_calendar_are_422_not_500(
    server: Server, tokens: dict[str, str], path: str, body: object
) -> None:
    before = tree_size(server)
    problem = assert_problem(_admin_post(server, tokens, path, body), 422, "invalid-input")
    assert "9999" in str(problem["detail"]) or "year" in str(problem["detail"])
    assert tree_size(server) == before


@pytest.mark.parametrize(
    "path",
    [
        "/log/tile/0/" + "x999/" * 1500 + "999",  # > 4300 digits: past Python's int() limit
        "/log/tile/entries/" + "x999/" * 1500 + "999",
        "/log/tile/0/x009/x223/x372/x036/x854/x775/808",  # 2**63
        "/log/tile/entries/x018/x446/x744/x073/x709/x551/616",  # 2**64
        "/log/tile/0/x035/x184/x372/x088/832",  # 2**45: past the last tile a ledger can have
    ],
)
def test_tile_indices_past_any_ledger_are_404(server: Server, path: str) -> None:
    r = server.get(path)
    assert_problem(r, 404, "not-found")


@pytest.mark.parametrize("spelling", ["1.0", "+1", "01", "1e0", "%201"])
def test_record_numbers_have_one_spelling(
    server: Server, tokens: dict[str, str], spelling: str
) -> None:
    server.post("/api/v1/entries", tokens["append"], content=SAMPLES[0])
    assert server.get("/api/v1/entries/1").status_code == 200
    assert_problem(server.get(f"/api/v1/entries/{spelling}"), 422, "invalid-request")
    r = server.get(f"/api/v1/proof/inclusion?index={spelling}")
    assert_problem(r, 422, "invalid-request")
