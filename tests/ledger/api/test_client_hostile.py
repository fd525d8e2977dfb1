"""ledger.client against lying servers (the hostile-serve findings of 2026-11-30): a proxy in
front of a real `ledger serve` that answers another question or doctors the derived parts of an
answer (real signed data, edited), a fork of the ledger signed with the same key, and servers
that drip, flood or page forever. Each must be refused with a clear error."""

from __future__ import annotations

import base64
import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ledger.client import AuditClient, ClientError
from ledger.errors import IntegrityError, ProofError
from tests.ledger import audit_samples as s
from tests.ledger.api.liar import liar, raw_server
from tests.ledger.api.server import (
    ORIGIN,
    SAMPLE_KEY,
    Server,
    init_ledger,
    serve,
    signed,
    token,
)
from tests.ledger.api.test_audit import World, _post_batch, _vkey, world  # noqa: F401

APP3, APP4, VEXDOC = s.sha("app-3.zip"), s.sha("app-4.zip"), s.sha("vex.json")
CVE = "CVE-2099-0001"


@dataclass
class Extra:
    """Build 3 and 4, each scanned affected by CVE; a VEX about build 4 whose subject is the VEX
    document itself (so the record saying "fixed" is not among the records about build 4)."""

    scan3: int
    scan4: int
    vex: int


def _vex_about_product(product: str) -> bytes:
    doc = json.loads(s.vex(product, CVE, "fixed"))
    doc["subject"] = [{"name": "vex.json", "digest": {"sha256": VEXDOC}}]
    return json.dumps(doc).encode()


@pytest.fixture(scope="module")
def extra(world: World, tokens: dict[str, str]) -> Extra:  # noqa: F811
    payloads = [
        s.provenance_v1(APP3, [("requests", "2.31.0"), ("idna", "3.6")]),
        s.vulns(APP3, [CVE]),
        s.provenance_v1(APP4, [("requests", "2.32.3"), ("idna", "3.7")]),
        s.vulns(APP4, [CVE]),
        _vex_about_product(APP4),
    ]
    got = _post_batch(world.server, tokens["append"], [s.sign(p, SAMPLE_KEY) for p in payloads])
    idx = [int(r["index"]) for r in got]
    return Extra(idx[1], idx[3], idx[4])


def _client(world: World, url: str | None = None, **kw: Any) -> AuditClient:  # noqa: F811
    return AuditClient(url or world.server.url, _vkey(world), ORIGIN, **kw)


# -- finding 7: the story and changes routes prove every record they cite ------------------------


def test_story_and_changes_prove_the_records_they_cite(world: World, extra: Extra) -> None:  # noqa: F811
    story = world.server.get(f"/api/v1/artifacts/sha256:{APP4}/story").json()
    proved = {e["index"] for e in story["entries"]}
    assert story["artifact"]["vulnerabilities"][CVE] == {"status": "fixed", "index": extra.vex}
    assert extra.vex in proved  # the VEX is not about build 4 as a subject, yet proved
    params = {"from": f"sha256:{APP3}", "to": f"sha256:{APP4}"}
    changes = world.server.get("/api/v1/artifacts/changes", params=params).json()
    fixed = changes["changes"]["vulnerabilities"]["fixed"]
    assert fixed == [{"vuln": CVE, "status": "fixed", "index": extra.vex}]
    assert {extra.vex, extra.scan3, extra.scan4} <= {e["index"] for e in changes["entries"]}
    with _client(world) as c:  # and the client recomputes both from the proved entries
        told = c.story(f"sha256:{APP4}")
        assert told.extra["artifact"]["vulnerabilities"][CVE]["index"] == extra.vex
        diff = c.changes(f"sha256:{APP3}", f"sha256:{APP4}")
        assert diff.extra["changes"]["vulnerabilities"]["fixed"][0]["index"] == extra.vex
        upgraded = diff.extra["changes"]["dependencies"]["upgraded"]
        assert {"package": "pkg:pypi/idna", "from": "3.6", "to": "3.7"} in upgraded


# -- finding 2: forged story / changes content is refused ----------------------------------------


def _story_fixed(doc: dict[str, Any]) -> None:  # the hostile proxy's rewrite
    scan = next(st["index"] for st in doc["story"] if st["kind"] == "scan")
    doc["artifact"]["vulnerabilities"] = {"CVE-2024-35195": {"status": "fixed", "index": scan}}


def _story_vsa(doc: dict[str, Any]) -> None:
    scan = next(st for st in doc["story"] if st["kind"] == "scan")
    scan.update(kind="vsa", decision={"result": "PASSED"})


def _story_hides_the_test(doc: dict[str, Any]) -> None:
    doc["story"] = [st for st in doc["story"] if st["kind"] != "test"]


