"""`verify attestations` on real Sigstore bundles (the sigstore-conformance suite): a keyless
signer in the policy with the default trusted root (the production root shipped inside
sigstore-python, read offline), the same rules as for ledger evidence."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

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
