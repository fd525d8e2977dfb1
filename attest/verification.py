"""Verification helpers shared by ``attest verify``, the ledger and the deploy-side ``verify``:
open a DSSE envelope (trusted keys) or a Sigstore bundle (trusted root + identity policy), then
parse its Statement — signature first, payload second — and check it names the artifacts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attest._internal import jsontext
from attest._internal.frozen import Frozen, set_field
from attest.dsse import INTOTO_PAYLOAD_TYPE, Envelope, VerifiedEnvelope, verify_envelope
from attest.errors import InvalidInput, InvalidStatement, SignatureError
from attest.keys import PublicKey, read_public_key
from attest.predicates import PREDICATE_MODELS, parse_predicate
from attest.statement import ResourceDescriptor, Statement, parse_statement

if TYPE_CHECKING:  # Sigstore (X.509) and classic in-toto load only for those documents
    from attest.predicates import Predicate
    from attest.sigstore_bundle import IdentityPolicy

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "VerifiedStatement",
    "check_link_products",
    "check_subjects",
    "open_statement",
    "read_document",
    "signable_payload",
    "typed_predicate",
    "verify_file",
]


class VerifiedStatement(Frozen):
    """A signature-checked, schema-valid Statement. ``predicate`` is its typed model (``None``
    for a statement that has no predicate and whose type has no model); when the predicate breaks
    its own schema, ``predicate`` is ``None`` and ``predicate_error`` says why (the signature and
    statement are still good; policy decides what that means)."""

    _fields = ("statement", "signers", "predicate", "predicate_error", "signer_keys", "signed_at")
    statement: Statement
    signers: tuple[str, ...]
    predicate: Predicate | None
    predicate_error: str | None
    # the trusted keys whose signatures verified (DSSE): ``signers`` are their keyids, which a key
    # file states for itself — match a key by the key, never by a keyid
    signer_keys: tuple[PublicKey, ...]
    # a Sigstore bundle's verified signing time (the earliest signed timestamp or log integrated
    # time); ``None`` when nothing verified proves when it was signed (a bare DSSE envelope)
    signed_at: datetime | None

    def __init__(
        self,
        statement: Statement,
        signers: tuple[str, ...],
        predicate: Predicate | None,
        predicate_error: str | None = None,
        signer_keys: tuple[PublicKey, ...] = (),
        signed_at: datetime | None = None,
    ) -> None:
        set_field(self, "statement", statement)
        set_field(self, "signers", signers)
        set_field(self, "predicate", predicate)
        set_field(self, "predicate_error", predicate_error)
        set_field(self, "signer_keys", signer_keys)
        set_field(self, "signed_at", signed_at)


MAX_DOCUMENT_BYTES = 1 << 20  # the ledger's body limit: nothing larger can be in a ledger


def read_document(path: Path, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """A document's bytes, reading at most ``limit + 1`` of them (``/dev/zero`` is not read on)."""
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror}") from e
    if len(data) > limit:
        raise InvalidInput(f"{path} is larger than {limit} bytes, the largest body a ledger takes")
    return data


def _json(data: bytes, what: str) -> Any:
    return jsontext.loads(data, what)


def _verified(
    payload_type: str, payload: bytes | Any, signers: tuple[str, ...]
) -> VerifiedStatement:
    """``payload``: the verified bytes, or their already-parsed JSON."""
    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise InvalidInput(f"payloadType {payload_type!r} is not {INTOTO_PAYLOAD_TYPE}")
    statement = parse_statement(payload)
    try:
        predicate = typed_predicate(statement)
    except InvalidStatement as e:
        return VerifiedStatement(statement, signers, None, str(e))
    return VerifiedStatement(statement, signers, predicate)


_BUNDLE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"
SUPPORTED = (
    "attest verifies in-toto attestations: a DSSE envelope, a Sigstore bundle carrying a DSSE "
    "envelope, or a classic in-toto link or layout"
)


def typed_predicate(statement: Statement) -> Predicate | None:
    """The statement's predicate as its typed model; raise :class:`InvalidStatement` when it
    breaks that model's schema. A statement without a predicate has none (``None``) unless its
    type has a model, which then reads it as empty ("unset is treated the same as empty")."""
    if statement.predicate is None and statement.predicate_type not in PREDICATE_MODELS:
        return None
    return parse_predicate(statement.predicate_type, statement.predicate or {})


def signable_payload(statement: Statement) -> bytes:
    """The bytes to sign for ``statement``, once they read back as a verifier reads them: a valid
    Statement whose predicate fits its typed model. attest never signs what it would refuse."""
    payload = statement.to_json()
    try:
        typed_predicate(parse_statement(payload))
    except InvalidStatement as e:
        raise InvalidInput(f"refusing to sign a {statement.predicate_type} statement: {e}") from e
    return payload


