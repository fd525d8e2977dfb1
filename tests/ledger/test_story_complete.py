"""The story and changes answers say when a bound cut them, and never let other records crowd out
what produced an artifact (h34 #2, #3, #8). The documents are the routes' own
(``story_document``/``changes_document``), checked as ``AuditClient`` checks them. SQLite and
PostgreSQL; the bounds are lowered so a test writes tens of records, not thousands."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledger.api.routes_audit import changes_document, story_document
from ledger.client import AuditClient, ClientError, Evidence, verify_evidence
from ledger.client_story_checks import check_changes, check_story
from ledger.errors import IntegrityError
from ledger.index import story
from ledger.index.evidence import AuditReader
from ledger.log import Ledger
from tests.ledger import audit_samples as s
from tests.ledger.test_index import KEY, audited

__all__ = ["audited"]  # the fixture, re-exported for pytest

PROV = "https://slsa.dev/provenance/v1"
VSA = "https://slsa.dev/verification_summary/v1"
TEST = "https://in-toto.io/attestation/test-result/v0.1"
SCAN = "https://in-toto.io/attestation/vulns/v0.2"
ART = s.sha("story-art")
OLD = s.sha("story-old")


def _build(app: str, builder: str, deps: list[str]) -> bytes:
    resolved = [{"uri": f"pkg:pypi/{d}", "digest": {"sha256": s.sha(d)}} for d in deps]
    pred = {
        "buildDefinition": {"buildType": "https://example.com/b", "resolvedDependencies": resolved},
        "runDetails": {"builder": {"id": builder}},
    }
    return s.sign(s.statement([("app.zip", app)], PROV, pred), KEY)


def _test(app: str, name: str, result: str) -> bytes:
    pred = {"result": result, "configuration": [{"name": name}]}
    return s.sign(s.statement([("app.zip", app)], TEST, pred), KEY)


def _vsa(app: str, result: str, n: int = 0) -> bytes:
    pred = {
        "verifier": {"id": "https://verify.example"},
        "verificationResult": result,
        "timeVerified": f"2026-12-01T00:00:{n:02}Z",
    }
    return s.sign(s.statement([("app.zip", app)], VSA, pred), KEY)


def _checked(lg: Ledger, doc: dict[str, Any]) -> Evidence:
    doc = json.loads(json.dumps(doc))  # as it travels
    return verify_evidence(doc, lg.store.meta()["vkey"], lg.origin)


def _story(lg: Ledger, digest: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the route's document, what the client makes of it)."""
    doc = story_document(AuditReader(lg), digest, None)
    return doc, check_story(_checked(lg, doc), digest)[0]


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(story, "MAX_RECORDS", 10)
    monkeypatch.setattr(story, "MAX_DECISIONS", 3)


def test_later_builds_are_never_crowded_out_and_a_cut_is_said(audited: Ledger, small: None) -> None:
    """h34 #2: a build by another builder and a FAILED test after 10 (here: MAX_RECORDS)
    harmless records were silently left out; the answer claimed to be the whole story."""
    first = audited.append(_build(ART, "https://ci.example/b", ["requests@2.32.3"])).index
    audited.append(_build(OLD, "https://ci.example/b", ["requests@2.31.0"]))
    audited.append_many([_test(ART, f"t{i}", "PASSED") for i in range(12)])
    evil = audited.append(
        _build(ART, "https://evil.example/b", ["requests@2.32.3", "backdoor@6.6.6"])
    ).index
    failed = audited.append(_test(ART, "security", "FAILED")).index
    doc, told = _story(audited, "sha256:" + ART)
    steps = {st["index"] for st in told["story"]}
    assert {first, evil, failed} <= steps
    assert told["artifact"]["producedBy"] == [first, evil]
    assert doc["complete"] is False and told["complete"] is False
    assert [(t["part"], t["digest"]) for t in told["truncated"]] == [("records", "sha256:" + ART)]
    assert "/api/v1/search?subject=sha256:" + ART in told["truncated"][0]["page"]
    diff = changes_document(AuditReader(audited), "sha256:" + OLD, "sha256:" + ART, None)
    got = check_changes(_checked(audited, diff), "sha256:" + OLD, "sha256:" + ART)[0]
    assert {"package": "pkg:pypi/backdoor", "version": "6.6.6"} in got["changes"]["dependencies"][
        "added"
    ]
    assert diff["complete"] is False and got["truncated"][0]["part"] == "records"


def test_a_story_within_every_bound_says_it_is_complete(audited: Ledger) -> None:
    doc, told = _story(audited, "sha256:" + s.APP1)
    assert doc["complete"] is True and doc["truncated"] == []
    assert told["complete"] is True and told["truncated"] == []


