"""Evidence documents (docs: ``../shared/DESIGN.md`` §3.3): every answer of the audit API.

An evidence document names ONE signed checkpoint and carries, for each record in the answer, its
index, leaf bytes, exact body bytes and inclusion proof against that checkpoint (all base64), so
the answer can be checked without trusting the server. ``since`` adds a consistency proof from a
checkpoint the client already trusts. Every proof is checked against the checkpoint before it is
handed out (:func:`ledger.writer_checks.check_inclusion_handed_out`).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from ledger._internal import schema
from ledger.checkpoint import SignedCheckpoint
from ledger.errors import BadQuery, IntegrityError, NotFound
from ledger.index.params import AsOf
from ledger.log import Ledger
from ledger.record import Record
from ledger.writer_checks import check_inclusion_handed_out

__all__ = ["MEDIA_TYPE", "AuditReader"]

MEDIA_TYPE = "application/vnd.provenance-ledger.evidence.v1+json"


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


class AuditReader:
    """Reads for the audit API on one :class:`~ledger.log.Ledger` (short read transactions)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.store = ledger.store

    def checkpoint(self, as_of: AsOf | None) -> SignedCheckpoint:
        """The newest signed checkpoint within ``as_of`` (default: the latest)."""
        if as_of is None:
            return self.ledger.checkpoint()
        c = schema.checkpoints.c
        q = select(c.size).order_by(c.size.desc()).limit(1)
        if as_of.size is not None:
            q = q.where(c.size <= as_of.size)
        if as_of.time is not None:
            q = q.where(c.time <= as_of.time)
        with self.store._conn() as conn:
            size = conn.execute(q).scalar()
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

    def entries(self, indices: Sequence[int], cp: SignedCheckpoint) -> list[dict[str, Any]]:
        """Each record's evidence entry, proved against ``cp``, in the order given."""
        if not indices:
            return []
        r = schema.records.c
        with self.store._conn() as conn:
            rows = conn.execute(
                select(r.idx, r.leaf, r.body_digest).where(r.idx.in_(list(indices)))
            ).all()
        leaves = {int(row.idx): bytes(row.leaf) for row in rows}
        missing = [i for i in indices if i not in leaves]
        if missing:
            raise IntegrityError(f"record {missing[0]} is indexed but not stored", missing[0])
        records = {i: Record.from_leaf(leaf) for i, leaf in leaves.items()}
        bodies = self.store.bodies(list({rec.body_digest for rec in records.values()}))
        tree = self.store.tree(cp.checkpoint.size)
        hashes, proofs = tree.leaves_and_proofs(list(indices))
        out = []
        for i, leaf_hash, proof in zip(indices, hashes, proofs, strict=True):
            rec = records[i]
            if rec.leaf_hash != leaf_hash or rec.index != i:
                raise IntegrityError(f"record {i} does not match the tree", i)
            check_inclusion_handed_out(leaf_hash, i, proof, cp.checkpoint)
            found = bodies.get(rec.body_digest)
            if found is None:
                raise IntegrityError(f"record {i} has no stored body", i)
            out.append(
                {
                    "index": i,
                    "leaf": _b64(leaves[i]),
                    "body": _b64(found[1]),
                    "inclusionProof": [_b64(h) for h in proof],
                    "record": rec.to_json(),
                }
            )
        return out

    def registry_entries(self, cp: SignedCheckpoint) -> list[dict[str, Any]]:
        """Every trust-registry record under ``cp``, proved like any entry: a verifier that trusts
        "whoever the registry trusted then" replays them (``registry=true`` on the evidence
        routes). Registry records are few: one per signer added or revoked."""
        r = schema.registry_entries.c
        with self.store._conn() as conn:
            rows = conn.execute(
                select(r.idx).where(r.idx < cp.checkpoint.size).order_by(r.idx)
            ).all()
        return self.entries([int(row.idx) for row in rows], cp)

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
