"""Sigstore bundles against explicit trusted roots (conformance suite), identity policies, and
keyless signing up to the network."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

from attest.errors import InvalidInput, SignatureError
from attest.sigstore_bundle import IdentityPolicy, verify_bundle
from tests.conftest import FIXTURES, fixture_cases, fixture_path, needs_fixtures

BUNDLE_VERIFY = ("conformance", "assets", "bundle-verify")
TRUST_ROOTS = ("sigstore-bundles", "trust-roots")
CASES = FIXTURES.joinpath(*BUNDLE_VERIFY)
PRODUCTION_ROOT = FIXTURES.joinpath(*TRUST_ROOTS, "production", "trusted_root.json")
# every test here reads the conformance suite or the trust roots
pytestmark = [needs_fixtures(*BUNDLE_VERIFY), needs_fixtures(*TRUST_ROOTS)]
IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ISSUER = "https://token.actions.githubusercontent.com"
POLICY = IdentityPolicy(issuer=ISSUER, subject=IDENTITY)


def dsse_cases(cases: Path = CASES) -> list[Path]:
    return sorted(
        p
        for p in cases.iterdir()
        if p.is_dir() and b"dsseEnvelope" in (p / "bundle.sigstore.json").read_bytes()
    )


def root_for(case: Path) -> Path:
    own = case / "trusted_root.json"
    return own if own.exists() else PRODUCTION_ROOT


# sigstore-python 4.5.1 rejects every Rekor ``intoto`` v0.0.2 entry (VERIFIED.md); verify_bundle
# closes that gap (attest/_internal/sigstore_compat.py), so intoto-with-custom-trust-root passes too.


@pytest.mark.parametrize("case", fixture_cases(BUNDLE_VERIFY, dsse_cases, ids=lambda p: p.name))
def test_conformance_dsse_bundles(case: Path) -> None:
    bundle = (case / "bundle.sigstore.json").read_bytes()
    expect_pass = not case.name.endswith("_fail")
    if expect_pass:
        v = verify_bundle(bundle, trusted_root=root_for(case), identity=POLICY)
        assert v.payload_type == "application/vnd.in-toto+json"
        assert v.issuer == ISSUER and IDENTITY in v.identities
        statement = json.loads(v.payload)
        assert statement["subject"]
    else:
        with pytest.raises((SignatureError, InvalidInput)):
            verify_bundle(bundle, trusted_root=root_for(case), identity=POLICY)


def test_the_dsse_set_is_not_empty() -> None:
    names = {p.name for p in dsse_cases()}
    assert {
        "happy-path-intoto-in-dsse-v3",
        "rekor2-dsse-happy-path",
        "dsse-invalid-sig_fail",
    } <= names


def happy() -> tuple[bytes, Path]:
    case = CASES / "rekor2-dsse-happy-path"
    return (case / "bundle.sigstore.json").read_bytes(), root_for(case)


def test_identity_policy_exact_and_regex() -> None:
    bundle, root = happy()
    regex = IdentityPolicy(
        issuer=r"https://token\.actions\.githubusercontent\.com",
        subject=r"https://github\.com/sigstore-conformance/.*@refs/heads/main",
        issuer_regex=True,
        subject_regex=True,
    )
    verify_bundle(bundle, trusted_root=root, identity=regex)
    for wrong in (
        IdentityPolicy(issuer=ISSUER, subject=IDENTITY.replace("main", "evil")),
        IdentityPolicy(issuer="https://accounts.google.com", subject=IDENTITY),
        IdentityPolicy(
            issuer=ISSUER, subject=r"https://github\.com/sigstore-conformance", subject_regex=True
        ),
    ):
        with pytest.raises(SignatureError, match=r"does not match|do not match"):
            verify_bundle(bundle, trusted_root=root, identity=wrong)


def test_wrong_trusted_root_fails() -> None:
    bundle = (CASES / "happy-path-intoto-in-dsse-v3" / "bundle.sigstore.json").read_bytes()
    verify_bundle(bundle, trusted_root=PRODUCTION_ROOT, identity=POLICY)
    staging = fixture_path("sigstore-bundles", "trust-roots", "staging", "trusted_root.json")
    with pytest.raises(SignatureError):
        verify_bundle(bundle, trusted_root=staging, identity=POLICY)


def test_bad_inputs_are_input_errors(tmp_path: Path) -> None:
    bundle, root = happy()
    with pytest.raises(InvalidInput, match="no DSSE envelope"):
        verify_bundle(
            (CASES / "happy-path-v0.3" / "bundle.sigstore.json").read_bytes(),
            trusted_root=root,
            identity=POLICY,
        )
    with pytest.raises(InvalidInput, match="not valid JSON"):
        verify_bundle(b"{", trusted_root=root, identity=POLICY)
    with pytest.raises(InvalidInput, match="trusted root"):
        verify_bundle(bundle, trusted_root=tmp_path / "missing.json", identity=POLICY)
    with pytest.raises(InvalidInput, match="regular expression"):
        IdentityPolicy(issuer="(", subject="x", issuer_regex=True)
    with pytest.raises(InvalidInput):
        IdentityPolicy(issuer="", subject="x")


def test_keyless_without_an_identity_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from attest.keyless import sign_keyless

    for var in ("SIGSTORE_ID_TOKEN", "GITHUB_ACTIONS", "ACTIONS_ID_TOKEN_REQUEST_URL", "GITLAB_CI"):
        monkeypatch.delenv(var, raising=False)
    statement = (CASES.parent / "statement.json").read_bytes()
    with pytest.raises(SignatureError, match="no OIDC identity"):
        sign_keyless(statement)


def _fake_jwt() -> str:
    def part(d: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    claims = {
        "iss": "https://token.actions.githubusercontent.com",
        "aud": "sigstore",
        "sub": "repo:example/app:ref:refs/heads/main",
        "iat": int(time.time()) - 60,
        "nbf": int(time.time()) - 60,
        "exp": 4_000_000_000,
        "job_workflow_ref": "example/app/.github/workflows/ci.yml@refs/heads/main",
    }
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def test_keyless_goes_as_far_as_the_network(tmp_path: Path) -> None:
    """With a token and an explicit trust config, signing gets as far as asking Fulcio; on these
    offline machines that request fails and the error says so — and nothing is returned."""
    from attest.keyless import sign_keyless

    prod = fixture_path("sigstore-bundles", "trust-roots", "production")
    config = tmp_path / "trust.json"
    config.write_text(
        json.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
                "trustedRoot": json.loads((prod / "trusted_root.json").read_text()),
                "signingConfig": json.loads((prod / "signing_config.v0.2.json").read_text()),
            }
        )
    )
    statement = (CASES.parent / "statement.json").read_bytes()
    with pytest.raises(SignatureError, match=r"keyless signing failed.*fulcio"):
        sign_keyless(statement, token=_fake_jwt(), trust_config=config)


@pytest.mark.online
@pytest.mark.skipif(
    not os.environ.get("ATTEST_ONLINE_TESTS"), reason="online: needs Fulcio/Rekor and an OIDC token"
)
def test_keyless_sign_then_verify_online() -> None:  # pragma: no cover - needs the network
    from attest.keyless import sign_keyless

    statement = (CASES.parent / "statement.json").read_bytes()
    bundle = sign_keyless(statement)
    assert b"dsseEnvelope" in bundle
