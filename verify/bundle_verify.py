"""The sigstore-conformance ``bundle-verify`` protocol without a command-line library:
verify a Sigstore bundle for an artifact (a file, or ``sha256:HEX``) against a certificate identity
or a managed key; exit 0 when it verifies, 2 on bad input, 4 when a check fails, the reason on
stderr. ``verify sigstore-bundle`` parses its options without typer when it can
(:mod:`verify._internal.fast`) and runs :func:`run_bundle_verify`; :mod:`verify.conformance`
holds the typer command (``--help``, odd command lines) and re-exports this module's names.

Verification is sigstore-python's (:class:`attest._internal.sigstore_compat.CompatVerifier`),
plus Rekor ``intoto`` v0.0.2 entries and managed keys, which sigstore-python 4.5 lacks. A DSSE
bundle's in-toto Statement must name the artifact's SHA-256 among its subjects.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from attest.errors import Error, InvalidInput, SignatureError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec
    from sigstore.models import Bundle, TrustedRoot

    from attest.sigstore_bundle import IdentityPolicy

__all__ = [
    "EXIT_INVALID_INPUT",
    "EXIT_VERIFICATION_FAILED",
    "VerifiedSigstoreBundle",
    "artifact_digest",
    "run_bundle_verify",
    "verify_sigstore_bundle",
]

EXIT_INVALID_INPUT = 2
EXIT_VERIFICATION_FAILED = 4
_SHA256 = re.compile(r"sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class VerifiedSigstoreBundle:
    """What a verified bundle signed: the artifact's digest, and for DSSE the payload."""

    sha256: bytes
    payload_type: str | None
    payload: bytes | None


def artifact_digest(file_or_digest: str) -> bytes:
    """The SHA-256 of a file, or of ``sha256:HEX`` as given (the protocol's two forms)."""
    if file_or_digest.startswith("sha256:"):
        m = _SHA256.fullmatch(file_or_digest)
        if m is None:
            raise InvalidInput(f"{file_or_digest!r} is not sha256: and 64 lowercase hex digits")
        return bytes.fromhex(m.group(1))
    try:
        return hashlib.sha256(Path(file_or_digest).read_bytes()).digest()
    except OSError as e:
        raise InvalidInput(f"cannot read artifact {file_or_digest}: {e.strerror}") from e


def _statement_names(payload: bytes, sha256: bytes) -> None:
    """A DSSE bundle binds no artifact by itself: its Statement must list this digest."""
    try:
        statement = json.loads(payload)
        digests = [s["digest"].get("sha256") for s in statement["subject"]]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SignatureError(f"the DSSE payload is not an in-toto Statement: {e}") from e
    if sha256.hex() not in digests:
        raise SignatureError(f"no subject of the Statement has sha256 {sha256.hex()}")


def _verify_certificate_bundle(
    parsed: Bundle, sha256: bytes, identity: IdentityPolicy, root: TrustedRoot
) -> VerifiedSigstoreBundle:
    from sigstore.hashes import Hashed
    from sigstore_models.common.v1 import HashAlgorithm

    from attest._internal.sigstore_compat import CompatVerifier

    verifier = CompatVerifier(trusted_root=root)
    if parsed._dsse_envelope is not None:
        payload_type, payload = verifier.verify_dsse(parsed, identity)
        _statement_names(payload, sha256)
        return VerifiedSigstoreBundle(sha256, payload_type, payload)
    verifier.verify_artifact(
        Hashed(algorithm=HashAlgorithm.SHA2_256, digest=sha256), parsed, identity
    )
    return VerifiedSigstoreBundle(sha256, None, None)


def _public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem)
    except ValueError as e:
        raise InvalidInput(f"--key is not a PEM public key: {e}") from e
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidInput("--key must be an ECDSA public key (what Sigstore clients sign with)")
    return key


def verify_sigstore_bundle(
    bundle: bytes,
    sha256: bytes,
    *,
    identity: IdentityPolicy | None,
    key: bytes | None = None,
    trusted_root: Path | TrustedRoot | None = None,
) -> VerifiedSigstoreBundle:
    """Verify a Sigstore bundle for an artifact's SHA-256: with a Fulcio certificate against
    ``identity``, or with a managed public ``key`` (PEM). ``trusted_root`` is a file, a loaded
    root, or ``None`` for sigstore-python's shipped production root (offline). Raises
    :class:`SignatureError` on any failed check, :class:`InvalidInput` on malformed input."""
    from sigstore.errors import Error as SigstoreError

    from attest.sigstore_bundle import load_trusted_root, parse_bundle

    if len(sha256) != hashlib.sha256().digest_size:
        raise InvalidInput("an artifact digest is 32 bytes of SHA-256")
    root = (
        load_trusted_root(trusted_root)
        if trusted_root is None or isinstance(trusted_root, Path)
        else trusted_root
    )
    try:
        if key is not None:
            from attest._internal.sigstore_compat import verify_managed_key

            verify_managed_key(bundle, _public_key(key), sha256, root)
            return VerifiedSigstoreBundle(sha256, None, None)
        if identity is None:
            raise InvalidInput("a certificate identity and issuer, or --key, are required")
        return _verify_certificate_bundle(parse_bundle(bundle), sha256, identity, root)
    except (SigstoreError, ValueError) as e:  # ValueError: parts sigstore only checks late
        raise SignatureError(f"Sigstore bundle does not verify: {e}") from e


def run_bundle_verify(
    file_or_digest: str,
    bundle: Path,
    certificate_identity: str | None = None,
    certificate_oidc_issuer: str | None = None,
    trusted_root: Path | None = None,
    key: Path | None = None,
) -> int:
    """``verify sigstore-bundle``: print ``OK: ARTIFACT`` and return 0, or print the reason on
    stderr and return the exit code."""
    from attest.sigstore_bundle import IdentityPolicy

    try:
        identity = (
            IdentityPolicy(issuer=certificate_oidc_issuer, subject=certificate_identity)
            if certificate_identity and certificate_oidc_issuer
            else None
        )
        verify_sigstore_bundle(
            _read(bundle, "bundle"),
            artifact_digest(file_or_digest),
            identity=identity,
            key=_read(key, "key") if key is not None else None,
            trusted_root=trusted_root,
        )
    except Error as e:
        code = EXIT_VERIFICATION_FAILED if isinstance(e, SignatureError) else EXIT_INVALID_INPUT
        print(f"verify: error: {e}", file=sys.stderr)
        return code
    print(f"OK: {file_or_digest}")
    return 0


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InvalidInput(f"cannot read {what} {path}: {e.strerror}") from e
