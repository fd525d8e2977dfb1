"""`verify attestations` on real Sigstore bundles (the sigstore-conformance suite): a keyless
signer in the policy with the default trusted root (the production root shipped inside
sigstore-python, read offline), the same rules as for ledger evidence."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from attest.dsse import sign_envelope
from attest.signers import read_signer, write_keypair
from tests.conftest import fixture_path
from verify.cli import app

CASES = ("conformance", "assets", "bundle-verify")
SUBJECT = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
ISSUER = "https://token.actions.githubusercontent.com"
IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
BUILDER = (
    "https://github.com/loosebazooka/aa-test/.github/workflows/provenance.yaml@refs/heads/main"
)


def _policy(tmp_path: Path, sigstore: dict[str, str], **step: str) -> Path:
    doc = {
        "apiVersion": "provenance-ledger.dev/v1",
        "kind": "VerifyPolicy",
        "signers": {"gha": {"sigstore": {"issuer": ISSUER, **sigstore}}},
        "steps": [
            {
                "name": "build",
                "predicateType": "https://slsa.dev/provenance/v1",
                "signers": ["gha"],
                "builderId": BUILDER,
                "sourceRepo": "https://github.com/loosebazooka/aa-test",
                "sourceRef": "refs/heads/main",
                **step,
            }
        ],
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _run(policy: Path, bundle: Path, artifact: str = SUBJECT) -> int:
    r = CliRunner().invoke(
        app, ["attestations", artifact, "--policy", str(policy), "--bundle", str(bundle)]
    )
    return r.exit_code


def test_a_conformance_bundle_meets_a_keyless_policy(tmp_path: Path) -> None:
    bundle = fixture_path(*CASES, "happy-path-intoto-in-dsse-v3", "bundle.sigstore.json")
    assert _run(_policy(tmp_path, {"identity": IDENTITY}), bundle) == 0
    regex = r"https://github\.com/sigstore-conformance/.*@refs/heads/main"
    assert _run(_policy(tmp_path, {"identityRegex": regex}), bundle) == 0
    # another identity: not trusted; another source repository: not the step
    assert _run(_policy(tmp_path, {"identity": IDENTITY.replace("main", "evil")}), bundle) == 1
    wrong_repo = _policy(tmp_path, {"identity": IDENTITY}, sourceRepo="https://github.com/x/y")
    assert _run(wrong_repo, bundle) == 1
    # the artifact must be the statement's subject
    assert _run(_policy(tmp_path, {"identity": IDENTITY}), bundle, "sha256:" + "0" * 64) == 3


def test_a_bundle_with_a_bad_signature_is_exit_4(tmp_path: Path) -> None:
    """Its certificate names the trusted identity, but the signature does not verify: a forgery
    of a trusted signer (exit 4), not someone else's attestation."""
    for case in ("dsse-invalid-sig_fail", "dsse-mismatch-sig_fail"):
        bundle = fixture_path(*CASES, case, "bundle.sigstore.json")
        assert _run(_policy(tmp_path, {"identity": IDENTITY}), bundle) == 4, case
    other = {"identity": IDENTITY.replace("main", "evil")}
    assert _run(_policy(tmp_path, other), bundle) == 1  # not a trusted identity: not counted


# hostile finding F5: every third-party attestation was given the time of --at, so maxAge never
# refused one; its time is now the bundle's verified signing time (Rekor's integrated time here,
# 1734374576 = 2024-12-16T18:42:56Z)
SIGNED = "2024-12-16T18:42:56Z"


def _aged(tmp_path: Path, at: str, **extra: str) -> tuple[int, str]:
    policy = _policy(tmp_path, {"identity": IDENTITY}, **extra)
    doc = yaml.safe_load(policy.read_text())
    doc["maxAge"] = "1d"
    policy.write_text(yaml.safe_dump(doc))
    bundle = fixture_path(*CASES, "happy-path-intoto-in-dsse-v3", "bundle.sigstore.json")
    args = ["attestations", SUBJECT, "--policy", str(policy), "--bundle", str(bundle)]
    r = CliRunner().invoke(app, [*args, "--at", at, "--format", "json"])
    return r.exit_code, r.stdout


def test_max_age_judges_a_bundle_by_its_verified_signing_time(tmp_path: Path) -> None:
    code, out = _aged(tmp_path, "2024-12-17T12:00:00Z")  # 17 hours after signing
    assert code == 0, out
    assert json.loads(out)["attestations"][0]["time"].startswith("2024-12-16T18:42:56")
    code, out = _aged(tmp_path, "2024-12-18T12:00:00Z")  # 41 hours after: too old
    assert code == 1, out
    assert "older than maxAge" in out
    code, out = _aged(tmp_path, "2026-12-02T00:00:00Z")  # the tester's run: now
    assert code == 1, out


def test_an_envelope_with_no_verified_time_cannot_meet_max_age(tmp_path: Path) -> None:
    """A DSSE envelope carries no verified time (a date inside it is the signer's word): under
    maxAge its signer does not count, and the reason says so; without maxAge it still passes."""
    write_keypair(tmp_path / "ci", "ed25519", None)
    st = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app", "digest": {"sha256": SUBJECT.split(":")[1]}}],
        "predicateType": "https://in-toto.io/attestation/test-result/v0.1",
        "predicate": {"result": "PASSED", "configuration": [], "passedTests": ["t"]},
    }
    envelope = sign_envelope(json.dumps(st).encode(), [read_signer(tmp_path / "ci")]).to_json()
    (tmp_path / "env.json").write_bytes(envelope)
    doc: dict[str, object] = {
        "apiVersion": "provenance-ledger.dev/v1",
        "kind": "VerifyPolicy",
        "signers": {"ci": {"key": str(tmp_path / "ci.pub")}},
        "steps": [{"name": "tests", "predicateType": st["predicateType"], "signers": ["ci"]}],
    }
    policy = tmp_path / "policy.yaml"
    envelope_file = str(tmp_path / "env.json")
    args = ["attestations", SUBJECT, "--policy", str(policy), "--bundle", envelope_file]
    policy.write_text(yaml.safe_dump(doc))
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.stdout + r.stderr
    policy.write_text(yaml.safe_dump({**doc, "maxAge": "30d"}))
    r = CliRunner().invoke(app, [*args, "--format", "json"])
    assert r.exit_code == 1, r.stdout
    [att] = json.loads(r.stdout)["attestations"]
    assert att["signers"] == []
    assert att["refused"] == [
        "ci: no verified signing time (a signed timestamp or log entry), so maxAge cannot be met"
    ]
