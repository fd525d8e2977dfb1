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
again from the log (each range compares its own records' rows, :mod:`ledger.fsck_range`; named
after every other check passed, as :func:`ledger.index.maintain.check_indexes` would name them,
then no index row may name a record outside the log). The first failure raises
:class:`~ledger.errors.IntegrityError` with its index.

The records are checked in aligned ranges of :data:`RANGE` indices, by worker processes when the
log is large (:mod:`ledger.fsck_range`); ranges are taken in index order, and the failure named
is the first failure of the lowest failing range — the one a single pass in index order meets
first (docs/design.md, "Check").
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass

from ledger._internal.cells import blob, integer
from ledger.checkpoint import open_checkpoint
from ledger.errors import Error, IntegrityError
from ledger.fsck_pool import ranges_in_workers
from ledger.fsck_range import RangeJob, RangeResult, check_range_with, fold, record_index
from ledger.fsck_rows import RawReader
from ledger.merkle import EMPTY_ROOT, HASH_SIZE, hash_children
from ledger.note import NoteVerifier, parse_verifier
from ledger.record import Record
from ledger.storage import LedgerStore
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH, TileBuilder, TileKey

__all__ = ["RANGE", "CheckReport", "check_ledger"]

RANGE_BITS = 14
RANGE = 1 << RANGE_BITS  # records per range: aligned, a power of two, whole level-0 tiles


@dataclass(frozen=True)
class CheckReport:
    records: int
    checkpoints: int
    tiles: int
    root: bytes
    pinned: bool


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


def _empty_tree_checkpoint(reader: RawReader, verifier: NoteVerifier, origin: str) -> None:
    """The first checkpoint is of size 0 and signs the empty tree; the row after it is read."""
    rows = reader.first_checkpoints(2)
    if rows:
        size = integer(rows[0][0], "a checkpoint size")
        blob(rows[0][1], rows[0][2], f"checkpoint at size {size}: root", max(size - 1, 0))
        if size < 0:
            raise IntegrityError(f"a checkpoint is stored at size {size}, below 0", 0)
    if not rows or rows[0][0] != 0:
        found = "none" if not rows else f"the first is of size {rows[0][0]}"
        raise IntegrityError(f"no checkpoint of the empty tree is stored ({found})", 0)
    try:
        cp = open_checkpoint(rows[0][3], [verifier], origin).checkpoint
    except Error as e:
        raise IntegrityError(f"checkpoint at size 0: {e}", 0) from e
    if cp.size != 0 or cp.root_hash != rows[0][1] or cp.root_hash != EMPTY_ROOT:
        raise IntegrityError("checkpoint at size 0 does not match the recomputed tree", 0)
    if len(rows) > 1:
        size = integer(rows[1][0], "a checkpoint size")
        blob(rows[1][1], rows[1][2], f"checkpoint at size {size}: root", max(size - 1, 0))
        if size == 0:
            raise IntegrityError("checkpoint at size 0 is stored more than once", 0)


def _extent(reader: RawReader) -> tuple[int, object | None]:
    """How far the ranges reach; and the index of a last row that is not a number (SQLite),
    which the single pass meets only after every numbered row. The lowest row is named first
    if it is not an integer or lies below 0."""
    first = reader.edge_index(last=False)
    if first is None:
        return 0, None
    row = reader.exact_record(first)
    i = record_index(row[0], 0)
    blob(row[1], row[2], f"record {i}: leaf", i)
    blob(row[3], row[4], f"record {i}: leaf hash", i)
    blob(row[5], row[6], f"record {i}: body digest", i)
    if i < 0:
        raise IntegrityError(f"a record is stored at index {i}, below 0", i)
    trailing, top = None, reader.edge_index(last=True)
    if type(top) not in (int, float):
        trailing, top = top, reader.highest_numeric_index()
        top = -1 if top is None else top
    # A gap-free log has count(*) rows: ranges past that can only name a gap found earlier.
    return min(math.floor(top) + 1, reader.count_records()), trailing


