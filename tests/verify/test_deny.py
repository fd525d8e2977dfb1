"""The deny rules on third-party attestations (no ledger): a denied PyPI project is found under
any of its PEP 503 spellings, and a finding is judged by its CVSS vector's base score; a severity
that cannot be ranked fails closed (hostile finding F6)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from attest.dsse import sign_envelope
from attest.signers import read_signer, write_keypair
from tests.verify.conftest import OPENVEX, SLSA, VULNS, digest_of, provenance, scan, statement, vex
from verify.artifact import Artifact
from verify.deny import severity_rank
from verify.pipeline import Outcome, verify_attestations
from verify.policy import load_policy
from verify.trust import Trust

NOW = datetime(2026, 12, 1, tzinfo=UTC)
NAME = "app.tar.gz"
CRITICAL_VECTOR = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8


def _judge(tmp_path: Path, deny: dict[str, Any], *statements: dict[str, Any]) -> Outcome:
    if not (tmp_path / "ci").exists():
        write_keypair(tmp_path / "ci", "ed25519", None)
    signer = read_signer(tmp_path / "ci")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "provenance-ledger.dev/v1",
                "kind": "VerifyPolicy",
                "signers": {"ci": {"key": str(tmp_path / "ci.pub")}},
                "steps": [{"name": "build", "predicateType": SLSA, "signers": ["ci"]}],
                "deny": deny,
            }
        )
    )
    p = load_policy(policy)
    bodies = [sign_envelope(json.dumps(s).encode(), [signer]).to_json() for s in statements]
    art = [Artifact(NAME, {"sha256": digest_of(NAME)})]
    return verify_attestations(p, Trust.load(p), art, bodies, NOW)


def _rule(out: Outcome, prefix: str) -> Any:
    return next(r for r in out.rules if r.rule.startswith(prefix))


@pytest.mark.parametrize(
    ("denied", "recorded"),
    [
        ("pkg:pypi/zope.interface", "pkg:pypi/zope-interface@5.0"),  # the tester's case
        ("pkg:pypi/zope-interface", "pkg:pypi/zope.interface@5.0"),
        ("pkg:pypi/Zope_Interface", "pkg:pypi/zope..interface@5.0"),
        ("pkg:pypi/zope.interface", "pkg:pypi/ZOPE_interface@5.0"),
    ],
)
def test_a_denied_pypi_project_is_found_under_any_pep_503_spelling(
    tmp_path: Path, denied: str, recorded: str
) -> None:
    deny = {"dependencies": [{"purl": denied, "versions": "vers:pypi/<6.0"}]}
    out = _judge(tmp_path, deny, statement(NAME, SLSA, provenance(deps=(recorded,))))
    rule = _rule(out, "deny dependencies")
    assert not rule.passed and recorded in rule.reason
    assert out.exit_code == 1


def test_pep_503_folds_only_pypi_names(tmp_path: Path) -> None:
    """npm's ``lodash.merge`` is not ``lodash-merge``: other ecosystems keep their names."""
    deny = {"dependencies": [{"purl": "pkg:npm/lodash-merge"}]}
    out = _judge(
        tmp_path, deny, statement(NAME, SLSA, provenance(deps=("pkg:npm/lodash.merge@4",)))
    )
    assert _rule(out, "deny dependencies").passed


@pytest.mark.parametrize(
    ("score", "rank"),
    [
        (CRITICAL_VECTOR, 4),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 4),
        ("CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1),  # 1.9
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0),  # 0.0: none
        ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 4),  # 9.3
        ("AV:N/AC:L/Au:N/C:P/I:P/A:P", 3),  # v2: 7.5
        ("9.8", 4),
        ("High", 3),
        ("moderate", 2),
        ("none", 0),
        ("Negligible", 0),  # Grype's word below low
        ("Unknown", None),  # Grype's and Trivy's: fails closed
        ("CVSS:3.1/AV:N", None),  # a vector missing its metrics
        ("CVSS:9.9/AV:N/AC:L", None),
        ("Important", 3),  # Red Hat: Low, Moderate, Important, Critical
        ("(AV:N/AC:L/Au:N/C:P/I:P/A:P)", 3),  # v2 in NVD's old display form
        ("(AV:N/AC:L/Au:N/C:P/I:P/A:P", None),
        ("(CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H)", None),
        ("", None),
        ("nan", None),
        ("11", None),
        ("CVSS:3.1/" + "AV:N/" * 10_000, None),
    ],
)
def test_severity_rank(score: str, rank: int | None) -> None:
    assert severity_rank(score) == rank


