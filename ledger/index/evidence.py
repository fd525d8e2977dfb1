"""Evidence documents (docs: ``../shared/DESIGN.md`` §3.3): every answer of the audit API.

An evidence document names ONE signed checkpoint and carries, for each record in the answer, its
index, leaf bytes, exact body bytes and inclusion proof against that checkpoint (all base64), so
the answer can be checked without trusting the server. ``since`` adds a consistency proof from a
checkpoint the client already trusts. Every proof is checked against the checkpoint before it is
handed out (:func:`ledger.writer_checks.check_inclusion_handed_out`).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from ledger._internal import schema
from ledger._internal.cells import blob
from ledger.checkpoint import SignedCheckpoint
from ledger.errors import BadQuery, IntegrityError, NotFound
from ledger.index.driver_sql import sqlite_driver, sqlite_rows
from ledger.index.params import AsOf
from ledger.log import Ledger
from ledger.record import Record
from ledger.tiles import TileTree
from ledger.writer_checks import check_inclusions_handed_out

__all__ = ["MEDIA_TYPE", "AuditReader", "Proved"]

MEDIA_TYPE = "application/vnd.provenance-ledger.evidence.v1+json"
_CHUNK = 500  # bound parameters per IN (...) query
# A record's leaf and the body its stored digest names, in one read; the driver's own SQL (a new
# SQLAlchemy expression per call costs more than the query). SQLite reads the bytes as stored,
# with their storage class, as :func:`ledger._internal.cells.as_stored` does.
_SQLITE_ROWS = (
    "SELECT r.idx, r.leaf, CAST(b.digest AS BLOB), CAST(b.content AS BLOB), typeof(b.content) "
    "FROM records r LEFT JOIN bodies b ON b.digest = r.body_digest WHERE r.idx IN "
)
_LATEST_CHECKPOINT = "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1"
_PG_ROWS = (
    "SELECT r.idx, r.leaf, b.digest, b.content, NULL FROM records r "
    "LEFT JOIN bodies b ON b.digest = r.body_digest WHERE r.idx = ANY(%s::bigint[])"
)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


@dataclass(frozen=True, slots=True)
class Proved:
    """One entry of an answer: the record, its leaf and exact body, its checked proof."""

    index: int
    leaf: bytes
    body: bytes
    proof: list[bytes]
    record: Record


def read_records(
    conn: Connection, indices: Sequence[int]
) -> tuple[dict[int, bytes], dict[int, tuple[bytes, bytes]]]:
    """Leaves by index, and the ``(digest, body)`` each record's stored digest joins to."""
    leaves: dict[int, bytes] = {}
    joined: dict[int, tuple[bytes, bytes]] = {}
    raw = sqlite_driver(conn)
    for k in range(0, len(indices), _CHUNK):
        chunk = list(indices[k : k + _CHUNK])
        rows: Iterable[Any]
        if raw is None:
            rows = conn.exec_driver_sql(_PG_ROWS, (chunk,))
        else:
            sql = _SQLITE_ROWS + "(" + ",".join("?" * len(chunk)) + ")"
            rows = sqlite_rows(raw, sql, chunk)
        for idx, leaf, digest, content, storage in rows:
            leaves[int(idx)] = bytes(leaf)
            if digest is not None:
                what = f"body sha256:{bytes(digest).hex()}"
                joined[int(idx)] = (bytes(digest), blob(content, storage, what, None))
    return leaves, joined


