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

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.engine import Row

from attest.dsse import Envelope, sign_envelope, verify_envelope
from attest.errors import Error as AttestError
from attest.keys import PublicKey, load_public_key
from attest.signers import KeySigner
from ledger._internal import schema
from ledger._internal.cells import as_stored, blob
from ledger._internal.db import driver_rows, driver_sql
from ledger._internal.jsontext import loads as strict_json
from ledger.errors import Error, IntegrityError, NotTrusted
from ledger.record import Record
from ledger.registry.model import REGISTRY_PAYLOAD_TYPE, RegistryOp, RegistryState, parse_op

__all__ = [
    "ADMIN_META_KEY",
    "MARKER",
    "RegistryRow",
    "derive_registry_rows",
    "open_registry_envelope",
    "replay",
    "require_applies",
    "sign_op",
    "state_from_rows",
    "verified_state",
]

ADMIN_META_KEY = "admin_key"
REGISTRY_ROWS = "SELECT idx, entry FROM registry_entries ORDER BY idx"
_INSERT_ENTRY = "INSERT INTO registry_entries (idx, time, name, op, entry) VALUES (?, ?, ?, ?, ?)"
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


def open_registry_envelope(
    env: Envelope, admin_keys: Sequence[PublicKey], origin: str
) -> RegistryOp:
    """Verify the admin signature, parse the op, and require it to name this log (``origin``):
    :class:`NotTrusted` / :class:`InvalidInput`."""
    if not admin_keys:
        raise NotTrusted(
            "this ledger has no admin key, so it takes no registry entries: "
            "run `ledger signers init-admin`"
        )
    try:
        verified = verify_envelope(env, admin_keys, payload_type=REGISTRY_PAYLOAD_TYPE)
    except AttestError as e:
        raise NotTrusted(f"registry entry is not signed by this ledger's admin key ({e})") from e
    op = parse_op(strict_json(verified.payload, "registry entry payload"))
    if op.log != origin:
        raise NotTrusted(f"registry entry is for log {op.log!r}, not this ledger ({origin!r})")
    return op


def _op_of(content: bytes, admin_keys: Sequence[PublicKey], origin: str) -> RegistryOp | None:
    """The op a stored body carries, or ``None`` when it is not a valid registry entry of the
    log ``origin``."""
    if MARKER not in content:
        return None
    try:
        doc: Any = strict_json(content, "registry entry")
        if not isinstance(doc, dict) or doc.get("payloadType") != REGISTRY_PAYLOAD_TYPE:
            return None
        return open_registry_envelope(Envelope.from_dict(doc), admin_keys, origin)
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
        op = _op_of(content, admin_keys, rec.log)
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


def verified_state(conn: Connection, admin_keys: Sequence[PublicKey], origin: str) -> RegistryState:
    """The state admission trusts: every derived row re-derived from the log first — its record
    covered by the latest checkpoint, its body the one the leaf names, admin-signed for this log,
    applying to the state before it, and equal to the row. Anything else is tampering (a row
    INSERTed by hand): :class:`IntegrityError`. One query; registry rows are few."""
    r, rec, b = schema.registry_entries.c, schema.records.c, schema.bodies.c
    covered = conn.execute(select(func.max(schema.checkpoints.c.size))).scalar() or 0
    q = (
        select(r.idx, r.time, r.name, r.op, r.entry, *as_stored(conn, rec.leaf))
        .add_columns(*as_stored(conn, b.content))
        .select_from(
            schema.registry_entries.outerjoin(schema.records, rec.idx == r.idx).outerjoin(
                schema.bodies, b.digest == rec.body_digest
            )
        )
        .order_by(r.idx)
    )
    state = RegistryState()
    for row in conn.execute(q):
        state = _rederive(state, row, admin_keys, origin, int(covered))
    return state


