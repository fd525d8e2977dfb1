"""Admission: the one place a body is checked before it may be sequenced.

Every write path — ``ledger append``, ``ledger import``, the HTTP API — admits first. The raw
sequencing calls (``Ledger.append`` / ``append_many`` / ``append_submissions``) check shape only
and exist for tests and benchmarks. The checks, in order, each with its own error:

1. size — :class:`~ledger.errors.TooLarge` (HTTP 413);
2. strict JSON (:mod:`ledger._internal.jsontext`: UTF-8, no duplicate keys, no NaN, bounded
   nesting) and DSSE envelope / Sigstore bundle structure;
3. the payload is an in-toto Statement and a known predicate type meets its schema
   (``attest``'s typed predicates; a Statement without a predicate is valid);
4. at least one subject, each with a digest — 2 to 4 raise
   :class:`~ledger.errors.InvalidInput` (HTTP 422);
5. a valid signature by a signer the trust registry allows at ``at`` for the predicate type —
   :class:`~ledger.errors.NotTrusted` (HTTP 403) with the reason.

Signatures are checked with ``attest`` (``verify_envelope`` → ``keys.verified_signers``,
``verify_bundle`` with the signer's own trusted root). A registry entry (our own payload type)
is checked against the admin key instead, and must apply to the current state — here, and again
inside the write transaction that sequences it (:meth:`~ledger.log.Ledger.append_registry`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from attest.dsse import INTOTO_PAYLOAD_TYPE, Envelope, verify_envelope
from attest.errors import Error as AttestError
from attest.errors import InvalidStatement
from attest.keys import PublicKey
from attest.sigstore_bundle import certificate_identities, certificate_issuer, verify_bundle
from attest.statement import Statement, parse_statement
from attest.verification import typed_predicate
from ledger._internal.jsontext import loads as strict_json
from ledger.bodies import MAX_BODY_BYTES, Parsed, Submission, Verified, classify
from ledger.errors import Error, InvalidInput, NotTrusted, TooLarge
from ledger.record import Record
from ledger.registry.entries import MARKER, apply_records, open_registry_envelope
from ledger.registry.model import REGISTRY_PAYLOAD_TYPE, RegistryOp, RegistryState, Signer

__all__ = [
    "ADMIN_SIGNER",
    "AS_OF_GRACE",
    "MAX_SIGNATURES",
    "Admitted",
    "AsOfLog",
    "RootFiles",
    "Trust",
    "admit_bodies",
    "admit_body",
]

ADMIN_SIGNER = "ledger-admin"
# How much later than its admission a record's time may be when it is re-checked as of that time
# (``ledger import``): the queue wait between admission and sequencing. See docs/design.md.
AS_OF_GRACE = timedelta(seconds=60)
# Signatures one envelope may carry: each may cost a verification per registered key, so more
# are refused before any is checked (a CPU denial of service otherwise). See docs/formats.md.
MAX_SIGNATURES = 16


@dataclass(frozen=True)
class Admitted:
    """A body that passed every check, ready for :meth:`Ledger.submit`."""

    submission: Submission  # exact bytes, body type, digest
    signers: tuple[str, ...]  # registry names whose signatures verified and are allowed
    predicate_type: str | None  # None for a registry entry
    registry_op: RegistryOp | None = None  # a registry entry's verified change


class RootFiles:
    """Trusted roots carried in registry entries, written once each to a private temporary
    directory (``attest.verify_bundle`` reads a file), named by their SHA-256."""

    def __init__(self) -> None:
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def path(self, content: bytes) -> Path:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="ledger-roots-")
        path = Path(self._dir.name) / f"{hashlib.sha256(content).hexdigest()}.json"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(content)
            tmp.replace(path)
        return path

    def close(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


@dataclass(frozen=True)
class Trust:
    """What admission checks signatures against."""

    state: RegistryState
    admin_keys: tuple[PublicKey, ...]
    roots: RootFiles
    origin: str  # this ledger's: a registry entry must name it


def _envelope(doc: dict[str, Any], body_type: str) -> Envelope:
    """Step 2: the DSSE envelope, bare or inside a Sigstore bundle (payload still unverified)."""
    if body_type == "sigstore-bundle" and "dsseEnvelope" not in doc:
        raise InvalidInput("a Sigstore bundle must carry a DSSE envelope (not a message signature)")
    raw = doc["dsseEnvelope"] if body_type == "sigstore-bundle" else doc
    sigs = raw.get("signatures") if isinstance(raw, dict) else None
    if isinstance(sigs, list) and len(sigs) > MAX_SIGNATURES:  # before decoding any of them
        raise InvalidInput(f"the envelope carries {len(sigs)} signatures; at most {MAX_SIGNATURES}")
    try:
        env = Envelope.from_dict(raw)
    except AttestError as e:
        raise InvalidInput(str(e)) from e
    if body_type == "sigstore-bundle":
        _require_standard_base64(raw)
    return env


def _require_standard_base64(raw: dict[str, Any]) -> None:
    """A bundle's payload and signatures MUST be standard, padded base64 (RFC 4648 §4): sigstore
    silently drops other characters, so a liberal decoder here would judge a different payload
    than the one sigstore verifies."""
    fields: list[Any] = [raw.get("payload")] + [s.get("sig") for s in raw.get("signatures", [])]
    for value in fields:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError) as e:
            raise InvalidInput(
                "a Sigstore bundle's DSSE payload and signatures must be standard base64 "
                "(RFC 4648 section 4, padded)"
            ) from e


def _statement(env: Envelope) -> tuple[dict[str, Any], Statement]:
    """Steps 3 and 4, on the not-yet-verified payload: nothing from it is trusted before step 5.
    The payload as strict JSON (an object: a Statement is one) and the Statement it holds."""
    if env.payload_type != INTOTO_PAYLOAD_TYPE:
        raise InvalidInput(f"payloadType {env.payload_type!r} is not {INTOTO_PAYLOAD_TYPE}")
    unverified = strict_json(env.unverified_payload, "the envelope payload")
    try:
        statement = parse_statement(unverified)  # a Statement without a predicate is valid
        typed_predicate(statement)
    except InvalidStatement as e:
        raise InvalidInput(f"not a valid in-toto Statement: {e}") from e
    if not any(s.digest for s in statement.subjects):
        raise InvalidInput("the Statement names no subject digest")
    return unverified, statement


def _key_signers(env: Envelope, state: RegistryState) -> tuple[tuple[str, ...], Verified]:
    """Step 5 for a DSSE envelope: the registered keys that signed it (any validity), and the
    signatures that verified, by key."""
    registered = state.keys()
    try:
        verified = verify_envelope(env, [s.key for s in registered if s.key is not None])
    except AttestError as e:
        hints = {s.keyid for s in env.signatures if s.keyid}
        claimed = [s.spec.name for s in registered if s.key is not None and s.key.keyid in hints]
        if claimed:
            raise NotTrusted(f"bad signature: it does not verify with signer {claimed[0]!r}") from e
        raise NotTrusted(
            "unknown signer: no signature verifies with a key in the trust registry"
            + (f" (keyids {', '.join(sorted(hints))})" if hints else "")
        ) from e
    pems = {k.spki_pem().decode() for k in verified.signed_by}
    names = tuple(s.spec.name for s in registered if s.spec.key_pem in pems)
    return names, frozenset((k.spki_pem(), sig) for k, sig in verified.signatures)


def _identity_signers(content: bytes, trust: Trust) -> tuple[str, ...]:
    """Step 5 for a Sigstore bundle: the registered identities whose policy the certificate meets
    and whose trusted root the bundle verifies against."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle, InvalidBundle

    try:
        cert = Bundle.from_json(content).signing_certificate
    except (InvalidBundle, ValueError) as e:
        raise InvalidInput(f"not a valid Sigstore bundle: {e}") from e
    matching: list[Signer] = []
    for s in trust.state.identities():
        assert s.spec.sigstore is not None
        try:
            s.spec.sigstore.policy().verify(cert)
        except SigstoreError:
            continue
        matching.append(s)
    if not matching:
        raise NotTrusted(
            f"unknown signer: no Sigstore identity in the trust registry matches issuer "
            f"{certificate_issuer(cert)!r} and identities {sorted(certificate_identities(cert))}"
        )
    names, failure = [], ""
    for s in matching:
        assert s.spec.sigstore is not None
        root = trust.roots.path(s.spec.sigstore.root_bytes())
        try:
            verify_bundle(content, trusted_root=root, identity=s.spec.sigstore.policy())
        except AttestError as e:
            failure = failure or f"bad signature for signer {s.spec.name!r}: {e}"
            continue
        names.append(s.spec.name)
    if not names:
        raise NotTrusted(failure)
    return tuple(names)