V4_CRITICAL = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"  # 9.3 base


@pytest.mark.parametrize(
    ("vector", "rank"),
    [
        # h35: threat and environmental metrics lowered v4's score (0.0, 8.1, 0.4): base ranks
        (V4_CRITICAL + "/MVC:N/MVI:N/MVA:N/MSC:N/MSI:N/MSA:N", 4),
        (V4_CRITICAL + "/E:U", 4),
        (V4_CRITICAL + "/MAV:P/MVC:L/MVI:L/MVA:N/E:U", 4),
        (V4_CRITICAL + "/E:U/CR:L/IR:L/AR:L/S:N/AU:N/R:A/V:D/RE:L/U:Clear", 4),
        # metrics given out of the specification's order score the same
        ("CVSS:4.0/SA:N/SI:N/SC:N/VA:H/VI:H/VC:H/UI:N/PR:N/AT:N/AC:L/AV:N/E:U", 4),
        # … and environmental metrics cannot raise a base-low finding either
        ("CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N/MAV:N/MVC:H", 1),
        (V4_CRITICAL + "/E:Z", None),  # a malformed threat metric still fails closed
        (V4_CRITICAL + "/AV:P", None),  # so does a metric given twice
        (CRITICAL_VECTOR + "/E:U/RL:O/RC:U/MAV:P/MAC:H/MPR:H/MUI:R/MC:N/MI:N/MA:N/CR:L", 4),
        ("AV:N/AC:L/Au:N/C:C/I:C/A:C/E:U/RL:OF/RC:UC/CDP:N/TD:N/CR:L/IR:L/AR:L", 4),
    ],
)
def test_a_vector_ranks_by_its_base_metrics_alone(vector: str, rank: int | None) -> None:
    assert severity_rank(vector) == rank


def test_a_lowered_v4_vector_cannot_pass_a_base_critical_finding(tmp_path: Path) -> None:
    """The scanner's own word (``low``) beside the vector does not lower it either."""
    deny = {"vulnerabilities": {"severityAtLeast": "critical"}}
    build = statement(NAME, SLSA, provenance())
    for extra in ("/E:U", "/MVC:N/MVI:N/MVA:N/MSC:N/MSI:N/MSA:N"):
        vector = {"method": "CVSS_V4", "score": V4_CRITICAL + extra}
        out = _judge(tmp_path, deny, build, _scan_of({"method": "grype", "score": "low"}, vector))
        rule = _rule(out, "deny vulnerabilities")
        assert not rule.passed and "CVE-2099-0001 (critical)" in rule.reason
        assert out.exit_code == 1


@pytest.mark.parametrize(("level", "passes"), [("critical", True), ("high", False)])
def test_red_hats_important_ranks_as_high(tmp_path: Path, level: str, passes: bool) -> None:
    deny = {"vulnerabilities": {"severityAtLeast": level}}
    sev = {"method": "redhat", "score": "Important"}
    out = _judge(tmp_path, deny, statement(NAME, SLSA, provenance()), _scan_of(sev))
    assert _rule(out, "deny vulnerabilities").passed is passes


def _scan_of(*severities: dict[str, str]) -> dict[str, Any]:
    doc = scan("CVE-2099-0001", "unused")
    doc["scanner"]["result"][0]["severity"] = list(severities)
    return statement(NAME, VULNS, doc)


