"""Request limits, on a server started with small ones: the body size limit holds for every body
(single, in a batch, admin), slow bodies time out, and settings out of range stop `ledger serve`
with one line."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="module")
def limited(backend_db: tuple[str, Path]) -> Iterator[tuple[Server, dict[str, str]]]:
    db, workdir = backend_db
    key = init_ledger(db, workdir)
    toks = {s: token(db, workdir, s, s) for s in ("append", "admin")}
    with serve(db, workdir, key, LEDGER_MAX_BODY_BYTES=str(BODY_LIMIT)) as srv:
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
