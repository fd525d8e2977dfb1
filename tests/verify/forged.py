"""Hostile Sigstore bundles built from a genuine conformance bundle: a certificate forged with the
trusted identity (self-signed, Fulcio's issuer extensions copied), and a genuine bundle whose
payload was edited after signing. Nothing here is a fixture: each is made at test time."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from attest.dsse import pae

_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")


def _der_utf8(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 128
    return bytes([0x0C, len(raw)]) + raw


def forged_certificate(
    key: ec.EllipticCurvePrivateKey,
    identity: str,
    issuer: str,
    not_before: dt.datetime,
    like: x509.Certificate,
) -> x509.Certificate:
    """A certificate signed by ``key`` itself that says what Fulcio would: the SAN URI and the
    OIDC issuer extensions (v1 raw, v2 DER UTF8String), valid around ``not_before``, naming the
    issuer and authority key of the genuine certificate ``like`` (so a chain is looked for)."""
    aki = like.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(like.issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before - dt.timedelta(minutes=5))
        .not_valid_after(not_before + dt.timedelta(minutes=10))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]), critical=True
        )
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(aki, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.UnrecognizedExtension(_ISSUER_V1, issuer.encode()), critical=False)
        .add_extension(x509.UnrecognizedExtension(_ISSUER_V2, _der_utf8(issuer)), critical=False)
        .sign(key, hashes.SHA256())
    )


def forge(
    bundle: bytes, identity: str, issuer: str, statement: dict[str, Any] | None = None
) -> bytes:
    """``bundle`` re-signed by a new key under a forged certificate naming ``identity`` (the
    log entry is left as it was: a forger cannot get a real one for their certificate)."""
    doc = json.loads(bundle)
    env = doc["dsseEnvelope"]
    if statement is not None:
        env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    key = ec.generate_private_key(ec.SECP256R1())
    integrated = int(doc["verificationMaterial"]["tlogEntries"][0]["integratedTime"])
    genuine = x509.load_der_x509_certificate(
        base64.b64decode(doc["verificationMaterial"]["certificate"]["rawBytes"])
    )
    when = dt.datetime.fromtimestamp(integrated, dt.UTC)
    cert = forged_certificate(key, identity, issuer, when, genuine)
    payload = base64.b64decode(env["payload"])
    sig = key.sign(pae(env["payloadType"], payload), ec.ECDSA(hashes.SHA256()))
    env["signatures"] = [{"sig": base64.b64encode(sig).decode()}]
    der = cert.public_bytes(serialization.Encoding.DER)
    doc["verificationMaterial"]["certificate"] = {"rawBytes": base64.b64encode(der).decode()}
    return json.dumps(doc).encode()


def tampered(bundle: bytes, edit: dict[str, Any]) -> bytes:
    """``bundle`` with its statement changed after signing (top-level fields of ``edit`` set)."""
    doc = json.loads(bundle)
    env = doc["dsseEnvelope"]
    statement = json.loads(base64.b64decode(env["payload"]))
    statement.update(edit)
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(doc).encode()


def corrupted_log_proof(bundle: bytes) -> bytes:
    """``bundle`` with one bit flipped in its log entry's inclusion-proof hashes."""
    doc = json.loads(bundle)
    proof = doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    first = bytearray(base64.b64decode(proof["hashes"][0]))
    first[0] ^= 1
    proof["hashes"][0] = base64.b64encode(bytes(first)).decode()
    return json.dumps(doc).encode()