class AuditReader:
    """Reads for the audit API on one :class:`~ledger.log.Ledger` (short read transactions)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.store = ledger.store

    def checkpoint(self, as_of: AsOf | None, conn: Connection | None = None) -> SignedCheckpoint:
        """The newest signed checkpoint within ``as_of`` (default: the latest; read on ``conn``
        when given)."""
        if as_of is None:
            if conn is None:
                return self.ledger.checkpoint()
            raw = sqlite_driver(conn)
            if raw is None:
                return self.ledger.latest_checkpoint_in(conn)
            row = sqlite_rows(raw, _LATEST_CHECKPOINT)
            if not row:
                raise NotFound("the ledger has no checkpoint: run `ledger init` first")
            return self.ledger.stored_checkpoint(row[0][0], row[0][1])
        c, r = schema.checkpoints.c, schema.records.c
        q = select(c.size).order_by(c.size.desc()).limit(1)
        if as_of.size is not None:
            q = q.where(c.size <= as_of.size)
        if as_of.time is not None:
            # By the time of the checkpoint's last record (in its signed leaf, which `ledger
            # check` ties to the column), not the checkpoint row's own time, which nothing signs:
            # a row's time moved into the future would hide later records from an as-of answer.
            last = select(r.time).where(r.idx == c.size - 1).scalar_subquery()
            q = q.where(
                or_(
                    and_(c.size > 0, last <= as_of.time),
                    and_(c.size == 0, c.time <= as_of.time),
                )
            )
        with self.store._conn() as own:
            size = own.execute(q).scalar()
        if size is None:
            raise NotFound("the ledger had signed no checkpoint by then")
        return self.ledger.checkpoint_at(int(size))

    def consistency(self, since: int | None, cp: SignedCheckpoint) -> dict[str, Any] | None:
        if since is None:
            return None
        size = cp.checkpoint.size
        if since > size:
            raise BadQuery(f"since: {since} is past the checkpoint this answer uses (size {size})")
        proof = [] if since in (0, size) else self.ledger.consistency(since, size)
        return {"fromSize": since, "proof": [_b64(h) for h in proof]}

    def proved(
        self, indices: Sequence[int], cp: SignedCheckpoint, conn: Connection | None = None
    ) -> list[Proved]:
        """Each record with its exact body and inclusion proof against ``cp``, in the order given:
        records and bodies in one query, the proofs' tiles in one fetch (nodes that proofs share
        computed once), every proof checked against ``cp`` before it is returned."""
        if not indices:
            return []
        if conn is None:
            with self.store._conn() as own:
                return self.proved(indices, cp, own)
        leaves, joined = read_records(conn, indices)
        missing = [i for i in indices if i not in leaves]
        if missing:
            raise IntegrityError(f"record {missing[0]} is indexed but not stored", missing[0])
        records = {i: Record.from_leaf(leaf) for i, leaf in leaves.items()}
        bodies: dict[bytes, bytes] = {}
        for i, rec in records.items():
            found = joined.get(i)
            if found is not None and found[0] == rec.body_digest:
                bodies[found[0]] = found[1]
        # A body the leaf names but the row's digest column does not: read it by the leaf's.
        others = list({r.body_digest for r in records.values()} - bodies.keys())
        if others:
            bodies.update({d: body for d, (_, body) in self.store.bodies(others).items()})
        tree = TileTree(
            cp.checkpoint.size, partial(self.store._fetch_tiles, conn), self.store.cache
        )
        hashes, proofs = tree.leaves_and_proofs(list(indices))
        for i, leaf_hash in zip(indices, hashes, strict=True):
            rec = records[i]
            if rec.leaf_hash != leaf_hash or rec.index != i:
                raise IntegrityError(f"record {i} does not match the tree", i)
        check_inclusions_handed_out(hashes, list(indices), proofs, cp.checkpoint)
        out = []
        for i, proof in zip(indices, proofs, strict=True):
            rec = records[i]
            body = bodies.get(rec.body_digest)
            if body is None:
                raise IntegrityError(f"record {i} has no stored body", i)
            out.append(Proved(i, leaves[i], body, proof, rec))
        return out

    def entries(self, indices: Sequence[int], cp: SignedCheckpoint) -> list[dict[str, Any]]:
        """Each record's evidence entry, proved against ``cp``, in the order given."""
        return [
            {
                "index": p.index,
                "leaf": _b64(p.leaf),
                "body": _b64(p.body),
                "inclusionProof": [_b64(h) for h in p.proof],
                "record": p.record.to_json(),
            }
            for p in self.proved(indices, cp)
        ]

    def registry_indices(self, cp: SignedCheckpoint) -> list[int]:
        r = schema.registry_entries.c
        with self.store._conn() as conn:
            rows = conn.execute(
                select(r.idx).where(r.idx < cp.checkpoint.size).order_by(r.idx)
            ).all()
        return [int(row.idx) for row in rows]

    def registry_entries(self, cp: SignedCheckpoint) -> list[dict[str, Any]]:
        """Every trust-registry record under ``cp``, proved like any entry: a verifier that trusts
        "whoever the registry trusted then" replays them (``registry=true`` on the evidence
        routes). Registry records are few: one per signer added or revoked."""
        return self.entries(self.registry_indices(cp), cp)

    def document(
        self,
        indices: Sequence[int],
        cp: SignedCheckpoint,
        since: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "mediaType": MEDIA_TYPE,
            "checkpoint": cp.note,
            "treeSize": cp.checkpoint.size,
            "entries": self.entries(indices, cp),
        }
        consistency = self.consistency(since, cp)
        if consistency is not None:
            doc["consistency"] = consistency
        doc.update(extra)
        return doc
