"""Acknowledgements left on pending rows by the integrator, and their verification by waiters.

The integrator has, in the transaction that logs a batch, every record's bytes and every inclusion
proof (computed from the tiles it just wrote and verified against the checkpoint it just signed).
It writes them onto the batch's pending rows (revision 0007) instead of deleting the rows, so a
waiting appender in any process reads one row instead of looking its body up in the log and
computing its proof from the tiles again.

A row is only a claim. :class:`AckReader` acknowledges from it only what it verifies itself: the
checkpoint with the ledger's key, the record as the record of this very body at this index, and
the proof of the record's leaf against the checkpoint. A row that fails any of these is handed
back, and the waiter looks the body up in the log as it always did, so an ack row written by
someone without the key can cost a lookup but never produce a wrong acknowledgement.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import psycopg

from ledger.checkpoint import SignedCheckpoint, open_checkpoint
from ledger.errors import Error
from ledger.merkle import HASH_SIZE, hash_leaf, verify_inclusion
from ledger.note import NoteVerifier
from ledger.pending import names_body
from ledger.sequencer import AppendResult
from ledger.storage import SequencedBatch

__all__ = ["ACK_KEEP_SECONDS", "FINISH_SQL", "AckReader", "finish_params"]

log = logging.getLogger(__name__)

ACK_KEEP_SECONDS = 30  # an acknowledged row stays this long for its waiter, then a batch drops it
_CACHED_NOTES = 8


# The end of a batch, one statement in its transaction: acknowledge the logged rows, and delete
# the rows of bodies that were in the log already and the rows acknowledged long enough ago. The
# row sets are disjoint (a row acknowledged now had no ``done_at`` in the statement's snapshot).
# The waiters are woken after the commit (ledger.pending.notify: never inside the durable write).
FINISH_SQL = (
    "WITH acked AS ("
    " UPDATE pending p SET idx = v.idx, leaf = v.leaf, proof = v.proof, cp_size = %s,"
    " done_at = now()"
    " FROM unnest(%s::bytea[], %s::bigint[], %s::bytea[], %s::bytea[])"
    " AS v(digest, idx, leaf, proof) WHERE p.digest = v.digest)"
    " DELETE FROM pending WHERE digest = ANY(%s) OR done_at < now() - make_interval(secs => %s)"
)


def finish_params(read: Sequence[bytes], seq: SequencedBatch) -> tuple[Any, ...]:
    """The parameters of :data:`FINISH_SQL` for the rows ``read`` (in batch order) of ``seq``."""
    digests: list[bytes] = []
    indices: list[int] = []
    leaves: list[bytes] = []
    proofs: list[bytes] = []
    known: list[bytes] = []
    for i, digest in enumerate(read):
        index = seq.indices[i]
        leaf = seq.records.get(index) if seq.new[i] else None
        if leaf is None or not seq.proofs:  # in the log before this batch: looked up as before
            known.append(digest)
            continue
        digests.append(digest)
        indices.append(index)
        leaves.append(leaf)
        proofs.append(b"".join(seq.proofs[i]))
    return (seq.tree_size, digests, indices, leaves, proofs, known, ACK_KEEP_SECONDS)


class AckReader:
    """Reads and verifies acknowledgement rows for one process's waiter."""

    def __init__(self, verifier: NoteVerifier, origin: str) -> None:
        self._verifier, self._origin = verifier, origin
        self._notes: dict[str, SignedCheckpoint] = {}

    def read(
        self, conn: psycopg.Connection[Any], digests: Sequence[bytes]
    ) -> dict[bytes, AppendResult]:
        """Every digest among ``digests`` whose row acknowledges it and verifies (as above)."""
        rows = conn.execute(
            "SELECT p.digest, p.idx, p.leaf, p.proof, c.note FROM pending p "
            "JOIN checkpoints c ON c.size = p.cp_size "
            "WHERE p.digest = ANY(%s) AND p.idx IS NOT NULL AND p.error IS NULL",
            (list(digests),),
        ).fetchall()
        out: dict[bytes, AppendResult] = {}
        for digest, index, leaf, proof, note in rows:
            result = self._verified(bytes(digest), int(index), bytes(leaf), bytes(proof), note)
            if result is not None:
                out[bytes(digest)] = result
        return out

    def _checkpoint(self, note: str) -> SignedCheckpoint:
        signed = self._notes.get(note)
        if signed is None:
            signed = open_checkpoint(note, [self._verifier], self._origin)
            if len(self._notes) >= _CACHED_NOTES:
                self._notes.pop(next(iter(self._notes)))
            self._notes[note] = signed
        return signed

    def _verified(
        self, digest: bytes, index: int, leaf: bytes, proof: bytes, note: str
    ) -> AppendResult | None:
        try:
            signed = self._checkpoint(note)
            cp = signed.checkpoint
            if not 0 <= index < cp.size or not names_body(leaf, index, digest):
                raise Error(f"the row does not name record {index} of this body")
            if len(proof) % HASH_SIZE:
                raise Error("the proof is not a whole number of hashes")
            hashes = [proof[i : i + HASH_SIZE] for i in range(0, len(proof), HASH_SIZE)]
            leaf_hash = hash_leaf(leaf)
            verify_inclusion(leaf_hash, index, cp.size, hashes, cp.root_hash)
        except Error as e:  # never trusted: the waiter looks the body up in the log instead
            log.warning("ignoring the acknowledgement row of %s: %s", digest.hex()[:16], e)
            return None
        return AppendResult(index, leaf_hash, hashes, cp.size, signed.note, False)
