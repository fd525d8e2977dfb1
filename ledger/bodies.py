"""What the ledger accepts as a body: a DSSE envelope or a Sigstore bundle, as exact bytes.

This module checks shape only (size, strict JSON — UTF-8, no duplicate keys, no NaN, bounded
nesting —, required fields, base64). Signature checks against the
trust registry belong to the submission service; see ``docs/design.md``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from ledger._internal.jsontext import loads
from ledger.errors import InvalidInput
from ledger.record import BodyType

__all__ = [
    "MAX_BODY_BYTES",
    "Parsed",
    "Submission",
    "Verified",
    "b64_field",
    "envelope_of",
    "parse_submission",
]

MAX_BODY_BYTES = 1 << 20
BUNDLE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"


Verified = frozenset[tuple[bytes, bytes]]  # (SPKI PEM of a key, a signature) that verified


@dataclass(frozen=True)
class Parsed:
    """A body as admission read it, handed to the commit's index derivation so that nothing is
    decoded or parsed twice. ``doc``: the body as strict JSON; ``payload``: its envelope's
    payload, decoded as :func:`b64_field` decodes it; ``statement``: that payload as strict JSON
    (an object). The strict parser accepts a subset of what the index's lenient reader does and
    reads it to the same value, so the index rows are those the stored bytes give. ``verified``:
    the (SPKI PEM of a key, signature) pairs admission verified over this envelope's signed
    message — the signer attribution trusts them instead of verifying them a second time."""

    doc: dict[str, Any]
    payload: bytes
    statement: dict[str, Any]
    verified: Verified = frozenset()


@dataclass(frozen=True)
class Submission:
    """A validated body waiting to be sequenced."""

    content: bytes
    body_type: BodyType
    digest: bytes
    # ``content`` as the strict parser read it, when it was — the document, or admission's
    # :class:`Parsed` — so the commit derives index rows from it instead of parsing the body
    # again; never compared, never stored.
    doc: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, content: bytes, body_type: BodyType, doc: Any = None) -> Submission:
        return cls(content, body_type, hashlib.sha256(content).digest(), doc)


_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def _not_b64(value: Any) -> str | None:
    """Why ``value`` is not standard or URL-safe base64 (DSSE allows both), padded or not; None
    if it is. (The field's name is joined only into a message: this runs for every body.)"""
    if not isinstance(value, str):
        return "must be a base64 string"
    if not _BASE64.fullmatch(value) or len(value.rstrip("=")) % 4 == 1:
        return "is not base64"
    return None


def _check_dsse(env: Any, where: str) -> None:
    if not isinstance(env, dict):
        raise InvalidInput(f"{where} must be a JSON object")
    ptype = env.get("payloadType")
    if not isinstance(ptype, str) or not ptype:
        raise InvalidInput(f"{where}.payloadType must be a non-empty string")
    why = _not_b64(env.get("payload"))
    if why is not None:
        raise InvalidInput(f"{where}.payload {why}")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise InvalidInput(f"{where}.signatures must be a non-empty list")
    for i, sig in enumerate(sigs):
        if not isinstance(sig, dict):
            raise InvalidInput(f"{where}.signatures[{i}] must be an object")
        why = _not_b64(sig.get("sig"))
        if why is not None:
            raise InvalidInput(f"{where}.signatures[{i}].sig {why}")
        if "keyid" in sig and not isinstance(sig["keyid"], str):
            raise InvalidInput(f"{where}.signatures[{i}].keyid must be a string")


def _check_bundle(doc: dict[str, Any]) -> None:
    if not isinstance(doc.get("verificationMaterial"), dict):
        raise InvalidInput("Sigstore bundle has no verificationMaterial object")
    kinds = [k for k in ("dsseEnvelope", "messageSignature") if k in doc]
    if len(kinds) != 1:
        raise InvalidInput(
            "Sigstore bundle must hold exactly one of dsseEnvelope or messageSignature"
        )
    if kinds[0] == "dsseEnvelope":
        _check_dsse(doc["dsseEnvelope"], "dsseEnvelope")
    elif not isinstance(doc["messageSignature"], dict):
        raise InvalidInput("messageSignature must be an object")


_BUNDLE_MEMBERS = ("dsseEnvelope", "messageSignature", "verificationMaterial")


def _is_bundle(doc: dict[str, Any]) -> bool:
    media = doc.get("mediaType")
    return isinstance(media, str) and media.startswith(BUNDLE_MEDIA_PREFIX)


def classify(doc: Any) -> BodyType:
    """Which kind of body ``doc`` (parsed JSON) is; raises :class:`InvalidInput` for anything else.
    A DSSE envelope that also carries a Sigstore bundle's members is refused: a body is read one
    way, and a reader that took its ``dsseEnvelope`` would read a statement nobody verified."""
    if not isinstance(doc, dict):
        raise InvalidInput("a body must be a JSON object")
    if _is_bundle(doc):
        _check_bundle(doc)
        return "sigstore-bundle"
    if "payloadType" in doc or "signatures" in doc:
        extra = [k for k in _BUNDLE_MEMBERS if k in doc]
        if extra:
            raise InvalidInput(
                f"a DSSE envelope that also carries Sigstore bundle members ({', '.join(extra)}) "
                "could be read two ways; send the envelope alone, or the bundle with its mediaType"
            )
        _check_dsse(doc, "envelope")
        return "dsse"
    raise InvalidInput("body is neither a DSSE envelope nor a Sigstore bundle")


def envelope_of(doc: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``(envelope, bundle)`` of a parsed body, read as :func:`classify` reads it: a Sigstore
    bundle (by its ``mediaType``) and its ``dsseEnvelope``, or a bare DSSE envelope and ``None``.
    Every reader of stored bodies (the index, the client) uses this one reading, so what is
    indexed is what admission verified. Never raises: ``(None, None)`` when there is no envelope."""
    if not isinstance(doc, dict):
        return None, None
    if _is_bundle(doc):
        env = doc.get("dsseEnvelope")
        return (env if isinstance(env, dict) else None), doc
    return doc, None


def b64_field(value: Any) -> bytes | None:
    """A DSSE base64 field decoded as admission decodes it (standard or URL-safe, padded or not);
    ``None`` when it is not one."""
    from attest._internal import b64
    from attest.errors import InvalidInput as NotBase64

    try:
        return b64.decode(value, "field")
    except NotBase64:
        return None


def parse_submission(content: bytes, max_bytes: int = MAX_BODY_BYTES) -> Submission:
    """Check a submitted body's size and shape and wrap its exact bytes for sequencing."""
    if len(content) > max_bytes:
        raise InvalidInput(f"body is {len(content)} bytes; the limit is {max_bytes}")
    if not content.strip():
        raise InvalidInput("body is empty")
    doc = loads(content, "body")
    return Submission.of(content, classify(doc), doc)
