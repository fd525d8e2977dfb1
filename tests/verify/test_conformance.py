"""``verify sigstore-bundle`` over every case of the sigstore-conformance bundle-verify suite.

The harness semantics are upstream's (ORIGIN.md): a ``_fail`` suffix must be rejected, anything
else must verify; the artifact is the case's ``artifact`` or the shared ``a.txt``; identity and
issuer from the case's files or the conformance beacon; ``trusted_root.json`` if present, else the
production root shipped with sigstore-python; ``key.pub`` means a managed key. Each case runs with
the artifact path and with ``sha256:HEX``, as upstream does.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attest.errors import InvalidInput, SignatureError
from attest.sigstore_bundle import IdentityPolicy
from tests.conftest import FIXTURES, fixture_cases, needs_fixtures
from verify.conformance import (
    EXIT_INVALID_INPUT,
    EXIT_VERIFICATION_FAILED,
    _standalone,
    artifact_digest,
    verify_sigstore_bundle,
)

BUNDLE_VERIFY = ("conformance", "assets", "bundle-verify")
CASES = FIXTURES.joinpath(*BUNDLE_VERIFY)
ROOT = Path(__file__).resolve().parents[2]
pytestmark = needs_fixtures(*BUNDLE_VERIFY)
IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ISSUER = "https://token.actions.githubusercontent.com"


def all_cases(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if (p / "bundle.sigstore.json").exists())


def _text(case: Path, name: str, default: str) -> str:
    f = case / name
    return f.read_text().strip() if f.exists() else default


def inputs(case: Path) -> dict[str, object]:
    """The protocol's inputs for one case, as the upstream harness chooses them."""
    artifact = case / "artifact" if (case / "artifact").exists() else case.parent / "a.txt"
    root = case / "trusted_root.json"
    key = case / "key.pub"
    return {
        "artifact": artifact,
        "identity": IdentityPolicy(
            issuer=_text(case, "issuer", ISSUER), subject=_text(case, "identity", IDENTITY)
        ),
        "trusted_root": root if root.exists() else None,
        "key": key.read_bytes() if key.exists() else None,
    }


