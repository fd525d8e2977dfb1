"""Registry entries in the log: signing them, opening them, and their derived rows.

An entry is a DSSE envelope of type :data:`~ledger.registry.model.REGISTRY_PAYLOAD_TYPE` whose
payload is one canonical-JSON :class:`~ledger.registry.model.RegistryOp`, signed by the ledger's
admin key (its public key is ``ledger_meta.admin_key``). A record *applies* when its body is such
an envelope, the admin signature verifies and the op applies to the state before it; a record that
does not apply (only the raw, unadmitted append path can store one) changes nothing.

:func:`derive_registry_rows` writes one ``registry_entries`` row per applying record in the
record's own transaction; :func:`replay` computes the same rows from the log alone, so
``ledger check`` can compare them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from attest.dsse import Envelope, sign_envelope, verify_envelope
from attest.errors import Error as AttestError
from attest.keys import PublicKey, load_public_key
from attest.signers import KeySigner
from ledger._internal import schema
from ledger._internal.jsontext import loads as strict_json
from ledger.errors import Error, NotTrusted
from ledger.record import Record
from ledger.registry.model import REGISTRY_PAYLOAD_TYPE, RegistryOp, RegistryState, parse_op

__all__ = [
    "ADMIN_META_KEY",
    "MARKER",
    "RegistryRow",
    "derive_registry_rows",
    "open_registry_envelope",
    "replay",
    "sign_op",
    "state_from_rows",
]

ADMIN_META_KEY = "admin_key"
MARKER = REGISTRY_PAYLOAD_TYPE.encode()  # a registry body spells its payloadType verbatim


@dataclass(frozen=True)
class RegistryRow:
    """A derived row: the record index and time, the signer's name, the op and its canonical JSON."""

    idx: int
    time: str
    name: str
    op: str
    entry: bytes

    @classmethod
    def of(cls, rec: Record, op: RegistryOp) -> RegistryRow:
        name = op.spec.name if op.spec is not None else op.name
        return cls(rec.index, rec.time, name, op.op, op.to_bytes())


def sign_op(op: RegistryOp, admin: KeySigner) -> bytes:
    """The envelope bytes for ``op``, signed with the admin key."""
    return sign_envelope(op.to_bytes(), [admin], REGISTRY_PAYLOAD_TYPE).to_json()


def admin_keys_from_pem(pem: str | None) -> tuple[PublicKey, ...]:
    if not pem:
        return ()
    return (load_public_key(pem.encode(), source="the ledger's admin key"),)


def open_registry_envelope(env: Envelope, admin_keys: Sequence[PublicKey]) -> RegistryOp:
    """Verify the admin signature, then parse the op. :class:`NotTrusted` / :class:`InvalidInput`."""
    if not admin_keys:
        raise NotTrusted(
            "this ledger has no admin key, so it takes no registry entries: "
            "run `ledger signers init-admin`"
        )
    try:
        verified = verify_envelope(env, admin_keys, payload_type=REGISTRY_PAYLOAD_TYPE)
    except AttestError as e:
        raise NotTrusted(f"registry entry is not signed by this ledger's admin key ({e})") from e
    return parse_op(strict_json(verified.payload, "registry entry payload"))


def _op_of(content: bytes, admin_keys: Sequence[PublicKey]) -> RegistryOp | None:
    """The op a stored body carries, or ``None`` when it is not a valid registry entry."""
    if MARKER not in content:
        return None
    try:
        doc: Any = strict_json(content, "registry entry")
        if not isinstance(doc, dict) or doc.get("payloadType") != REGISTRY_PAYLOAD_TYPE:
            return None
        return open_registry_envelope(Envelope.from_dict(doc), admin_keys)
    except (Error, AttestError, ValueError, UnicodeDecodeError):
        return None


def apply_records(
    state: RegistryState,
    items: Iterable[tuple[Record, bytes]],
    admin_keys: Sequence[PublicKey],
) -> tuple[RegistryState, list[RegistryRow]]:
    """Fold records (in index order) into ``state``; the rows of those that applied."""
    rows = []
    for rec, content in items:
        op = _op_of(content, admin_keys)
        if op is None:
            continue
        try:
            state = state.apply(op, rec.index)
        except Error:
            continue
        rows.append(RegistryRow.of(rec, op))
    return state, rows


def state_from_rows(rows: Iterable[tuple[int, bytes]]) -> RegistryState:
    """The state the derived rows describe (already-verified ops, in index order)."""
    state = RegistryState()
    for idx, entry in rows:
        state = state.apply(parse_op(json.loads(entry)), idx)
    return state


def read_rows(conn: Connection) -> list[tuple[int, bytes]]:
    r = schema.registry_entries.c
    return [
        (row.idx, bytes(row.entry)) for row in conn.execute(select(r.idx, r.entry).order_by(r.idx))
    ]


def registry_version(conn: Connection) -> int:
    """The index of the newest applied registry record (-1 if none): changes iff the state does."""
    r = schema.registry_entries.c
    newest = conn.execute(select(func.max(r.idx))).scalar()
    return -1 if newest is None else int(newest)


def admin_pem(conn: Connection) -> str | None:
    m = schema.meta.c
    value = conn.execute(select(m.value).where(m.key == ADMIN_META_KEY)).scalar()
    return None if value is None else str(value)


def derive_registry_rows(
    conn: Connection, records: Sequence[Record], contents: Sequence[bytes]
) -> None:
    """Write the ``registry_entries`` rows of this batch's registry records (usually none: one
    substring test per body), inside the batch's transaction."""
    candidates = [(r, c) for r, c in zip(records, contents, strict=True) if MARKER in c]
    if not candidates:
        return
    state = state_from_rows(read_rows(conn))
    _, rows = apply_records(state, candidates, admin_keys_from_pem(admin_pem(conn)))
    if rows:
        conn.execute(
            schema.registry_entries.insert(),
            [
                {"idx": r.idx, "time": r.time, "name": r.name, "op": r.op, "entry": r.entry}
                for r in rows
            ],
        )


def replay(
    items: Iterable[tuple[Record, bytes]], admin_keys: Sequence[PublicKey]
) -> list[RegistryRow]:
    """The rows the whole log implies, from the log alone."""
    return apply_records(RegistryState(), items, admin_keys)[1]
