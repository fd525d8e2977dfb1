"""The audit API on the seeded sample pipeline (`make run`'s, through `attest … --ledger URL`) plus
a hand-written chain of standard predicates, on SQLite and PostgreSQL. Every returned document is
checked by an independent verifier (tests/ledger/api/evidence_check.py)."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger._internal.demo import seed
from ledger.checkpoint import open_checkpoint
from ledger.note import NoteVerifier, parse_verifier
from tests.ledger import audit_samples as s
from tests.ledger.api.evidence_check import verify_evidence
from tests.ledger.api.server import BIN, ORIGIN, SAMPLE_KEY, Server, add_signer

PROV = "https://slsa.dev/provenance/v1"


@dataclass
class World:
    server: Server
    verifier: NoteVerifier
    app: str  # the demo artifact's digest
    demo: list[int]  # the demo's record indices, in order
    samples: list[int]  # audit_samples.pipeline: link, prov1, test, scan1, prov2, scan2, vex, v02
    before_samples: int  # a checkpointed size before the samples
    before_vex: int  # a checkpointed size after scan2, before the VEX


def _post_batch(srv: Server, tok: str, bodies: list[bytes]) -> list[dict[str, Any]]:
    r = srv.post(
        "/api/v1/entries:batch",
        tok,
        json={"entries": [base64.b64encode(b).decode() for b in bodies]},
    )
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    assert all("index" in x for x in results), results
    return results


@pytest.fixture(scope="module")
def world(
    server: Server, tokens: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> World:
    work = tmp_path_factory.mktemp("demo")
    subprocess.run(
        [str(BIN / "attest"), "keygen", "--type", "ed25519", "-o", str(work / "ci-key")],
        check=True,
        capture_output=True,
    )
    add_signer(server.db, server.key, "ci", key=(work / "ci-key.pub").read_bytes())
    receipts = seed(work, server.url, tokens["append"])
    app = hashlib.sha256((work / "dist" / "app.zip").read_bytes()).hexdigest()
    bodies = s.pipeline(SAMPLE_KEY)
    first = _post_batch(server, tokens["append"], bodies[:6])
    vex = _post_batch(server, tokens["append"], bodies[6:7])
    last = _post_batch(server, tokens["append"], bodies[7:])
    from ledger.storage import LedgerStore

    store = LedgerStore.open(server.db)
    try:
        verifier = parse_verifier(store.meta()["vkey"])
    finally:
        store.close()
    return World(
        server,
        verifier,
        "sha256:" + app,
        [int(r["index"]) for r in receipts],  # type: ignore[call-overload]
        [int(r["index"]) for r in first + vex + last],
        int(receipts[-1]["treeSize"]),  # type: ignore[call-overload]
        int(first[-1]["treeSize"]),
    )


def get(w: World, path: str, **params: str) -> dict[str, Any]:
    r = w.server.get(path, params=params)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    verify_evidence(doc, w.verifier, ORIGIN)
    return doc


def indices(doc: dict[str, Any]) -> list[int]:
    return [e["index"] for e in doc["entries"]]


def test_evidence_for_the_demo_artifact_is_its_whole_pipeline(world: World) -> None:
    doc = get(world, "/api/v1/evidence", subject=world.app)
    assert indices(doc) == world.demo
    _, statements = verify_evidence(doc, world.verifier, ORIGIN)
    kinds = [st.get("predicateType") for st in statements]
    assert kinds[1] == PROV and kinds[4] == PROV
    assert kinds[3] == "https://in-toto.io/attestation/vulns/v0.2"
    assert kinds[5].startswith("https://openvex.dev/ns")
    assert doc["next"] is None


def test_post_evidence_answers_for_many_digests_at_once(world: World) -> None:
    body = {"subjects": [world.app, "sha256:" + s.APP2, "sha256:" + "0" * 64]}
    r = world.server.post("/api/v1/evidence", json=body)
    assert r.status_code == 200, r.text
    verify_evidence(r.json(), world.verifier, ORIGIN)
    want = sorted(world.demo + world.samples[4:7])
    assert indices(r.json()) == want


def test_as_of_hides_later_entries_and_since_proves_consistency(world: World) -> None:
    old = get(world, "/api/v1/evidence", subject="sha256:" + s.APP1, asOf=str(world.before_samples))
    assert old["entries"] == [] and old["treeSize"] <= world.before_samples
    trusted = open_checkpoint(old["checkpoint"], [world.verifier], ORIGIN).checkpoint
    r = world.server.get(
        "/api/v1/evidence",
        params={"subject": "sha256:" + s.APP1, "since": str(trusted.size)},
    )
    assert r.status_code == 200, r.text
    verify_evidence(r.json(), world.verifier, ORIGIN, trusted=trusted)
    assert indices(r.json()) == [world.samples[i] for i in (0, 1, 2, 3, 7)]


def test_a_vex_record_fixes_a_vulnerability_only_from_its_own_record_on(world: World) -> None:
    scan2, vex = world.samples[5], world.samples[6]
    cve = "CVE-2024-35195"
    before = get(world, "/api/v1/search", vuln=cve, status="affected", asOf=str(world.before_vex))
    assert scan2 in indices(before)
    demo_vex = world.demo[5]  # the demo's own OpenVEX fix of the same CVE, for its artifact
    fixed_then = get(world, "/api/v1/search", vuln=cve, status="fixed", asOf=str(world.before_vex))
    assert indices(fixed_then) == [demo_vex]
    now_open = indices(get(world, "/api/v1/search", vuln=cve, status="affected"))
    assert scan2 not in now_open and now_open == [world.samples[3]]  # build 1 is still affected
    assert indices(get(world, "/api/v1/search", vuln=cve, status="fixed")) == [demo_vex, vex]
    other = indices(get(world, "/api/v1/search", vuln="CVE-2024-37891", status="affected"))
    assert scan2 in other  # the VEX fixed only the CVE it names


def test_search_filters_combine(world: World) -> None:
    p1, p2, v02 = world.samples[1], world.samples[4], world.samples[7]
    assert indices(get(world, "/api/v1/search", builder=s.BUILDER)) == [p1, p2]
    assert indices(get(world, "/api/v1/search", repo=s.REPO, ref="refs/tags/v1")) == [v02]
    assert indices(get(world, "/api/v1/search", commit=s.COMMIT.upper())) == [p1, p2, v02]
    assert indices(get(world, "/api/v1/search", step="build", signer="samples")) == [
        world.samples[0]
    ]
    assert indices(get(world, "/api/v1/search", signer="ci")) == world.demo
    both = get(world, "/api/v1/search", predicateType=PROV, subject=world.app)
    assert indices(both) == [world.demo[1], world.demo[4]]


def test_purl_and_version_ranges(world: World) -> None:
    p1, p2 = world.samples[1], world.samples[4]
    demo1, demo2 = world.demo[1], world.demo[4]  # requests 2.31.0, then 2.32.3
    below = get(world, "/api/v1/search", purl="pkg:pypi/requests", versions="vers:pypi/<2.32.0")
    assert indices(below) == [demo1, p1]
    native = get(world, "/api/v1/search", purl="pkg:pypi/Requests", versions=">=2.32.0")
    assert indices(native) == [demo2, p2]
    exact = get(world, "/api/v1/search", purl="pkg:pypi/requests@2.32.3")
    assert indices(exact) == [demo2, p2]
    log4j = get(
        world,
        "/api/v1/search",
        purl="pkg:maven/org.apache.logging.log4j/log4j-core",
        versions="vers:maven/<2.17.1",
    )
    assert indices(log4j) == [world.samples[7]]
    npm = get(world, "/api/v1/search", purl="pkg:npm/left-pad", versions="^1.0.0")
    assert indices(npm) == [p1, p2]
    compatible = get(world, "/api/v1/search", purl="pkg:pypi/requests", versions="~=2.31.0")
    assert indices(compatible) == [demo1, p1]
    tilde = get(world, "/api/v1/search", purl="pkg:npm/left-pad", versions="~1.2.0")
    assert indices(tilde) == []


def test_keyset_pages_cover_everything_once(world: World) -> None:
    seen: list[int] = []
    doc = get(world, "/api/v1/search", signer="samples", limit="3")
    pages = 1
    while True:
        seen += indices(doc)
        if doc["next"] is None:
            break
        doc = get(world, "/api/v1/search", signer="samples", limit="3", cursor=doc["next"])
        pages += 1
    assert seen == world.samples and pages == 3
    r = world.server.get("/api/v1/search", params={"signer": "ci", "limit": "3", "cursor": "AAAA"})
    assert r.status_code == 400


def test_signer_entries_in_a_time_range(world: World) -> None:
    doc = get(world, "/api/v1/signers/ci/entries")
    assert indices(doc) == world.demo
    first = doc["entries"][0]["record"]["time"]
    later = get(world, "/api/v1/signers/samples/entries", since=first)
    assert indices(later) == world.samples
    assert get(world, "/api/v1/signers/ci/entries", until="2000-01-01T00:00:00Z")["entries"] == []
    r = world.server.get("/api/v1/signers/nobody/entries")  # api.md: no such thing is a 404
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith(":not-found") and "nobody" in r.json()["detail"]


def test_story_matches_products_to_materials(world: World) -> None:
    doc = get(world, f"/api/v1/artifacts/sha256:{s.APP1}/story")
    story = doc["story"]
    kinds = {st["index"]: st["kind"] for st in story}
    link, p1, test, scan1, v02 = (world.samples[i] for i in (0, 1, 2, 3, 7))
    assert kinds == {link: "step", p1: "build", test: "test", scan1: "scan", v02: "build"}
    step = next(st for st in story if st["index"] == link)
    assert step["signers"] == ["samples"] and step["step"] == "build"
    assert step["materials"][0]["name"] == "src/app.py"
    assert doc["artifact"]["producedBy"] == [link, p1, v02]
    assert doc["artifact"]["vulnerabilities"]["CVE-2024-35195"] == {
        "status": "affected",
        "index": scan1,
    }
    assert indices(doc) == sorted(kinds)
    demo = get(world, f"/api/v1/artifacts/{world.app}/story")
    assert [st["kind"] for st in demo["story"]] == ["step", "build", "test", "scan", "build", "vex"]


def test_changes_between_two_builds(world: World) -> None:
    doc = get(
        world, "/api/v1/artifacts/changes", **{"from": "sha256:" + s.APP1, "to": "sha256:" + s.APP2}
    )
    c = doc["changes"]
    assert c["dependencies"]["upgraded"] == [
        {"package": "pkg:pypi/requests", "from": "2.31.0", "to": "2.32.3"}
    ]
    removed = {d["package"] for d in c["dependencies"]["removed"]}
    assert "pkg:maven/org.apache.logging.log4j/log4j-core" in removed  # only build 1 (v0.2)
    assert c["vulnerabilities"]["fixed"] == [
        {"vuln": "CVE-2024-35195", "status": "fixed", "index": world.samples[6]}
    ]
    assert c["vulnerabilities"]["gained"] == []
    assert set(indices(doc)) == set(c["from"]["records"]) | set(c["to"]["records"])


HOSTILE = [
    ("/api/v1/evidence", {"subject": "sha256:' OR 1=1 --"}),
    ("/api/v1/evidence", {}),
    ("/api/v1/evidence", {"subject": "sha256:" + "a" * 5000}),
    ("/api/v1/evidence", {"subject": s.APP1, "asOf": "9" * 40}),
    ("/api/v1/evidence", {"subject": "sha256:" + s.APP1, "asOf": "yesterday"}),
    ("/api/v1/evidence", {"subject": "sha256:" + s.APP1, "since": "-1"}),
    ("/api/v1/evidence", {"subject": "sha256:" + s.APP1, "since": "99999999"}),
    ("/api/v1/search", {"signer": "x" * 5000}),
    ("/api/v1/search", {"signer": "ci\x00"}),
    ("/api/v1/search", {"purl": "not a purl"}),
    ("/api/v1/search", {"purl": "pkg:pypi/requests", "versions": "vers:pypi/<<<"}),
    ("/api/v1/search", {"purl": "pkg:pypi/requests", "versions": "vers:npm/<1"}),
    ("/api/v1/search", {"purl": "pkg:pypi/requests@1.0", "versions": "<2"}),
    ("/api/v1/search", {"purl": "pkg:pypi/requests", "versions": "~=2"}),
    ("/api/v1/search", {"purl": "pkg:npm/left-pad", "versions": "^^1"}),
    ("/api/v1/search", {"purl": "pkg:maven/a/b", "versions": "1.0"}),
    ("/api/v1/search", {"purl": "pkg:golang/golang.org/x/net", "versions": "^0.17"}),
    ("/api/v1/search", {"versions": "<2"}),
    ("/api/v1/search", {"vuln": "CVE-1", "status": "pwned"}),
    ("/api/v1/search", {"status": "fixed"}),
    ("/api/v1/search", {"since": "2026-13-45T99:00:00Z"}),
    ("/api/v1/search", {"limit": "0"}),
    ("/api/v1/search", {"limit": "1e9"}),
    ("/api/v1/search", {"cursor": "W10"}),
    ("/api/v1/search", {"cursor": "bm90IGpzb24"}),
    ("/api/v1/search", {"cursor": "WzEsMiwiZm9vIl0"}),
    ("/api/v1/artifacts/changes", {"from": "sha256:" + s.APP1}),
    ("/api/v1/artifacts/sha256:zz/story", {}),
]


@pytest.mark.parametrize(("path", "params"), HOSTILE)
def test_hostile_query_input_is_a_400_with_a_reason(
    world: World, path: str, params: dict[str, str]
) -> None:
    r = world.server.get(path, params=params)
    assert r.status_code == 400, r.text
    problem = r.json()
    assert problem["type"].endswith(":bad-query") and problem["detail"]


def test_post_evidence_refuses_a_bad_digest_and_too_many(world: World) -> None:
    r = world.server.post("/api/v1/evidence", json={"subjects": ["md5:' --"]})
    assert r.status_code == 400 and "subjects" in r.json()["detail"]
    r = world.server.post("/api/v1/evidence", json={"subjects": ["sha256:" + "a" * 64] * 1001})
    assert r.status_code == 422


def test_the_index_survives_ledger_check(world: World, tmp_path: Path) -> None:
    from tests.ledger.api.server import ledger_cli

    out = ledger_cli(tmp_path, "check", "--db", world.server.db)
    assert '"ok": true' in out


# -- ledger.client: every answer checked before it is returned ----------------------------------


def _vkey(world: World) -> str:
    from ledger.storage import LedgerStore

    store = LedgerStore.open(world.server.db)
    try:
        return store.meta()["vkey"]
    finally:
        store.close()


def test_client_returns_verified_entries_and_follows_pages(world: World) -> None:
    from ledger.client import AuditClient

    with AuditClient(world.server.url, _vkey(world), ORIGIN) as c:
        ev = c.evidence(world.app)
        assert [e.index for e in ev.entries] == world.demo
        assert ev.entries[1].statement is not None
        assert ev.entries[1].statement["predicateType"] == PROV
        pages = list(c.search(signer="samples", limit=3))
        assert [e.index for e in pages] == world.samples
        below = c.search(purl="pkg:pypi/requests", versions="vers:pypi/<2.32.0")
        assert [e.index for e in below] == [world.demo[1], world.samples[1]]
        told = c.story("sha256:" + s.APP1)
        assert told.extra["artifact"]["producedBy"][0] == world.samples[0]
        diff = c.changes("sha256:" + s.APP1, "sha256:" + s.APP2)
        assert diff.extra["changes"]["dependencies"]["upgraded"][0]["to"] == "2.32.3"
        assert [e.index for e in c.signer_entries("ci")] == world.demo
        old = c.evidence("sha256:" + s.APP1, as_of=world.before_samples)
        assert old.entries == [] and c.trusted is not None
        assert c.trusted.size >= world.samples[-1] + 1  # asOf answers never lower trust


def _tampered(world: World, change: Any) -> Any:
    """A client whose transport fetches the real answer and lets ``change`` edit it."""
    import httpx

    from ledger.client import AuditClient

    def handler(request: httpx.Request) -> httpx.Response:
        real = httpx.get(world.server.url + request.url.raw_path.decode(), timeout=30)
        doc = real.json()
        if request.url.path.endswith("/evidence"):
            change(doc)
        return httpx.Response(200, json=doc)

    transport = httpx.MockTransport(handler)
    http = httpx.Client(transport=transport, base_url="http://ledger.test")
    return AuditClient("http://ledger.test", _vkey(world), ORIGIN, http=http)


def _flip_body(doc: dict[str, Any]) -> None:
    body = bytearray(base64.b64decode(doc["entries"][0]["body"]))
    body[-2] ^= 1
    doc["entries"][0]["body"] = base64.b64encode(bytes(body)).decode()


def _flip_proof(doc: dict[str, Any]) -> None:
    doc["entries"][0]["inclusionProof"][0] = base64.b64encode(b"\0" * 32).decode()


def _drop_signature(doc: dict[str, Any]) -> None:
    doc["checkpoint"] = doc["checkpoint"].split("\n\n")[0] + "\n\n"


def _other_index(doc: dict[str, Any]) -> None:
    doc["entries"][0]["index"] += 1


@pytest.mark.parametrize("change", [_flip_body, _flip_proof, _drop_signature, _other_index])
def test_client_refuses_tampered_evidence(world: World, change: Any) -> None:
    from ledger.errors import Error

    with _tampered(world, change) as c, pytest.raises(Error) as e:
        c.evidence(world.app)
    assert type(e.value).__name__ in (
        "IntegrityError",
        "ProofError",
        "NoteError",
        "CheckpointError",
    )


def _apps(world: World, **settings: Any) -> tuple[Any, Any]:
    """The app as served (the plain audit endpoints first) and the same app without them, so
    FastAPI's declared routes answer."""
    from starlette.routing import Route

    from ledger.api import audit_raw
    from ledger.api.app import create_app
    from ledger.api.settings import Settings

    s = Settings(database_url=world.server.db, key_file=world.server.key, **settings)
    served, declared = create_app(s), create_app(s)
    raw = {endpoint for _, endpoint in audit_raw.ROUTES}
    # Ahead of every included router, so they match first.
    routes = served.router.routes
    first_router = next(i for i, r in enumerate(routes) if not isinstance(r, Route))
    assert {getattr(r, "endpoint", None) for r in routes[:first_router]} >= raw
    declared.router.routes[:] = [
        r for r in declared.router.routes if not (isinstance(r, Route) and r.endpoint in raw)
    ]
    return served, declared


