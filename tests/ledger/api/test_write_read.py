"""Appends, batches and the /api/v1 reads against a real server; proofs checked by the client."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from ledger import merkle
from ledger.api.problems import PROBLEM_TYPE, problem_of
from ledger.checkpoint import open_checkpoint
from ledger.errors import Overloaded
from ledger.note import parse_verifier
from tests.ledger.api.server import ORIGIN, Server, init_ledger, serve, signed, token

d = base64.b64decode


@pytest.fixture(scope="module")
def verifier(server: Server) -> object:
    from ledger.storage import LedgerStore

    store = LedgerStore.open(server.db)
    try:
        return parse_verifier(store.meta()["vkey"])
    finally:
        store.close()


def check_receipt(r: dict[str, object], verifier: object) -> int:
    cp = open_checkpoint(str(r["checkpoint"]), [verifier], ORIGIN).checkpoint  # type: ignore[list-item]
    assert cp.size == r["treeSize"]
    proof = [d(p) for p in r["inclusionProof"]]  # type: ignore[attr-defined]
    merkle.verify_inclusion(d(str(r["leafHash"])), int(r["index"]), cp.size, proof, cp.root_hash)  # type: ignore[call-overload]
    return cp.size


def test_append_answers_with_a_proof_under_a_signed_checkpoint(
    server: Server, tokens: dict[str, str], verifier: object
) -> None:
    body = signed(1)[0]
    r = server.post("/api/v1/entries", tokens["append"], content=body)
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert set(receipt) == {
        "index",
        "leafHash",
        "inclusionProof",
        "treeSize",
        "checkpoint",
        "duplicate",
    }
    check_receipt(receipt, verifier)
    entry = server.get(f"/api/v1/entries/{receipt['index']}").json()
    assert d(entry["body"]) == body  # the exact bytes
    assert entry["record"]["body"] == "sha256:" + __import__("hashlib").sha256(body).hexdigest()
    check_receipt(entry, verifier)


def test_batch_gives_each_entry_its_own_result(
    server: Server, tokens: dict[str, str], verifier: object
) -> None:
    good = signed(3)
    entries = [good[0], b"not json", good[1], good[0], good[2]]
    r = server.post(
        "/api/v1/entries:batch",
        tokens["append"],
        json={"entries": [base64.b64encode(e).decode() for e in entries]},
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 5
    assert results[1]["type"] == PROBLEM_TYPE + "invalid-input" and results[1]["status"] == 422
    for i in (0, 2, 3, 4):
        check_receipt(results[i], verifier)
    assert results[3]["index"] == results[0]["index"] and results[3]["duplicate"]
    assert len({results[i]["index"] for i in (0, 2, 4)}) == 3


@pytest.mark.parametrize(
    "payload",
    [{"entries": []}, {"entries": ["%%%"]}, {"nope": 1}, {"entries": "x"}],
)
def test_malformed_batch_is_422(server: Server, tokens: dict[str, str], payload: object) -> None:
    r = server.post("/api/v1/entries:batch", tokens["append"], json=payload)
    assert r.status_code == 422 and r.json()["type"] == PROBLEM_TYPE + "invalid-input"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"entries": ["%s"], "entries": ["%s"]}', "duplicate key"),
        (b'{"entries": ["%s"], "n": NaN}', "NaN"),
        (b'{"entries": [1]}', "entries[0] must be a string"),
        (b'{"entries": ["%s"], "extra": 1}', "unknown member 'extra'"),
        (b'{"entries": {}}', '"entries" must be a non-empty array'),
        (b"\xff", "UTF-8"),
    ],
)
def test_the_batch_wrapper_is_parsed_strictly_and_refused_in_our_words(
    server: Server, tokens: dict[str, str], raw: bytes, reason: str
) -> None:
    entry = base64.b64encode(signed(1)[0])
    before = server.get("/api/v1/checkpoint").text
    r = server.post("/api/v1/entries:batch", tokens["append"], content=raw.replace(b"%s", entry))
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"] == PROBLEM_TYPE + "invalid-input"
    assert reason in problem["detail"], problem["detail"]
    assert "pydantic" not in problem["detail"] and "http" not in problem["detail"]
    assert server.get("/api/v1/checkpoint").text == before


def test_inclusion_and_consistency_proofs_verify(
    server: Server, tokens: dict[str, str], verifier: object
) -> None:
    first = server.post("/api/v1/entries", tokens["append"], content=signed(1)[0])
    old = check_receipt(first.json(), verifier)
    server.post("/api/v1/entries", tokens["append"], content=signed(1)[0])
    note = server.get("/api/v1/checkpoint")
    assert note.headers["content-type"].startswith("text/plain")
    cp = open_checkpoint(note.text, [verifier], ORIGIN).checkpoint  # type: ignore[list-item]
    old_root = open_checkpoint(first.json()["checkpoint"], [verifier], ORIGIN).checkpoint.root_hash  # type: ignore[list-item]
    c = server.get(f"/api/v1/proof/consistency?from={old}&to={cp.size}").json()
    merkle.verify_consistency(old, cp.size, [d(p) for p in c["proof"]], old_root, cp.root_hash)
    p = server.get(f"/api/v1/proof/inclusion?index=0&size={old}").json()
    assert p["treeSize"] == old
    check_receipt(p, verifier)
    assert server.get(f"/api/v1/proof/inclusion?index={cp.size}").status_code == 404
    assert server.get(f"/api/v1/entries/{cp.size + 5}").status_code == 404
    assert server.get(f"/api/v1/proof/consistency?from=1&to={cp.size + 1}").status_code == 404


def test_health_and_metrics(server: Server) -> None:
    h = server.get("/healthz").json()
    assert h["status"] == "ok" and h["treeSize"] >= 0
    text = server.get("/metrics").text
    for name in (
        "ledger_appends_total",
        "ledger_refusals_total",
        "ledger_queue_depth",
        "ledger_append_seconds_bucket",
        "ledger_batch_request_entries_bucket",
        "ledger_tree_size",
    ):
        assert name in text


def test_overloaded_maps_to_503_with_retry_after() -> None:
    problem, body, headers = problem_of(Overloaded("queue full", retry_after=2.4))
    assert problem.status == 503 and headers["Retry-After"] == "2"
    assert body["type"] == PROBLEM_TYPE + "overloaded"


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """SQLite, reads need a token, and one pending append per process."""
    workdir = tmp_path_factory.mktemp("strict")
    db = f"sqlite:///{workdir / 'ledger.db'}"
    key = init_ledger(db, workdir)
    tok = token(db, workdir, "rw", "append", "read")
    with serve(db, workdir, key, LEDGER_PUBLIC_READS="false", LEDGER_MAX_PENDING="1") as srv:
        yield srv, tok


def test_past_the_queue_bound_entries_are_refused_with_503(
    strict_server: tuple[Server, str],
) -> None:
    srv, tok = strict_server

    def size() -> int:
        note = srv.get("/api/v1/checkpoint", headers={"Authorization": f"Bearer {tok}"}).text
        return int(note.split("\n")[1])

    before = size()
    bodies = signed(20)
    r = srv.post(
        "/api/v1/entries:batch",
        tok,
        json={"entries": [base64.b64encode(b).decode() for b in bodies]},
    )
    results = r.json()["results"]
    refused = [x for x in results if x.get("type") == PROBLEM_TYPE + "overloaded"]
    accepted = [x for x in results if "index" in x]
    assert refused and accepted and len(refused) + len(accepted) == 20
    assert all(x["status"] == 503 for x in refused)
    assert size() == before + len(accepted)  # refused entries never reached the log


def test_reads_can_require_the_read_scope(strict_server: tuple[Server, str]) -> None:
    srv, tok = strict_server
    for path in ("/api/v1/checkpoint", "/log/checkpoint", "/log/tile/0/000.p/1"):
        assert srv.get(path).status_code == 401
    r = srv.get("/api/v1/checkpoint", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200 and r.headers["cache-control"].startswith("private")
    assert srv.get("/healthz").status_code == 200
    assert json.loads(srv.get("/openapi.json").text)["openapi"].startswith("3.")