def run_case(case: Path, by_digest: bool) -> None:
    i = inputs(case)
    artifact = i["artifact"]
    assert isinstance(artifact, Path)
    form = (
        f"sha256:{hashlib.sha256(artifact.read_bytes()).hexdigest()}"
        if by_digest
        else str(artifact)
    )
    verify_sigstore_bundle(
        (case / "bundle.sigstore.json").read_bytes(),
        artifact_digest(form),
        identity=i["identity"],  # type: ignore[arg-type]
        key=i["key"],  # type: ignore[arg-type]
        trusted_root=i["trusted_root"],  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("by_digest", [False, True], ids=["file", "digest"])
@pytest.mark.parametrize("case", fixture_cases(BUNDLE_VERIFY, all_cases, ids=lambda p: p.name))
def test_every_conformance_case_gets_its_verdict(case: Path, by_digest: bool) -> None:
    if case.name.endswith("_fail"):
        with pytest.raises((SignatureError, InvalidInput)):
            run_case(case, by_digest)
    else:
        run_case(case, by_digest)


def test_the_suite_is_all_there() -> None:
    """Guard against a vacuous pass: the snapshot's 38 cases, happy and failing."""
    names = [p.name for p in all_cases(CASES)]
    assert len(names) == 38
    assert sum(n.endswith("_fail") for n in names) == 25


# Where sigstore-python 4.5.1 alone gets a case wrong or right for the wrong reason, the reason we
# now give is the README's own (so the gap is closed, not papered over).
REASONS = {
    "intoto-log-entry-mismatch_fail": "log entry signatures do not match bundle",
    "intoto-set-outside-signing-cert-validity_fail": "cert is not valid at validation time",
    "dsse-mismatch-sig_fail": "log entry signatures do not match bundle",
    "signature-mismatch_fail": "Signature is invalid for input",
    "message-digest-mismatch_fail": "message digest mismatch",
    "managed-key-no-key_fail": "expected certificate in bundle",
}


@pytest.mark.parametrize("name", sorted(REASONS))
def test_failures_give_the_readme_reason(name: str) -> None:
    with pytest.raises((SignatureError, InvalidInput), match=REASONS[name]):
        run_case(CASES / name, by_digest=False)


def test_sigstore_python_alone_refuses_intoto_v002() -> None:
    """Pins the gap we close: if a sigstore-python upgrade accepts intoto v0.0.2 itself, this
    fails and attest/_internal/sigstore_compat.py can shrink."""
    from sigstore.errors import VerificationError
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier

    case = CASES / "intoto-with-custom-trust-root"
    bundle = Bundle.from_json((case / "bundle.sigstore.json").read_bytes())
    verifier = Verifier(trusted_root=TrustedRoot.from_file(str(case / "trusted_root.json")))
    with pytest.raises(VerificationError, match="Integrated time only supported"):
        verifier.verify_dsse(bundle, IdentityPolicy(issuer=ISSUER, subject=IDENTITY))
    run_case(case, by_digest=False)  # and we verify it


def test_managed_key_needs_the_right_key() -> None:
    case = CASES / "managed-key-and-trusted-root"
    other = FIXTURES / "in-toto-demo" / "pems" / "ecdsa_public.pem"
    with pytest.raises(SignatureError, match="Signature is invalid"):
        verify_sigstore_bundle(
            (case / "bundle.sigstore.json").read_bytes(),
            artifact_digest(str(CASES / "a.txt")),
            identity=None,
            key=other.read_bytes(),
            trusted_root=case / "trusted_root.json",
        )


def test_managed_key_needs_its_log_entry() -> None:
    """A right key and signature with an edited log entry body still fails."""
    case = CASES / "managed-key-and-trusted-root"
    doc = json.loads((case / "bundle.sigstore.json").read_bytes())
    doc["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = "1"
    with pytest.raises(SignatureError, match="invalid log entry"):
        verify_sigstore_bundle(
            json.dumps(doc).encode(),
            artifact_digest(str(CASES / "a.txt")),
            identity=None,
            key=(case / "key.pub").read_bytes(),
            trusted_root=case / "trusted_root.json",
        )


def test_a_wrong_identity_or_artifact_fails() -> None:
    case = CASES / "happy-path-v0.3"
    bundle = (case / "bundle.sigstore.json").read_bytes()
    good = artifact_digest(str(CASES / "a.txt"))
    with pytest.raises(SignatureError, match="do not match"):
        verify_sigstore_bundle(
            bundle, good, identity=IdentityPolicy(issuer=ISSUER, subject=IDENTITY + "x")
        )
    with pytest.raises(SignatureError):
        verify_sigstore_bundle(
            bundle, hashlib.sha256(b"other").digest(), identity=IdentityPolicy(ISSUER, IDENTITY)
        )


def test_dsse_subject_must_be_the_artifact() -> None:
    case = CASES / "happy-path-intoto-in-dsse-v3"
    with pytest.raises(SignatureError, match="no subject"):
        verify_sigstore_bundle(
            (case / "bundle.sigstore.json").read_bytes(),
            hashlib.sha256(b"other").digest(),
            identity=IdentityPolicy(ISSUER, IDENTITY),
        )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("sha256:abc", "64 lowercase hex"),
        ("sha256:" + "A" * 64, "64 lowercase hex"),
        ("/nonexistent/x", "cannot read"),
    ],
)
def test_bad_artifact_argument(value: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        artifact_digest(value)


# --- the command line -----------------------------------------------------------------------


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(_standalone(), ["sigstore-bundle", *args])
    return result.exit_code, result.output


def test_cli_verifies_and_refuses() -> None:
    ok = [
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
        str(CASES / "a.txt"),
    ]
    code, out = _cli("--bundle", str(CASES / "happy-path-v0.3" / "bundle.sigstore.json"), *ok)
    assert (code, out.strip()) == (0, f"OK: {CASES / 'a.txt'}")
    code, out = _cli(
        "--bundle", str(CASES / "signature-mismatch_fail" / "bundle.sigstore.json"), *ok
    )
    assert code == EXIT_VERIFICATION_FAILED and "Signature is invalid" in out
    code, out = _cli("--bundle", "/nonexistent.json", *ok)
    assert code == EXIT_INVALID_INPUT and "cannot read bundle" in out


def test_cli_managed_key_and_trusted_root() -> None:
    case = CASES / "managed-key-and-trusted-root"
    args = [
        "--bundle",
        str(case / "bundle.sigstore.json"),
        "--trusted-root",
        str(case / "trusted_root.json"),
    ]
    code, _ = _cli(*args, "--key", str(case / "key.pub"), str(CASES / "a.txt"))
    assert code == 0
    code, out = _cli(
        *args,
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
        str(CASES / "a.txt"),
    )
    assert code == EXIT_INVALID_INPUT and "expected certificate" in out


def test_python_dash_m_entry_point() -> None:
    """The standalone entry, in a fresh process, as the conformance harness would call it."""
    case = CASES / "rekor2-happy-path"
    cmd = [
        sys.executable, "-m", "verify.conformance", "sigstore-bundle",
        "--bundle", str(case / "bundle.sigstore.json"),
        "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER,
        "--trusted-root", str(case / "trusted_root.json"),
        "sha256:" + hashlib.sha256((CASES / "a.txt").read_bytes()).hexdigest(),
    ]  # fmt: skip
    done = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    cmd[cmd.index("--trusted-root") : cmd.index("--trusted-root") + 2] = []  # production root
    done = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_VERIFICATION_FAILED, done.stderr


# --- trust-root-tsa-validity-end-inclusive, rebuilt -------------------------------------------
# Upstream's case is not in the fixture snapshot; it was made from a rekor2 bundle by setting
# the TSA's validFor.end to the timestamp's genTime. We do the same in a tmp dir.


def _tsa_gen_time(bundle: Path) -> str:
    import base64

    from rfc3161_client import decode_timestamp_response

    doc = json.loads(bundle.read_bytes())
    token = doc["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]
    when = decode_timestamp_response(base64.b64decode(token["signedTimestamp"])).tst_info.gen_time
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _root_with_tsa_end(tmp_path: Path, end: str) -> Path:
    root = json.loads((CASES / "rekor2-happy-path" / "trusted_root.json").read_bytes())
    for tsa in root["timestampAuthorities"]:
        tsa["validFor"]["end"] = end
    path = tmp_path / "trusted_root.json"
    path.write_text(json.dumps(root))
    return path


def test_tsa_validity_end_is_inclusive(tmp_path: Path) -> None:
    from datetime import datetime, timedelta

    bundle = CASES / "rekor2-happy-path" / "bundle.sigstore.json"
    gen_time = _tsa_gen_time(bundle)
    args = (bundle.read_bytes(), artifact_digest(str(CASES / "a.txt")))
    identity = IdentityPolicy(ISSUER, IDENTITY)
    verify_sigstore_bundle(
        *args, identity=identity, trusted_root=_root_with_tsa_end(tmp_path, gen_time)
    )
    before = datetime.strptime(gen_time, "%Y-%m-%dT%H:%M:%SZ") - timedelta(seconds=1)
    with pytest.raises(SignatureError, match="not enough sources of verified time"):
        verify_sigstore_bundle(
            *args,
            identity=identity,
            trusted_root=_root_with_tsa_end(tmp_path, before.strftime("%Y-%m-%dT%H:%M:%SZ")),
        )


def test_sigstore_python_alone_treats_tsa_end_as_exclusive(tmp_path: Path) -> None:
    """Pins the gap: an upgrade that fixes it makes this fail, and the override can go."""
    from sigstore.errors import VerificationError
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier

    bundle = CASES / "rekor2-happy-path" / "bundle.sigstore.json"
    root = _root_with_tsa_end(tmp_path, _tsa_gen_time(bundle))
    verifier = Verifier(trusted_root=TrustedRoot.from_file(str(root)))
    with pytest.raises(VerificationError, match="not enough sources of verified time"):
        verifier.verify_artifact(
            (CASES / "a.txt").read_bytes(),
            Bundle.from_json(bundle.read_bytes()),
            IdentityPolicy(ISSUER, IDENTITY),
        )