def _same_answers(world: World, queries: list[tuple[str, Any]], **settings: Any) -> None:
    from fastapi.testclient import TestClient

    served, declared = _apps(world, **settings)
    with TestClient(served) as a, TestClient(declared) as b:
        for path, params in queries:
            ra, rb = a.get(path, params=params), b.get(path, params=params)
            assert (ra.status_code, ra.headers["content-type"]) == (
                rb.status_code,
                rb.headers["content-type"],
            ), (path, params, ra.text, rb.text)
            assert ra.content == rb.content, (path, params)
            if ra.status_code == 200:
                verify_evidence(ra.json(), world.verifier, ORIGIN)


def test_plain_audit_endpoints_answer_exactly_as_the_declared_routes(world: World) -> None:
    """GET evidence and search are served by plain Starlette endpoints (ledger.api.audit_raw):
    the same bytes, statuses and problems as FastAPI's routes, for good and hostile questions,
    repeated parameters (the last one counts) and unknown ones (ignored)."""
    app1 = "sha256:" + s.APP1
    first = world.server.get("/api/v1/search", params={"signer": "ci", "limit": "2"}).json()
    assert first["next"]
    queries: list[tuple[str, Any]] = [
        ("/api/v1/evidence", {"subject": world.app}),
        ("/api/v1/evidence", {"subject": app1, "limit": "1", "registry": "true"}),
        ("/api/v1/evidence", {"subject": app1, "since": str(world.before_samples)}),
        ("/api/v1/evidence", {"subject": app1, "asOf": str(world.before_vex)}),
        ("/api/v1/evidence", [("subject", "sha256:zz"), ("subject", app1), ("x", "1")]),
        ("/api/v1/evidence", {"subject": app1, "registry": "maybe"}),
        ("/api/v1/evidence", {"subject": app1, "limit": ""}),
        ("/api/v1/search", {"purl": "pkg:pypi/requests", "versions": "vers:pypi/<2.32.0"}),
        ("/api/v1/search", {"vuln": "CVE-2024-35195", "status": "fixed"}),
        ("/api/v1/search", {"vuln": "CVE-2024-35195"}),
        ("/api/v1/search", {"signer": "ci", "predicateType": PROV, "limit": "3"}),
        ("/api/v1/search", {"signer": "ci", "limit": "2", "cursor": first["next"]}),
        ("/api/v1/search", [("limit", "0"), ("limit", "5"), ("subject", app1)]),
        ("/api/v1/search", {}),
        *HOSTILE,
    ]
    _same_answers(world, queries)
    # Reads that need a token: refused alike without one.
    _same_answers(world, queries[:1] + queries[7:8], public_reads=False)
    # Other methods: 405, as every declared route (Starlette would add HEAD to a GET route).
    for path in ("/api/v1/evidence", "/api/v1/search"):
        for method in ("HEAD", "PUT", "DELETE"):
            r = httpx.request(method, world.server.url + path, params={"subject": app1})
            assert r.status_code == 405, (method, path, r.status_code)
