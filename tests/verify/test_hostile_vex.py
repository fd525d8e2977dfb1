"""Hostile cases of the vulnerability rule (issue and fix notes): the latest trusted VEX statement
decides, a VEX about another product — or one that only mentions the artifact's digest, or is
dated in the future — clears nothing, no scan is no evidence of no vulnerability, and a scan stays one whatever an
unsigned field claims."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.verify.conftest import (
    OPENVEX,
    VULNS,
    DemoLedger,
    digest_of,
    scan,
    statement,
    vex,
)
from tests.verify.gate import fresh, issue_policy, record_passing, report, sha
from tests.verify.test_hostile import _envelope


def _vex(cve: str, products: list[dict[str, Any]], status: str, when: str) -> dict[str, Any]:
    doc = vex(cve, "unused", status)
    doc["timestamp"] = when
    doc["statements"][0]["products"] = products
    if status == "affected":
        doc["statements"][0]["action_statement"] = "upgrade"
    return doc


def _vulns(demo: DemoLedger, tmp_path: Path, name: str) -> dict[str, Any]:
    code, doc = report(sha(name), "--policy", issue_policy(demo, tmp_path), "--db", demo.db)
    rule = next(r for r in doc["rules"] if r["rule"] == "deny vulnerabilities")
    assert (code == 0) == rule["passed"], doc
    return dict(rule)


def _scanned(demo: DemoLedger) -> str:
    name = fresh("vex")
    record_passing(demo, name)
    demo.append(statement(name, VULNS, scan("CVE-2021-44228", "Critical")))
    return name


def test_the_latest_vex_statement_wins(demo: DemoLedger, tmp_path: Path) -> None:
    name = _scanned(demo)
    me = [{"@id": sha(name)}]
    demo.append(
        statement(name, OPENVEX, _vex("CVE-2021-44228", me, "fixed", "2026-11-02T10:00:00Z"))
    )
    assert _vulns(demo, tmp_path, name)["passed"]
    later = _vex("CVE-2021-44228", me, "under_investigation", "2026-11-03T10:00:00Z")
    demo.append(statement(name, OPENVEX, later))
    assert not _vulns(demo, tmp_path, name)["passed"]
    # an older statement recorded later does not win over a newer one
    demo.append(
        statement(name, OPENVEX, _vex("CVE-2021-44228", me, "fixed", "2026-11-01T00:00:00Z"))
    )
    assert not _vulns(demo, tmp_path, name)["passed"]
    # same timestamp: the later ledger record wins, either way
    demo.append(
        statement(name, OPENVEX, _vex("CVE-2021-44228", me, "not_affected", "2026-11-03T10:00:00Z"))
    )
    assert _vulns(demo, tmp_path, name)["passed"]
    demo.append(
        statement(name, OPENVEX, _vex("CVE-2021-44228", me, "affected", "2026-11-03T10:00:00Z"))
    )
    rule = _vulns(demo, tmp_path, name)
    assert not rule["passed"] and "CVE-2021-44228 (critical)" in rule["reason"]


def test_a_vex_about_another_product_clears_nothing(demo: DemoLedger, tmp_path: Path) -> None:
    name = _scanned(demo)
    when = "2026-11-02T10:00:00Z"
    for products in (
        [{"@id": "pkg:npm/unrelated@1.0"}],
        [{"@id": "pkg:npm/unrelated@1.0", "hashes": {"sha-256": "ab" * 32}}],
        [{"@id": sha(fresh())}],
    ):
        demo.append(
            statement(name, OPENVEX, _vex("CVE-2021-44228", products, "not_affected", when))
        )
        assert not _vulns(demo, tmp_path, name)["passed"], products
    hashed = [{"@id": "pkg:generic/app@1", "hashes": {"sha-256": digest_of(name)}}]
    demo.append(statement(name, OPENVEX, _vex("CVE-2021-44228", hashed, "not_affected", when)))
    rule = _vulns(demo, tmp_path, name)
    assert rule["passed"] and "covered by VEX: CVE-2021-44228" in rule["reason"]


def test_a_vex_naming_its_subject_or_a_purl_digest_clears(demo: DemoLedger, tmp_path: Path) -> None:
    when = "2026-11-02T10:00:00Z"
    for product in (
        {"@id": "placeholder"},  # the @id is the in-toto subject's name
        {"@id": "pkg:oci/app@sha256%3A{hex}"},
        {"@id": "urn:x", "identifiers": {"purl": "pkg:oci/app@sha256:{hex}"}},
    ):
        name = _scanned(demo)
        pid = (
            name if product["@id"] == "placeholder" else product["@id"].format(hex=digest_of(name))
        )
        p = {**product, "@id": pid}
        if "identifiers" in p:
            p["identifiers"] = {"purl": p["identifiers"]["purl"].format(hex=digest_of(name))}
        demo.append(statement(name, OPENVEX, _vex("CVE-2021-44228", [p], "not_affected", when)))
        assert _vulns(demo, tmp_path, name)["passed"], p


def test_a_vulnerability_rule_with_no_scan_says_so_and_fails_when_a_scan_is_required(
    demo: DemoLedger, tmp_path: Path
) -> None:
    """No scan is no evidence of no vulnerability: the row says so, and requireScan fails it."""
    name = fresh("unscanned")
    record_passing(demo, name)
    for required, want in ((False, 0), (True, 1)):
        deny = {"vulnerabilities": {"severityAtLeast": "high", "requireScan": required}}
        policy = demo.policy(tmp_path / f"p-{required}.yaml", deny=deny)
        code, doc = report(sha(name), "--policy", policy, "--db", demo.db)
        assert code == want
        row = next(r for r in doc["rules"] if r["rule"] == "deny vulnerabilities")
        assert row["passed"] is not required and "no" in row["reason"] and "scan" in row["reason"]


def test_a_vex_product_that_only_mentions_the_digest_clears_nothing(
    demo: DemoLedger, tmp_path: Path
) -> None:
    """Hostile finding F8: the artifact's digest anywhere in a product's text cleared it. Only a
    digest that is the product's identity counts (the whole @id, a purl's version or digest /
    checksum qualifier, a reference's @DIGEST)."""
    name = _scanned(demo)
    hexd = digest_of(name)
    when = "2026-11-02T10:00:00Z"
    for pid in (
        f"pkg:npm/unrelated@1.0?note=sha256:{hexd}",
        f"pkg:npm/unrelated@1.0#sha256:{hexd}",
        f"pkg:npm/unrelated@1.0?vcs_url=git%2Bhttps://x@sha256:{hexd}",
        f"https://example.com/sha256:{hexd}/unrelated",
        f"urn:x?note=x@sha256:{hexd}",
        f"sha256:{hexd}ff",
        f"see sha256:{hexd}",
    ):
        products = [{"@id": pid}]
        demo.append(
            statement(name, OPENVEX, _vex("CVE-2021-44228", products, "not_affected", when))
        )
        assert not _vulns(demo, tmp_path, name)["passed"], pid
    for template in (
        "pkg:generic/app@1?checksum=sha1:" + "ab" * 20 + ",sha256:{hex}",
        "pkg:oci/app?digest=sha256%3A{hex}",
        "ghcr.io/example/app@sha256:{hex}",
    ):
        name = _scanned(demo)
        products = [{"@id": template.format(hex=digest_of(name))}]
        demo.append(
            statement(name, OPENVEX, _vex("CVE-2021-44228", products, "not_affected", when))
        )
        assert _vulns(demo, tmp_path, name)["passed"], template


