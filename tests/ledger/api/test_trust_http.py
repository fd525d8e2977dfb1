"""Writes are verified against the trust registry *at that time*, over HTTP; the registry itself is
changed through the admin routes (logged entries). Every refusal is 403 with the reason, and
changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from ledger.api.problems import PROBLEM_TYPE
from tests.conftest import FIXTURES, needs_fixtures
from tests.ledger.api.server import Server, sample_pub_pem, serve, signed

# read through module-level paths: without ../shared/fixtures every test here skips at setup
pytestmark = [
    needs_fixtures("conformance", "assets", "bundle-verify"),
    needs_fixtures("sigstore-bundles", "trust-roots"),
]
CASES = FIXTURES.joinpath("conformance", "assets", "bundle-verify")
PRODUCTION_ROOT = FIXTURES.joinpath(
    "sigstore-bundles", "trust-roots", "production", "trusted_root.json"
)
STAGING_ROOT = FIXTURES.joinpath("sigstore-bundles", "trust-roots", "staging", "trusted_root.json")
ISSUER = "https://token.actions.githubusercontent.com"
BEACON = r"https://github\.com/sigstore-conformance/.*"
SLSA = "https://slsa.dev/provenance/v1"


def size(server: Server) -> int:
    return int(server.get("/api/v1/checkpoint").text.split("\n")[1])


def admin(server: Server, tokens: dict[str, str], path: str, body: object) -> httpx.Response:
    return httpx.post(
        server.url + "/api/v1/admin/signers" + path,
        json=body,
        timeout=60,
        headers={"Authorization": f"Bearer {tokens['admin']}"},
    )


def refused(server: Server, tokens: dict[str, str], body: bytes, reason: str) -> None:
    before = size(server)
    r = server.post("/api/v1/entries", tokens["append"], content=body)
    assert r.status_code == 403, r.text
    problem = r.json()
    assert problem["type"] == PROBLEM_TYPE + "not-trusted"
    assert reason in problem["detail"], problem["detail"]
    assert size(server) == before


def new_signer(
    server: Server, tokens: dict[str, str], name: str, **extra: object
) -> ed25519.Ed25519PrivateKey:
    key = ed25519.Ed25519PrivateKey.generate()
    r = admin(server, tokens, "", {"name": name, "key": sample_pub_pem(key).decode(), **extra})
    assert r.status_code == 201, r.text
    assert {"index", "leafHash", "inclusionProof", "treeSize", "checkpoint"} <= set(r.json())
    return key


def test_unknown_signer_and_bad_signature_are_403_with_the_reason(
    server: Server, tokens: dict[str, str]
) -> None:
    refused(server, tokens, signed(1, ed25519.Ed25519PrivateKey.generate())[0], "unknown signer")
    env, other = (json.loads(b) for b in signed(2))
    env["signatures"] = other["signatures"]  # the registered key's signature over another payload
    refused(server, tokens, json.dumps(env).encode(), "bad signature")


def test_revoked_expired_and_not_yet_valid_signers_are_refused(
    server: Server, tokens: dict[str, str]
) -> None:
    key = new_signer(server, tokens, "temp")
    ok = server.post("/api/v1/entries", tokens["append"], content=signed(1, key)[0])
    assert ok.status_code == 201, ok.text
    r = admin(server, tokens, "/temp:revoke", {})
    assert r.status_code == 200, r.text
    refused(server, tokens, signed(1, key)[0], "signer 'temp' was revoked at")
    old = new_signer(
        server, tokens, "old", validFrom="2020-01-01T00:00:00Z", validUntil="2021-01-01T00:00:00Z"
    )
    refused(server, tokens, signed(1, old)[0], "signer 'old' expired at 2021-01-01")
    future = new_signer(server, tokens, "future", validFrom="2099-01-01T00:00:00Z")
    refused(server, tokens, signed(1, future)[0], "signer 'future' is not valid until 2099")
    listed = {
        s["name"]: s
        for s in httpx.get(
            server.url + "/api/v1/admin/signers",
            timeout=30,
            headers={"Authorization": f"Bearer {tokens['admin']}"},
        ).json()
    }
    assert "revokedAt" in listed["temp"] and "samples" in listed


def test_a_signer_limited_to_some_predicate_types_is_refused_for_another(
    server: Server, tokens: dict[str, str]
) -> None:
    key = new_signer(server, tokens, "slsa-only", predicateTypes=[SLSA])
    refused(server, tokens, signed(1, key)[0], "not allowed to sign predicate type")


def test_registry_changes_need_the_admin_scope_and_valid_input(
    server: Server, tokens: dict[str, str]
) -> None:
    before = size(server)
    r = httpx.post(
        server.url + "/api/v1/admin/signers",
        timeout=30,
        headers={"Authorization": f"Bearer {tokens['append']}"},
        json={"name": "x", "key": sample_pub_pem().decode()},
    )
    assert r.status_code == 403
    r = admin(server, tokens, "", {"name": "x", "key": "not a key"})
    assert r.status_code == 422 and r.json()["type"] == PROBLEM_TYPE + "invalid-input"
    r = admin(server, tokens, "/nobody:revoke", {})
    assert r.status_code in (404, 422), r.text
    assert size(server) == before


def _bundle(case: str) -> bytes:
    return (CASES / case / "bundle.sigstore.json").read_bytes()


def test_real_sigstore_bundles_need_their_identity_with_the_matching_root(
    server: Server, tokens: dict[str, str]
) -> None:
    bundle = _bundle("happy-path-intoto-in-dsse-v3")  # production root, SLSA v1 predicate
    refused(server, tokens, bundle, "unknown signer: no Sigstore identity")
    spec = {"sigstoreIssuer": ISSUER, "sigstoreIdentity": BEACON, "regex": True}
    r = admin(
        server,
        tokens,
        "",
        {"name": "beacon-staging", **spec, "trustedRoot": json.loads(STAGING_ROOT.read_text())},
    )
    assert r.status_code == 201, r.text
    refused(server, tokens, bundle, "bad signature for signer 'beacon-staging'")
    r = admin(
        server,
        tokens,
        "",
        {"name": "beacon", **spec, "trustedRoot": json.loads(PRODUCTION_ROOT.read_text())},
    )
    assert r.status_code == 201, r.text
    ok = server.post("/api/v1/entries", tokens["append"], content=bundle)
    assert ok.status_code == 201, ok.text
    entry = server.get(f"/api/v1/entries/{ok.json()['index']}").json()
    assert entry["bodyType"] == "sigstore-bundle"
    refused(server, tokens, _bundle("dsse-invalid-sig_fail"), "bad signature")


@pytest.mark.parametrize("count", [3])
def test_a_batch_refuses_untrusted_entries_one_by_one(
    server: Server, tokens: dict[str, str], count: int
) -> None:
    import base64

    good = signed(count)
    bad = signed(1, ed25519.Ed25519PrivateKey.generate())[0]
    before = size(server)
    r = server.post(
        "/api/v1/entries:batch",
        tokens["append"],
        json={"entries": [base64.b64encode(b).decode() for b in [*good, bad]]},
    )
    results = r.json()["results"]
    assert [("index" in x) for x in results] == [True] * count + [False]
    assert results[-1]["status"] == 403 and "unknown signer" in results[-1]["detail"]
    assert size(server) == before + count


def test_concurrent_registry_changes_of_one_name_apply_once_and_the_rest_write_nothing(
    server: Server, tokens: dict[str, str]
) -> None:
    """Admin routes and admin-signed envelopes on /api/v1/entries alike: of the changes that
    race, one applies; each other is refused (422, nothing written)."""
    from concurrent.futures import ThreadPoolExecutor

    from ledger.registry import make_spec
    from ledger.registry.admin import admin_key_path, load_admin_key
    from ledger.registry.entries import sign_op
    from ledger.registry.model import RegistryOp

    def add_route(name: str) -> httpx.Response:
        key = sample_pub_pem(ed25519.Ed25519PrivateKey.generate()).decode()
        return admin(server, tokens, "", {"name": name, "key": key})

    admin_key = load_admin_key(admin_key_path(server.key))
    origin = server.get("/api/v1/checkpoint").text.split("\n")[0]

    def add_entry(name: str) -> httpx.Response:
        now = datetime.now(UTC)
        pem = sample_pub_pem(ed25519.Ed25519PrivateKey.generate())
        op = RegistryOp.add(origin, make_spec(name, now=now, key=pem), now)
        return server.post("/api/v1/entries", tokens["append"], content=sign_op(op, admin_key))

    for post in (add_route, add_entry):
        name = f"race-{post.__name__}"
        before = size(server)
        with ThreadPoolExecutor(6) as pool:
            replies = list(pool.map(post, [name] * 6))
        codes = sorted(r.status_code for r in replies)
        assert codes == [201] + [422] * 5, [r.text for r in replies]
        assert all("already exists" in r.json()["detail"] for r in replies if r.status_code == 422)
        assert size(server) == before + 1


def test_a_revocation_acknowledged_by_one_server_holds_at_once_in_another(
    server: Server, tokens: dict[str, str], backend_db: tuple[str, Path]
) -> None:
    """Two processes on one database: once the revocation's receipt is back, the other process
    refuses the signer on its very next request (no cache window)."""
    key = new_signer(server, tokens, "leaked")
    with serve(server.db, backend_db[1], server.key) as other:
        for _ in range(3):  # the other process has this signer's trust state warm
            ok = other.post("/api/v1/entries", tokens["append"], content=signed(1, key)[0])
            assert ok.status_code == 201, ok.text
        r = admin(server, tokens, "/leaked:revoke", {})
        assert r.status_code == 200, r.text
        late = other.post("/api/v1/entries", tokens["append"], content=signed(1, key)[0])
        assert late.status_code == 403, late.text
        assert "signer 'leaked' was revoked at" in late.json()["detail"]


@pytest.mark.parametrize(
    ("valid_from", "reason"),
    [
        (12345, "RFC 3339 time string"),  # pydantic alone would read seconds since 1970
        ("2026-01-01T00:00:00", "no time zone"),
        ("next tuesday", "not an RFC 3339 time"),
        (True, "RFC 3339 time string"),
    ],
)
def test_admin_times_are_rfc3339_strings_with_a_zone(
    server: Server, tokens: dict[str, str], valid_from: object, reason: str
) -> None:
    before = size(server)
    body = {"name": "timed", "key": sample_pub_pem().decode(), "validFrom": valid_from}
    r = admin(server, tokens, "", body)
    assert r.status_code == 422, r.text
    assert r.json()["type"].endswith(("invalid-input", "invalid-request"))
    assert "validFrom" in r.json()["detail"] and reason in r.json()["detail"]
    r = admin(server, tokens, "/ci:revoke", {"at": valid_from})
    assert r.status_code == 422 and reason in r.json()["detail"], r.text
    assert size(server) == before