def _rederive(
    state: RegistryState, row: Row[Any], admin_keys: Sequence[PublicKey], origin: str, covered: int
) -> RegistryState:
    """``state`` with one derived row applied, once the log agrees with it (see above)."""
    idx = row.idx

    def bad(why: str) -> IntegrityError:
        return IntegrityError(f"registry row for record {idx} {why}: refusing to trust it", idx)

    if not 0 <= idx < covered:
        raise bad(f"is not covered by the latest checkpoint (size {covered})")
    if row.leaf is None or row.content is None:
        raise bad("has no record or body in the log")
    try:
        rec = Record.from_leaf(blob(row.leaf, row.leaf_t, "leaf", idx))
        content = blob(row.content, row.content_t, "body", idx)
    except (Error, ValueError) as e:
        raise bad(f"has an unreadable record: {e}") from e
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    if rec.index != idx or rec.log != origin or rec.body != digest:
        raise bad("does not match its record and body")
    op = _op_of(content, admin_keys, origin)
    if op is None:
        raise bad("is not an admin-signed registry entry of this log")
    try:
        after = state.apply(op, idx)
    except Error as e:
        raise bad(f"does not apply ({e})") from e
    if RegistryRow.of(rec, op) != RegistryRow(idx, row.time, row.name, row.op, bytes(row.entry)):
        raise bad("disagrees with the log")
    return after


def read_rows(conn: Connection) -> list[tuple[int, bytes]]:
    """Every registry row, ``(idx, entry)`` in index order. The driver's own SQL: every batch's
    index derivation reads them, and building the SQLAlchemy statement cost more than running
    it (docs/benchmarks.md)."""
    return registry_rows_of(driver_rows(conn, REGISTRY_ROWS))


def registry_rows_of(rows: Iterable[Any]) -> list[tuple[int, bytes]]:
    """:func:`read_rows` from the rows of :data:`REGISTRY_ROWS`."""
    return [(int(idx), bytes(entry)) for idx, entry in rows]


def require_applies(conn: Connection, digest: bytes, op: RegistryOp) -> None:
    """Inside the write transaction that is about to sequence a registry entry (body SHA-256
    ``digest``, carrying ``op``), under the write lock: refuse it — raising what
    :meth:`RegistryState.apply` raises, so the transaction writes nothing — unless it still
    applies to the registry as committed. Admission checked it against a state that another
    change may since have superseded (two adds of one name racing); only this check is final.
    The same body already in the log passes: the append returns its first record."""
    rec = schema.records.c
    if conn.execute(select(rec.idx).where(rec.body_digest == digest)).first() is not None:
        return
    state_from_rows(read_rows(conn)).apply(op, index=-1)


def registry_version(conn: Connection) -> int:
    """The index of the newest applied registry record (-1 if none): changes iff the state does."""
    r = schema.registry_entries.c
    newest = conn.execute(select(func.max(r.idx))).scalar()
    return -1 if newest is None else int(newest)


def admin_pem(conn: Connection) -> str | None:
    # The driver's own SQL: it runs in the write transaction, which may be pipelined
    # (ledger._internal.db.write_transaction), where only the driver's reads get their rows.
    rows = driver_rows(
        conn, driver_sql(conn, "SELECT value FROM ledger_meta WHERE key = ?"), (ADMIN_META_KEY,)
    )
    return None if not rows or rows[0][0] is None else str(rows[0][0])


def derive_registry_rows(
    conn: Connection, records: Sequence[Record], contents: Sequence[bytes]
) -> bool:
    """Write the ``registry_entries`` rows of this batch's registry records (usually none: one
    substring test per body), inside the batch's transaction; whether it wrote any."""
    candidates = [(r, c) for r, c in zip(records, contents, strict=True) if MARKER in c]
    if not candidates:
        return False
    state = state_from_rows(read_rows(conn))
    _, rows = apply_records(state, candidates, admin_keys_from_pem(admin_pem(conn)))
    if rows:
        driver_rows(
            conn,
            driver_sql(conn, _INSERT_ENTRY),
            [(r.idx, r.time, r.name, r.op, r.entry) for r in rows],
            many=True,
        )
    return bool(rows)


def replay(
    items: Iterable[tuple[Record, bytes]], admin_keys: Sequence[PublicKey]
) -> list[RegistryRow]:
    """The rows the whole log implies, from the log alone."""
    return apply_records(RegistryState(), items, admin_keys)[1]
