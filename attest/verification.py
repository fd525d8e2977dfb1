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
from attest.dsse import INTOTO_PAYLOAD_TYPE, Envelope, VerifiedEnvelope, verify_envelope
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


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{what} is not JSON: {e}") from e


def _verified(
    payload_type: str, payload: bytes | Any, signers: tuple[str, ...]
) -> VerifiedStatement:
    """``payload``: the verified bytes, or their already-parsed JSON."""
    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise InvalidInput(f"payloadType {payload_type!r} is not {INTOTO_PAYLOAD_TYPE}")
    statement = parse_statement(payload)
    try:
        predicate = parse_predicate(statement.predicate_type, statement.predicate)
    except InvalidStatement as e:
        return VerifiedStatement(statement, signers, None, str(e))
    return VerifiedStatement(statement, signers, predicate)


def _is_bundle(doc: Any) -> bool:
    return isinstance(doc, dict) and "dsseEnvelope" in doc


def _is_metablock(doc: Any) -> bool:
    return isinstance(doc, dict) and "signed" in doc and "signatures" in doc


def _open_bundle(
    document: bytes, trusted_root: Path | None, identity: IdentityPolicy | None
) -> VerifiedStatement:
    if trusted_root is None or identity is None:
        raise InvalidInput("a Sigstore bundle needs --trusted-root, --identity and --issuer")
    bundle = verify_bundle(document, trusted_root=trusted_root, identity=identity)
    who = tuple(f"{bundle.issuer} {i}" for i in bundle.identities)
    return _verified(bundle.payload_type, bundle.payload, who)


def _open_envelope(doc: Any, keys: Sequence[PublicKey]) -> tuple[VerifiedEnvelope, Any]:
    """Verify a DSSE envelope, then parse its payload once: (who signed, payload JSON)."""
    if not keys:
        raise InvalidInput("a DSSE envelope needs at least one trusted --key")
    if _is_metablock(doc):
        raise InvalidInput("a classic in-toto metablock, not a DSSE envelope: use verify_metablock")
    verified = verify_envelope(Envelope.from_dict(doc), keys)
    return verified, _json(verified.payload, "the envelope payload")


def open_statement(
    document: bytes,
    *,
    keys: Sequence[PublicKey] = (),
    trusted_root: Path | None = None,
    identity: IdentityPolicy | None = None,
) -> VerifiedStatement:
    """Verify a DSSE envelope or Sigstore bundle and return its valid Statement."""
    doc = _json(document, "the document")
    if _is_bundle(doc):
        return _open_bundle(document, trusted_root, identity)
    verified, payload = _open_envelope(doc, keys)
    return _verified(verified.payload_type, payload, tuple(k.keyid for k in verified.signed_by))


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


def _classic_report(signed: Any, signed_by: Sequence[PublicKey]) -> dict[str, Any]:
    """What ``attest verify`` prints for a verified in-toto v0.9 link or layout."""
    return {
        "verified": True,
        "classic": signed.get("_type", ""),
        "name": signed.get("name", ""),
        "signedBy": [k.keyid for k in signed_by],
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
    """``attest verify``: a Statement in a DSSE envelope or Sigstore bundle, or a classic in-toto
    link or layout (plain metablock, or in-toto 3.x's DSSE mode). The document and its payload are
    each parsed once; a classic payload is recognised only after its signature verifies."""
    try:
        document = path.read_bytes()
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror}") from e
    trusted = [read_public_key(k) for k in keys]
    doc = _json(document, "the document")
    if _is_metablock(doc):
        if not trusted:
            raise InvalidInput("a classic in-toto metablock needs at least one trusted --key")
        block = verify_metablock(document, trusted)
        return _classic_report(block.signed, block.signed_by)
    if _is_bundle(doc):
        policy = None
        if identity or issuer:
            policy = IdentityPolicy(
                issuer=issuer or "", subject=identity or "", issuer_regex=regex, subject_regex=regex
            )
        verified = _open_bundle(document, trusted_root, policy)
    else:
        envelope, payload = _open_envelope(doc, trusted)
        if isinstance(payload, dict) and payload.get("_type") in ("link", "layout"):
            if envelope.payload_type != INTOTO_PAYLOAD_TYPE:
                raise InvalidInput(f"payloadType {envelope.payload_type!r} is not in-toto")
            return _classic_report(payload, envelope.signed_by)
        verified = _verified(
            envelope.payload_type, payload, tuple(k.keyid for k in envelope.signed_by)
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
