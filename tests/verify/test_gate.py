"""`verify` end to end against a real ledger seeded like the demo: issue 11's policy example over
HTTP and straight from the database, its rules, and the usage, availability and record paths.
(Proof failures: test_gate_proofs.py; registry signers: test_gate_registry.py.)"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.ledger.api.server import free_port
from tests.verify.conftest import (
    OPENVEX,
    SLSA,
    TEST_RESULT,
    VULNS,
    DemoLedger,
    digest_of,
    provenance,
    result_predicate,
    scan,
    statement,
    vex,
)
from tests.verify.gate import fresh, issue_policy, record_passing, report, sha, verify


def test_the_issue_example_passes_over_http_and_from_the_database(
    demo: DemoLedger, tmp_path: Path
) -> None:
    policy = issue_policy(demo, tmp_path)
    r = verify(demo.app_zip, "--policy", policy, "--ledger", demo.server.url)
    assert r.exit_code == 0, r.stdout + r.stderr
    for rule in ("step build", "step unit-tests", "deny dependencies", "deny vulnerabilities"):
        assert rule in r.stdout
    assert "PASSED" in r.stdout
    code, doc = report(demo.app_zip, "--policy", policy, "--db", demo.db)
    assert code == 0 and doc["verdict"] == "PASSED"
    assert all(rule["passed"] for rule in doc["rules"]) and len(doc["rules"]) == 5
    assert doc["checkpoint"]["origin"] == demo.vkey.split("+")[0]


def test_a_missing_step_is_exit_1(demo: DemoLedger, tmp_path: Path) -> None:
    name = fresh()
    demo.append(statement(name, SLSA, provenance()))
    code, doc = report(
        sha(name), "--policy", demo.policy(tmp_path / "p.yaml"), "--ledger", demo.server.url
    )
    assert code == 1 and doc["verdict"] == "FAILED"
    rules = {r["rule"]: r for r in doc["rules"]}
    assert rules["step build"]["passed"] is True
    assert rules["step unit-tests"]["passed"] is False
    assert "0 of 1" in rules["step unit-tests"]["reason"]


def test_a_wrong_builder_or_failed_tests_do_not_count(demo: DemoLedger, tmp_path: Path) -> None:
    name = fresh()
    demo.append(statement(name, SLSA, provenance(builder="https://evil.example/builder")))
    demo.append(statement(name, TEST_RESULT, result_predicate("FAILED")))
    code, doc = report(sha(name), "--policy", demo.policy(tmp_path / "p.yaml"), "--db", demo.db)
    assert code == 1
    reasons = " ".join(r["reason"] for r in doc["rules"])
    assert "https://evil.example/builder" in reasons and "test result is FAILED" in reasons


def test_a_denied_log4j_version_is_exit_1(demo: DemoLedger, tmp_path: Path) -> None:
    policy = issue_policy(demo, tmp_path)
    bad, good = fresh("log4j-old"), fresh("log4j-new")
    record_passing(demo, bad, ("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",))
    record_passing(demo, good, ("pkg:maven/org.apache.logging.log4j/log4j-core@2.17.1",))
    code, doc = report(sha(bad), "--policy", policy, "--ledger", demo.server.url)
    assert code == 1
    deny = next(r for r in doc["rules"] if r["rule"] == "deny dependencies")
    assert not deny["passed"] and "log4j-core@2.14.1" in deny["reason"]
    code, _ = report(sha(good), "--policy", policy, "--ledger", demo.server.url)
    assert code == 0


def test_an_open_high_cve_fails_until_a_vex_record_says_fixed(
    demo: DemoLedger, tmp_path: Path
) -> None:
    policy = issue_policy(demo, tmp_path)
    name = fresh("cve")
    record_passing(demo, name)
    demo.append(statement(name, VULNS, scan("CVE-2021-44228", "Critical")))
    demo.append(statement(name, VULNS, scan("CVE-2024-0001", "Low")))
    code, doc = report(sha(name), "--policy", policy, "--ledger", demo.server.url)
    assert code == 1
    vulns = next(r for r in doc["rules"] if r["rule"] == "deny vulnerabilities")
    assert "CVE-2021-44228 (critical)" in vulns["reason"] and "CVE-2024-0001" not in vulns["reason"]
    demo.append(statement(name, OPENVEX, vex("CVE-2021-44228", sha(name), "fixed")))
    code, doc = report(sha(name), "--policy", policy, "--ledger", demo.server.url)
    assert code == 0, doc
    vulns = next(r for r in doc["rules"] if r["rule"] == "deny vulnerabilities")
    assert "covered by VEX: CVE-2021-44228" in vulns["reason"]


def test_a_vex_by_an_untrusted_signer_covers_nothing(demo: DemoLedger, tmp_path: Path) -> None:
    name = fresh("cve-untrusted-vex")
    record_passing(demo, name)
    demo.append(statement(name, VULNS, scan("CVE-2021-44228", "9.8")))
    demo.append(statement(name, OPENVEX, vex("CVE-2021-44228", sha(name))), demo.other)
    policy = demo.policy(tmp_path / "p.yaml", deny={"vulnerabilities": {"severityAtLeast": "high"}})
    doc = yaml_drop_signer(policy, "other")
    code, out = report(sha(name), "--policy", doc, "--ledger", demo.server.url)
    assert code == 1
    assert any("signed by no key" in u["reason"] for u in out["untrusted"])


def yaml_drop_signer(policy: Path, name: str) -> Path:
    import yaml

    doc = yaml.safe_load(policy.read_text())
    del doc["signers"][name]
    policy.write_text(yaml.safe_dump(doc))
    return policy


def test_k_of_n_counts_distinct_signers(demo: DemoLedger, tmp_path: Path) -> None:
    steps = [{"name": "build", "predicateType": SLSA, "signers": ["ci", "other"], "threshold": 2}]
    policy = demo.policy(tmp_path / "p.yaml", steps=steps)
    name = fresh("k-of-n")
    demo.append(statement(name, SLSA, provenance()))
    demo.append(statement(name, SLSA, provenance(builder="https://ci.example/builder@v2")))
    code, doc = report(sha(name), "--policy", policy, "--db", demo.db)
    reason = doc["rules"][0]["reason"]
    assert code == 1 and "1 of 2" in reason  # ci twice is one signer
    assert "2 accepted attestation(s), signed by ci" in reason and "names it" not in reason
    demo.append(statement(name, SLSA, provenance()), demo.other)
    code, doc = report(sha(name), "--policy", policy, "--db", demo.db)
    assert code == 0 and doc["rules"][0]["reason"].startswith("signed by ci, other")
    both = fresh("k-of-n-one-envelope")
    demo.append(statement(both, SLSA, provenance()), demo.ci, demo.other)
    assert report(sha(both), "--policy", policy, "--db", demo.db)[0] == 0


def test_signer_validity_windows_use_the_record_time(demo: DemoLedger, tmp_path: Path) -> None:
    name = fresh("window")
    record_passing(demo, name)
    steps = [{"name": "build", "predicateType": SLSA, "signers": ["ci"]}]
    expired = demo.policy(
        tmp_path / "expired.yaml",
        steps=steps,
        signers={"ci": {"key": str(demo.ci_pub), "notAfter": "2020-01-01T00:00:00Z"}},
    )
    code, doc = report(sha(name), "--policy", expired, "--db", demo.db)
    assert code == 1
    assert any("not valid after 2020-01-01" in r for a in doc["attestations"] for r in a["refused"])
    current = demo.policy(
        tmp_path / "current.yaml",
        steps=steps,
        signers={"ci": {"key": str(demo.ci_pub), "notBefore": "2020-01-01T00:00:00Z"}},
    )
    assert report(sha(name), "--policy", current, "--db", demo.db)[0] == 0


def test_at_judges_as_of_a_time(demo: DemoLedger, tmp_path: Path) -> None:
    name = fresh("at")
    record_passing(demo, name)
    policy = demo.policy(tmp_path / "p.yaml", maxAge="30d")
    assert report(sha(name), "--policy", policy, "--db", demo.db)[0] == 0
    code, doc = report(
        sha(name), "--policy", policy, "--db", demo.db, "--at", "2099-01-01T00:00:00Z"
    )
    assert code == 1 and "older than maxAge" in json.dumps(doc["rules"])
    code, doc = report(
        sha(name), "--policy", policy, "--db", demo.db, "--at", "2001-01-01T00:00:00Z"
    )
    assert code == 3 and "nothing is recorded" in doc["error"]  # none of it existed then
    assert report(sha(name), "--policy", policy, "--db", demo.db, "--at", "yesterday")[0] == 2


def test_cel_expressions(demo: DemoLedger, tmp_path: Path) -> None:
    name = fresh("cel")
    record_passing(demo, name)
    ok = "predicate.runDetails.builder.id.startsWith('https://ci.example/')"
    for expr, want in ((ok, 0), ("predicate.runDetails.builder.id == 'x'", 1)):
        steps = [{"name": "build", "predicateType": SLSA, "signers": ["ci"], "expressions": [expr]}]
        policy = demo.policy(tmp_path / "p.yaml", steps=steps)
        assert report(sha(name), "--policy", policy, "--db", demo.db)[0] == want
    steps = [{"name": "build", "predicateType": SLSA, "signers": ["ci"], "expressions": ["1 +"]}]
    policy = demo.policy(tmp_path / "p.yaml", steps=steps)
    assert report(sha(name), "--policy", policy, "--db", demo.db)[0] == 2
    # also when no attestation reaches the expression: the policy is broken, not unmet
    code, doc = report(sha(fresh("cel-nothing")), "--policy", policy, "--db", demo.db)
    assert code == 2 and "does not compile" in doc["error"], doc


def test_usage_and_policy_errors_are_exit_2(demo: DemoLedger, tmp_path: Path) -> None:
    policy = demo.policy(tmp_path / "p.yaml", denyy={})
    r = verify(demo.app_zip, "--policy", policy, "--db", demo.db)
    assert r.exit_code == 2 and "denyy" in r.stderr
    good = demo.policy(tmp_path / "good.yaml")
    assert verify(demo.app_zip, "--policy", good).exit_code == 2  # no evidence source
    assert verify(tmp_path / "missing.zip", "--policy", good, "--db", demo.db).exit_code == 2
    assert verify("sha256:abc", "--policy", good, "--db", demo.db).exit_code == 2
    missing_key = demo.policy(
        tmp_path / "k.yaml", signers={"ci": {"key": "nope.pub"}, "other": {"key": "nope.pub"}}
    )
    r = verify(demo.app_zip, "--policy", missing_key, "--db", demo.db)
    assert r.exit_code == 2 and "nope.pub" in r.stderr
    (tmp_path / "other.json").write_text('{"mediaType": "application/json"}')
    (tmp_path / "broken.json").write_text("{not json")
    for bad in ("other.json", "broken.json", "absent.json"):
        r = verify(demo.app_zip, "--policy", good, "--evidence", tmp_path / bad)
        assert r.exit_code == 2, (bad, r.stderr)
    assert (
        verify(demo.app_zip, "--policy", good, "--db", demo.db, "--ledger", "http://x").exit_code
        == 2
    )


def test_an_unreachable_ledger_and_nothing_recorded_are_exit_3(
    demo: DemoLedger, tmp_path: Path
) -> None:
    policy = demo.policy(tmp_path / "p.yaml")
    r = verify(demo.app_zip, "--policy", policy, "--ledger", f"http://127.0.0.1:{free_port()}")
    assert r.exit_code == 3 and "cannot reach the ledger" in r.stderr
    code, doc = report(sha(fresh("never")), "--policy", policy, "--ledger", demo.server.url)
    assert code == 3 and "nothing is recorded" in doc["error"]


def test_a_directory_needs_every_file_to_pass(demo: DemoLedger, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    names = [fresh("dir-a"), fresh("dir-b")]
    for n in names:
        (out / n).write_text(n)
    record_passing(demo, names[0])
    policy = demo.policy(tmp_path / "p.yaml")
    code, doc = report(out, "--policy", policy, "--db", demo.db)
    assert code == 1 and len(doc["artifacts"]) == 2
    record_passing(demo, names[1])
    assert report(out, "--policy", policy, "--db", demo.db)[0] == 0


def test_record_appends_a_signed_vsa(demo: DemoLedger, tmp_path: Path) -> None:
    policy = issue_policy(demo, tmp_path)
    env = {"LEDGER_APPEND_TOKEN": demo.append_token}
    r = verify(
        demo.app_zip,
        "--policy",
        policy,
        "--ledger",
        demo.server.url,
        "--record",
        "--record-key",
        demo.work / "ci-key",
        env=env,
    )
    assert r.exit_code == 0, r.stderr
    story = demo.server.get(
        "/api/v1/evidence", params={"subject": "sha256:" + _file_sha(demo.app_zip)}
    ).json()
    vsas = [
        json.loads(base64.b64decode(json.loads(base64.b64decode(e["body"]))["payload"]))
        for e in story["entries"]
    ]
    vsa = [s for s in vsas if s["predicateType"] == "https://slsa.dev/verification_summary/v1"]
    assert vsa and vsa[-1]["predicate"]["verificationResult"] == "PASSED"
    inputs = vsa[-1]["predicate"]["inputAttestations"]
    assert inputs
    bodies = {hashlib.sha256(base64.b64decode(e["body"])).hexdigest() for e in story["entries"]}
    for i in inputs:  # each names a ledger record's exact body, as the record itself does
        assert i["digest"]["sha256"] in bodies
    story = demo.server.get(f"/api/v1/artifacts/sha256:{_file_sha(demo.app_zip)}/story").json()
    assert '"vsa"' in json.dumps(story)  # "why was this deployed?" has a proved answer
    r = verify(demo.app_zip, "--policy", policy, "--ledger", demo.server.url, "--record")
    assert r.exit_code == 2  # --record needs a key


def _file_sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_third_party_attestations(demo: DemoLedger, tmp_path: Path) -> None:
    aged = issue_policy(demo, tmp_path)
    files = [demo.work / "attestations" / f for f in ("2-provenance.json", "3-test.json")]
    bundles = [x for f in files for x in ("--bundle", f)]
    # DSSE envelopes carry no verified time: under the issue policy's maxAge nothing proves their
    # age, so they do not count (hostile finding F5); without maxAge they do
    r = verify("attestations", demo.app_zip, "--policy", aged, *bundles, "--format", "json")
    assert r.exit_code == 1 and "no verified signing time" in r.stdout, r.stdout + r.stderr
    policy = tmp_path / "no-max-age.yaml"
    policy.write_text(aged.read_text().replace("maxAge: 30d\n", ""))
    r = verify("attestations", demo.app_zip, "--policy", policy, *bundles)
    assert r.exit_code == 0, r.stdout + r.stderr
    lines = tmp_path / "all.jsonl"
    lines.write_text("".join(json.dumps(json.loads(f.read_text())) + "\n" for f in files))
    assert (
        verify("attestations", demo.app_zip, "--policy", policy, "--bundle", lines).exit_code == 0
    )
    only_build = verify("attestations", demo.app_zip, "--policy", policy, "--bundle", files[0])
    assert only_build.exit_code == 1
    env = json.loads(files[0].read_text())
    env["signatures"][0]["sig"] = base64.b64encode(b"\0" * 64).decode()
    (tmp_path / "forged.json").write_text(json.dumps(env))
    r = verify(
        "attestations", demo.app_zip, "--policy", policy, "--bundle", tmp_path / "forged.json"
    )
    # its keyid names the trusted ci key, but a keyid is an unsigned hint: not counted, not exit 4
    assert r.exit_code == 1 and "names trusted signer 'ci'" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("fmt", ["json"])
def test_the_json_report_matches_its_schema(demo: DemoLedger, tmp_path: Path, fmt: str) -> None:
    import jsonschema_rs

    from verify.report import REPORT_SCHEMA

    doc_schema = _doc_schema()
    assert doc_schema == REPORT_SCHEMA  # the schema in docs/deploy.md is the one the code uses
    validator = jsonschema_rs.validator_for(REPORT_SCHEMA)
    policy = issue_policy(demo, tmp_path)
    for args in (
        (demo.app_zip, "--policy", policy, "--db", demo.db),
        (sha(fresh()), "--policy", policy, "--db", demo.db),
        (demo.app_zip, "--policy", tmp_path / "missing.yaml", "--db", demo.db),
    ):
        r = verify(*args, "--format", fmt)
        out = json.loads(r.stdout)
        validator.validate(out)
        assert out["exitCode"] == r.exit_code


def _doc_schema() -> dict[str, Any]:
    import re

    from tests.verify.conftest import ISSUE_POLICY_DOC

    blocks = re.findall(r"^```json\n(.*?)^```", ISSUE_POLICY_DOC.read_text(), re.M | re.S)
    return json.loads(next(b for b in blocks if "verify report" in b))


LINK = "https://in-toto.io/attestation/link/v0.3"


def test_steps_chain_by_materials_and_products(demo: DemoLedger, tmp_path: Path) -> None:
    """productsOf: the build's product is the test's subject; materialsFrom: the promote step's
    link names the build's product among its materials (links: attest run's predicate)."""
    good, bad = fresh("chained"), fresh("unchained")
    for name, material in ((good, good), (bad, fresh("elsewhere"))):
        demo.append(statement(name, LINK, {"name": "build", "materials": []}))
        demo.append(statement(name, TEST_RESULT, result_predicate()))
        used = [{"name": material, "digest": {"sha256": digest_of(material)}}]
        demo.append(statement(name, LINK, {"name": "promote", "materials": used}))
    steps = [
        {
            "name": "build",
            "predicateType": LINK,
            "signers": ["ci"],
            "expressions": ["predicate.name == 'build'"],
        },
        {"name": "tests", "predicateType": TEST_RESULT, "signers": ["ci"], "productsOf": "build"},
        {
            "name": "promote",
            "predicateType": LINK,
            "signers": ["ci"],
            "materialsFrom": "build",
            "expressions": ["predicate.name == 'promote'"],
        },
    ]
    policy = demo.policy(tmp_path / "chain.yaml", steps=steps)
    code, doc = report(sha(good), "--policy", policy, "--db", demo.db)
    assert code == 0, doc
    rules = {r["rule"]: r for r in doc["rules"]}
    assert rules["step tests subjects from build"]["passed"]
    assert rules["step promote materials from build"]["passed"]
    code, doc = report(sha(bad), "--policy", policy, "--db", demo.db)
    rules = {r["rule"]: r for r in doc["rules"]}
    assert code == 1 and not rules["step promote materials from build"]["passed"]
    assert "is no product of step 'build'" in rules["step promote materials from build"]["reason"]