def _plan(
    reader: RawReader, verifier: NoteVerifier, origin: str
) -> tuple[int, object, int | None, bool]:
    """The checks before the ranges: no metadata key twice, the empty tree's checkpoint; then
    how far the ranges reach, a trailing non-numeric index, the first record with two bodies,
    and whether a row has no index at all."""
    twice = reader.duplicate_meta()
    if twice is not None:
        raise IntegrityError(f"the ledger's metadata holds more than one {twice!r} row")
    _empty_tree_checkpoint(reader, verifier, origin)
    end, trailing = _extent(reader)
    return end, trailing, reader.duplicate_body(), reader.has_null_index()


class _Tree:
    """The roots of the prefix checked so far (perfect subtrees of whole ranges), and tiles."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, bytes]] = []
        self.level0: dict[TileKey, bytes] = {}
        self.tile_roots: list[bytes] = []
        self.tail: list[bytes] = []  # the peaks of a last, partial range

    def peaks(self) -> list[bytes]:
        return [h for _, h in self.stack] + self.tail

    def add(self, r: RangeResult) -> None:
        width = TILE_WIDTH * HASH_SIZE
        base = r.lo // TILE_WIDTH
        for j in range(0, len(r.leaf_hashes), width):
            self.level0[(0, base + j // width)] = r.leaf_hashes[j : j + width]
        self.tile_roots += r.tile_roots
        if r.hi - r.lo < RANGE:
            self.tail = r.peaks
            return
        node, height = r.peaks[0], 0
        while self.stack and self.stack[-1][0] == height:
            node, height = hash_children(self.stack.pop()[1], node), height + 1
        self.stack.append((height, node))

    def tiles(self) -> dict[TileKey, bytes]:
        upper = TileBuilder()  # the roots of full level-0 tiles are the leaves of level 1
        upper.extend(self.tile_roots)
        return self.level0 | {(level + 1, i): b for (level, i), b in upper.tiles.items()}


def _results(
    jobs: list[RangeJob], store: LedgerStore, workers: int
) -> Generator[RangeResult, None, None]:
    """Each range's result, in index order: from worker processes when there are several
    ranges (:mod:`ledger.fsck_pool`), else checked here."""
    if workers > 1 and len(jobs) > 1:
        yield from ranges_in_workers(jobs, workers)
        return
    for job in jobs:
        yield check_range_with(job, store)


def _stored_tiles(store: LedgerStore, want_tiles: Mapping[TileKey, bytes]) -> None:
    seen = set()
    for key, stored in store.iter_tiles():
        want = want_tiles.get(key)
        if want is None:
            raise IntegrityError(
                f"tile {key} is stored but no record needs it", _first_leaf(key, 0)
            )
        if stored != want:
            n = min(len(stored), len(want)) // HASH_SIZE
            entry = next(
                (
                    e
                    for e in range(n)
                    if stored[e * HASH_SIZE : (e + 1) * HASH_SIZE]
                    != want[e * HASH_SIZE : (e + 1) * HASH_SIZE]
                ),
                n,
            )
            raise IntegrityError(
                f"tile {key} entry {entry} disagrees with the recomputed tree",
                _first_leaf(key, entry),
            )
        if key in seen:  # no primary key holds: a reader could be served either row
            raise IntegrityError(f"tile {key} is stored more than once", _first_leaf(key, 0))
        seen.add(key)
    missing = sorted(set(want_tiles) - seen)
    if missing:
        raise IntegrityError(f"tile {missing[0]} is missing", _first_leaf(missing[0], 0))


def _first_leaf(key: TileKey, entry: int) -> int:
    level, index = key
    return max((index * TILE_WIDTH + entry) << (TILE_HEIGHT * max(level, 0)), 0)


def _combine(
    results: Iterator[RangeResult], tree: _Tree, progress: Callable[[int], None] | None
) -> tuple[int, int, list[tuple[bytes, bytes]], int | None]:
    """Take each range's result in index order: compare its checkpoints' roots (the roots of
    ``[0, size)``, from the ranges before it and its own part), then raise its first failure.
    Returns the checkpoints verified, the size of the last, the registry candidates, and the
    first record whose audit index rows differ (named only once everything else passed)."""
    n_cps, last_cp = 1, 0  # the checkpoint of the empty tree
    registry: list[tuple[bytes, bytes]] = []
    index_at: int | None = None
    for r in results:
        before = tree.peaks()
        for size, part, stored in r.roots:
            if r.failure is not None and (size - 1, 2, 0) > r.failure.key:
                break
            if fold(before, part) != stored:
                raise IntegrityError(
                    f"checkpoint at size {size} does not match the recomputed tree", size - 1
                )
        if r.failure is not None:
            raise IntegrityError(r.failure.message, r.failure.index)
        tree.add(r)
        n_cps += r.checkpoints
        last_cp = r.roots[-1][0] if r.roots else last_cp
        registry += r.registry
        if index_at is None:
            index_at = r.index_at
        if progress is not None:
            progress(r.hi)
    return n_cps, last_cp, registry, index_at


def _duplicate(at: int) -> IntegrityError:
    return IntegrityError(
        f"record {at}: more than one stored body has its digest (the bodies table lost its "
        "primary key; a reader may be served either)",
        at if at >= 0 else None,
    )


def check_ledger(
    store: LedgerStore,
    progress: Callable[[int], None] | None = None,
    pins: Mapping[str, str] | None = None,
    *,
    workers: int | None = None,
) -> CheckReport:
    """Run every check; raise :class:`IntegrityError` at the first failure.

    ``pins`` maps where a trusted verifier key came from (``"--vkey"``, ``"the key file"``) to
    the key: the stored key must equal each. Without pins the check trusts the stored key, and
    the report says ``pinned=False``. ``workers`` processes check ranges of records (default:
    one per core; 1 checks in this process).
    """
    pins = pins or {}
    meta = store.meta()
    vkey = _stored_key(meta, pins)
    verifier, origin = parse_verifier(vkey), meta["origin"]
    reader = RawReader(store.engine)
    try:
        end, trailing, dup, null_index = _plan(reader, verifier, origin)
    finally:
        reader.close()
    url = store.engine.url.render_as_string(hide_password=False)
    jobs = [RangeJob(url, origin, vkey, lo, min(lo + RANGE, end)) for lo in range(0, end, RANGE)]
    tree = _Tree()
    try:
        with closing(_results(jobs, store, workers or os.cpu_count() or 1)) as results:
            n_cps, last_cp, registry, index_at = _combine(results, tree, progress)
    except IntegrityError as e:
        if dup is not None and (e.index is None or e.index > dup):
            raise _duplicate(dup) from e  # the first failure in index order
        raise
    if dup is not None:
        raise _duplicate(dup)
    if trailing is not None:  # the single pass meets it after every numbered row
        record_index(trailing, end)
    if null_index:  # a row beside the gapless numbered ones (a gap it left is named above)
        raise IntegrityError(f"record {end}: a record is stored with no index (NULL)", end)
    reader = RawReader(store.engine)
    try:
        beyond = reader.checkpoints(end, end)
        orphan = reader.orphan_body()
    finally:
        reader.close()

    if beyond:
        raise IntegrityError(
            f"checkpoint at size {beyond[0][0]} is beyond the {end} records stored", end
        )
    if last_cp != end:
        raise IntegrityError(
            f"record {last_cp} is not covered by any signed checkpoint (the latest is of size "
            f"{last_cp}, {end} records are stored)",
            last_cp,
        )
    tiles = tree.tiles()
    _stored_tiles(store, tiles)
    from ledger.registry.check import check_registry

    check_registry(store, [(Record.from_leaf(leaf), body) for leaf, body in registry])
    from ledger.index.maintain import check_no_stray_rows, rows_disagree

    if index_at is not None:  # each range compared its records' rows (ledger.fsck_range)
        raise rows_disagree(index_at)
    check_no_stray_rows(store, end)
    if orphan is not None:  # last: every record-level failure names its record first
        raise IntegrityError(
            f"a stored body no record names (sha256:{orphan.hex()}): it would block the append "
            "of that body for good"
        )
    if progress is not None:
        progress(end)
    return CheckReport(end, n_cps, len(tiles), fold(tree.peaks()), bool(pins))
