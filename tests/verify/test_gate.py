"""`verify` end to end against a real ledger seeded like the demo: issue 11's policy example over
HTTP and straight from the database, and every exit code reached by a real cause."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

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
from tests.verify.test_policy import doc_policy_text
from verify.cli import app


def verify(*args: str | Path, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def report(*args: str | Path) -> tuple[int, dict[str, Any]]:
    r = verify(*args, "--format", "json")
    return r.exit_code, json.loads(r.stdout)


def issue_policy(demo: DemoLedger, where: Path) -> Path:
    """docs/deploy.md's example as written, but with this ledger's key and the CI key file."""
    (where / "keys").mkdir(parents=True, exist_ok=True)
    shutil.copy(demo.ci_pub, where / "keys" / "ci.pub")
    text = doc_policy_text().replace('"example.com/ledger+1a2b3c4d+AXYZ…"', json.dumps(demo.vkey))
    assert demo.vkey in text
    (where / "policy.yaml").write_text(text)
    return where / "policy.yaml"


def fresh(name: str = "app") -> str:
    """A new artifact name (its bytes are the name, its digest :func:`digest_of`)."""
    return f"{name}-{secrets.token_hex(6)}.tar.gz"


def sha(name: str) -> str:
    return "sha256:" + digest_of(name)


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


def _passing(demo: DemoLedger, name: str, deps: tuple[str, ...] = ()) -> None:
    demo.append(statement(name, SLSA, provenance(deps=deps)))
    demo.append(statement(name, TEST_RESULT, result_predicate()))


def test_a_denied_log4j_version_is_exit_1(demo: DemoLedger, tmp_path: Path) -> None:
    policy = issue_policy(demo, tmp_path)
    bad, good = fresh("log4j-old"), fresh("log4j-new")
    _passing(demo, bad, ("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",))
    _passing(demo, good, ("pkg:maven/org.apache.logging.log4j/log4j-core@2.17.1",))
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
    _passing(demo, name)
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
    _passing(demo, name)
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
    _passing(demo, name)
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
    _passing(demo, name)
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
    _passing(demo, name)
    ok = "predicate.runDetails.builder.id.startsWith('https://ci.example/')"
    for expr, want in ((ok, 0), ("predicate.runDetails.builder.id == 'x'", 1)):
        steps = [{"name": "build", "predicateType": SLSA, "signers": ["ci"], "expressions": [expr]}]
        policy = demo.policy(tmp_path / "p.yaml", steps=steps)
        assert report(sha(name), "--policy", policy, "--db", demo.db)[0] == want
    steps = [{"name": "build", "predicateType": SLSA, "signers": ["ci"], "expressions": ["1 +"]}]
    assert (
        report(
            sha(name), "--policy", demo.policy(tmp_path / "p.yaml", steps=steps), "--db", demo.db
        )[0]
        == 2
    )


def _export(demo: DemoLedger, artifact: str | Path, out: Path) -> dict[str, Any]:
    r = verify("export-evidence", artifact, "--ledger", demo.server.url, "-o", out)
    assert r.exit_code == 0, r.stdout + r.stderr
    return json.loads(out.read_text())


def test_a_tampered_body_is_exit_4(demo: DemoLedger, tmp_path: Path) -> None:
    policy = issue_policy(demo, tmp_path)
    doc = _export(demo, demo.app_zip, tmp_path / "evidence.json")
    assert (
        verify(demo.app_zip, "--policy", policy, "--evidence", tmp_path / "evidence.json").exit_code
        == 0
    )
    body = json.loads(base64.b64decode(doc["entries"][0]["body"]))
    body["payload"] = base64.b64encode(b'{"forged": true}').decode()
    doc["entries"][0]["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    (tmp_path / "tampered.json").write_text(json.dumps(doc))
    code, out = report(demo.app_zip, "--policy", policy, "--evidence", tmp_path / "tampered.json")
    assert code == 4 and out["verdict"] == "ERROR" and "altered" in out["error"]


def test_a_bad_proof_or_checkpoint_is_exit_4(demo: DemoLedger, tmp_path: Path) -> None:
    policy = issue_policy(demo, tmp_path)
    doc = _export(demo, demo.app_zip, tmp_path / "evidence.json")
    proof = dict(doc, entries=[dict(doc["entries"][0], inclusionProof=[]), *doc["entries"][1:]])
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    assert (
        verify(demo.app_zip, "--policy", policy, "--evidence", tmp_path / "proof.json").exit_code
        == 4
    )
    forged = dict(doc, checkpoint=doc["checkpoint"].replace("\n\n", "\nextra\n\n", 1))
    (tmp_path / "note.json").write_text(json.dumps(forged))
    r = verify(demo.app_zip, "--policy", policy, "--evidence", tmp_path / "note.json")
    assert r.exit_code == 4 and "CheckpointFailure" in r.stderr


def test_a_forked_ledger_is_exit_4_and_the_state_is_kept(demo: DemoLedger, tmp_path: Path) -> None:
    import sqlite3

    from ledger.log import Ledger

    fork_path = tmp_path / "fork.db"
    src = sqlite3.connect(demo.db.removeprefix("sqlite:///"))
    dst = sqlite3.connect(fork_path)
    src.backup(dst)
    src.close()
    dst.close()
    fork = f"sqlite:///{fork_path}"
    from attest.dsse import sign_envelope

    other = fresh("fork")
    body = sign_envelope(
        json.dumps(statement(other, SLSA, provenance())).encode(), [demo.ci]
    ).to_json()
    with Ledger.open(fork, demo.server.key) as lg:
        lg.append(body)  # the same key signs a history the real ledger never had
    demo.append(statement(fresh("real"), SLSA, provenance()))  # the real one grows differently
    policy = issue_policy(demo, tmp_path)
    text = policy.read_text().replace("ledger:\n", "ledger:\n  stateDir: state\n", 1)
    policy.write_text(text)
    assert verify(demo.app_zip, "--policy", policy, "--ledger", demo.server.url).exit_code == 0
    state = next((tmp_path / "state").glob("*.checkpoint"))
    trusted = state.read_text()
    r = verify(demo.app_zip, "--policy", policy, "--db", fork)
    assert r.exit_code == 4 and "ConsistencyFailure" in r.stderr, r.stderr
    assert state.read_text() == trusted  # a failed run does not move the state
    with Ledger.open(fork, demo.server.key) as lg:  # a larger fork: the proof itself fails
        lg.append(
            sign_envelope(
                json.dumps(statement(fresh(), SLSA, provenance())).encode(), [demo.ci]
            ).to_json()
        )
        lg.append(
            sign_envelope(
                json.dumps(statement(fresh(), SLSA, provenance())).encode(), [demo.ci]
            ).to_json()
        )
    r = verify(demo.app_zip, "--policy", policy, "--db", fork)
    assert r.exit_code == 4 and "forked" in r.stderr
    assert state.read_text() == trusted
    demo.append(statement(fresh("real2"), SLSA, provenance()))
    assert verify(demo.app_zip, "--policy", policy, "--ledger", demo.server.url).exit_code == 0
    assert state.read_text() != trusted  # the honest ledger's newer checkpoint is now trusted


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
    _passing(demo, names[0])
    policy = demo.policy(tmp_path / "p.yaml")
    code, doc = report(out, "--policy", policy, "--db", demo.db)
    assert code == 1 and len(doc["artifacts"]) == 2
    _passing(demo, names[1])
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
    policy = issue_policy(demo, tmp_path)
    files = [demo.work / "attestations" / f for f in ("2-provenance.json", "3-test.json")]
    r = verify(
        "attestations",
        demo.app_zip,
        "--policy",
        policy,
        *[x for f in files for x in ("--bundle", f)],
    )
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


def _registry_policy(
    demo: DemoLedger, tmp_path: Path, admin_pub: Path, file: str = "reg.yaml", **signer: Any
) -> Path:
    steps = [
        {"name": "build", "predicateType": SLSA, "signers": ["reg"], "threshold": 1},
        {
            "name": "unit-tests",
            "predicateType": TEST_RESULT,
            "signers": ["reg"],
            "result": "PASSED",
        },
    ]
    return demo.policy(
        tmp_path / file,
        ledger={"keys": [demo.vkey], "adminKeys": [str(admin_pub)]},
        signers={"reg": {"registry": True, **signer}},
        steps=steps,
    )


def _admin_pub(demo: DemoLedger, where: Path) -> Path:
    from ledger.registry.admin import admin_key_path, load_admin_key

    admin = load_admin_key(admin_key_path(demo.server.key))
    (where / "admin.pub").write_bytes(admin.public_key.spki_pem())
    return where / "admin.pub"


def test_registry_signers_are_whoever_the_ledger_trusted_then(
    demo: DemoLedger, tmp_path: Path
) -> None:
    policy = _registry_policy(demo, tmp_path, _admin_pub(demo, tmp_path))
    code, doc = report(demo.app_zip, "--policy", policy, "--ledger", demo.server.url)
    assert code == 0, doc
    assert {s for a in doc["attestations"] for s in a["signers"]} == {"reg/ci"}
    assert report(demo.app_zip, "--policy", policy, "--db", demo.db)[0] == 0
    by_other = fresh("by-other")
    demo.append(statement(by_other, SLSA, provenance()), demo.other)
    demo.append(statement(by_other, TEST_RESULT, result_predicate()), demo.other)
    assert report(sha(by_other), "--policy", policy, "--db", demo.db)[0] == 0
    only_ci = _registry_policy(demo, tmp_path, _admin_pub(demo, tmp_path), "ci.yaml", names=["ci"])
    code, doc = report(sha(by_other), "--policy", only_ci, "--db", demo.db)
    assert code == 1 and any("signed by no key" in u["reason"] for u in doc["untrusted"])
    # the evidence file carries the registry too: the same verdict offline
    _export(demo, sha(by_other), tmp_path / "ev.json")
    assert report(sha(by_other), "--policy", policy, "--evidence", tmp_path / "ev.json")[0] == 0


def test_registry_signers_need_the_real_admin_key(demo: DemoLedger, tmp_path: Path) -> None:
    from attest.signers import write_keypair

    write_keypair(tmp_path / "not-admin", "ed25519", None)
    policy = _registry_policy(demo, tmp_path, tmp_path / "not-admin.pub")
    code, doc = report(demo.app_zip, "--policy", policy, "--db", demo.db)
    assert code == 1 and doc["attestations"] == []  # no registry state: nobody is trusted


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
    assert "name no product of step 'build'" in rules["step promote materials from build"]["reason"]


def test_gated_reads_need_the_read_token(demo: DemoLedger, tmp_path: Path) -> None:
    from tests.ledger.api.server import serve, token

    read = token(demo.db, demo.work, "verify-read", "read")
    policy = issue_policy(demo, tmp_path)
    with serve(demo.db, demo.work, demo.server.key, LEDGER_PUBLIC_READS="false") as gated:
        r = verify(
            demo.app_zip, "--policy", policy, "--ledger", gated.url, env={"LEDGER_TOKEN": ""}
        )
        assert r.exit_code == 3 and "LEDGER_TOKEN" in r.stderr
        r = verify(
            demo.app_zip, "--policy", policy, "--ledger", gated.url, env={"LEDGER_TOKEN": read}
        )
        assert r.exit_code == 0, r.stderr


def test_one_key_as_policy_and_registry_signer_counts_once(
    demo: DemoLedger, tmp_path: Path
) -> None:
    name = fresh("same-key")
    demo.append(statement(name, SLSA, provenance()))
    steps = [{"name": "build", "predicateType": SLSA, "signers": ["ci", "reg"], "threshold": 2}]
    policy = demo.policy(
        tmp_path / "same.yaml",
        ledger={"keys": [demo.vkey], "adminKeys": [str(_admin_pub(demo, tmp_path))]},
        signers={"ci": {"key": str(demo.ci_pub)}, "reg": {"registry": True, "names": ["ci"]}},
        steps=steps,
    )
    code, doc = report(sha(name), "--policy", policy, "--db", demo.db)
    assert code == 1 and "1 of 2 required distinct" in doc["rules"][0]["reason"]
    assert set(doc["attestations"][0]["signers"]) == {"ci", "reg/ci"}  # both names, one key
