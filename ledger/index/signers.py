"""Who signed a stored body, by the trust registry as the log records it before that body.

The signer terms of a record are derived, not taken from the body's say-so: a DSSE ``keyid`` is
only a hint (it picks which registered key is tried first), and a name is indexed only for a
signature that verifies with that signer's key. A Sigstore bundle's identity (SAN) and issuer
come from its certificate, and count only once the DSSE signature verifies with the certificate's
key; a registered identity's name is indexed when the certificate meets its policy. A name is
credited only if the registry allowed that signer at the record's time for the statement's
predicate type (not yet valid, expired, revoked or limited to other types: no credit — the
``keyid`` term still says which key signed). (The chain to
the trusted root and the transparency-log entry were checked by admission; re-checking them here
would cost milliseconds per record on the append path.)

Pure given the registry rows before the record: :class:`SignerBook` is built from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from attest.dsse import pae
from attest.errors import Error as AttestError
from attest.keys import PublicKey, public_key_from_crypto
from attest.sigstore_bundle import IdentityPolicy, certificate_identities, certificate_issuer
from ledger.bodies import Verified
from ledger.bodies import b64_field as _b64
from ledger.errors import Error
from ledger.registry.entries import state_from_rows
from ledger.registry.model import Signer

__all__ = ["SignerBook", "signer_book", "signer_terms"]

_MAX_SIGNATURES = 16


@dataclass(frozen=True)
class SignerBook:
    """The registered keys and identities as of one point in the log."""

    keys: tuple[tuple[Signer, PublicKey], ...]
    identities: tuple[tuple[Signer, IdentityPolicy], ...]


@lru_cache(maxsize=8)
def signer_book(rows: tuple[tuple[int, bytes], ...]) -> SignerBook:
    """The book the registry rows (already derived and checked, in index order) describe."""
    try:
        state = state_from_rows(rows)
    except (Error, ValueError):
        return SignerBook((), ())
    keys = tuple((s, s.key) for s in state.keys() if s.key is not None)  # noqa: SIM118
    identities = []
    for s in state.identities():
        assert s.spec.sigstore is not None
        try:
            identities.append((s, s.spec.sigstore.policy()))
        except Error:
            continue
    return SignerBook(keys, tuple(identities))


def _signed_message(
    env: dict[str, Any], payload: bytes | None
) -> tuple[bytes, list[tuple[bytes, str]]] | None:
    ptype = env.get("payloadType")
    if payload is None:
        payload = _b64(env.get("payload"))
    sigs = env.get("signatures")
    if not isinstance(ptype, str) or payload is None or not isinstance(sigs, list):
        return None
    out = []
    for s in sigs[:_MAX_SIGNATURES]:
        if isinstance(s, dict):
            sig = _b64(s.get("sig"))
            hint = s.get("keyid")
            if sig is not None:
                out.append((sig, hint if isinstance(hint, str) else ""))
    return pae(ptype, payload), out


def _key_terms(
    env: dict[str, Any],
    payload: bytes | None,
    verified: Verified,
    book: SignerBook,
    at: str,
    ptype: Any,
) -> set[tuple[str, str]]:
    if not book.keys:  # nobody to attribute to: skip building the signed message
        return set()
    signed = _signed_message(env, payload)
    if signed is None:
        return set()
    message, sigs = signed
    terms: set[tuple[str, str]] = set()
    for sig, hint in sigs:
        for _, key in sorted(book.keys, key=lambda sk: sk[1].keyid != hint):
            if (key.spki_pem(), sig) not in verified:  # not already checked by admission
                try:
                    key.verify(sig, message)
                except AttestError:
                    continue
            terms.add(("keyid", key.keyid))
            pem = key.spki_pem()  # one key may be registered under several names (one revoked,
            for other, same in book.keys:  # its successor not): credit each that is allowed
                if same.spki_pem() == pem and _allowed(other, at, ptype):
                    terms.add(("signer", other.spec.name))
            break
    return terms


def _certificate(bundle: dict[str, Any]) -> Any:
    from cryptography import x509

    vm = bundle.get("verificationMaterial")
    vm = vm if isinstance(vm, dict) else {}
    cert = vm.get("certificate")
    raw = cert.get("rawBytes") if isinstance(cert, dict) else None
    if raw is None:
        chain = vm.get("x509CertificateChain")
        certs = chain.get("certificates") if isinstance(chain, dict) else None
        first = certs[0] if isinstance(certs, list) and certs else None
        raw = first.get("rawBytes") if isinstance(first, dict) else None
    der = _b64(raw)
    if der is None:
        return None
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def _allowed(signer: Signer, at: str, ptype: Any) -> bool:
    """At the record's time exactly, by the registry as logged before the record: a signer is
    never credited after a revocation logged before it (a signer revoked or expired in the
    moment between admission and the record's time gets no name; the ``keyid`` term still
    records that its key signed). A revocation logged *after* the record does not reach back,
    even when its time is earlier than the record's (the revocation's own time is taken before it
    commits, or set back with ``revoke --at``): such a record was admitted before anyone could
    know, and the index, derived record by record, credits it as admission did."""
    return not signer.refusal(at, ptype if isinstance(ptype, str) else None)


def _bundle_terms(
    bundle: dict[str, Any],
    env: dict[str, Any],
    payload: bytes | None,
    book: SignerBook,
    at: str,
    ptype: Any,
) -> set[tuple[str, str]]:
    cert = _certificate(bundle)
    signed = _signed_message(env, payload)
    if cert is None or signed is None or not signed[1]:
        return set()
    try:
        key = public_key_from_crypto(cert.public_key())
        key.verify(signed[1][0][0], signed[0])
    except (AttestError, ValueError, TypeError):
        return set()
    terms = {("identity", i) for i in certificate_identities(cert)}
    issuer = certificate_issuer(cert)
    if issuer:
        terms.add(("issuer", issuer))
    from sigstore.errors import Error as SigstoreError

    for signer, policy in book.identities:
        try:
            policy.verify(cert)
        except SigstoreError:
            continue
        if _allowed(signer, at, ptype):
            terms.add(("signer", signer.spec.name))
    return terms


def signer_terms(
    envelope: dict[str, Any] | None,
    bundle: dict[str, Any] | None,
    book: SignerBook,
    at: str,
    predicate_type: Any,
    payload: bytes | None = None,
    verified: Verified = frozenset(),
) -> set[tuple[str, str]]:
    """``signer`` (registry name), ``keyid``, ``identity`` and ``issuer`` terms of one body
    recorded at ``at`` whose statement names ``predicate_type``. ``payload``: the envelope's
    payload when the caller already decoded it (:func:`~ledger.bodies.b64_field`); ``verified``:
    (key, signature) pairs admission verified over it (:class:`~ledger.bodies.Parsed`)."""
    if envelope is None:
        return set()
    if bundle is not None:
        return _bundle_terms(bundle, envelope, payload, book, at, predicate_type)
    return _key_terms(envelope, payload, verified, book, at, predicate_type)


def rows_before(rows: Sequence[tuple[int, bytes]], index: int) -> tuple[tuple[int, bytes], ...]:
    return tuple(r for r in rows if r[0] < index)