def _story_cites_unproved(doc: dict[str, Any]) -> None:
    doc["artifact"]["producedBy"].append(0)


def _story_other_materials(doc: dict[str, Any]) -> None:
    build = next(st for st in doc["story"] if st["kind"] == "build")
    build["materials"][0]["version"] = "9.9.9"


def _story_drops_a_vuln(doc: dict[str, Any]) -> None:
    doc["artifact"]["vulnerabilities"].pop("CVE-2024-37891")


def _story_claim(doc: dict[str, Any]) -> None:
    doc["story"][0]["approvedBy"] = "security team"


@pytest.mark.parametrize(
    "forge",
    [
        _story_fixed,
        _story_vsa,
        _story_hides_the_test,
        _story_cites_unproved,
        _story_other_materials,
        _story_drops_a_vuln,
        _story_claim,
    ],
)
def test_a_forged_story_is_refused(world: World, forge: Any) -> None:  # noqa: F811
    def doctor(path: str, doc: dict[str, Any]) -> dict[str, Any]:
        if "/story" in path:
            forge(doc)
        return doc

    with (
        liar(world.server.url, doctor=doctor) as url,
        _client(world, url) as c,
        pytest.raises(IntegrityError, match="not what it claims"),
    ):
        c.story("sha256:" + s.APP1)


def _changes_upgrade(doc: dict[str, Any]) -> None:
    doc["changes"]["dependencies"]["upgraded"][0]["to"] = "3.0.0"


def _changes_fixed_by_a_scan(doc: dict[str, Any]) -> None:
    scan = doc["changes"]["to"]["records"][-1]
    doc["changes"]["vulnerabilities"]["fixed"][0]["index"] = scan


def _changes_hide_a_gain(doc: dict[str, Any]) -> None:
    doc["changes"]["vulnerabilities"]["fixed"] = []


def _changes_other_build(doc: dict[str, Any]) -> None:
    doc["changes"]["to"]["records"] = doc["changes"]["from"]["records"]


@pytest.mark.parametrize(
    "forge",
    [_changes_upgrade, _changes_fixed_by_a_scan, _changes_hide_a_gain, _changes_other_build],
)
def test_forged_changes_are_refused(world: World, extra: Extra, forge: Any) -> None:  # noqa: F811
    def doctor(path: str, doc: dict[str, Any]) -> dict[str, Any]:
        if "/changes" in path:
            forge(doc)
        return doc

    with (
        liar(world.server.url, doctor=doctor) as url,
        _client(world, url) as c,
        pytest.raises(IntegrityError, match="not what it claims"),
    ):
        c.changes(f"sha256:{APP3}", f"sha256:{APP4}")


def test_signer_names_come_back_apart_as_unverified(world: World) -> None:  # noqa: F811
    with _client(world) as c:
        told = c.story("sha256:" + s.APP1)
    link = world.samples[0]
    assert all("signers" not in st for st in told.extra["story"])
    assert told.unverified["signers"][link] == ["samples"]


# -- finding 3: an answer about something else is refused ----------------------------------------


def test_evidence_about_another_artifact_is_refused(world: World) -> None:  # noqa: F811
    def substitute(path: str) -> str:
        return path.replace(s.APP1, s.APP2)

    with (
        liar(world.server.url, rewrite=substitute) as url,
        _client(world, url) as c,
        pytest.raises(IntegrityError, match="another question"),
    ):
        c.evidence("sha256:" + s.APP1)
        assert c.evidence("sha256:" + s.APP2).entries  # the honest part of the proxy answers
        with pytest.raises(IntegrityError, match="another question"):
            c.story("sha256:" + s.APP1)


def test_evidence_for_many_refuses_an_entry_about_none_of_them(world: World) -> None:  # noqa: F811
    with _client(world) as honest:
        other = honest.evidence(world.app).raw["entries"][0]

    def add_other(path: str, doc: dict[str, Any]) -> dict[str, Any]:
        if path.startswith("/api/v1/evidence"):
            doc["entries"].append(other)
        return doc

    with (
        liar(world.server.url, doctor=add_other) as url,
        _client(world, url) as c,
        pytest.raises(IntegrityError, match="another question"),
    ):
        c.evidence_many(["sha256:" + s.APP1, "sha256:" + s.APP2])


