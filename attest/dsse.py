"""DSSE v1 envelopes: the exact pre-authentication encoding, parsing, signing, verifying.

``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` with lengths as ASCII
decimal byte counts. The signature covers PAE only, so the payload bytes are kept verbatim and
never re-serialised. ``keyid`` is an unauthenticated hint: it orders which key is tried first and
never decides anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from attest._internal import b64, jsontext
from attest._internal.frozen import Frozen, set_field
from attest.errors import InvalidInput, SignatureError
from attest.keys import PublicKey, verified_signatures

__all__ = [
    "INTOTO_PAYLOAD_TYPE",
    "Envelope",
    "EnvelopeSignature",
    "Signer",
    "VerifiedEnvelope",
    "pae",
    "sign_envelope",
    "verify_envelope",
]

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


class Signer(Protocol):
    """Anything that signs bytes: a key file signer, a KMS-style signer."""

    @property
    def keyid(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


class EnvelopeSignature(Frozen):
    _fields = ("sig", "keyid")
    sig: bytes
    keyid: str | None

    def __init__(self, sig: bytes, keyid: str | None = None) -> None:
        set_field(self, "sig", sig)
        set_field(self, "keyid", keyid)


class Envelope(Frozen):
    """A parsed DSSE envelope. The payload is *unverified* until :func:`verify_envelope` says so."""

    _fields = ("payload_type", "unverified_payload", "signatures")
    payload_type: str
    unverified_payload: bytes
    signatures: tuple[EnvelopeSignature, ...]

    def __init__(
        self,
        payload_type: str,
        unverified_payload: bytes,
        signatures: tuple[EnvelopeSignature, ...],
    ) -> None:
        set_field(self, "payload_type", payload_type)
        set_field(self, "unverified_payload", unverified_payload)
        set_field(self, "signatures", signatures)

    @classmethod
    def from_json(cls, data: bytes | str) -> Envelope:
        return cls.from_dict(jsontext.loads(data, "envelope"))

    @classmethod
    def from_dict(cls, doc: Any) -> Envelope:
        if not isinstance(doc, dict):
            raise InvalidInput("envelope must be a JSON object")
        payload_type = doc.get("payloadType")
        if not isinstance(payload_type, str) or not payload_type:
            raise InvalidInput("envelope has no payloadType")
        payload = b64.decode(doc.get("payload"), "envelope payload")
        raw_sigs = doc.get("signatures")
        if not isinstance(raw_sigs, list):
            raise InvalidInput("envelope signatures must be a list")
        sigs = []
        for i, s in enumerate(raw_sigs):
            if not isinstance(s, dict):
                raise InvalidInput(f"envelope signature {i} must be an object")
            keyid = s.get("keyid")
            if keyid is not None and not isinstance(keyid, str):
                raise InvalidInput(f"envelope signature {i} keyid must be a string")
            sigs.append(
                EnvelopeSignature(b64.decode(s.get("sig"), f"signature {i}"), keyid or None)
            )
        return cls(payload_type, payload, tuple(sigs))

    def pae(self) -> bytes:
        return pae(self.payload_type, self.unverified_payload)

    def to_dict(self) -> dict[str, Any]:
        sigs: list[dict[str, str]] = []
        for s in self.signatures:
            entry = {"keyid": s.keyid} if s.keyid else {}
            entry["sig"] = b64.encode(s.sig)
            sigs.append(entry)
        return {
            "payload": b64.encode(self.unverified_payload),
            "payloadType": self.payload_type,
            "signatures": sigs,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()


def sign_envelope(
    payload: bytes, signers: Iterable[Signer], payload_type: str = INTOTO_PAYLOAD_TYPE
) -> Envelope:
    """Sign ``payload`` (exact bytes) with each signer."""
    message = pae(payload_type, payload)
    sigs = tuple(EnvelopeSignature(s.sign(message), s.keyid or None) for s in signers)
    if not sigs:
        raise InvalidInput("at least one signer is needed")
    return Envelope(payload_type, payload, sigs)


class VerifiedEnvelope(Frozen):
    """The payload of an envelope whose signatures met the threshold, and who signed it."""

    _fields = ("payload_type", "payload", "signed_by", "signatures")
    payload_type: str
    payload: bytes
    signed_by: tuple[PublicKey, ...]
    signatures: tuple[tuple[PublicKey, bytes], ...]  # each key of signed_by, the sig it verified

    def __init__(
        self,
        payload_type: str,
        payload: bytes,
        signed_by: tuple[PublicKey, ...],
        signatures: tuple[tuple[PublicKey, bytes], ...] = (),
    ) -> None:
        set_field(self, "payload_type", payload_type)
        set_field(self, "payload", payload)
        set_field(self, "signed_by", signed_by)
        set_field(self, "signatures", signatures)


def verify_envelope(
    envelope: Envelope,
    keys: Sequence[PublicKey],
    *,
    threshold: int = 1,
    payload_type: str | None = None,
) -> VerifiedEnvelope:
    """Verify ``envelope`` against trusted ``keys``; raise :class:`SignatureError` if fewer than
    ``threshold`` distinct keys signed it. ``keyid`` hints only choose which key to try first."""
    if payload_type is not None and envelope.payload_type != payload_type:
        raise SignatureError(f"payloadType is {envelope.payload_type!r}, expected {payload_type!r}")
    if not envelope.signatures:
        raise SignatureError("envelope carries no signatures")
    pairs = verified_signatures(
        envelope.pae(),
        [(s.sig, s.keyid) for s in envelope.signatures],
        keys,
        threshold=threshold,
        what="envelope",
    )
    signed_by = tuple(k for k, _ in pairs)
    return VerifiedEnvelope(envelope.payload_type, envelope.unverified_payload, signed_by, pairs)
