"""Steps 2 to 5 of the pipeline, on an evidence document (DESIGN.md §3.3), pure:

2. the checkpoint note is signed by a pinned ledger key, well formed, for the pinned origin;
3. it is consistent with the checkpoint this verifier trusted last (a fork fails);
4. every entry's leaf is included in the checkpoint's tree;
5. every entry's body hashes to the digest its leaf names.

Each raises its own :class:`~verify.errors.ProofFailure`; nothing here reads a file or a socket.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from attest._internal.frozen import Frozen, set_field
from ledger import merkle
from ledger.checkpoint import SignedCheckpoint, check_prefix, open_checkpoint
from ledger.errors import Error as LedgerError
from ledger.note import parse_verifier
from ledger.record import Record
from verify.errors import (
    BodyDigestError,
    CheckpointFailure,
    ConsistencyFailure,
    InclusionFailure,
    PolicyFileError,
    UsageError,
)

__all__ = [
    "MEDIA_TYPE",
    "ProvedEntry",
    "check_bodies",
    "check_consistency",
    "check_inclusions",
    "open_signed_checkpoint",
]

MEDIA_TYPE = "application/vnd.provenance-ledger.evidence.v1+json"


class ProvedEntry(Frozen):
    """A record proved to be in the log, and its exact body."""

    _fields = ("record", "body")
    record: Record
    body: bytes

    def __init__(self, record: Record, body: bytes) -> None:
        set_field(self, "record", record)
        set_field(self, "body", body)

    @property
    def index(self) -> int:
        return self.record.index


class _Included(Frozen):
    _fields = ("record", "body_b64")
    record: Record
    body_b64: Any

    def __init__(self, record: Record, body_b64: Any) -> None:
        set_field(self, "record", record)
        set_field(self, "body_b64", body_b64)


def _b64(value: Any, what: str, error: type[Exception]) -> bytes:
    if not isinstance(value, str):
        raise error(f"evidence: {what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise error(f"evidence: {what} is not base64") from e


def open_signed_checkpoint(note: Any, vkeys: Sequence[str], origin: str) -> SignedCheckpoint:
    """Step 2: the note verifies with a pinned key and holds a checkpoint of ``origin``."""
    if not isinstance(note, str):
        raise CheckpointFailure("evidence: no checkpoint note")
    try:
        verifiers = [parse_verifier(k) for k in vkeys]
    except LedgerError as e:
        raise PolicyFileError(f"ledger.keys: not a verifier key: {e}") from e
    try:
        return open_checkpoint(note, verifiers, origin)
    except LedgerError as e:
        raise CheckpointFailure(f"checkpoint: {e}") from e


def check_consistency(
    trusted: SignedCheckpoint | None, cp: SignedCheckpoint, consistency: Any
) -> None:
    """Step 3: ``cp`` extends ``trusted`` (RFC 9162 consistency proof in the evidence)."""
    if trusted is None:
        return
    old, new = trusted.checkpoint, cp.checkpoint
    if new.size < old.size:
        raise ConsistencyFailure(
            f"the evidence's checkpoint (size {new.size}) is older than the one this verifier "
            f"trusts (size {old.size})"
        )
    proof: list[bytes] = []
    if 0 < old.size < new.size:  # else no proof to check (one size: the roots must match)
        if not isinstance(consistency, Mapping) or consistency.get("fromSize") != old.size:
            raise ConsistencyFailure(
                f"the evidence carries no consistency proof from the trusted size {old.size}"
            )
        raw = consistency.get("proof")
        if not isinstance(raw, list):
            raise ConsistencyFailure("consistency proof: not a list")
        proof = [_b64(h, "consistency proof", ConsistencyFailure) for h in raw]
    try:
        check_prefix(old, new, proof)
    except LedgerError as e:
        raise ConsistencyFailure(
            f"size {new.size} is not consistent with the trusted size {old.size}: the ledger "
            f"forked or rewrote its history ({e})"
        ) from e


def _record(entry: Any, origin: str) -> tuple[int, bytes, Record]:
    if not isinstance(entry, Mapping) or type(entry.get("index")) is not int:
        raise InclusionFailure("evidence: an entry has no integer index")
    i = entry["index"]
    leaf = _b64(entry.get("leaf"), f"entry {i} leaf", BodyDigestError)
    try:
        rec = Record.from_leaf(leaf)
    except LedgerError as e:
        raise BodyDigestError(f"entry {i}: leaf is not a record: {e}") from e
    if rec.index != i or rec.log != origin:
        raise BodyDigestError(f"entry {i}: its leaf is record {rec.index} of {rec.log!r}")
    return i, leaf, rec


def check_inclusions(entries: Any, cp: SignedCheckpoint) -> list[_Included]:
    """Step 4: every entry's leaf is in the tree ``cp`` signs (its index is the leaf's)."""
    if not isinstance(entries, list):
        raise UsageError("evidence: entries is not a list")
    size, root = cp.checkpoint.size, cp.checkpoint.root_hash
    out = []
    for entry in entries:
        i, leaf, rec = _record(entry, cp.checkpoint.origin)
        raw = entry.get("inclusionProof")
        if not isinstance(raw, list):
            raise InclusionFailure(f"entry {i}: no inclusion proof")
        proof = [_b64(h, f"entry {i} proof", InclusionFailure) for h in raw]
        try:
            merkle.verify_inclusion(merkle.hash_leaf(leaf), i, size, proof, root)
        except LedgerError as e:
            raise InclusionFailure(f"entry {i} is not in the tree of size {size}: {e}") from e
        out.append(_Included(rec, entry.get("body")))
    return out


def check_bodies(included: Sequence[_Included]) -> list[ProvedEntry]:
    """Step 5: each body is the exact bytes its leaf's digest names."""
    out = []
    for inc in included:
        i = inc.record.index
        body = _b64(inc.body_b64, f"entry {i} body", BodyDigestError)
        if hashlib.sha256(body).digest() != inc.record.body_digest:
            raise BodyDigestError(
                f"entry {i}: the body does not hash to {inc.record.body}: it was altered"
            )
        out.append(ProvedEntry(inc.record, body))
    return out
