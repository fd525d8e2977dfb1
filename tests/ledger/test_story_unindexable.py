"""Values the audit index cannot hold — a NUL, an overlong or non-string value, a part of another
shape than its schema gives — are left out of the client's recomputation exactly as the index
leaves them out, and make a story or changes answer incomplete on the client's side (an
``unindexable`` cut), so nothing is hidden behind ``complete: true`` (h34 #4, h36 F2, h37 [1],
h38 F5). SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.api.routes_audit import changes_document
from ledger.client import ClientError, _complete
from ledger.client_story_checks import check_changes
from ledger.index.evidence import AuditReader
from ledger.log import Ledger
from tests.ledger import audit_samples as s
from tests.ledger.test_index import KEY, audited
from tests.ledger.test_story_complete import (
    ART,
    OLD,
    PROV,
    SCAN,
    _build,
    _checked,
    _story,
    _test,
)

__all__ = ["audited"]  # the fixture, re-exported for pytest


def test_values_the_index_leaves_out_are_left_out_by_the_client_too(audited: Ledger) -> None:
    """h34 #4: a trusted signer's record about someone else's artifact with a NUL in a step name
    (or a dependency, or a vulnerability id) made every later client story of it an
    IntegrityError: the index leaves such values out, the client's recomputation kept them."""
    app = "sha256:" + ART
    audited.append(_build(ART, "https://ci.example/b", ["requests@2.32.3", "evil@1\u0000"]))
    audited.append(_test(ART, "step:x\u0000y", "PASSED"))
    audited.append(_test(ART, "long", "P" * 600))
    scan = {"scanner": {"result": [{"id": "CVE-\u0000"}, {"id": "CVE-2024-1"}]}}
    audited.append(s.sign(s.statement([("app.zip", ART)], SCAN, scan), KEY))
    _, told = _story(audited, app)
    assert set(told["artifact"]["vulnerabilities"]) == {"CVE-2024-1"}
    assert [m["name"] for m in told["story"][0]["materials"]] == ["pkg:pypi/requests"]
    # h36 F2: no error, but never "complete" — the answer could not hold those values
    assert told["complete"] is False
    assert {(t["part"], t["field"]) for t in told["truncated"]} == {
        ("unindexable", "dependency"),
        ("unindexable", "step"),
        ("unindexable", "testResult"),
        ("unindexable", "vulnerability"),
    }
    diff = changes_document(AuditReader(audited), app, app, None)
    assert check_changes(_checked(audited, diff), app, app)[0]["complete"] is False


@pytest.mark.parametrize(
    "dep",
    [
        {"uri": "pkg:pypi/backdoor@6.6.6\u0000"},
        {"uri": "pkg:pypi/backdoor", "annotations": {"version": "\u00006.6.6"}},
        {"uri": "pkg:pypi/backdoor@6.6.6", "digest": {"x" * 190: "ab" * 10}},
        {"uri": "pkg:pypi/backdoor@" + "6" * 600},
    ],
)
def test_a_dependency_the_index_cannot_hold_makes_changes_incomplete(
    audited: Ledger, dep: dict[str, Any]
) -> None:
    """h36 F2: a build adding a dependency with a NUL in its version, or a 190-character digest
    algorithm, was left out by the index and by the client's recomputation alike: the changes
    said ``added: []`` with ``complete: true``, and ``require_complete`` accepted them."""
    old, new = "sha256:" + OLD, "sha256:" + ART
    audited.append(_build(OLD, "https://ci.example/b", ["requests@2.32.3"]))
    resolved = [{"uri": "pkg:pypi/requests@2.32.3", "digest": {"sha256": s.sha("r")}}, dep]
    pred = {"buildDefinition": {"buildType": "b", "resolvedDependencies": resolved}}
    bad = audited.append(s.sign(s.statement([("app.zip", ART)], PROV, pred), KEY)).index
    diff = changes_document(AuditReader(audited), old, new, None)
    got = check_changes(_checked(audited, diff), old, new)[0]
    assert got["changes"]["dependencies"]["added"] == []
    assert got["complete"] is False
    assert [(t["part"], t["index"], t["field"]) for t in got["truncated"]] == [
        ("unindexable", bad, "dependency")
    ]
    with pytest.raises(ClientError, match="incomplete: a bound cut unindexable of record"):
        _complete(got, "changes", True)
    _, told = _story(audited, new)
    assert told["complete"] is False and told["truncated"][0]["index"] == bad


