"""Typed predicate models on real upstream data, their rules, and opaque unknown types."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from attest.errors import InvalidStatement
from attest.predicates import (
    PREDICATE_MODELS,
    Link,
    OpaquePredicate,
    OpenVEX,
    SLSAProvenance,
    TestResult,
    VerificationSummary,
    VexStatement,
    VulnScan,
    parse_predicate,
)
from attest.statement import parse_statement
from tests.conftest import fixture_cases, fixture_path


def bundle_statement(path: Path):  # type: ignore[no-untyped-def]
    doc = json.loads(path.read_text().splitlines()[0])
    env = doc.get("dsseEnvelope", doc)
    return parse_statement(base64.b64decode(env["payload"]))


@pytest.mark.parametrize(
    "path",
    fixture_cases(
        ("slsa-provenance",),
        lambda slsa: sorted(slsa.glob("gha_*/v2.1.0/*.build.slsa")),
        ids=lambda p: p.parent.parent.name + "/" + p.name,
    ),
)
def test_real_slsa_v1_provenance_parses(path: Path) -> None:
    st = bundle_statement(path)
    assert st.type == "https://in-toto.io/Statement/v0.1"
    model = parse_predicate(st.predicate_type, st.predicate)
    assert isinstance(model, SLSAProvenance)
    assert model.builder.id.startswith("https://github.com/")
    assert model.build_type
    again = SLSAProvenance.from_dict(model.to_dict())
    assert again == model


@pytest.mark.parametrize(
    "path",
    fixture_cases(
        ("slsa-provenance",), lambda slsa: sorted(slsa.glob("gha_*/v2.1.0/*.intoto.jsonl"))[:2]
    ),
)
def test_slsa_v02_is_carried_opaque(path: Path) -> None:
    st = bundle_statement(path)
    assert st.predicate_type == "https://slsa.dev/provenance/v0.2"
    model = parse_predicate(st.predicate_type, st.predicate)
    assert isinstance(model, OpaquePredicate)
    assert model.to_dict() == st.predicate


def test_real_vsa_parses() -> None:
    st = bundle_statement(
        fixture_path("slsa-provenance", "vsa", "gce", "v1", "gke-gce-pre.bcid-vsa.jsonl")
    )
    model = parse_predicate(st.predicate_type, st.predicate)
    assert isinstance(model, VerificationSummary)
    assert model.verification_result == "PASSED"
    assert "SLSA_BUILD_LEVEL_2" in model.verified_levels
    assert model.time_verified == datetime(2024, 6, 12, 7, 24, 34, 351608, tzinfo=UTC)
    assert VerificationSummary.from_dict(model.to_dict()) == model


def test_every_model_is_registered_by_its_type() -> None:
    assert set(PREDICATE_MODELS) == {
        "https://slsa.dev/provenance/v1",
        "https://in-toto.io/attestation/link/v0.3",
        "https://in-toto.io/attestation/test-result/v0.1",
        "https://in-toto.io/attestation/vulns/v0.2",
        "https://openvex.dev/ns/v0.2.0",
        "https://slsa.dev/verification_summary/v1",
    }


def test_link_round_trip_and_name_required() -> None:
    doc = {
        "name": "build",
        "command": ["make"],
        "materials": [{"name": "a", "digest": {"sha256": "ab" * 32}}],
        "byproducts": {"return-value": 0},
    }
    link = Link.from_dict(doc)
    assert link.to_dict() == doc
    with pytest.raises(InvalidStatement, match="name"):
        Link.from_dict({"command": ["x"]})


def test_test_result_values() -> None:
    assert TestResult.from_dict({"result": "PASSED", "passedTests": ["t1"]}).passed_tests == ("t1",)
    with pytest.raises(InvalidStatement):
        TestResult.from_dict({"result": "OK"})
    with pytest.raises(InvalidStatement):
        TestResult.from_dict({"result": "PASSED", "failedTests": "t1"})


def test_vulns_requires_scanner_uri_and_keeps_empty_result() -> None:
    scan = VulnScan.from_dict({"scanner": {"uri": "pkg:github/anchore/grype@0.79.3", "result": []}})
    assert scan.result == ()
    assert scan.to_dict()["scanner"]["result"] == []
    with pytest.raises(InvalidStatement):
        VulnScan.from_dict({"scanner": {"result": []}})
    with pytest.raises(InvalidStatement):
        VulnScan.from_dict({"scanner": {"uri": "x", "result": [{"severity": []}]}})


def _vex(**st: object) -> dict[str, object]:
    base = {
        "vulnerability": {"name": "CVE-2024-1"},
        "products": [{"@id": "pkg:pypi/a@1"}],
        "status": "fixed",
    }
    return {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "urn:x",
        "author": "ci",
        "timestamp": "2024-07-01T00:00:00Z",
        "version": 1,
        "statements": [{**base, **st}],
    }


def test_openvex_rules() -> None:
    doc = OpenVEX.from_dict(_vex())
    assert doc.statements[0].status == "fixed"
    assert OpenVEX.from_dict(doc.to_dict()) == doc
    with pytest.raises(InvalidStatement, match="justification"):
        OpenVEX.from_dict(_vex(status="not_affected"))
    OpenVEX.from_dict(_vex(status="not_affected", justification="component_not_present"))
    with pytest.raises(InvalidStatement, match="unknown justification"):
        OpenVEX.from_dict(_vex(status="not_affected", justification="because"))
    with pytest.raises(InvalidStatement, match="action_statement"):
        OpenVEX.from_dict(_vex(status="affected"))
    with pytest.raises(InvalidStatement, match="status"):
        OpenVEX.from_dict(_vex(status="patched"))
    with pytest.raises(InvalidStatement, match="no products"):
        VexStatement(vulnerability="CVE-1", products=(), status="fixed")
    bad = _vex()
    bad["@context"] = "https://example.com"
    with pytest.raises(InvalidStatement, match="not OpenVEX"):
        OpenVEX.from_dict(bad)


def test_unknown_predicate_is_opaque_not_rejected() -> None:
    value = {"anything": [1, 2, {"x": None}]}
    model = parse_predicate("https://example.com/custom/v9", value)
    assert isinstance(model, OpaquePredicate) and model.to_dict() == value


def test_bad_times_are_refused() -> None:
    doc = {
        "buildDefinition": {"buildType": "t", "externalParameters": {"a": 1}},
        "runDetails": {"builder": {"id": "b"}, "metadata": {"startedOn": "yesterday"}},
    }
    with pytest.raises(InvalidStatement, match="RFC 3339"):
        SLSAProvenance.from_dict(doc)
    doc["runDetails"]["metadata"] = {"startedOn": "2024-01-01T00:00:00"}  # type: ignore[index]
    with pytest.raises(InvalidStatement, match="time zone"):
        SLSAProvenance.from_dict(doc)


def test_finished_before_started_is_refused() -> None:
    doc = {
        "buildDefinition": {"buildType": "t", "externalParameters": {"a": 1}},
        "runDetails": {
            "builder": {"id": "b"},
            "metadata": {"startedOn": "2024-01-02T00:00:00Z", "finishedOn": "2024-01-01T00:00:00Z"},
        },
    }
    with pytest.raises(InvalidStatement, match="before startedOn") as e:
        SLSAProvenance.from_dict(doc)
    assert e.value.code == "ErrMetadataInvalid"


def test_each_registered_model_carries_its_type_and_loads_on_first_use() -> None:
    """The models load lazily (a deploy gate's start): each key still names its own class."""
    import subprocess
    import sys

    for predicate_type, model in PREDICATE_MODELS.items():
        assert predicate_type == model.PREDICATE_TYPE
    code = (
        "import sys, attest.predicates as p\n"
        "before = 'attest.predicates.vsa' in sys.modules\n"
        "p.parse_predicate('https://in-toto.io/attestation/test-result/v0.1', {'result': 'PASSED'})\n"
        "print(before, 'attest.predicates.test_result' in sys.modules,"
        " 'attest.predicates.vsa' in sys.modules, p.VerificationSummary.__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True", "False", "VerificationSummary"]