def _admit_registry(sub: Submission, env: Envelope, trust: Trust) -> Admitted:
    if MARKER not in sub.content:
        raise InvalidInput(f"a registry entry must spell its payloadType {REGISTRY_PAYLOAD_TYPE}")
    op = open_registry_envelope(env, trust.admin_keys, trust.origin)
    # Refuse now what would not apply; Ledger.append_registry checks again under the write lock.
    trust.state.apply(op, index=-1)
    return Admitted(sub, (ADMIN_SIGNER,), None, op)


def admit_body(
    content: bytes,
    trust: Trust,
    at: str,
    *,
    max_bytes: int = MAX_BODY_BYTES,
    grace: timedelta = timedelta(0),
) -> Admitted:
    """Run the checks of the module docstring in order; the first failure raises.

    ``at`` is the instant trust is judged at (a record time string). ``grace`` widens it to
    ``[at - grace, at]`` for re-checking stored records as of their time (import)."""
    if len(content) > max_bytes:
        raise TooLarge(f"body is {len(content)} bytes; the limit is {max_bytes}")
    doc = strict_json(content, "body")
    body_type = classify(doc)
    env = _envelope(doc, body_type)
    if env.payload_type == REGISTRY_PAYLOAD_TYPE:
        if body_type != "dsse":
            raise InvalidInput("a registry entry is a bare DSSE envelope")
        return _admit_registry(Submission.of(content, body_type, doc), env, trust)
    unverified, statement = _statement(env)
    checked: Verified = frozenset()
    if body_type == "dsse":
        names, checked = _key_signers(env, trust.state)
    else:
        names = _identity_signers(content, trust)
    allowed = trust.state.check(names, statement.predicate_type, at, grace)
    parsed = Parsed(doc, env.unverified_payload, unverified, checked)
    return Admitted(Submission.of(content, body_type, parsed), allowed, statement.predicate_type)


