"""What the writer checks before it extends the log, and before a proof leaves the ledger.

Pure functions over values and a tile reader: the head the writer is about to extend must be
exactly the latest checkpoint signed with the writer's own key, and every inclusion or consistency
proof handed out must verify against its checkpoint. Any disagreement is tampering and raises
:class:`~ledger.errors.IntegrityError`; the caller's transaction then writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ledger.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from ledger.errors import Error, IntegrityError, ProofError
from ledger.merkle import hash_leaf, verify_consistency, verify_inclusion, verify_inclusions
from ledger.note import NoteVerifier
from ledger.record import GENESIS_PREV
from ledger.tiles import StoredLevels, TileCache, TileKey, TileTree

__all__ = [
    "LogHead",
    "TileFetch",
    "check_consistency_handed_out",
    "check_head_is_signed",
    "check_inclusion_handed_out",
    "check_logged",
]


@dataclass(frozen=True)
class LogHead:
    size: int
    last_leaf_hash: bytes | None
    last_time: str | None
    first_index: int | None = None  # the lowest stored record index: 0, or None when empty

    @property
    def prev(self) -> str:
        """The ``prev`` the next record must carry."""
        return self.last_leaf_hash.hex() if self.last_leaf_hash is not None else GENESIS_PREV


TileFetch = Callable[[Sequence[TileKey]], Mapping[TileKey, bytes]]


def check_head_is_signed(
    head: LogHead,
    latest_note: str,
    verifier: NoteVerifier,
    origin: str,
    fetch: TileFetch,
    *,
    stored: StoredLevels | None = None,
) -> SignedCheckpoint:
    """The writer's invariant, checked under the write lock before anything is extended or signed.

    Every committed record is covered by a checkpoint signed in its own transaction, so the head
    MUST be exactly the latest checkpoint that verifies with the writer's own key: the same size,
    stored tiles that reproduce its root (read from ``fetch``, computed without any cache: a
    cached level must not stand in for stored bytes), and the last record's leaf hash — the
    ``prev`` of the next record — MUST be the tree's last leaf. Anything else is tampering:
    raise :class:`IntegrityError` (the caller's transaction then writes nothing).
    Costs one signature check (remembered by :mod:`ledger.note` for a note it verified before,
    keyed by key, signature and text) and the right-edge tiles the writer reads anyway.
    ``stored``: the writer's :class:`~ledger.tiles.StoredLevels`, which reads every tile too but
    hashes only what a tile gained since it last hashed its (byte for byte equal) beginning.
    """
    try:
        signed = open_checkpoint(latest_note, [verifier], origin)
    except Error as e:
        raise IntegrityError(
            f"refusing to extend the log: its latest checkpoint does not verify with this "
            f"ledger's key: {e}",
            max(head.size - 1, 0),
        ) from e
    cp = signed.checkpoint
    if cp.size != head.size:
        raise IntegrityError(
            f"refusing to extend the log: it holds {head.size} records but its latest signed "
            f"checkpoint covers {cp.size}",
            min(cp.size, head.size),
        )
    if (head.size == 0 and head.last_leaf_hash is not None) or (head.first_index or 0) < 0:
        raise IntegrityError("refusing to extend the log: a record is stored below index 0", -1)
    if head.size == 0:
        return signed
    tree = TileTree(head.size, fetch, stored if stored is not None else TileCache())
    if tree.root() != cp.root_hash:
        raise IntegrityError(
            f"refusing to extend the log: the stored tree of size {head.size} does not reproduce "
            "the latest checkpoint's root",
            head.size - 1,
        )
    if tree.leaf_hashes([head.size - 1])[0] != head.last_leaf_hash:
        raise IntegrityError(
            f"refusing to extend the log: record {head.size - 1}'s leaf hash is not the tree's "
            "last leaf",
            head.size - 1,
        )
    return signed


def check_inclusion_handed_out(
    leaf_hash: bytes, index: int, proof: list[bytes], cp: Checkpoint
) -> None:
    """An inclusion proof leaves the ledger only if it verifies against ``cp``."""
    try:
        verify_inclusion(leaf_hash, index, cp.size, proof, cp.root_hash)
    except ProofError as e:
        raise IntegrityError(
            f"refusing to hand out an inclusion proof for record {index} that does not verify "
            f"against the checkpoint of size {cp.size}: {e}",
            index,
        ) from e


def check_inclusions_handed_out(
    leaf_hashes: Sequence[bytes],
    indices: Sequence[int],
    proofs: Sequence[list[bytes]],
    cp: Checkpoint,
) -> None:
    """A batch's inclusion proofs leave the ledger only if every one verifies against ``cp``
    (checked together: :func:`~ledger.merkle.verify_inclusions`)."""
    try:
        verify_inclusions(leaf_hashes, indices, cp.size, proofs, cp.root_hash)
    except ProofError as e:
        raise IntegrityError(
            f"refusing to hand out inclusion proofs that do not verify against the checkpoint "
            f"of size {cp.size}: {e}",
            indices[0] if indices else None,
        ) from e


def check_consistency_handed_out(proof: list[bytes], old: Checkpoint, new: Checkpoint) -> None:
    """A consistency proof leaves the ledger only if it verifies against both checkpoints."""
    try:
        verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)
    except ProofError as e:
        raise IntegrityError(
            f"refusing to hand out a consistency proof from size {old.size} to {new.size} that "
            f"does not verify against their checkpoints: {e}",
            old.size,
        ) from e


def check_logged(logged: dict[bytes, tuple[int, bytes]], tree_leaf: dict[int, bytes]) -> None:
    """Every body of the batch found in the log by its (rewritable) indexed digest: its stored
    leaf, which names it, must also be the tree's leaf at that index (``tree_leaf``, read from
    the tiles), or the writer would acknowledge the body with another record's proof."""
    for digest, (at, leaf) in logged.items():
        if hash_leaf(leaf) != tree_leaf.get(at):
            raise IntegrityError(
                f"record {at} holds body sha256:{digest.hex()} but its leaf is not the tree's "
                "(the log has been tampered with; run `ledger check`)",
                at,
            )
