"""Verification helpers shared by ``attest verify``, the ledger and the deploy-side ``verify``:
open a DSSE envelope (trusted keys) or a Sigstore bundle (trusted root + identity policy), then
parse its Statement — signature first, payload second — and check it names the artifacts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attest.collect.subjects import resolve_subjects
from attest.dsse import INTOTO_PAYLOAD_TYPE, Envelope, verify_envelope
from attest.errors import InvalidInput, InvalidStatement, SignatureError
from attest.intoto_classic import verify_metablock
from attest.keys import PublicKey, read_public_key
from attest.predicates import Predicate, parse_predicate
from attest.sigstore_bundle import IdentityPolicy, verify_bundle
from attest.statement import ResourceDescriptor, Statement, parse_statement

__all__ = ["VerifiedStatement", "check_subjects", "open_statement", "verify_file"]


@dataclass(frozen=True)
class VerifiedStatement:
    """A signature-checked, schema-valid Statement. ``predicate`` is its typed model; when the
    predicate breaks its own schema, ``predicate`` is ``None`` and ``predicate_error`` says why
    (the signature and statement are still good; policy decides what that means)."""

    statement: Statement
    signers: tuple[str, ...]
    predicate: Predicate | None
    predicate_error: str | None = None


def _verified(payload_type: str, payload: bytes, signers: tuple[str, ...]) -> VerifiedStatement:
    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise InvalidInput(f"payloadType {payload_type!r} is not {INTOTO_PAYLOAD_TYPE}")
    statement = parse_statement(payload)
    try:
        predicate = parse_predicate(statement.predicate_type, statement.predicate)
    except InvalidStatement as e:
        return VerifiedStatement(statement, signers, None, str(e))
    return VerifiedStatement(statement, signers, predicate)


def open_statement(
    document: bytes,
    *,
    keys: Sequence[PublicKey] = (),
    trusted_root: Path | None = None,
    identity: IdentityPolicy | None = None,
) -> VerifiedStatement:
    """Verify a DSSE envelope or Sigstore bundle and return its valid Statement."""
    try:
        doc = json.loads(document)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInput(f"not JSON: {e}") from e
    if isinstance(doc, dict) and "dsseEnvelope" in doc:
        if trusted_root is None or identity is None:
            raise InvalidInput("a Sigstore bundle needs --trusted-root, --identity and --issuer")
        bundle = verify_bundle(document, trusted_root=trusted_root, identity=identity)
        who = tuple(f"{bundle.issuer} {i}" for i in bundle.identities)
        return _verified(bundle.payload_type, bundle.payload, who)
    if not keys:
        raise InvalidInput("a DSSE envelope needs at least one trusted --key")
    if isinstance(doc, dict) and "signed" in doc and "signatures" in doc:
        raise InvalidInput("a classic in-toto metablock, not a DSSE envelope: use verify_metablock")
    verified = verify_envelope(Envelope.from_dict(doc), keys)
    return _verified(
        verified.payload_type, verified.payload, tuple(k.keyid for k in verified.signed_by)
    )


def check_subjects(statement: Statement, artifacts: Sequence[ResourceDescriptor]) -> None:
    """Raise unless every artifact's digest is one of the statement's subjects."""
    for artifact in artifacts:
        if not any(
            alg in s.digest and s.digest[alg] == value
            for s in statement.subjects
            for alg, value in artifact.digest.items()
        ):
            raise SignatureError(
                f"{artifact.name} ({', '.join(f'{a}:{v}' for a, v in artifact.digest.items())}) "
                "is not a subject of this attestation"
            )


def _is_metablock(document: bytes) -> bool:
    try:
        doc = json.loads(document)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and "signed" in doc and "signatures" in doc


def _verify_classic(document: bytes, keys: Sequence[PublicKey]) -> dict[str, Any]:
    """Classic in-toto v0.9 links and layouts (what in-toto-run and in-toto-sign write)."""
    if not keys:
        raise InvalidInput("a classic in-toto metablock needs at least one trusted --key")
    verified = verify_metablock(document, keys)
    return {
        "verified": True,
        "classic": verified.signed.get("_type", ""),
        "name": verified.signed.get("name", ""),
        "signedBy": [k.keyid for k in verified.signed_by],
    }


def _classic_dsse(document: bytes, keys: Sequence[PublicKey]) -> dict[str, Any] | None:
    """A DSSE envelope around an in-toto v0.9 link or layout (in-toto 3.x's DSSE mode). The
    unverified ``_type`` only routes; nothing is trusted before the signature verifies."""
    try:
        doc = json.loads(document)
        envelope = Envelope.from_dict(doc)
        unverified_type = json.loads(envelope.unverified_payload).get("_type")
    except (ValueError, UnicodeDecodeError, AttributeError, InvalidInput):
        return None
    if unverified_type not in ("link", "layout"):
        return None
    if not keys:
        raise InvalidInput("a DSSE envelope needs at least one trusted --key")
    verified = verify_envelope(envelope, keys, payload_type=INTOTO_PAYLOAD_TYPE)
    signed = json.loads(verified.payload)
    return {
        "verified": True,
        "classic": signed.get("_type", ""),
        "name": signed.get("name", ""),
        "signedBy": [k.keyid for k in verified.signed_by],
    }


def verify_file(
    path: Path,
    *,
    keys: Sequence[Path],
    subjects: Sequence[str],
    trusted_root: Path | None,
    identity: str | None,
    issuer: str | None,
    regex: bool,
    strict: bool = False,
) -> dict[str, Any]:
    try:
        document = path.read_bytes()
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror}") from e
    trusted = [read_public_key(k) for k in keys]
    if _is_metablock(document):
        return _verify_classic(document, trusted)
    classic = _classic_dsse(document, trusted)
    if classic is not None:
        return classic
    policy = None
    if identity or issuer:
        policy = IdentityPolicy(
            issuer=issuer or "", subject=identity or "", issuer_regex=regex, subject_regex=regex
        )
    verified = open_statement(
        document,
        keys=trusted,
        trusted_root=trusted_root,
        identity=policy,
    )
    check_subjects(verified.statement, resolve_subjects(subjects) if subjects else [])
    if strict and verified.predicate_error:
        raise InvalidInput(f"predicate breaks its schema: {verified.predicate_error}")
    st = verified.statement
    return {
        "verified": True,
        "predicateType": st.predicate_type,
        "predicateValid": verified.predicate_error is None,
        **({"predicateError": verified.predicate_error} if verified.predicate_error else {}),
        "subjects": [s.to_dict() for s in st.subjects],
        "signedBy": list(verified.signers),
    }