def test_the_producers_of_a_digest_are_bounded_and_the_cut_is_said(
    audited: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(story, "MAX_PRODUCERS", 3)
    made = [i.index for i in audited.append_many([_build(ART, f"b{k}", []) for k in range(5)])]
    _, told = _story(audited, "sha256:" + ART)
    assert told["artifact"]["producedBy"] == made[-3:]  # the newest
    assert [t["part"] for t in told["truncated"]] == ["producers"]


def test_only_the_newest_vsa_decisions_are_read_and_the_rest_are_named(
    audited: Ledger, small: None
) -> None:
    """h34 #3: a FAILED VSA after MAX_DECISIONS PASSED ones came back without its decision."""
    audited.append_many([_vsa(ART, "PASSED", n) for n in range(4)])
    failed = audited.append(_vsa(ART, "FAILED")).index
    doc, told = _story(audited, "sha256:" + ART)
    vsas = [st for st in doc["story"] if st["kind"] == "vsa"]
    assert vsas[-1]["index"] == failed and vsas[-1]["decision"]["result"] == "FAILED"
    assert [("decision" in st) for st in vsas] == [False, False, True, True, True]
    # h36 F6: the client reads every VSA's decision from its proved body
    assert all("decision" in st for st in told["story"] if st["kind"] == "vsa")
    cut = [t for t in told["truncated"] if t["part"] == "decisions"]
    assert cut and cut[0]["steps"] == [vsas[0]["index"], vsas[1]["index"]]


def test_the_client_refuses_a_vsa_without_its_decision_unless_the_answer_says_so(
    audited: Ledger,
) -> None:
    audited.append(_vsa(ART, "FAILED"))
    doc = story_document(AuditReader(audited), "sha256:" + ART, None)
    for st in doc["story"]:
        st.pop("decision", None)
    # h36 F6: the client reads the decision from the proved body itself ...
    told = check_story(_checked(audited, doc), "sha256:" + ART)[0]
    assert [st["decision"]["result"] for st in told["story"] if st["kind"] == "vsa"] == ["FAILED"]
    # ... and a decisions cut of the only VSA is no cut the server makes
    vsa = [st["index"] for st in doc["story"] if st["kind"] == "vsa"]
    doc["complete"] = False
    doc["truncated"] = [
        {"part": "decisions", "limit": 100, "digest": "sha256:" + ART, "steps": vsa}
    ]
    with pytest.raises(IntegrityError, match="not the oldest of the VSAs"):
        check_story(_checked(audited, doc), "sha256:" + ART)


@pytest.mark.parametrize(
    "fake",
    [
        {"part": "depth", "limit": 8},
        {"part": "materials", "limit": 2000, "digests": 1},
        {"part": "producers", "limit": 2000, "digest": "sha256:" + s.sha("unrelated")},
        {"part": "producers", "limit": 2000, "digest": None},
        {"part": "whatever", "limit": 1},
        {"part": "records", "limit": 1000, "digest": "sha256:" + s.sha("story-art")},
    ],
)
def test_a_cut_the_server_did_not_make_is_refused(audited: Ledger, fake: dict[str, Any]) -> None:
    """h36 F6: any producers/materials/depth entry in ``truncated`` (even ``{"part": "depth"}``
    alone, or one naming an unrelated digest) switched off every producedBy check, so a server
    could drop an upstream producer of a material."""
    _chain(audited)
    doc = story_document(AuditReader(audited), "sha256:" + ART, None)
    for st in doc["story"]:
        for mat in st.get("materials", []):
            mat["producedBy"] = []
    doc["complete"], doc["truncated"] = False, [fake]
    with pytest.raises(IntegrityError, match="cut"):
        check_story(_checked(audited, doc), "sha256:" + ART)


@pytest.mark.parametrize(
    "change",
    [
        {"complete": True, "truncated": [{"part": "records", "limit": 1, "digest": None}]},
        {"complete": False, "truncated": []},
        {"complete": None},
    ],
)
def test_the_client_refuses_a_completeness_claim_that_contradicts_itself(
    audited: Ledger, change: dict[str, Any]
) -> None:
    doc = {**story_document(AuditReader(audited), "sha256:" + s.APP1, None), **change}
    with pytest.raises(IntegrityError, match="complete"):
        check_story(_checked(audited, doc), "sha256:" + s.APP1)


def test_require_complete_refuses_a_cut_answer(audited: Ledger, small: None) -> None:
    import httpx

    audited.append_many([_test(ART, f"t{i}", "PASSED") for i in range(12)])
    reader = AuditReader(audited)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=story_document(reader, "sha256:" + ART, None))

    http = httpx.Client(base_url="http://ledger", transport=httpx.MockTransport(answer))
    with AuditClient("http://ledger", audited.store.meta()["vkey"], audited.origin, http=http) as c:
        assert c.story("sha256:" + ART).extra["complete"] is False
        with pytest.raises(ClientError, match="incomplete: a bound cut records of sha256:"):
            c.story("sha256:" + ART, require_complete=True)


