"""Three verification rules sigstore-python 4.5 lacks, applied with its own pieces.

1. Rekor ``intoto`` v0.0.2 log entries (what slsa-github-generator's TRW/BYOB builders and
   cosign < 2.x wrote): sigstore-python refuses any of them ("Integrated time only supported for
   dsse/hashedrekord 0.0.1 types"). :class:`CompatVerifier` accepts them and runs every check it
   runs for a ``dsse`` v0.0.1 entry: verified time from the SET-bound integrated time and any
   RFC 3161 timestamps, certificate chain and SCT at that time, identity policy, inclusion proof,
   checkpoint and SET, time inside the certificate's validity, the envelope signature, and then
   the entry body's consistency with the bundle (payload hash, and each logged signature and
   certificate equal to the envelope's), as sigstore-js and sigstore-go do.
2. Managed-key bundles (``verificationMaterial.publicKey``): sigstore-python cannot parse them
   (``Bundle`` insists on a certificate). :func:`verify_managed_key` checks the message
   signature with the caller's key, the digest, the ``hashedrekord`` entry's consistency, and
   the entry's inclusion proof, checkpoint and SET against the trusted root's Rekor keys.
3. A TSA's ``validFor.end`` is inclusive (the trust root's TimeRange is a closed interval, as
   for transparency logs): sigstore-python refuses a timestamp generated exactly at the end.
   :class:`CompatVerifier` accepts it after checking the timestamp's signature and chain
   against that TSA with rfc3161-client, as sigstore-python does for the others.

Private sigstore-python APIs are used (``_verify_common_signing_cert``, ``_establish_time``,
``TransparencyLogEntry._verify``); ``tests/verify/test_conformance.py`` pins their behaviour on
the conformance suite, so an upgrade that changes them fails loudly, not silently.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from sigstore._internal.timestamp import TimestampSource, TimestampVerificationResult
from sigstore.errors import VerificationError
from sigstore.verify import Verifier

if TYPE_CHECKING:
    from rfc3161_client import TimeStampResponse
    from sigstore._internal.trust import CertificateAuthority
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify.policy import VerificationPolicy

__all__ = ["CompatVerifier", "production_trusted_root", "verify_managed_key"]

_INTOTO_V002 = ("intoto", "0.0.2")
_PRODUCTION_STORE = "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"


def production_trusted_root() -> TrustedRoot:
    """The Sigstore production ``trusted_root.json`` shipped inside the sigstore-python wheel,
    read directly: no TUF refresh, no network, and not the (unverified) copy a previous
    ``offline=True`` run may have left in ``$XDG_CACHE_HOME``."""
    from sigstore.models import TrustedRoot

    path = resources.files("sigstore") / "_store" / _PRODUCTION_STORE / "trusted_root.json"
    with resources.as_file(path) as file:
        return TrustedRoot.from_file(str(file))


def _kind(bundle: Bundle) -> tuple[str, str]:
    kv = bundle.log_entry._inner.kind_version
    return (kv.kind, kv.version)


class CompatVerifier(Verifier):
    """sigstore-python's :class:`Verifier`, also accepting Rekor ``intoto`` v0.0.2 entries.

    ``signed_times``: the times step (0) established for the last bundle (signed timestamps, the
    log's integrated time). They are verified only once the whole bundle verified: read them
    after ``verify_dsse`` returned, never after it raised."""

    signed_times: tuple[datetime, ...] = ()

    def _establish_time(self, bundle: Bundle) -> list[TimestampVerificationResult]:
        self.signed_times = ()
        times = self._times(bundle)
        self.signed_times = tuple(t.time for t in times)
        return times

    def _times(self, bundle: Bundle) -> list[TimestampVerificationResult]:
        if _kind(bundle) != _INTOTO_V002:
            return super()._establish_time(bundle)
        times: list[TimestampVerificationResult] = []
        tsa = bundle.verification_material.timestamp_verification_data
        if tsa is not None and tsa.rfc3161_timestamps:
            if not self._trusted_root.get_timestamp_authorities():
                raise VerificationError("the bundle has signed timestamps but the root no TSA")
            times.extend(self._verify_timestamp_authority(bundle))
        inner = bundle.log_entry._inner
        if inner.integrated_time and inner.inclusion_promise:  # the SET is checked in step (5)
            when = datetime.fromtimestamp(inner.integrated_time, tz=UTC)
            times.append(
                TimestampVerificationResult(source=TimestampSource.TRANSPARENCY_SERVICE, time=when)
            )
        return times

    def _verify_signed_timestamp(
        self, timestamp_response: TimeStampResponse, message: bytes
    ) -> TimestampVerificationResult | None:
        result = super()._verify_signed_timestamp(timestamp_response, message)
        if result is not None:
            return result
        when = timestamp_response.tst_info.gen_time
        for tsa in self._trusted_root.get_timestamp_authorities():
            at_end = tsa.validity_period_end == when and tsa.validity_period_start <= when
            if at_end and _signed_by(tsa, timestamp_response, message):
                return TimestampVerificationResult(
                    source=TimestampSource.TIMESTAMP_AUTHORITY, time=when
                )
        return None

    def verify_dsse(self, bundle: Bundle, policy: VerificationPolicy) -> tuple[str, bytes]:
        if _kind(bundle) != _INTOTO_V002:
            return super().verify_dsse(bundle, policy)
        from sigstore import dsse

        self._verify_common_signing_cert(bundle, policy)  # steps (0)-(6)
        envelope = bundle._dsse_envelope
        if envelope is None:
            raise VerificationError("an intoto log entry needs a DSSE envelope in the bundle")
        key = bundle.signing_certificate.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise VerificationError("the signing certificate's key is not ECDSA")
        dsse._verify(key, envelope)  # step (7)
        _check_intoto_v002_body(bundle)  # step (8)
        return (envelope._inner.payload_type, envelope._inner.payload)


def _signed_by(tsa: CertificateAuthority, response: TimeStampResponse, message: bytes) -> bool:
    """The timestamp over ``message`` verifies with this TSA's chain (leaf, intermediates, root)."""
    from rfc3161_client import VerificationError as TimestampError
    from rfc3161_client import VerifierBuilder

    chain = tsa.certificates(allow_expired=True)
    if len(chain) < 2:  # a signing certificate and a root at least
        return False
    builder = VerifierBuilder().tsa_certificate(chain[0]).add_root_certificate(chain[-1])
    for intermediate in chain[1:-1]:
        builder = builder.add_intermediate_certificate(intermediate)
    try:
        builder.build().verify_message(response, message)
    except TimestampError:
        return False
    return True


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as e:
        raise VerificationError(f"intoto log entry: {what} is not base64") from e


def _logged_signature(sig: Any) -> bytes:
    """Rekor stores an intoto v0.0.2 signature base64-encoded twice; accept once as well."""
    once = _b64(sig, "signature")
    try:
        return base64.b64decode(once, validate=True)
    except (binascii.Error, ValueError):
        return once


def _logged_certificate(public_key: Any) -> bytes:
    """The logged verifier (a base64 PEM certificate), as DER: PEM line wrapping may differ."""
    from cryptography import x509

    pem = _b64(public_key, "publicKey")
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def _check_intoto_v002_body(bundle: Bundle) -> None:
    """The log entry describes this envelope: payload hash, signatures and certificate."""
    envelope = bundle._dsse_envelope
    assert envelope is not None
    try:
        body = json.loads(bundle.log_entry._inner.canonicalized_body)
        content = body["spec"]["content"]
        logged_hash = content["payloadHash"]
        logged_sigs = content["envelope"]["signatures"]
    except (ValueError, KeyError, TypeError) as e:
        raise VerificationError(f"malformed intoto log entry: {e}") from e
    if (body.get("kind"), body.get("apiVersion")) != _INTOTO_V002:
        raise VerificationError("log entry is not intoto v0.0.2")
    payload_hash = hashlib.sha256(envelope._inner.payload).hexdigest()
    if logged_hash.get("algorithm") != "sha256" or logged_hash.get("value") != payload_hash:
        raise VerificationError("log entry payload hash does not match the envelope")
    cert_der = bundle.signing_certificate.public_bytes(serialization.Encoding.DER)
    expected = sorted((s.sig, cert_der) for s in envelope._inner.signatures)
    try:
        logged = sorted(
            (_logged_signature(s["sig"]), _logged_certificate(s["publicKey"])) for s in logged_sigs
        )
    except (KeyError, TypeError, ValueError) as e:
        raise VerificationError(f"malformed intoto log entry signature: {e}") from e
    if logged != expected:
        raise VerificationError("log entry signatures do not match bundle")


def verify_managed_key(
    bundle: bytes, key: ec.EllipticCurvePublicKey, digest: bytes, trusted_root: TrustedRoot
) -> None:
    """Verify a managed-key bundle (message signature over a SHA-256 ``digest``, hashedrekord
    v0.0.1 log entry) with the caller's ECDSA key."""
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.models import TransparencyLogEntry
    from sigstore_models.bundle.v1 import Bundle as RawBundle

    raw = RawBundle.from_json(bundle)
    signature = raw.message_signature
    if signature is None:
        raise VerificationError("a managed-key bundle needs a message signature")
    if raw.verification_material.public_key is None:
        raise VerificationError("the bundle is not signed with a managed key")
    entries = raw.verification_material.tlog_entries
    if len(entries) != 1:
        raise VerificationError("expected exactly one log entry in bundle")
    if signature.message_digest is not None and signature.message_digest.digest != digest:
        raise VerificationError("Bundle message digest mismatch")
    try:
        key.verify(signature.signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except InvalidSignature as e:
        raise VerificationError("Signature is invalid for input") from e
    entry = TransparencyLogEntry(entries[0])
    _check_hashedrekord_body(entry._inner.canonicalized_body, signature.signature, key, digest)
    try:
        entry._verify(trusted_root.rekor_keyring(KeyringPurpose.VERIFY))
    except VerificationError as e:
        raise VerificationError(f"invalid log entry: {e}") from e


def _check_hashedrekord_body(
    body_bytes: bytes, sig: bytes, key: ec.EllipticCurvePublicKey, digest: bytes
) -> None:
    try:
        body = json.loads(body_bytes)
        spec = body["spec"]
        logged_key = serialization.load_pem_public_key(
            _b64(spec["signature"]["publicKey"]["content"], "publicKey")
        )
        logged = (
            body["kind"],
            body["apiVersion"],
            spec["data"]["hash"]["algorithm"],
            spec["data"]["hash"]["value"],
            _b64(spec["signature"]["content"], "signature"),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise VerificationError(f"malformed hashedrekord log entry: {e}") from e
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if logged != ("hashedrekord", "0.0.1", "sha256", digest.hex(), sig) or (
        logged_key.public_bytes(*spki) != key.public_bytes(*spki)
    ):
        raise VerificationError("transparency log entry is inconsistent with other materials")