def _is_bundle(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    media = doc.get("mediaType")
    return (
        "dsseEnvelope" in doc
        or "messageSignature" in doc
        or (isinstance(media, str) and media.startswith(_BUNDLE_MEDIA_PREFIX))
    )


def _is_metablock(doc: Any) -> bool:
    return isinstance(doc, dict) and "signed" in doc and "signatures" in doc


def _open_bundle(
    document: bytes, doc: Any, trusted_root: Path | None, identity: IdentityPolicy | None
) -> VerifiedStatement:
    if "messageSignature" in doc and "dsseEnvelope" not in doc:
        raise InvalidInput(
            "a Sigstore bundle with a message signature (a signed blob, not an attestation); "
            + SUPPORTED
        )
    if trusted_root is None or identity is None:
        raise InvalidInput("a Sigstore bundle needs --trusted-root, --identity and --issuer")
    from attest.sigstore_bundle import verify_bundle

    bundle = verify_bundle(document, trusted_root=trusted_root, identity=identity)
    who = tuple(f"{bundle.issuer} {i}" for i in bundle.identities)
    return _verified(bundle.payload_type, bundle.payload, who).replace(signed_at=bundle.signed_at)


def _open_envelope(doc: Any, keys: Sequence[PublicKey]) -> tuple[VerifiedEnvelope, Any]:
    """Verify a DSSE envelope, then parse its payload once: (who signed, payload JSON)."""
    if not isinstance(doc, dict) or "payloadType" not in doc:
        raise InvalidInput(f"not a DSSE envelope ({SUPPORTED})")
    if not keys:
        raise InvalidInput("a DSSE envelope needs at least one trusted --key")
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
        return _open_bundle(document, doc, trusted_root, identity)
    if _is_metablock(doc):
        raise InvalidInput("a classic in-toto metablock, not a DSSE envelope: use verify_metablock")
    verified, payload = _open_envelope(doc, keys)
    opened = _verified(verified.payload_type, payload, tuple(k.keyid for k in verified.signed_by))
    return opened.replace(signer_keys=tuple(verified.signed_by))


def _unmatched(artifact: ResourceDescriptor, named: Sequence[Mapping[str, str]]) -> bool:
    return not any(
        digest.get(alg) == value for digest in named for alg, value in artifact.digest.items()
    )


def _refuse_unmatched(
    artifacts: Sequence[ResourceDescriptor], named: Sequence[Mapping[str, str]], what: str
) -> None:
    for artifact in artifacts:
        if _unmatched(artifact, named):
            raise SignatureError(
                f"{artifact.name} ({', '.join(f'{a}:{v}' for a, v in artifact.digest.items())}) "
                f"is not {what}"
            )


def check_subjects(statement: Statement, artifacts: Sequence[ResourceDescriptor]) -> None:
    """Raise unless every artifact's digest is one of the statement's subjects."""
    named = [s.digest for s in statement.subjects]
    _refuse_unmatched(artifacts, named, "a subject of this attestation")


def check_link_products(signed: Mapping[str, Any], artifacts: Sequence[ResourceDescriptor]) -> None:
    """Raise unless every artifact's digest is a product of a classic in-toto link. A layout
    (or anything but a link) names no artifact, so asking it about one is bad input."""
    if signed.get("_type") != "link":
        raise InvalidInput(
            f"a classic in-toto {signed.get('_type')!r} names no artifacts: "
            "--subject applies to links and Statements"
        )
    products = signed.get("products")
    if not isinstance(products, dict) or not all(
        isinstance(d, dict) and all(isinstance(v, str) for v in d.values())
        for d in products.values()
    ):
        raise InvalidInput("link products must map each path to a digest object")
    _refuse_unmatched(artifacts, list(products.values()), "a product of this link")


def _classic_report(
    signed: Any, signed_by: Sequence[PublicKey], subjects: Sequence[str]
) -> dict[str, Any]:
    """What ``attest verify`` prints for a verified in-toto v0.9 link or layout, after checking
    that the link's products include every ``subjects`` artifact."""
    from attest.collect.subjects import resolve_subjects

    if subjects:
        check_link_products(signed, resolve_subjects(subjects))
    return {
        "verified": True,
        "classic": signed.get("_type", ""),
        "name": signed.get("name", ""),
        "signedBy": [k.keyid for k in signed_by],
    }


def _statement_report(
    verified: VerifiedStatement, subjects: Sequence[str], strict: bool
) -> dict[str, Any]:
    from attest.collect.subjects import resolve_subjects

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
    each parsed once; a classic payload is recognised only after its signature verifies.
    ``subjects`` must each be a subject of the Statement, or a product of the classic link."""
    document = read_document(path)
    trusted = [read_public_key(k) for k in keys]
    doc = _json(document, "the document")
    if _is_metablock(doc):
        if not trusted:
            raise InvalidInput("a classic in-toto metablock needs at least one trusted --key")
        from attest.intoto_classic import verify_metablock

        block = verify_metablock(document, trusted)
        return _classic_report(block.signed, block.signed_by, subjects)
    if _is_bundle(doc):
        from attest.sigstore_bundle import IdentityPolicy

        policy = None
        if identity or issuer:
            policy = IdentityPolicy(
                issuer=issuer or "", subject=identity or "", issuer_regex=regex, subject_regex=regex
            )
        return _statement_report(
            _open_bundle(document, doc, trusted_root, policy), subjects, strict
        )
    envelope, payload = _open_envelope(doc, trusted)
    if isinstance(payload, dict) and payload.get("_type") in ("link", "layout"):
        if envelope.payload_type != INTOTO_PAYLOAD_TYPE:
            raise InvalidInput(f"payloadType {envelope.payload_type!r} is not in-toto")
        return _classic_report(payload, envelope.signed_by, subjects)
    signers = tuple(k.keyid for k in envelope.signed_by)
    return _statement_report(_verified(envelope.payload_type, payload, signers), subjects, strict)