def test_a_vex_statement_dated_in_the_future_does_not_outrank_later_records(
    demo: DemoLedger, tmp_path: Path
) -> None:
    """Hostile finding F8: a `fixed` dated 2099 outranked every later statement. A statement is
    never later than its own record: the later record's `affected` reopens the finding."""
    name = _scanned(demo)
    me = [{"@id": sha(name)}]
    demo.append(
        statement(name, OPENVEX, _vex("CVE-2021-44228", me, "fixed", "2099-06-01T00:00:00Z"))
    )
    assert _vulns(demo, tmp_path, name)["passed"]
    later = _vex("CVE-2021-44228", me, "affected", "2099-01-01T00:00:00Z")
    demo.append(statement(name, OPENVEX, later))
    rule = _vulns(demo, tmp_path, name)
    assert not rule["passed"] and "CVE-2021-44228 (critical)" in rule["reason"]


def test_a_registry_media_type_in_an_unsigned_field_does_not_hide_a_scan(
    demo: DemoLedger, tmp_path: Path
) -> None:
    name = fresh("hidden-scan")
    record_passing(demo, name)
    env = json.loads(_envelope(demo, statement(name, VULNS, scan("CVE-2021-44228", "Critical"))))
    env["signatures"][0]["keyid"] = "application/vnd.provenance-ledger.registry.v1+json"
    r = demo.server.post("/api/v1/entries", demo.append_token, content=json.dumps(env).encode())
    assert r.status_code in (200, 201), r.text
    rule = _vulns(demo, tmp_path, name)
    assert not rule["passed"] and "CVE-2021-44228 (critical)" in rule["reason"]