def test_a_critical_finding_given_as_a_cvss_vector_is_denied(tmp_path: Path) -> None:
    deny = {"vulnerabilities": {"severityAtLeast": "critical"}}
    build = statement(NAME, SLSA, provenance())
    vector = {"method": "CVSS_V3", "score": CRITICAL_VECTOR}
    out = _judge(tmp_path, deny, build, _scan_of(vector))
    rule = _rule(out, "deny vulnerabilities")
    assert not rule.passed and "CVE-2099-0001 (critical)" in rule.reason
    low = {"method": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"}
    assert _rule(_judge(tmp_path, deny, build, _scan_of(low)), "deny vulnerabilities").passed


@pytest.mark.parametrize(
    "severities",
    [
        [{"method": "vendor", "score": "Unknown"}],
        [{"method": "CVSS_V3", "score": "CVSS:3.1/AV:N"}],
        [{"method": "grype", "score": "low"}, {"method": "vendor", "score": "catastrophic"}],
        [],
    ],
)
def test_a_severity_that_cannot_be_ranked_fails_closed(
    tmp_path: Path, severities: list[dict[str, str]]
) -> None:
    deny = {"vulnerabilities": {"severityAtLeast": "critical"}}
    out = _judge(tmp_path, deny, statement(NAME, SLSA, provenance()), _scan_of(*severities))
    rule = _rule(out, "deny vulnerabilities")
    assert not rule.passed and "CVE-2099-0001" in rule.reason
    assert "could not be ranked" in rule.reason
    assert out.exit_code == 1


def _found_in(package: str | None) -> dict[str, Any]:
    """A critical finding of CVE-2099-0001 in ``package`` (as ``attest scan`` records it)."""
    doc = scan("CVE-2099-0001", "critical")
    if package is not None:
        doc["scanner"]["result"][0]["annotations"] = [{"package": package}]
    return statement(NAME, VULNS, doc)


def _vex_of(*products: dict[str, Any], status: str = "not_affected", when: str = "") -> Any:
    doc = vex("CVE-2099-0001", "unused", status)
    doc["statements"][0]["products"] = list(products)
    if when:
        doc["statements"][0]["timestamp"] = when
    if status == "affected":
        doc["statements"][0]["action_statement"] = "upgrade"
    return statement(NAME, OPENVEX, doc)


def _cleared(tmp_path: Path, *statements: dict[str, Any]) -> bool:
    deny = {"vulnerabilities": {"severityAtLeast": "high"}}
    out = _judge(tmp_path, deny, statement(NAME, SLSA, provenance()), *statements)
    rule = _rule(out, "deny vulnerabilities")
    assert rule.passed == (out.exit_code == 0)
    return bool(rule.passed)


def _me(**extra: Any) -> dict[str, Any]:
    return {"@id": f"sha256:{digest_of(NAME)}", **extra}


# h35 #4: a not_affected scoped to one subcomponent (zlib) cleared the CVE for the whole artifact
@pytest.mark.parametrize(
    ("finding", "subcomponents", "cleared"),
    [
        ("pkg:deb/debian/openssl@3.0", [{"@id": "pkg:deb/debian/zlib@1.0"}], False),
        (None, [{"@id": "pkg:deb/debian/zlib@1.0"}], False),  # a finding with no package
        ("openssl", [{"@id": "pkg:deb/debian/openssl@3.0"}], False),  # a bare name is no purl
        ("pkg:deb/debian/zlib@1.0", [{"@id": "pkg:deb/debian/zlib@1.0"}], True),
        ("pkg:deb/debian/zlib@1.0?arch=amd64", [{"@id": "pkg:deb/debian/zlib@1.0"}], True),
        ("pkg:deb/debian/zlib@1.1", [{"@id": "pkg:deb/debian/zlib@1.0"}], False),
        ("pkg:deb/debian/zlib@1.1", [{"@id": "pkg:deb/debian/zlib"}], True),  # any version
        ("pkg:deb/debian/zlib@1.0", [{"@id": "pkg:deb/debian/zlib@1.0?arch=arm64"}], False),
        ("pkg:pypi/Zope_Interface@5.0", [{"@id": "pkg:pypi/zope.interface@5.0"}], True),
        ("pkg:npm/%40Scope/Pkg@1.0", [{"@id": "pkg:npm/%40scope/pkg@1.0"}], True),
        ("pkg:golang/github.com/A/b@v1", [{"@id": "pkg:golang/github.com/a/b@v1"}], False),
        (
            "pkg:deb/debian/zlib@1.0",
            [{"@id": "urn:x", "identifiers": {"purl": "pkg:deb/debian/zlib@1.0"}}],
            True,
        ),
        ("pkg:deb/debian/zlib@1.0", [{"@id": "urn:x", "hashes": {"sha-256": "ab" * 32}}], False),
        ("pkg:deb/debian/zlib@1.0", [], False),  # scoped to nothing is not the whole artifact
        ("pkg:deb/debian/zlib@1.0", "pkg:deb/debian/zlib@1.0", False),
    ],
)
def test_a_vex_scoped_to_subcomponents_clears_only_their_findings(
    tmp_path: Path, finding: str | None, subcomponents: Any, cleared: bool
) -> None:
    product = _me(subcomponents=subcomponents)
    assert _cleared(tmp_path, _found_in(finding), _vex_of(product)) is cleared
    # unscoped, the same statement clears the finding whatever its package
    assert _cleared(tmp_path, _found_in(finding), _vex_of(_me()))


def test_the_latest_statement_that_speaks_about_a_finding_decides_it(tmp_path: Path) -> None:
    zlib, openssl = "pkg:deb/debian/zlib@1.0", "pkg:deb/debian/openssl@3.0"
    whole = _vex_of(_me(), when="2026-11-02T10:00:00Z")
    later_zlib = _vex_of(
        _me(subcomponents=[{"@id": zlib}]), status="affected", when="2026-11-03T10:00:00Z"
    )
    # a later `affected` about zlib reopens zlib's finding, not openssl's
    assert not _cleared(tmp_path, _found_in(zlib), whole, later_zlib)
    assert _cleared(tmp_path, _found_in(openssl), whole, later_zlib)
    # a later unscoped `affected` reopens every finding a scoped statement had cleared
    scoped = _vex_of(_me(subcomponents=[{"@id": zlib}]), when="2026-11-02T10:00:00Z")
    reopened = _vex_of(_me(), status="affected", when="2026-11-03T10:00:00Z")
    assert _cleared(tmp_path, _found_in(zlib), scoped)
    assert not _cleared(tmp_path, _found_in(zlib), scoped, reopened)
    # a second product naming the artifact unscoped makes the statement about all of it
    both = _vex_of(_me(subcomponents=[{"@id": zlib}]), {"@id": NAME})
    assert _cleared(tmp_path, _found_in(openssl), both)


# h35 #5b: an upper-case algorithm in a purl's digest qualifier did not name the artifact
@pytest.mark.parametrize(
    "pid",
    [
        "pkg:oci/other@1?digest=SHA256:{hex}",
        "pkg:oci/other@1?digest=Sha-256:{HEX}",
        "pkg:generic/app@1?checksum=SHA1:" + "ab" * 20 + ",SHA256:{hex}",
        "SHA256:{HEX}",
        "ghcr.io/example/app@SHA256:{hex}",
    ],
)
def test_a_digest_names_the_artifact_whatever_its_case(tmp_path: Path, pid: str) -> None:
    hexd = digest_of(NAME)
    product = {"@id": pid.format(hex=hexd, HEX=hexd.upper())}
    assert _cleared(tmp_path, _found_in(None), _vex_of(product))
    other = {"@id": pid.format(hex="cd" * 32, HEX="CD" * 32)}
    assert not _cleared(tmp_path, _found_in(None), _vex_of(other))


@pytest.mark.parametrize(
    ("denied", "recorded", "found"),
    [
        ("pkg:npm/%40evil/pkg", "pkg:npm/%40Evil/Pkg@1.0.0", True),  # npm names are lower case
        ("pkg:github/Evil/Repo", "pkg:github/evil/repo@v1", True),
        ("pkg:maven/org.evil/Lib", "pkg:maven/org.evil/lib@1.0", False),  # case-sensitive types
        ("pkg:golang/github.com/Evil/mod", "pkg:golang/github.com/evil/mod@v1.0.0", False),
    ],
)
def test_a_denied_name_is_folded_where_its_purl_type_is_case_insensitive(
    tmp_path: Path, denied: str, recorded: str, found: bool
) -> None:
    """The deny rule reads purls as VEX products are read (one normalisation): a case-insensitive
    type's name in another case is the same package; a case-sensitive type's is not."""
    deny = {"dependencies": [{"purl": denied}]}
    out = _judge(tmp_path, deny, statement(NAME, SLSA, provenance(deps=(recorded,))))
    assert _rule(out, "deny dependencies").passed is not found


@pytest.mark.parametrize(
    ("predicate_type", "odd"),
    [
        (VULNS, {"id": 12345}),  # a finding whose id is no string: the predicate breaks its schema
        (VULNS, {"id": "CVE-2024-0002", "severity": "Low"}),
        (VULNS, "CVE-2024-0002"),
        ("https://in-toto.io/attestation/vulns/v0.1", None),  # a version the gate does not read
        ("https://in-toto.io/attestation/vulns", None),
    ],
)
def test_a_trusted_scan_the_gate_cannot_read_fails_the_rule(
    tmp_path: Path, predicate_type: str, odd: Any
) -> None:
    """A scan that names the artifact and cannot be read may hide a finding: the rule fails
    instead of reading it as no scan at all (hostile round 3: exit 0 with a critical finding)."""
    deny = {"vulnerabilities": {"severityAtLeast": "high"}}
    doc = scan("CVE-2024-0001", "Critical")
    if odd is not None:
        doc["scanner"]["result"].append(odd)
    build = statement(NAME, SLSA, provenance())
    out = _judge(tmp_path, deny, build, statement(NAME, predicate_type, doc))
    rule = _rule(out, "deny vulnerabilities")
    assert not rule.passed and "a trusted scan cannot be read" in rule.reason
    assert out.exit_code == 1


def _with_dependency(entry: dict[str, Any]) -> dict[str, Any]:
    pred = provenance()
    pred["buildDefinition"]["resolvedDependencies"] = [entry]
    return statement(NAME, SLSA, pred)


WHEEL = "https://files.example/requests-2.0.0-py3-none-any.whl"


@pytest.mark.parametrize(
    ("entry", "denied"),
    [
        ({"uri": WHEEL, "annotations": {"purl": "pkg:pypi/requests@2.0.0"}}, True),
        ({"name": "pkg:pypi/requests@2.0.0"}, True),
        ({"uri": WHEEL, "annotations": {"purl": "pkg:pypi/requests", "version": "2.0.0"}}, True),
        ({"uri": WHEEL, "annotations": {"purl": "pkg:pypi/requests@2.32.3"}}, False),
        ({"uri": WHEEL}, False),  # no purl anywhere: nothing to compare
    ],
)
def test_a_dependency_is_read_from_every_field_that_names_its_purl(
    tmp_path: Path, entry: dict[str, Any], denied: bool
) -> None:
    """``uri``, ``annotations.purl`` and ``name``, as the audit index reads them (hostile round 3:
    a purl given in ``annotations`` or ``name`` escaped the rule while the story showed it)."""
    deny = {"dependencies": [{"purl": "pkg:pypi/requests", "versions": "vers:pypi/<2.32.0"}]}
    out = _judge(tmp_path, deny, _with_dependency(entry))
    assert _rule(out, "deny dependencies").passed is not denied


@pytest.mark.parametrize("subject", [{"sha256": "UPPER"}, {"SHA256": "lower"}])
def test_a_scan_naming_the_artifact_in_upper_case_counts(
    tmp_path: Path, subject: dict[str, str]
) -> None:
    """Algorithm names and hex are compared case-insensitively, as the audit index reads them
    (hostile round 4: a critical finding in such a scan passed as "no scan names" the artifact)."""
    doc = statement(NAME, VULNS, scan("CVE-2024-0001", "Critical"))
    alg, case = next(iter(subject.items()))
    hexes = digest_of(NAME)
    doc["subject"] = [{"name": NAME, "digest": {alg: hexes.upper() if case == "UPPER" else hexes}}]
    out = _judge(tmp_path, {"vulnerabilities": {"severityAtLeast": "high"}}, doc)
    rule = _rule(out, "deny vulnerabilities")
    assert not rule.passed and "CVE-2024-0001" in rule.reason


@pytest.mark.parametrize(
    "ptype",
    ["https://openvex.dev/ns/v0.2.1", "https://openvex.dev/ns/v0.2.0/", "https://openvex.dev/ns"],
)
def test_a_later_vex_the_gate_cannot_read_fails_the_rule(tmp_path: Path, ptype: str) -> None:
    """A `fixed` followed by an `affected` under a VEX version the gate does not read: the fix
    must not stand unchallenged (hostile round 4: exit 0, "covered by VEX")."""
    product = {"@id": f"pkg:generic/app@1?digest=sha256:{digest_of(NAME)}"}
    fixed = _vex_of(product, status="fixed", when="2026-11-05T00:00:00Z")
    reopened = _vex_of(product, status="affected", when="2026-11-20T00:00:00Z")
    reopened["predicateType"] = ptype
    out = _judge(
        tmp_path, {"vulnerabilities": {"severityAtLeast": "high"}}, _found_in(None), fixed, reopened
    )
    rule = _rule(out, "deny vulnerabilities")
    assert not rule.passed and "a trusted VEX cannot be read" in rule.reason


@pytest.mark.parametrize(
    ("entry", "denied"),
    [
        ({"uri": "PKG:pypi/requests@2.0.0"}, True),  # the scheme is case-insensitive
        ({"uri": "pkg:pypi/requests@2.0.0?bad"}, True),  # unreadable as a purl: fails closed
        ({"uri": WHEEL, "annotations": {"purl": ["pkg:pypi/requests@2.0.0"]}}, False),
        ({"uri": WHEEL, "name": {"purl": "pkg:pypi/requests@2.0.0"}}, False),  # no crash
        (
            {
                "uri": "pkg:pypi/requests?repository_url=https://pypi.example/simple",
                "annotations": {"version": "2.32.3"},
            },
            False,  # an honest version beside qualifiers is read, not taken as unknown
        ),
        ({"uri": "pkg:pypi/requests", "version": "2.0.0"}, True),
    ],
)
def test_dependency_spellings_the_index_reads_are_judged(
    tmp_path: Path, entry: dict[str, Any], denied: bool
) -> None:
    deny = {"dependencies": [{"purl": "pkg:pypi/requests", "versions": "vers:pypi/<2.32.0"}]}
    out = _judge(tmp_path, deny, _with_dependency(entry))
    assert _rule(out, "deny dependencies").passed is not denied


def test_a_vex_speaks_about_its_vulnerabilitys_aliases_too(tmp_path: Path) -> None:
    """A later `affected` about GHSA-… with the alias CVE-2099-0001 reopens the CVE an earlier
    `fixed` cleared (hostile round 4: the alias was dropped and the fix stood; exit 0)."""
    product = {"@id": f"pkg:generic/app@1?digest=sha256:{digest_of(NAME)}"}
    fixed = _vex_of(product, status="fixed", when="2026-11-05T00:00:00Z")
    reopened = _vex_of(product, status="affected", when="2026-11-20T00:00:00Z")
    reopened["predicate"]["statements"][0]["vulnerability"] = {
        "name": "GHSA-aaaa-bbbb-cccc",
        "aliases": ["CVE-2099-0001"],
    }
    assert _cleared(tmp_path, _found_in(None), fixed)
    assert not _cleared(tmp_path, _found_in(None), fixed, reopened)