def test_a_wide_chain_is_read_once_per_level_and_bounded(
    audited: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """h34 #8: L records, each with N subjects that are the next record's materials, cost one
    search per digest and one description of the same record per digest (N² work)."""
    from ledger.index import query as q

    width = 60
    names = [[f"lvl{lv}-{k}" for k in range(width)] for lv in range(3)]

    def producer(lv: int) -> bytes:
        subjects = [(n, s.sha(n)) for n in names[lv]]
        mats = [{"uri": n, "digest": {"sha256": s.sha(n)}} for n in names[lv - 1]] if lv else []
        pred = {"buildDefinition": {"resolvedDependencies": mats}}
        return s.sign(s.statement(subjects, PROV, pred), KEY)

    audited.append_many([producer(lv) for lv in range(3)])
    calls = {"about": 0, "terms": 0}
    about, terms_of = q.about, q.terms_of

    def counted_about(*a: Any, **kw: Any) -> Any:
        calls["about"] += 1
        return about(*a, **kw)

    def counted_terms(conn: Any, idxs: Any) -> Any:
        calls["terms"] += len(idxs)
        return terms_of(conn, idxs)

    monkeypatch.setattr(q, "about", counted_about)
    monkeypatch.setattr(q, "terms_of", counted_terms)
    _, told = _story(audited, "sha256:" + s.sha(names[2][0]))
    assert len(told["story"]) == 3 and told["complete"] is True
    assert calls["about"] <= 4 and calls["terms"] <= 3  # two reads for the artifact, one a level
    monkeypatch.setattr(story, "MAX_DIGESTS", 70)
    _, told = _story(audited, "sha256:" + s.sha(names[2][0]))
    assert [t["part"] for t in told["truncated"]] == ["materials"]
    assert told["truncated"][0]["digests"] == width - 10


def _chain(lg: Ledger) -> tuple[int, int, int]:
    """A build of ART from MAT, a build of MAT, and an unrelated build of OTHER."""

    def build(app: str, mats: list[str]) -> bytes:
        resolved = [{"uri": f"file:{m}", "digest": {"sha256": m}} for m in mats]
        pred = {"buildDefinition": {"resolvedDependencies": resolved}}
        return s.sign(s.statement([("out", app)], PROV, pred), KEY)

    got = lg.append_many([build(MAT, []), build(ART, [MAT]), build(OTHER, [])])
    return got[1].index, got[0].index, got[2].index


MAT, OTHER = s.sha("story-mat"), s.sha("story-other")


def test_the_client_refuses_a_step_no_material_leads_to(audited: Ledger) -> None:
    """h34 #7: a server could add a genuinely logged, unrelated build to a story as upstream."""
    top, mat, other = _chain(audited)
    assert other > top
    reader = AuditReader(audited)
    doc = story_document(reader, "sha256:" + ART, None)
    _, told = _story(audited, "sha256:" + ART)  # the honest answer passes
    assert [st["index"] for st in told["story"]] == [mat, top]
    assert told["story"][1]["materials"][0]["producedBy"] == [mat]
    foreign = story_document(reader, "sha256:" + OTHER, None)
    assert foreign["treeSize"] == doc["treeSize"]
    injected = {
        **doc,
        "entries": [*doc["entries"], *foreign["entries"]],
        "story": [*doc["story"], *foreign["story"]],
    }
    with pytest.raises(IntegrityError, match="no material of the story leads to"):
        check_story(_checked(audited, injected), "sha256:" + ART)


def test_the_client_refuses_a_material_whose_proved_producer_is_not_named(
    audited: Ledger,
) -> None:
    top, _, _ = _chain(audited)
    doc = story_document(AuditReader(audited), "sha256:" + ART, None)
    for st in doc["story"]:
        for m in st.get("materials", []):
            m["producedBy"] = []
    with pytest.raises(IntegrityError, match=f"story step {top}: material sha256:{MAT}"):
        check_story(_checked(audited, doc), "sha256:" + ART)


def test_produced_by_lists_are_bounded_and_the_cut_names_the_material(
    audited: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """h36 F4: P builds each with subjects [ART, M] and material M listed all P producers of M
    under each of the P materials: P*P ints (4,000,000 at P = 2,000) in a complete answer."""
    monkeypatch.setattr(story, "MAX_PRODUCED_BY", 3)
    monkeypatch.setattr(story, "MAX_PRODUCED_BY_TOTAL", 10)
    mat = "sha256:" + MAT

    def both(k: int) -> bytes:
        resolved = [{"uri": "file:m", "digest": {"sha256": MAT}}]
        pred = {"buildDefinition": {"buildType": f"b{k}", "resolvedDependencies": resolved}}
        return s.sign(s.statement([("a", ART), ("m", MAT)], PROV, pred), KEY)

    made = [r.index for r in audited.append_many([both(k) for k in range(6)])]
    doc, told = _story(audited, "sha256:" + ART)
    lists = [m["producedBy"] for st in told["story"] for m in st["materials"]]
    assert lists[:3] == [made[-3:]] * 3 and lists[3] == made[-1:] and lists[4:] == [[], []]
    assert sum(map(len, lists)) == 10
    assert [(t["part"], t["digest"]) for t in told["truncated"]] == [("producers", mat)]
    assert told["artifact"]["producedBy"] == made
    # the cut names M: a shortened list of another digest is still refused
    doc["truncated"][0]["digest"] = "sha256:" + OTHER
    with pytest.raises(IntegrityError, match=r"producers cut names|was produced by"):
        check_story(_checked(audited, doc), "sha256:" + ART)


def _scan(app: str, vulns: list[str]) -> bytes:
    pred = {"scanner": {"uri": "pkg:github/anchore/grype", "result": [{"id": v} for v in vulns]}}
    return s.sign(s.statement([("app.zip", app)], SCAN, pred), KEY)


def test_the_vulnerabilities_of_a_story_are_bounded_by_id_and_the_cut_is_said(
    audited: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """h36 F5: every vulnerability's latest-status record was listed and proved, without bound
    (10 scans of 2,000 ids each: a 20,000-entry map), in an answer that said it was complete."""
    monkeypatch.setattr(story, "MAX_VULNS", 4)
    app = "sha256:" + ART
    audited.append_many([_scan(ART, [f"CVE-2099-{k}{i}" for i in range(3)]) for k in range(3)])
    doc, told = _story(audited, app)
    assert list(told["artifact"]["vulnerabilities"]) == [
        "CVE-2099-00",
        "CVE-2099-01",
        "CVE-2099-02",
        "CVE-2099-10",
    ]
    assert [(t["part"], t["digest"], t["vulnerabilities"]) for t in told["truncated"]] == [
        ("vulnerabilities", app, 9)
    ]
    # a server that drops a vulnerability inside the bound is refused
    doc["artifact"]["vulnerabilities"].pop("CVE-2099-01")
    doc["artifact"]["vulnerabilities"]["CVE-2099-11"] = {"status": "affected", "index": 999}
    with pytest.raises(IntegrityError):
        check_story(_checked(audited, doc), app)


def test_latest_status_records_past_the_records_bound_are_not_called_a_cut(
    audited: Ledger, small: None
) -> None:
    """h36 F5: 30 scans of one vulnerability each (past MAX_RECORDS = 10) were all in the answer,
    as latest statuses, yet it said ``records`` were cut."""
    audited.append_many([_scan(ART, [f"CVE-2099-{i:03}"]) for i in range(30)])
    _, told = _story(audited, "sha256:" + ART)
    assert len(told["story"]) == 30 and len(told["artifact"]["vulnerabilities"]) == 30
    assert told["complete"] is True and told["truncated"] == []


def test_a_producers_cut_across_a_level_names_its_digests(
    audited: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """h36 F7: a producers cut of a level with several digests named no digest and no page, so
    a client could not tell an empty ``producedBy`` from "none" (and took any such cut)."""
    monkeypatch.setattr(story, "MAX_PRODUCERS", 3)
    m1, m2 = s.sha("lvl-m1"), s.sha("lvl-m2")

    def build(app: str, mats: list[str], k: int = 0) -> bytes:
        resolved = [{"uri": f"file:{m}", "digest": {"sha256": m}} for m in mats]
        pred = {"buildDefinition": {"buildType": f"b{k}", "resolvedDependencies": resolved}}
        return s.sign(s.statement([("out", app)], PROV, pred), KEY)

    audited.append_many([build(m, [], k) for m in (m1, m2) for k in range(2)])
    audited.append(build(ART, [m1, m2]))
    _, told = _story(audited, "sha256:" + ART)
    cuts = [t for t in told["truncated"] if t["part"] == "producers"]
    assert [(t["digest"], t["digests"], t["depth"]) for t in cuts] == [
        (None, sorted(["sha256:" + m1, "sha256:" + m2]), 1)
    ]
    assert "{digest}" in cuts[0]["page"]
