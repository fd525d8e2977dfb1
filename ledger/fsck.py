"""``ledger check``: recompute everything from the stored bytes and name the first disagreement.

Steps, in order, for every record ``i``:

1. indices are gapless from 0;
2. the leaf parses as a record in canonical form, for this log, with index ``i``;
3. the stored leaf hash is ``SHA-256(0x00 ‖ leaf)``;
4. ``prev`` is the leaf hash of record ``i-1`` (all zeros for record 0);
5. times never decrease, and the indexed columns agree with the leaf;
6. the body exists, hashes to the record's digest, and has the record's body type.

Then: every checkpoint's root equals the root recomputed from the leaves at its size, its note
verifies with the ledger's key and names this log; and every stored tile equals the tile recomputed
from the leaves; and the trust registry's derived rows equal the registry replayed from the log
(:func:`ledger.registry.check.check_registry`). The first failure raises :class:`~ledger.errors.IntegrityError` with its index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from ledger.checkpoint import open_checkpoint
from ledger.errors import Error, IntegrityError
from ledger.merkle import HASH_SIZE, CompactRange
from ledger.note import parse_verifier
from ledger.record import GENESIS_PREV, Record, check_link
from ledger.storage import LedgerStore
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH, TileBuilder, TileKey

__all__ = ["CheckReport", "check_ledger"]

_BODY_CHUNK = 2000
_TILE_CHUNK = 65536


@dataclass(frozen=True)
class CheckReport:
    records: int
    checkpoints: int
    tiles: int
    root: bytes


@dataclass(frozen=True)
class _Row:
    index: int
    leaf: bytes
    leaf_hash: bytes
    digest: bytes
    time: str


def _check_record(row: _Row, origin: str, prev: str, last_time: str) -> Record:
    i = row.index
    try:
        rec = Record.from_leaf(row.leaf)
    except Error as e:
        raise IntegrityError(f"record {i}: leaf is not a valid record: {e}", i) from e
    check_link(rec, index=i, origin=origin, prev=prev, last_time=last_time)
    if rec.leaf_hash != row.leaf_hash:  # from_leaf hashed exactly the stored leaf bytes
        raise IntegrityError(f"record {i}: stored leaf hash does not match the leaf bytes", i)
    if rec.time != row.time or rec.body_digest != row.digest:
        raise IntegrityError(f"record {i}: indexed columns disagree with the leaf", i)
    return rec


class _Checker:
    def __init__(self, store: LedgerStore) -> None:
        meta = store.meta()
        self.store = store
        self.origin, self.verifier = meta["origin"], parse_verifier(meta["vkey"])
        self.checkpoints = store.iter_checkpoints()
        self.next_cp = next(self.checkpoints, None)
        self.n_cps = 0
        self.compact = CompactRange()
        self.tree = TileBuilder()
        self.pending: list[bytes] = []
        self.unchecked_bodies: list[Record] = []

    def bodies(self) -> None:
        """Step 6 for the records seen since the last call (bodies are read in chunks)."""
        recs, self.unchecked_bodies = self.unchecked_bodies, []
        found = self.store.bodies([r.body_digest for r in recs])
        for rec in recs:
            got = found.get(rec.body_digest)
            if got is None:
                raise IntegrityError(f"record {rec.index}: body {rec.body} is missing", rec.index)
            if hashlib.sha256(got[1]).digest() != rec.body_digest:
                raise IntegrityError(
                    f"record {rec.index}: body bytes do not hash to {rec.body}", rec.index
                )
            if got[0] != rec.body_type:
                raise IntegrityError(
                    f"record {rec.index}: body type {got[0]!r} is not the record's", rec.index
                )

    def checkpoints_at(self, size: int) -> None:
        """Verify every stored checkpoint of tree size ``size`` against the recomputed root."""
        while self.next_cp is not None and self.next_cp[0] == size:
            cp_size, cp_root, note = self.next_cp
            where = max(cp_size - 1, 0)
            try:
                cp = open_checkpoint(note, [self.verifier], self.origin).checkpoint
            except Error as e:
                raise IntegrityError(f"checkpoint at size {cp_size}: {e}", where) from e
            if cp.size != cp_size or cp.root_hash != cp_root or cp_root != self.compact.root():
                raise IntegrityError(
                    f"checkpoint at size {cp_size} does not match the recomputed tree", where
                )
            self.n_cps += 1
            self.next_cp = next(self.checkpoints, None)

    def grow_tiles(self) -> None:
        self.tree.extend(self.pending)
        self.pending = []

    def records(self, progress: Callable[[int], None] | None) -> None:
        prev, last_time = GENESIS_PREV, ""
        for idx, leaf, leaf_hash, digest, time in self.store.iter_rows():
            expected = self.compact.size
            if idx != expected:
                raise IntegrityError(
                    f"record {expected} is missing (next stored index is {idx})", expected
                )
            rec = _check_record(
                _Row(idx, leaf, leaf_hash, digest, time), self.origin, prev, last_time
            )
            self.unchecked_bodies.append(rec)
            if len(self.unchecked_bodies) >= _BODY_CHUNK:
                self.bodies()
            prev, last_time = leaf_hash.hex(), rec.time
            self.compact.append(leaf_hash)
            self.pending.append(leaf_hash)
            self.checkpoints_at(self.compact.size)
            if len(self.pending) >= _TILE_CHUNK:
                self.grow_tiles()
            if progress is not None and self.compact.size % 10_000 == 0:
                progress(self.compact.size)

    def stored_tiles(self) -> None:
        seen = set()
        for key, blob in self.store.iter_tiles():
            want = self.tree.tiles.get(key)
            if want is None:
                raise IntegrityError(
                    f"tile {key} is stored but no record needs it", _first_leaf(key, 0)
                )
            if blob != want:
                n = min(len(blob), len(want)) // HASH_SIZE
                entry = next(
                    (
                        e
                        for e in range(n)
                        if blob[e * HASH_SIZE : (e + 1) * HASH_SIZE]
                        != want[e * HASH_SIZE : (e + 1) * HASH_SIZE]
                    ),
                    n,
                )
                raise IntegrityError(
                    f"tile {key} entry {entry} disagrees with the recomputed tree",
                    _first_leaf(key, entry),
                )
            seen.add(key)
        missing = sorted(set(self.tree.tiles) - seen)
        if missing:
            raise IntegrityError(f"tile {missing[0]} is missing", _first_leaf(missing[0], 0))


def _first_leaf(key: TileKey, entry: int) -> int:
    level, index = key
    return (index * TILE_WIDTH + entry) << (TILE_HEIGHT * level)


def check_ledger(store: LedgerStore, progress: Callable[[int], None] | None = None) -> CheckReport:
    """Run every check; raise :class:`IntegrityError` at the first failure."""
    c = _Checker(store)
    c.checkpoints_at(0)
    try:
        c.records(progress)
    except IntegrityError:
        c.bodies()  # a bad body among earlier records is the first disagreement: name it
        raise
    c.bodies()
    c.grow_tiles()
    if c.next_cp is not None:
        size = c.compact.size
        raise IntegrityError(
            f"checkpoint at size {c.next_cp[0]} is beyond the {size} records stored", size
        )
    c.stored_tiles()
    from ledger.registry.check import check_registry

    check_registry(store)
    if progress is not None:
        progress(c.compact.size)
    return CheckReport(c.compact.size, c.n_cps, len(c.tree.tiles), c.compact.root())
