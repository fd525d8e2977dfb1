"""Sigstore bundle verification with sigstore-python, against an explicit trusted root.

Trust material is always an argument (a ``trusted_root.json`` file): nothing is
fetched from the network, so a verdict is the same on an air-gapped deploy host as in CI. The
identity policy pins the OIDC issuer and the certificate subject, each exactly or by a regular
expression matched against the whole value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat import asn1
from cryptography.x509.oid import ObjectIdentifier

from attest._internal import jsontext
from attest.errors import InvalidInput, SignatureError

if TYPE_CHECKING:
    from sigstore.models import Bundle, TrustedRoot

__all__ = [
    "BUNDLE_MEDIA_TYPES",
    "MAX_IDENTITY_CHARS",
    "IdentityPolicy",
    "VerifiedBundle",
    "certificate_identities",
    "certificate_issuer",
    "load_trusted_root",
    "parse_bundle",
    "verify_bundle",
]

BUNDLE_MEDIA_TYPES = (
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
)
_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_SAN_OTHERNAME = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")


def certificate_issuer(cert: x509.Certificate) -> str | None:
    """The OIDC issuer Fulcio wrote into the certificate (v2 extension, else the v1 one)."""
    try:
        ext = cert.extensions.get_extension_for_oid(_ISSUER_V2).value
        return str(asn1.decode_der(str, ext.value))  # type: ignore[attr-defined]
    except x509.ExtensionNotFound:
        pass
    try:
        ext = cert.extensions.get_extension_for_oid(_ISSUER_V1).value
        return bytes(ext.value).decode()  # type: ignore[attr-defined]
    except x509.ExtensionNotFound:
        return None


def certificate_identities(cert: x509.Certificate) -> set[str]:
    """Every identity in the certificate's SAN: emails, URIs and Sigstore other-names."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    out = set(san.get_values_for_type(x509.RFC822Name))
    out.update(san.get_values_for_type(x509.UniformResourceIdentifier))
    out.update(
        on.value.decode(errors="replace")
        for on in san.get_values_for_type(x509.OtherName)
        if on.type_id == _SAN_OTHERNAME
    )
    return out


# The longest certificate identity or issuer compared with a policy: Fulcio's are URIs and emails
# of a few hundred characters; a longer one is refused before any regular expression sees it.
MAX_IDENTITY_CHARS = 4096


@dataclass(frozen=True)
class IdentityPolicy:
    """Who may have signed: OIDC issuer and certificate subject, exact or regular expression."""

    issuer: str
    subject: str
    issuer_regex: bool = False
    subject_regex: bool = False

    def __post_init__(self) -> None:
        if not self.issuer or not self.subject:
            raise InvalidInput("an identity policy needs both an issuer and a subject")
        for flag, pattern in ((self.issuer_regex, self.issuer), (self.subject_regex, self.subject)):
            if flag:
                try:
                    re.compile(pattern)
                except re.error as e:
                    raise InvalidInput(f"bad regular expression {pattern!r}: {e}") from e

    @staticmethod
    def _matches(pattern: str, value: str, regex: bool) -> bool:
        """Whether ``value`` is ``pattern`` (or matches it whole). A value longer than
        :data:`MAX_IDENTITY_CHARS` never matches, and no regular expression runs on it: a
        backtracking match over a long enough value takes hours."""
        if len(value) > MAX_IDENTITY_CHARS:
            return False
        return re.fullmatch(pattern, value) is not None if regex else pattern == value

    def verify(self, cert: x509.Certificate) -> None:
        """sigstore-python's ``VerificationPolicy`` protocol: raise on mismatch."""
        from sigstore.errors import VerificationError

        issuer = certificate_issuer(cert)
        if issuer is None or not self._matches(self.issuer, issuer, self.issuer_regex):
            raise VerificationError(
                f"certificate issuer {_shown(issuer)} does not match {self.issuer!r}"
            )
        identities = certificate_identities(cert)
        if not any(self._matches(self.subject, i, self.subject_regex) for i in identities):
            said = ", ".join(_shown(i) for i in sorted(identities)[:8])
            raise VerificationError(
                f"certificate identities [{said}] do not match {self.subject!r}"
            )


def _shown(value: str | None) -> str:
    """``value`` quoted for a message, a long one cut (its length said)."""
    if value is None or len(value) <= 200:
        return repr(value)
    return f"{value[:200]!r}… ({len(value)} characters, over {MAX_IDENTITY_CHARS}: never matched)"


@dataclass(frozen=True)
class VerifiedBundle:
    payload_type: str
    payload: bytes
    issuer: str
    identities: tuple[str, ...]
    # the verified signing certificate, for checks on its Fulcio extensions (source repo, ref…)
    certificate: x509.Certificate | None = field(default=None, compare=False, repr=False)
    # the earliest verified time the signature is proved to have existed by (a signed timestamp
    # or the log's integrated time): the signature is at least this old
    signed_at: datetime | None = None


def load_trusted_root(path: Path | None) -> TrustedRoot:
    """A ``trusted_root.json`` file, or (``None``) the Sigstore production root shipped with
    sigstore-python, read offline."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import TrustedRoot

    from attest._internal.sigstore_compat import production_trusted_root

    try:
        return production_trusted_root() if path is None else TrustedRoot.from_file(str(path))
    except (OSError, ValueError, SigstoreError) as e:
        raise InvalidInput(f"cannot load trusted root: {e}") from e


def parse_bundle(bundle: bytes) -> Bundle:
    """A Sigstore bundle, parsed and checked for shape (not yet verified)."""
    from sigstore.models import Bundle, InvalidBundle

    try:
        return Bundle.from_json(bundle)
    except (InvalidBundle, ValueError) as e:
        raise InvalidInput(f"not a valid Sigstore bundle: {e}") from e


def verify_bundle(
    bundle: bytes, *, trusted_root: Path | TrustedRoot | None, identity: IdentityPolicy
) -> VerifiedBundle:
    """Verify a Sigstore bundle carrying a DSSE envelope: certificate chain to the trusted root,
    transparency-log entry and time, the envelope signature, and the identity policy.

    ``trusted_root`` is a file, a loaded root, or ``None`` for the production root shipped with
    sigstore-python (offline). Rekor ``intoto`` v0.0.2 entries are verified too (sigstore-python
    4.5 refuses them; see :mod:`attest._internal.sigstore_compat`).
    """
    from sigstore.errors import Error as SigstoreError

    from attest._internal.sigstore_compat import CompatVerifier

    root = (
        load_trusted_root(trusted_root)
        if trusted_root is None or isinstance(trusted_root, Path)
        else trusted_root
    )
    shape = jsontext.loads(bundle, "Sigstore bundle")
    if not isinstance(shape, dict) or "dsseEnvelope" not in shape:
        raise InvalidInput(
            "Sigstore bundle carries no DSSE envelope (a message signature is not an attestation)"
        )
    parsed = parse_bundle(bundle)
    verifier = CompatVerifier(trusted_root=root)
    try:
        payload_type, payload = verifier.verify_dsse(parsed, identity)
    except SigstoreError as e:
        raise SignatureError(f"Sigstore bundle does not verify: {e}") from e
    except ValueError as e:  # malformed parts sigstore-python only notices while verifying
        raise SignatureError(f"Sigstore bundle does not verify: {e}") from e
    cert = parsed.signing_certificate
    return VerifiedBundle(
        payload_type=payload_type,
        payload=payload,
        issuer=certificate_issuer(cert) or "",
        identities=tuple(sorted(certificate_identities(cert))),
        certificate=cert,
        signed_at=min(verifier.signed_times, default=None),
    )
