"""Step 6 for a Sigstore bundle: which trusted identity signed it, judged in sigstore's order.

A bundle is attributed to a policy identity only once sigstore-python verified all of it against
that identity's trusted root: a verified time, the certificate chain to the root's Fulcio CA at
that time, the SCT, the identity policy, the transparency-log entry, the certificate's validity
at the logged time, the DSSE signature and the entry's consistency with the bundle. A failure is
judged by how far verification got (:class:`_Probe` records it: sigstore calls the identity
policy only after the time, the chain and the SCT verified):

- before the identity check (no verified time, no chain to the root, a bad SCT): the certificate
  is not the root's — anyone can write a trusted identity into a self-made certificate, so the
  bundle is listed as not trusted, with the reason, and never counted, whatever the certificate
  claims (exit 4 here would let anyone block deploys);
- at the identity check: a genuine certificate for someone else — not trusted, not counted;
- after it (log entry, validity at the logged time, signature, entry consistency): a genuine
  certificate of a trusted signer over something it did not sign as given — exit 4,
  :class:`~verify.errors.SignatureFailure`, saying what failed.

sigstore-python and cryptography are imported only when a bundle is opened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attest.errors import Error as AttestError
from attest.errors import SignatureError
from attest.sigstore_bundle import IdentityPolicy
from attest.verification import VerifiedStatement, open_statement
from verify.errors import PolicyFileError, SignatureFailure

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["BundleVerdict", "TrustedIdentity", "judge_bundle"]


@dataclass(frozen=True)
class TrustedIdentity:
    """A policy signer's Sigstore identity with the trusted root it is verified against."""

    name: str
    identity: IdentityPolicy
    trusted_root: Path


@dataclass(frozen=True)
class BundleVerdict:
    """The identity a bundle is attributed to (``name``, ``verified``), or why none (``reason``)."""

    name: str | None = None
    verified: VerifiedStatement | None = None
    reason: str = ""


@dataclass(frozen=True)
class _Probe(IdentityPolicy):
    """An identity policy that records that sigstore reached it, and whether it matched."""

    stages: list[str] = field(default_factory=list, compare=False, hash=False)

    def verify(self, cert: x509.Certificate) -> None:
        self.stages.append("reached")
        super().verify(cert)
        self.stages.append("matched")


def _probe(identity: IdentityPolicy) -> _Probe:
    return _Probe(identity.issuer, identity.subject, identity.issuer_regex, identity.subject_regex)


def _claimed(body: bytes, identity: IdentityPolicy) -> bool:
    """Whether the bundle's (unverified) leaf certificate names ``identity`` exactly: only to
    word the reason, never to decide. The policy's regular expressions are never run on it:
    anyone can write a SAN built to make a backtracking match take hours, and this certificate
    is anyone's. A regex identity is therefore never said to be claimed."""
    import base64
    import json

    from cryptography import x509

    from attest.sigstore_bundle import certificate_identities, certificate_issuer

    if identity.issuer_regex or identity.subject_regex:
        return False
    try:
        material: Any = json.loads(body)["verificationMaterial"]
        cert = material.get("certificate") or material["x509CertificateChain"]["certificates"][0]
        leaf = x509.load_der_x509_certificate(base64.b64decode(cert["rawBytes"]))
        issuer, names = certificate_issuer(leaf), certificate_identities(leaf)
    except Exception:  # any unreadable part: no claim
        return False
    return issuer == identity.issuer and identity.subject in names


_LOADED: set[Path] = set()  # roots already loaded once in this process


def _loadable(t: TrustedIdentity) -> None:
    """A trusted root that cannot be loaded is the policy's error (exit 2), not a reason to list
    every bundle as untrusted. Checked here, on the first bundle, not when the policy loads: a
    run whose evidence holds no bundle never imports sigstore."""
    from attest.sigstore_bundle import load_trusted_root

    if t.trusted_root in _LOADED:
        return
    try:
        load_trusted_root(t.trusted_root)
    except AttestError as e:
        raise PolicyFileError(f"signers.{t.name}.sigstore.trustedRoot: {e}") from e
    _LOADED.add(t.trusted_root)


def judge_bundle(body: bytes, identities: Iterable[TrustedIdentity], where: str) -> BundleVerdict:
    """The first trusted identity the bundle fully verifies for; else why none (every identity's
    reason); raises :class:`SignatureFailure` for a genuine certificate of a trusted identity on a
    bundle that does not verify. ``where`` names the bundle in messages."""
    reasons: list[str] = []
    for t in identities:
        _loadable(t)
        probe = _probe(t.identity)
        try:
            verified = open_statement(body, trusted_root=t.trusted_root, identity=probe)
        except SignatureError as e:
            what = str(e).removeprefix("Sigstore bundle does not verify: ")
            if "matched" in probe.stages:
                raise SignatureFailure(
                    f"{where} has a certificate the trusted root issued to trusted signer "
                    f"{t.name!r}, but the rest does not verify (transparency-log entry, time or "
                    f"signature): {what}"
                ) from e
            if "reached" not in probe.stages and _claimed(body, t.identity):
                reasons.append(
                    f"{t.name}: its certificate claims this signer's identity but is not proved "
                    f"by the trusted root (certificate chain, SCT or signing time): {what}; "
                    "not counted"
                )
            else:
                reasons.append(f"{t.name}: {what}")
            continue
        except AttestError as e:
            reasons.append(f"{t.name}: {e}")
            continue
        return BundleVerdict(t.name, verified)
    why = "; ".join(reasons) if reasons else "the policy trusts no Sigstore identity"
    return BundleVerdict(reason=f"a Sigstore bundle no trusted identity verifies ({why})")
