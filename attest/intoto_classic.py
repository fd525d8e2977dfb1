"""Classic in-toto metadata (v0.9 links and layouts), as the in-toto reference writes them.

A classic metablock is ``{"signed": {...}, "signatures": [{"keyid", "sig"}]}`` where each
signature (hex) covers securesystemslib's canonical JSON of ``signed``. DSSE-wrapped links are
plain DSSE envelopes and go through :func:`attest.dsse.verify_envelope` instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from attest._internal import jsontext
from attest.dsse import INTOTO_PAYLOAD_TYPE, Signer, sign_envelope
from attest.errors import InvalidInput
from attest.keys import PublicKey, load_public_key, verified_signers
from attest.statement import ResourceDescriptor

__all__ = [
    "CLASSIC_FORMATS",
    "VerifiedMetablock",
    "check_step_name",
    "classic_link",
    "layout_keys",
    "link_filename",
    "sign_classic",
    "verify_metablock",
]

CLASSIC_FORMATS = ("link", "link-dsse")


@dataclass(frozen=True)
class VerifiedMetablock:
    signed: dict[str, Any]
    signed_by: tuple[PublicKey, ...]


def layout_keys(layout_signed: dict[str, Any]) -> dict[str, PublicKey]:
    """The functionary keys a layout declares, keyed by the layout's own keyids."""
    keys = layout_signed.get("keys")
    if not isinstance(keys, dict):
        raise InvalidInput("layout has no keys object")
    return {
        keyid: load_public_key(json.dumps({**doc, "keyid": keyid}).encode(), source=keyid)
        for keyid, doc in keys.items()
    }


def verify_metablock(
    data: bytes, keys: Sequence[PublicKey], *, threshold: int = 1
) -> VerifiedMetablock:
    """Verify a classic metablock's signatures against ``keys`` (keyids are hints only)."""
    from securesystemslib.formats import encode_canonical

    doc = jsontext.loads(data, "metablock")
    try:
        unverified_signed = doc["signed"]
        sigs = doc["signatures"]
    except (KeyError, TypeError) as e:
        raise InvalidInput("not an in-toto metablock (signed + signatures)") from e
    if not isinstance(unverified_signed, dict) or not isinstance(sigs, list):
        raise InvalidInput("metablock signed must be an object and signatures a list")
    canonical = encode_canonical(unverified_signed)
    assert canonical is not None  # without an output callback it returns the text
    message = canonical.encode()
    pairs: list[tuple[bytes, str | None]] = []
    for sig in sigs:
        try:
            pairs.append((bytes.fromhex(sig["sig"]), sig.get("keyid")))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # a malformed signature entry signs nothing
    signed_by = verified_signers(message, pairs, keys, threshold=threshold, what="metablock")
    return VerifiedMetablock(unverified_signed, signed_by)


def classic_link(
    *,
    name: str,
    command: Sequence[str],
    materials: Sequence[ResourceDescriptor],
    products: Sequence[ResourceDescriptor],
    byproducts: dict[str, Any],
    environment: dict[str, Any],
) -> dict[str, Any]:
    """An in-toto v0.9 link (``_type: link``), the shape ``in-toto-run`` records and
    ``in-toto-verify`` checks against a layout: artifacts as ``{path: {alg: hex}}``."""
    return {
        "_type": "link",
        "name": name,
        "command": list(command),
        "materials": {m.name: dict(m.digest) for m in materials},
        "products": {p.name: dict(p.digest) for p in products},
        "byproducts": byproducts,
        "environment": environment,
    }


def sign_classic(signed: dict[str, Any], signer: Signer, *, dsse: bool) -> bytes:
    """Sign classic metadata as in-toto 3.x does: a metablock whose hex signature covers
    securesystemslib canonical JSON, or a DSSE envelope whose payload is that JSON."""
    if dsse:
        payload = json.dumps(signed, sort_keys=True).encode()
        return sign_envelope(payload, [signer], INTOTO_PAYLOAD_TYPE).to_json()
    from securesystemslib.formats import encode_canonical

    canonical = encode_canonical(signed)
    assert canonical is not None
    sig = signer.sign(canonical.encode())
    block = {"signatures": [{"keyid": signer.keyid, "sig": sig.hex()}], "signed": signed}
    return json.dumps(block, sort_keys=True, indent=1).encode()


def check_step_name(step: str) -> str:
    """A step name is part of a file name (``STEP.KEYID8.link``), so it must be one harmless
    path component: non-empty, not starting with ``.`` (no ``..``, no hidden file), no ``/`` or
    ``\\``, no control characters. Anything else raises :class:`~attest.errors.InvalidInput`."""
    if not step:
        raise InvalidInput("a step name must not be empty")
    if step.startswith(".") or "/" in step or "\\" in step:
        raise InvalidInput(f"step name {step!r} must not start with '.' or hold '/' or '\\'")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in step):
        raise InvalidInput(f"step name {step!r} holds a control character")
    return step


def link_filename(step: str, keyid: str) -> str:
    """``STEP.KEYID8.link``: where ``in-toto-verify`` looks for a functionary's link."""
    return f"{check_step_name(step)}.{keyid[:8]}.link"