VEX = "https://openvex.dev/ns/v0.2.0"
LONG = "x" * 600


def _scan(result: dict[str, Any]) -> dict[str, Any]:
    return {"scanner": {"result": [{"id": "CVE-2024-1"}, result]}}


def _vex(product: dict[str, Any]) -> dict[str, Any]:
    statement = {"vulnerability": {"name": "CVE-2024-1"}, "products": [product]}
    return {"statements": [{**statement, "status": "not_affected"}]}


@pytest.mark.parametrize(
    ("ptype", "pred", "name"),
    [
        (SCAN, _scan({"id": "CVE-2099-" + "1" * 600}), "vulnerability"),
        (SCAN, _scan({"id": 2099}), "vulnerability"),
        (SCAN, _scan({"id": {"cve": "CVE-2099-1"}}), "statement"),  # unhashable: reading stops
        (SCAN, _scan({"id": "CVE-2099-1", "annotations": [{"aliases": [LONG]}]}), "vulnerability"),
        (SCAN, _scan({"id": "CVE-2099-1", "annotations": [{"package": LONG}]}), "component"),
        (VEX, _vex({"@id": "pkg:generic/app@" + LONG, "hashes": {"sha-256": ART}}), "product"),
        (
            VEX,
            _vex({"hashes": {"sha-256": ART}, "subcomponents": [{"@id": "pkg:x/y@" + LONG}]}),
            "component",
        ),
        # h38: shapes the schema does not give were read as empty, with no note
        (SCAN, {"scanner": {"result": {"id": "CVE-2099-1"}}}, "scanner.result"),
        (SCAN, {"scanner": {"result": [{"id": "CVE-2024-1"}, "CVE-2099-1"]}}, "scanner.result[]"),
        (SCAN, {"scanner": [{"result": [{"id": "CVE-2099-1"}]}]}, "scanner"),
        (VEX, {"statements": {"status": "affected"}}, "statements"),
        (
            VEX,
            {
                "statements": [
                    {
                        "vulnerability": {"name": "CVE-2024-1"},
                        "products": [{"hashes": {"sha-256": ART}}],
                        "status": "Affected",
                    }
                ]
            },
            "status",
        ),
    ],
)
def test_a_vulnerability_value_the_index_cannot_hold_makes_the_answer_incomplete(
    audited: Ledger, ptype: str, pred: dict[str, Any], name: str
) -> None:
    """h37 [1]: a scan finding whose id was over 512 characters (or an overlong VEX product or
    subcomponent) was dropped by read_facts without a note: the story showed no vulnerability
    and the changes no gained one, both ``complete: true``, and ``require_complete`` accepted."""
    old, new = "sha256:" + OLD, "sha256:" + ART
    audited.append(_build(OLD, "https://ci.example/b", ["requests@2.32.3"]))
    audited.append(_build(ART, "https://ci.example/b", ["requests@2.32.3"]))
    bad = audited.append(s.sign(s.statement([("app.zip", ART)], ptype, pred), KEY)).index
    diff = changes_document(AuditReader(audited), old, new, None)
    got = check_changes(_checked(audited, diff), old, new)[0]
    assert got["complete"] is False
    assert [(t["part"], t["index"], t["field"]) for t in got["truncated"]] == [
        ("unindexable", bad, name)
    ]
    with pytest.raises(ClientError, match="incomplete: a bound cut unindexable of record"):
        _complete(got, "changes", True)
    _, told = _story(audited, new)
    assert told["complete"] is False
    assert [(t["part"], t["index"], t["field"]) for t in told["truncated"]] == [
        ("unindexable", bad, name)
    ]
    with pytest.raises(ClientError, match="incomplete"):
        _complete(told, "story", True)