@pytest.mark.parametrize(
    ("asked", "answered"),
    [
        ({"builder": s.BUILDER}, "signer=samples"),
        ({"predicateType": "https://slsa.dev/provenance/v1"}, "signer=samples"),
        ({"vuln": "CVE-2024-35195", "status": "fixed"}, "vuln=CVE-2024-35195&status=affected"),
        ({"purl": "pkg:pypi/requests", "versions": "vers:pypi/<2.32.0"}, "signer=samples"),
        ({"step": "build"}, "builder=" + s.BUILDER),
        ({"until": "2000-01-01T00:00:00Z"}, "signer=samples"),
    ],
)
def test_a_search_answered_for_other_filters_is_refused(
    world: World,  # noqa: F811
    asked: dict[str, str],
    answered: str,
) -> None:
    def other_filters(path: str) -> str:
        if not path.startswith("/api/v1/search"):
            return path
        return "/api/v1/search?" + answered

    with (
        liar(world.server.url, rewrite=other_filters) as url,
        _client(world, url) as c,
        pytest.raises(IntegrityError, match="not what it claims"),
    ):
        list(c.search(**asked))
    with _client(world) as c:  # the same question, honestly answered, passes the same checks
        list(c.search(**asked))


# -- finding 4: asOf answers are checked against the trusted checkpoint --------------------------


def test_an_as_of_answer_larger_than_asked_is_refused(world: World) -> None:  # noqa: F811
    def drop_as_of(path: str) -> str:
        return path.replace(f"asOf={world.before_samples}", "limit=100")

    with (
        liar(world.server.url, rewrite=drop_as_of) as url,
        _client(world, url) as c,
        pytest.raises(IntegrityError, match="asked as of size"),
    ):
        c.evidence(world.app, as_of=world.before_samples)


@dataclass
class Fork:
    real: Server
    fork: Server
    vkey: str
    common: int  # the size both histories share
    fork_size: int  # a checkpointed size of the fork past the common part


@pytest.fixture(scope="module")
def fork(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fork]:
    """Two SQLite ledgers with one key and one history up to ``common``, then two."""
    work = tmp_path_factory.mktemp("fork")
    db = work / "real.db"
    key = init_ledger(f"sqlite:///{db}", work)
    tok = token(f"sqlite:///{db}", work, "append", "append")
    with serve(f"sqlite:///{db}", work, key) as srv:
        for body in signed(3):
            assert srv.post("/api/v1/entries", tok, content=body).status_code == 201
        common = int(srv.get("/api/v1/checkpoint").text.split("\n")[1])
    shutil.copy(db, work / "fork.db")
    with (
        serve(f"sqlite:///{db}", work, key) as real,
        serve(f"sqlite:///{work / 'fork.db'}", work, key) as other,
    ):
        for srv, n in ((real, 3), (other, 2)):
            for body in signed(n):
                assert srv.post("/api/v1/entries", tok, content=body).status_code == 201
        fork_size = int(other.get("/api/v1/checkpoint").text.split("\n")[1])
        from ledger.storage import LedgerStore

        store = LedgerStore.open(f"sqlite:///{db}")
        try:
            vkey = store.meta()["vkey"]
        finally:
            store.close()
        yield Fork(real, other, vkey, common, fork_size)


def _trusting_the_real_ledger(f: Fork, url: str) -> AuditClient:
    with AuditClient(f.real.url, f.vkey, ORIGIN) as real:
        list(real.search(predicateType="https://example.com/api-test/v1"))
        trusted = real.trusted
    assert trusted is not None and trusted.size > f.fork_size
    return AuditClient(url, f.vkey, ORIGIN, trusted=trusted)


@pytest.mark.parametrize("as_of", ["fork_size", "2099-01-01T00:00:00Z"])
def test_a_fork_signed_with_the_same_key_is_refused_as_of(fork: Fork, as_of: str) -> None:
    asked: int | str = fork.fork_size if as_of == "fork_size" else as_of
    with _trusting_the_real_ledger(fork, fork.fork.url) as c:
        trusted = c.trusted
        with pytest.raises(ProofError, match="not one history"):
            list(c.search(predicateType="https://example.com/api-test/v1", asOf=asked))
        with pytest.raises(ProofError, match="not one history"):
            c.story(f"sha256:{'0' * 64}", as_of=asked)
        with pytest.raises(ProofError):  # without asOf it was refused already (split view)
            list(c.search(predicateType="https://example.com/api-test/v1"))
        assert c.trusted == trusted


def test_as_of_answers_from_the_trusted_history_are_accepted(fork: Fork) -> None:
    test_type = "https://example.com/api-test/v1"
    with _trusting_the_real_ledger(fork, fork.real.url) as c:
        trusted = c.trusted
        assert len(list(c.search(predicateType=test_type, asOf=fork.common))) == 3
        every = list(c.search(predicateType=test_type, asOf=fork.fork_size))
        assert len(every) == 3 + 2  # as of that size: the common three, two more
        assert c.trusted == trusted  # an older answer leaves the trust as it was
    # the fork holds the same first records, but cannot prove them part of the trusted tree
    with (
        _trusting_the_real_ledger(fork, fork.fork.url) as c,
        pytest.raises(ProofError, match="could not prove"),
    ):
        list(c.search(predicateType=test_type, asOf=fork.common))


