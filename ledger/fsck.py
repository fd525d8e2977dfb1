"""``ledger check``: recompute everything from the stored bytes and name the first disagreement.

First the key: the verifier key stored in the database is compared with every key the caller
pins (``--vkey``, the key file); checkpoints are then verified with it. Unpinned, a re-keyed and
re-signed history would pass, so the report says whether the check was pinned.

Steps, in order, for every record ``i``, starting at the lowest stored index (a negative one is
named, not skipped):

1. indices are gapless from 0;
2. the leaf parses as a record in canonical form, for this log, with index ``i``;
3. the stored leaf hash is ``SHA-256(0x00 ‖ leaf)``;
4. ``prev`` is the leaf hash of record ``i-1`` (all zeros for record 0);
5. times never decrease, and the indexed columns agree with the leaf;
6. the body exists, hashes to the record's digest, and has the record's body type.

7. where the time steps up from record ``i-1`` to ``i``, a batch ended: a checkpoint of size ``i``
   must be stored (every batch signs one in its own transaction; see docs/design.md, "Check").

Then: the first checkpoint is of size 0; every checkpoint's root equals the root recomputed from
the leaves at its size, its note verifies with the ledger's key and names this log; the latest
covers every record; every stored tile equals the tile recomputed from the leaves; and the trust
registry's derived rows equal the registry replayed from the log
(:func:`ledger.registry.check.check_registry`); and the audit index rows equal the rows derived
again from the log (:func:`ledger.index.maintain.check_indexes`). The first failure raises
:class:`~ledger.errors.IntegrityError` with its index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
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
    pinned: bool


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


def _stored_key(meta: Mapping[str, str], pins: Mapping[str, str]) -> str:
    """The stored verifier key, after comparing it with every pinned one."""
    missing = sorted({"origin", "vkey"} - meta.keys())
    if missing:
        raise IntegrityError(f"the ledger's metadata has no {' or '.join(missing)} row")
    for source, vkey in pins.items():
        parse_verifier(vkey)  # a malformed pin is bad input, not a mismatch
        if vkey.strip() != meta["vkey"].strip():
            raise IntegrityError(
                f"the verifier key stored in the ledger is not the one {source} pins: "
                "its checkpoints may have been re-signed"
            )
    return meta["vkey"]


class _Checker:
    def __init__(self, store: LedgerStore, pins: Mapping[str, str]) -> None:
        meta = store.meta()
        self.store = store
        self.verifier = parse_verifier(_stored_key(meta, pins))
        self.origin = meta["origin"]
        self.checkpoints = store.iter_checkpoints()
        self.next_cp = next(self.checkpoints, None)
        if self.next_cp is not None and self.next_cp[0] < 0:
            raise IntegrityError(f"a checkpoint is stored at size {self.next_cp[0]}, below 0", 0)
        if self.next_cp is None or self.next_cp[0] != 0:
            found = "none" if self.next_cp is None else f"the first is of size {self.next_cp[0]}"
            raise IntegrityError(f"no checkpoint of the empty tree is stored ({found})", 0)
        self.last_cp = 0  # size of the last checkpoint seen
        self.n_cps = 0
        self.compact = CompactRange()
        self.tree = TileBuilder()
        self.pending: list[bytes] = []
        self.unchecked_bodies: list[Record] = []

    def bodies(self) -> None:
        """Step 6 for the records seen since the last call (bodies are read in chunks)."""
        recs, self.unchecked_bodies = self.unchecked_bodies, []
        try:
            found = self.store.bodies([r.body_digest for r in recs])
        except IntegrityError:  # a cell of the wrong type: find the first record it belongs to
            for rec in recs:
                try:
                    self.store.bodies([rec.body_digest])
                except IntegrityError as e:
                    raise IntegrityError(f"record {rec.index}: {e}", rec.index) from e
            raise
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
            self.last_cp = cp_size
            self.next_cp = next(self.checkpoints, None)

    def grow_tiles(self) -> None:
        self.tree.extend(self.pending)
        self.pending = []

    def records(self, progress: Callable[[int], None] | None) -> None:
        prev, last_time = GENESIS_PREV, ""
        for idx, leaf, leaf_hash, digest, time in self.store.iter_rows(start=None):
            expected = self.compact.size
            if idx < 0:
                raise IntegrityError(f"a record is stored at index {idx}, below 0", idx)
            if idx != expected:
                raise IntegrityError(
                    f"record {expected} is missing (next stored index is {idx})", expected
                )
            rec = _check_record(
                _Row(idx, leaf, leaf_hash, digest, time), self.origin, prev, last_time
            )
            if idx and rec.time != last_time and self.last_cp != idx:
                raise IntegrityError(
                    f"records {self.last_cp}..{idx - 1} have no checkpoint of their own: their "
                    f"batch ended before record {idx} (a later time) but no checkpoint of size "
                    f"{idx} is stored",
                    self.last_cp,
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
    return max((index * TILE_WIDTH + entry) << (TILE_HEIGHT * max(level, 0)), 0)


def check_ledger(
    store: LedgerStore,
    progress: Callable[[int], None] | None = None,
    pins: Mapping[str, str] | None = None,
) -> CheckReport:
    """Run every check; raise :class:`IntegrityError` at the first failure.

    ``pins`` maps where a trusted verifier key came from (``"--vkey"``, ``"the key file"``) to
    the key: the stored key must equal each. Without pins the check trusts the stored key, and
    the report says ``pinned=False``.
    """
    pins = pins or {}
    c = _Checker(store, pins)
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
    if c.last_cp != c.compact.size:
        raise IntegrityError(
            f"record {c.last_cp} is not covered by any signed checkpoint (the latest is of size "
            f"{c.last_cp}, {c.compact.size} records are stored)",
            c.last_cp,
        )
    c.stored_tiles()
    from ledger.registry.check import check_registry

    check_registry(store)
    from ledger.index.maintain import check_indexes

    check_indexes(store)
    if progress is not None:
        progress(c.compact.size)
    return CheckReport(c.compact.size, c.n_cps, len(c.tree.tiles), c.compact.root(), bool(pins))
