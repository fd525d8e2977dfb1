"""PEP 740 attestations (what PyPI's integrity API serves) as Sigstore bundles.

PyPI serves a distribution's provenance as ``{"version": 1, "attestation_bundles": [{"publisher":
{…}, "attestations": [ATTESTATION…]}]}``; an uploaded ``*.publish.attestation`` file is one
ATTESTATION: ``{"version": 1, "verification_material": {"certificate": B64 DER,
"transparency_entries": [ENTRY…]}, "envelope": {"statement": B64, "signature": B64}}``. Each
transparency entry is a Rekor ``TransparencyLogEntry`` in its protobuf JSON form — the form of a
Sigstore bundle's ``verificationMaterial.tlogEntries`` — so an attestation is a Sigstore bundle
v0.3 with its parts renamed: the certificate, the first log entry (as the reference
implementation, ``pypi-attestations``' ``Attestation.to_bundle``, takes), and a DSSE envelope of
payload type ``application/vnd.in-toto+json`` carrying the statement with the one signature.
:func:`bundles_from_pep740` writes that bundle; verifying it is then sigstore-python's, as for any
bundle (:mod:`verify.bundle_trust`).

The ``publisher`` object is PyPI's account of the Trusted Publisher, unsigned here: it is not
used. Who signed is the certificate's identity, matched against the policy's Sigstore signers.
A statement without a predicate (PyPI's publish attestations have none) is a valid in-toto v1
statement. Pure: no sigstore, no network.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from verify.errors import UsageError

__all__ = ["BUNDLE_MEDIA_TYPE", "bundles_from_pep740", "is_pep740"]

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
_INTOTO = "application/vnd.in-toto+json"


def is_pep740(doc: Any) -> bool:
    """A PEP 740 provenance object or a single attestation object."""
    return isinstance(doc, dict) and (
        "attestation_bundles" in doc or ("verification_material" in doc and "envelope" in doc)
    )


def _b64(value: Any, where: str) -> str:
    """A standard base64 string (checked, returned as given)."""
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: not a base64 string")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise UsageError(f"{where}: not base64 ({e})") from e
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{where}: not a JSON object")
    return value


def _bundle(att: Any, where: str) -> bytes:
    """One PEP 740 attestation as a Sigstore bundle v0.3 (JSON bytes)."""
    att = _object(att, where)
    if att.get("version") != 1:
        raise UsageError(f"{where}: PEP 740 attestation version {att.get('version')!r}, not 1")
    material = _object(att.get("verification_material"), f"{where}.verification_material")
    envelope = _object(att.get("envelope"), f"{where}.envelope")
    entries = material.get("transparency_entries")
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{where}: no transparency_entries")
    entry = _object(entries[0], f"{where}.transparency_entries[0]")
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "certificate": {"rawBytes": _b64(material.get("certificate"), f"{where} certificate")},
            "tlogEntries": [entry],
        },
        "dsseEnvelope": {
            "payload": _b64(envelope.get("statement"), f"{where}.envelope.statement"),
            "payloadType": _INTOTO,
            "signatures": [{"sig": _b64(envelope.get("signature"), f"{where}.envelope.signature")}],
        },
    }
    return json.dumps(bundle).encode()


def bundles_from_pep740(doc: dict[str, Any], source: str) -> list[bytes]:
    """Every attestation of a PEP 740 provenance object (or the one attestation object), as a
    Sigstore bundle. A malformed one is :class:`UsageError` (exit 2) naming where it is."""
    if "attestation_bundles" not in doc:
        return [_bundle(doc, source)]
    if doc.get("version") != 1:
        raise UsageError(f"{source}: PEP 740 provenance version {doc.get('version')!r}, not 1")
    groups = doc["attestation_bundles"]
    if not isinstance(groups, list) or not groups:
        raise UsageError(f"{source}: attestation_bundles is not a non-empty list")
    out: list[bytes] = []
    for i, group in enumerate(groups):
        where = f"{source} attestation_bundles[{i}]"
        atts = _object(group, where).get("attestations")
        if not isinstance(atts, list) or not atts:
            raise UsageError(f"{where}: no attestations")
        out += [_bundle(a, f"{where}.attestations[{j}]") for j, a in enumerate(atts)]
    return out