# -- finding 9: bounds on size, pages, cursors and time ------------------------------------------


def test_a_repeated_next_cursor_is_refused(world: World) -> None:  # noqa: F811
    def loop(path: str, doc: dict[str, Any]) -> dict[str, Any]:
        if path.startswith("/api/v1/search"):
            doc["next"] = "same-cursor-forever"
        return doc

    def drop_cursor(path: str) -> str:
        return path.replace("&cursor=same-cursor-forever", "")

    with liar(world.server.url, rewrite=drop_cursor, doctor=loop) as url, _client(world, url) as c:
        seen: list[int] = []
        with pytest.raises(ClientError, match="same next cursor twice"):
            seen.extend(e.index for e in c.search(signer="samples"))
    half = len(seen) // 2  # two pages, the same one twice, then refused
    assert seen and seen[:half] == seen[half:] and seen[:half][:8] == world.samples


def test_endless_pages_stop_at_the_page_bound(world: World) -> None:  # noqa: F811
    count = iter(range(10**6))

    def endless(path: str, doc: dict[str, Any]) -> dict[str, Any]:
        if path.startswith("/api/v1/search"):
            doc["next"] = f"cursor-{next(count)}"
        return doc

    def drop_cursor(path: str) -> str:
        return path.split("&cursor=", maxsplit=1)[0]

    with (
        liar(world.server.url, rewrite=drop_cursor, doctor=endless) as url,
        _client(world, url, max_pages=5) as c,
        pytest.raises(ClientError, match="5 pages"),
    ):
        list(c.search(signer="samples"))


def test_a_dripping_answer_stops_at_the_deadline(world: World) -> None:  # noqa: F811
    with raw_server("drip", every=0.2) as url, _client(world, url, deadline=2) as c:
        t = time.monotonic()
        with pytest.raises(ClientError, match="within 2 s"):
            c.evidence(world.app)
        assert time.monotonic() - t < 6


def test_a_huge_answer_stops_at_the_size_bound(world: World) -> None:  # noqa: F811
    with raw_server("huge", size=64 << 20) as url, _client(world, url, max_bytes=1 << 20) as c:
        t = time.monotonic()
        with pytest.raises(ClientError, match=f"larger than {1 << 20} bytes"):
            c.evidence(world.app)
        assert time.monotonic() - t < 10


# -- finding 10: an unknown signer is a 404 --------------------------------------------------------


def test_an_unknown_signer_is_a_404_for_the_client_too(world: World) -> None:  # noqa: F811
    with _client(world) as c:
        with pytest.raises(ClientError) as e:
            list(c.signer_entries("nobody"))
        assert e.value.status == 404 and "nobody" in str(e.value)
        assert [x.index for x in c.signer_entries("samples")][: len(world.samples)] == world.samples


def test_the_proxy_changes_nothing_when_it_does_not_lie(world: World) -> None:  # noqa: F811
    with liar(world.server.url) as url, _client(world, url) as c:
        assert [e.index for e in c.evidence(world.app).entries] == world.demo
        assert base64.b64decode(c.evidence(world.app).raw["entries"][0]["body"])


# -- h34 #9: evidence() is every record about the subject, every page of it ----------------------


def test_evidence_follows_every_page(world: World) -> None:  # noqa: F811
    """``evidence()`` returned the first page (``next`` set) as if it were every record."""

    def small_pages(path: str) -> str:
        return path + "&limit=2" if path.startswith("/api/v1/evidence?") else path

    whole = _client(world).evidence(world.app)
    with liar(world.server.url, rewrite=small_pages) as url:
        c = _client(world, url)
        paged = c.evidence(world.app)
        assert [e.index for e in paged.entries] == [e.index for e in whole.entries]
        assert len(paged.entries) > 2 and paged.next is None and paged.raw["next"] is None
        assert [e["index"] for e in paged.raw["entries"]] == world.demo
        many = c.evidence_many([world.app])
        assert [e.index for e in many.entries] == world.demo


def test_evidence_refuses_pages_that_never_end(world: World) -> None:  # noqa: F811
    """A server that keeps sending ``next`` is bounded like a search."""

    def endless(path: str, doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "next": f"c{time.monotonic_ns()}"} if "evidence" in path else doc

    def first_page(path: str) -> str:
        return re.sub(r"&cursor=[^&]*", "", path)

    with (
        liar(world.server.url, rewrite=first_page, doctor=endless) as url,
        pytest.raises(ClientError, match="pages"),
    ):
        _client(world, url, max_pages=5).evidence(world.app)