def admit_bodies(
    contents: Sequence[bytes], trust: Trust, at: str, *, max_bytes: int = MAX_BODY_BYTES
) -> list[Admitted | Error]:
    """:func:`admit_body` of each body against the same trust state and instant (a batch is
    judged as of its arrival): each its :class:`Admitted` or the error that refused it."""
    out: list[Admitted | Error] = []
    for content in contents:
        try:
            out.append(admit_body(content, trust, at, max_bytes=max_bytes))
        except Error as e:
            out.append(e)
    return out


class AsOfLog:
    """Admission of records that already have a place in a log (``ledger import``): each body
    against the registry as the log records it *before* that record, at the record's time
    (widened by :data:`AS_OF_GRACE`). Feed records in index order."""

    def __init__(self, admin_keys: tuple[PublicKey, ...], roots: RootFiles) -> None:
        self._admin, self._roots = admin_keys, roots
        self.state = RegistryState()

    def admit_record(self, rec: Record, content: bytes) -> Admitted:
        trust = Trust(self.state, self._admin, self._roots, rec.log)
        try:
            admitted = admit_body(content, trust, rec.time, grace=AS_OF_GRACE)
        except (InvalidInput, NotTrusted) as e:
            raise type(e)(f"record {rec.index}: {e}") from e
        if admitted.predicate_type is None:
            self.state, _ = apply_records(self.state, [(rec, content)], self._admin)
        return admitted

    def close(self) -> None:
        self._roots.close()
