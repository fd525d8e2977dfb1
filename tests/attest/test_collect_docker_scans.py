"""Dockerfile base images, scanner reports → Vulns, and fixes → OpenVEX."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from attest.collect.docker import parse_dockerfile
from attest.collect.scanners import parse_scan_report
from attest.collect.vex import fixed_between, fixed_vex
from attest.errors import CollectorError, InvalidInput
from attest.predicates import OpenVEX, VulnScan
from attest.statement import ResourceDescriptor

DATA = Path(__file__).parent / "data"
NOW = datetime(2024, 7, 24, 12, tzinfo=UTC)


def test_dockerfile_every_stage_and_pinning() -> None:
    images, warnings = parse_dockerfile(DATA / "Dockerfile")
    refs = [i.reference for i in images]
    # build (ARGs substituted, pinned), tools, alpine; not "build" (a stage) nor scratch
    assert refs == [
        "python:3.12-slim@sha256:2a5b3c5e3f8a6f1c4a8d0f7c9b1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6",
        "ghcr.io/example/tools:1.4",
        "alpine:3.16",
    ]
    py, tools, alpine = images
    assert py.pinned and py.stage == "build"
    assert py.descriptor.uri == (
        "pkg:docker/python@sha256:2a5b3c5e3f8a6f1c4a8d0f7c9b1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6?tag=3.12-slim"
    )
    assert dict(py.descriptor.digest) == {
        "sha256": "2a5b3c5e3f8a6f1c4a8d0f7c9b1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6"
    }
    assert tools.descriptor.uri == "pkg:docker/example/tools@1.4?repository_url=ghcr.io"
    assert alpine.descriptor.uri == "pkg:docker/alpine@3.16"
    assert not alpine.pinned and alpine.descriptor.annotations["pinned"] is False
    assert len(warnings) == 2
    assert all("not pinned by digest" in w for w in warnings)
    assert "alpine:3.16" in warnings[1] and ":12:" in warnings[1]


def test_dockerfile_errors(tmp_path: Path) -> None:
    f = tmp_path / "Dockerfile"
    f.write_text("RUN echo\n")
    with pytest.raises(CollectorError, match="no FROM"):
        parse_dockerfile(f)
    f.write_text("FROM ${UNSET}\n")
    with pytest.raises(CollectorError, match="cannot resolve"):
        parse_dockerfile(f)
    with pytest.raises(CollectorError, match="cannot read"):
        parse_dockerfile(tmp_path / "nope")


def one(scan: VulnScan, vid: str):  # type: ignore[no-untyped-def]
    found = [v for v in scan.result if v.id == vid]
    assert len(found) == 1, [v.id for v in scan.result]
    return found[0]


def test_grype() -> None:
    kind, scan = parse_scan_report(DATA / "grype.json", now=NOW)
    assert kind == "grype" and scan.scanner_version == "0.79.3"
    assert scan.scanner_uri == "pkg:github/anchore/grype@0.79.3"
    v = one(scan, "GHSA-9wx4-h78v-vm56")
    ann = v.annotations[0]
    assert ann["package"] == "pkg:pypi/requests@2.31.0"
    assert ann["fixedIn"] == ["2.32.0"] and ann["aliases"] == ["CVE-2024-35195"]
    assert ("nvd@nist.gov", "5.6") in [(s.method, s.score) for s in v.severity]
    assert scan.db["lastUpdate"] == "2024-07-22T01:31:27Z"
    assert scan.scan_finished_on == datetime(2024, 7, 22, 8, 11, 12, 123456, tzinfo=UTC)
    VulnScan.from_dict(scan.to_dict())


def test_trivy() -> None:
    kind, scan = parse_scan_report(DATA / "trivy.json", now=NOW)
    assert kind == "trivy" and len(scan.result) == 1
    v = one(scan, "CVE-2024-5535")
    assert v.annotations[0]["fixedIn"] == ["3.0.14-r0", "3.1.6-r0"]
    assert ("trivy", "CRITICAL") in [(s.method, s.score) for s in v.severity]


def test_snyk() -> None:
    kind, scan = parse_scan_report(DATA / "snyk.json", now=NOW)
    assert kind == "snyk"
    v = one(scan, "SNYK-PYTHON-URLLIB3-7267250")
    assert v.annotations[0]["package"] == "pkg:pypi/urllib3@2.2.1"
    assert v.annotations[0]["aliases"] == ["CVE-2024-37891"]
    assert scan.scan_finished_on == NOW  # the report has no time of its own


def test_osv_scanner() -> None:
    kind, scan = parse_scan_report(DATA / "osv.json", now=NOW)
    assert kind == "osv-scanner"
    v = one(scan, "GO-2024-2687")
    assert v.annotations[0]["package"] == "pkg:golang/golang.org/x/net@0.22.0"
    assert v.annotations[0]["fixedIn"] == ["0.23.0"]
    assert ("osv_max_severity", "7.5") in [(s.method, s.score) for s in v.severity]


def test_unknown_and_malformed_reports(tmp_path: Path) -> None:
    f = tmp_path / "r.json"
    f.write_text('{"hello": 1}')
    with pytest.raises(CollectorError, match="not a Grype, Trivy, Snyk or OSV"):
        parse_scan_report(f, now=NOW)
    f.write_text('{"matches": [{"artifact": {}}], "descriptor": {}}')
    with pytest.raises(CollectorError, match="malformed grype"):
        parse_scan_report(f, now=NOW)


def test_fixes_from_two_scans_become_openvex() -> None:
    _, before = parse_scan_report(DATA / "grype.json", now=NOW)
    _, after = parse_scan_report(DATA / "grype-after-fix.json", now=NOW)
    assert fixed_between(before, after) == ["GHSA-9wx4-h78v-vm56"]
    assert fixed_between(after, before) == []
    subject = ResourceDescriptor(name="app.whl", digest={"sha256": "ab" * 32})
    doc = fixed_vex(
        ["GHSA-9wx4-h78v-vm56", "CVE-2024-1", "CVE-2024-1"],
        [subject],
        author="ci",
        now=NOW,
        note="commit abc",
    )
    assert [s.vulnerability for s in doc.statements] == ["CVE-2024-1", "GHSA-9wx4-h78v-vm56"]
    st = doc.statements[0]
    assert st.status == "fixed" and st.products == ("app.whl",)
    assert doc.to_dict()["statements"][0]["products"][0]["hashes"] == {"sha-256": "ab" * 32}
    assert OpenVEX.from_dict(doc.to_dict()) == doc
    with pytest.raises(InvalidInput, match="no vulnerabilities"):
        fixed_vex([" "], [subject], author="ci", now=NOW)
