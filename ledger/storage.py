"""The ledger's database: one class that owns every query and every transaction.

This module holds the schema, metadata and the write path; the reads are
:class:`ledger.store_reads.StoreReads`, which :class:`LedgerStore` extends.

Appends go through :meth:`LedgerStore.sequence`, which under the single write lock reads the head,
assigns indices, times and ``prev`` links, writes bodies, records and tiles, signs a checkpoint and
commits — all or nothing. Reads never take the lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import cast

from sqlalchemy import (
    Connection,
    Engine,
    func,
    inspect,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from ledger._internal import schema
from ledger._internal.db import (
    busy_error,
    driver_rows,
    make_engine,
    migrate,
    schema_exists,
    sqlite_file,
    upgrade_schema,
    write_transaction,
)
from ledger._internal.db_errors import one_line
from ledger.bodies import Submission
from ledger.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint, sign_checkpoint
from ledger.errors import (
    ConflictError,
    IntegrityError,
    InvalidInput,
    NotFound,
    StorageError,
)
from ledger.index.rows import derive_index_rows
from ledger.merkle import EMPTY_ROOT, hash_leaf
from ledger.note import NoteSigner, NoteVerifier, parse_verifier
from ledger.record import GENESIS_PREV, Record, format_time
from ledger.registry.entries import derive_registry_rows
from ledger.store_reads import StoreReads
from ledger.tiles import (
    StoredLevels,
    TileCache,
    TileKey,
    TileTree,
    batch_proofs,
    edge_tile_keys,
    integrate,
)
from ledger.writer_checks import (
    LogHead,
    TileFetch,
    check_consistency_handed_out,
    check_head_is_signed,
    check_inclusion_handed_out,
    check_inclusions_handed_out,
)

__all__ = [
    "LedgerStore",
    "LogHead",
    "SequencedBatch",
    "check_consistency_handed_out",
    "check_head_is_signed",
    "check_inclusion_handed_out",
    "derive_rows",
]

_IMPORT_BATCH = 1000  # records per insert during an import (all in one transaction)
_IMPORT_BATCH_BYTES = 16 << 20  # ... or fewer, to bound the bodies held in memory


@dataclass(frozen=True)
class SequencedBatch:
    """What one integration produced: every submission's index, and the checkpoint covering it."""

    indices: list[int]
    new: list[bool]
    tree_size: int
    checkpoint: str
    leaf_hashes: list[bytes]
    proofs: list[list[bytes]]
    records: dict[int, bytes] = field(default_factory=dict)  # index -> leaf bytes, new records


_INSERT_BODIES = "INSERT INTO bodies (digest, body_type, content) VALUES (?, ?, ?)"
_INSERT_RECORDS = (
    "INSERT INTO records (idx, leaf, leaf_hash, body_digest, time) VALUES (?, ?, ?, ?, ?)"
)
_UPDATE_TILE = "UPDATE tiles SET hashes = ? WHERE level = ? AND idx = ?"
_INSERT_TILE = "INSERT INTO tiles (level, idx, hashes) VALUES (?, ?, ?)"
_INSERT_CHECKPOINT = "INSERT INTO checkpoints (size, root, note, time) VALUES (?, ?, ?, ?)"


def _driver_sql(conn: Connection, sql: str) -> str:
    """``sql`` written with ``?`` placeholders, in the driver's own placeholder style."""
    return sql if conn.dialect.paramstyle == "qmark" else sql.replace("?", "%s")


@lru_cache(maxsize=8)
def _own_verifier(signer: NoteSigner) -> NoteVerifier:
    return parse_verifier(signer.verifier_key())


def derive_rows(
    conn: Connection,
    records: Sequence[Record],
    contents: Sequence[bytes],
    docs: Sequence[object] | None = None,
) -> None:
    """Rows derived from a batch's bodies, written in the batch's own transaction (so they exist
    iff their records do). Every path that commits records MUST call this once per batch, with
    ``records[i]`` the record of ``contents[i]``, in index order. Today: the trust registry's
    rows, then the audit indexes (after the registry's, whose rows they read). Each deriver is a
    pure function of the records and bodies (and the rows before them), which ``ledger check``
    replays and compares. ``docs[i]``, when given, is ``contents[i]`` as the strict parser read
    it (so the index derivation does not parse it again)."""
    derive_registry_rows(conn, records, contents)
    derive_index_rows(conn, records, contents, docs)


class LedgerStore(StoreReads):
    """Every read and write of one ledger database."""

    def __init__(self, engine: Engine, new_file: Path | None = None) -> None:
        self.engine = engine
        self.cache = TileCache()
        self._stored_levels = StoredLevels()  # the head check's, writer only
        self._new_file = new_file  # a SQLite file this store brings into being, until created

    @classmethod
    def open(cls, url: str, *, create: bool = False) -> LedgerStore:
        """Open a ledger's database. Only ``create`` may make a new SQLite file, and if no ledger
        is created in it before :meth:`close`, close removes it again."""
        path = sqlite_file(url) if create else None
        new_file = path if path is not None and not path.exists() else None
        return cls(make_engine(url, create=create), new_file)

    def close(self) -> None:
        self.engine.dispose()
        if self._new_file is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with suppress(OSError):  # missing, or a read-only file system: nothing to undo
                    Path(f"{self._new_file}{suffix}").unlink()

    # -- schema and metadata ------------------------------------------------------------------

    def exists(self) -> bool:
        try:
            return schema_exists(self.engine)
        except SQLAlchemyError as e:
            raise StorageError(f"cannot reach the database: {one_line(e)}") from e

    def create(
        self,
        origin: str,
        signer: NoteSigner,
        now: datetime,
        extra_meta: Mapping[str, str] | None = None,
    ) -> str:
        """Create the schema, record origin, verifier key and ``extra_meta`` (the admin key), and
        sign the empty tree.

        One transaction (DDL is transactional on both backends): a failure leaves no tables.
        """
        if self.exists():
            raise ConflictError(
                "a ledger already exists in this database; refusing to overwrite it"
            )
        try:
            note = sign_checkpoint(Checkpoint(origin, 0, EMPTY_ROOT), signer)
            with write_transaction(self.engine) as conn:
                migrate(conn)
                if conn.execute(select(func.count()).select_from(schema.meta)).scalar_one():
                    raise ConflictError("a ledger already exists in this database")
                conn.execute(
                    schema.meta.insert(),
                    [
                        {"key": "origin", "value": origin},
                        {"key": "vkey", "value": signer.verifier_key()},
                        *({"key": k, "value": v} for k, v in (extra_meta or {}).items()),
                    ],
                )
                conn.execute(
                    schema.checkpoints.insert(),
                    {"size": 0, "root": EMPTY_ROOT, "note": note, "time": format_time(now)},
                )
        except SQLAlchemyError as e:
            raise StorageError(f"cannot create the ledger: {one_line(e)}") from e
        self._new_file = None  # it holds a ledger now: keep it
        return note

    def ensure_pending_table(self) -> None:
        """Bring the shared write path's table to its newest shape on a ledger created before it
        (additive migrations, as ``ledger serve`` and ``ledger tokens`` apply on start)."""
        try:
            found = inspect(self.engine)
            present = found.has_table("pending") and any(
                c["name"] == "submitted" for c in found.get_columns("pending")
            )
        except SQLAlchemyError as e:
            raise StorageError(f"cannot reach the database: {one_line(e)}") from e
        if not present:
            upgrade_schema(self.engine)

    def meta(self) -> dict[str, str]:
        with self._conn() as conn:
            rows = conn.execute(select(schema.meta.c.key, schema.meta.c.value)).all()
        if not rows:
            raise NotFound("no ledger in this database: run `ledger init` first")
        return {k: v for k, v in rows}

    # -- the write path -----------------------------------------------------------------------

    def sequence(
        self,
        batch: Sequence[Submission] | Callable[[Connection], Sequence[Submission]],
        origin: str,
        signer: NoteSigner,
        clock: Callable[[], datetime],
        *,
        prove: bool = True,
        after: Callable[[Connection, SequencedBatch], None] | None = None,
    ) -> SequencedBatch:
        """Sequence and integrate ``batch`` in one transaction, and sign a checkpoint over it.

        ``batch`` may be a function that reads the submissions inside the transaction, under the
        write lock (the integrator reads pending rows so); ``after`` runs in the same transaction
        before it commits (the integrator deletes those rows and notifies). Without ``prove`` no
        inclusion proofs are computed (their callers read them after the commit).
        """
        scratch = self.cache.scratch()
        try:
            with write_transaction(self.engine) as conn:
                subs = batch(conn) if callable(batch) else batch
                result = self._sequence(conn, subs, origin, signer, clock, scratch, prove)
                if after is not None:
                    after(conn, result)
        except SQLAlchemyError as e:
            raise busy_error(e) or StorageError(
                f"append failed and was rolled back: {one_line(e)}"
            ) from e
        self.cache.absorb(scratch)  # committed: what the batch computed may now serve reads
        return result

    def _sequence(
        self,
        conn: Connection,
        batch: Sequence[Submission],
        origin: str,
        signer: NoteSigner,
        clock: Callable[[], datetime],
        cache: TileCache,
        prove: bool = True,
    ) -> SequencedBatch:
        verifier = _own_verifier(signer)
        head, latest, read = self._signed_head(conn, origin, verifier)
        logged = self._records_by_digest(conn, [s.digest for s in batch])
        known = {d: at for d, (at, _) in logged.items()}
        size, prev = head.size, head.prev
        now = format_time(clock())
        if head.last_time is not None and now < head.last_time:
            now = head.last_time  # time never decreases along the log
        indices: list[int] = []
        new_flags: list[bool] = []
        fresh: list[Submission] = []
        for sub in batch:
            at = known.get(sub.digest)
            if at is not None:
                indices.append(at)
                new_flags.append(False)
                continue
            at = known[sub.digest] = size + len(fresh)
            fresh.append(sub)
            indices.append(at)
            new_flags.append(True)
        records = Record.chain(origin, size, prev, now, [(s.body_type, s.digest) for s in fresh])
        bodies: list[dict[str, object]] = [
            {"digest": s.digest, "body_type": s.body_type, "content": s.content, "doc": s.doc}
            for s in fresh
        ]
        changed: dict[TileKey, bytes] = {}
        note = latest.note
        if records:
            note, changed = self._commit(
                conn, head, records, bodies, origin, signer, now, cache, read=read
            )
        # The note just signed (or the head's): ledger.note remembers its verification, so the
        # next batch's head check reads it back without a second Ed25519 check.
        cp = open_checkpoint(note, [_own_verifier(signer)], origin).checkpoint
        for i in indices:  # a duplicate's stored index must lie inside the signed tree
            if not 0 <= i < cp.size:
                raise IntegrityError(f"record {i} is not covered by the latest checkpoint", i)
        written = {r.index: r.leaf for r in records}
        if not prove and not logged:
            return SequencedBatch(indices, new_flags, cp.size, note, [], [], written)
        # Proofs are read inside the same transaction: most tiles they need are still in memory.
        tree = TileTree(cp.size, self._overlay_fetch(conn, changed), cache)
        if not prove:  # no proofs wanted, but a duplicate's record is still checked
            dup_at = sorted({i for i, _ in logged.values()})
            _check_logged(logged, dict(zip(dup_at, tree.leaves_and_proofs(dup_at)[0], strict=True)))
            return SequencedBatch(indices, new_flags, cp.size, note, [], [], written)
        leaves, proofs = batch_proofs(tree, indices, [r.leaf_hash for r in records])
        _check_logged(
            logged,
            {i: h for i, h, new in zip(indices, leaves, new_flags, strict=True) if not new},
        )
        check_inclusions_handed_out(leaves, indices, proofs, cp)  # a failure rolls back
        return SequencedBatch(indices, new_flags, cp.size, note, leaves, proofs, written)

    def _signed_head(
        self,
        conn: Connection,
        origin: str,
        verifier: NoteVerifier,
    ) -> tuple[LogHead, SignedCheckpoint, TileFetch]:
        """The head, read under the write lock and held to :func:`check_head_is_signed`.

        Also returns the tile reader the check used, so the writer reuses the edge tiles it read.
        """
        head = self._head(conn, writing=True)
        read = self._memo_fetch(conn)
        note = self._latest_checkpoint(conn)[1]
        latest = check_head_is_signed(
            head, note, verifier, origin, read, stored=self._stored_levels
        )
        return head, latest, read

    def import_records(
        self,
        items: Iterable[tuple[Record, Submission]],
        origin: str,
        signer: NoteSigner,
        clock: Callable[[], datetime],
        *,
        root: bytes,
    ) -> str:
        """Append already-sequenced records verbatim (``ledger import``) in ONE transaction.

        The transaction holds the write lock from the emptiness check to the commit, so no append
        can land in between. ``items`` is consumed inside it: whatever it raises (a record that
        does not verify, a root that does not match) rolls everything back. The records must
        extend the empty log and reproduce ``root``; only then is a checkpoint signed over them.
        """
        scratch = self.cache.scratch()
        try:
            with write_transaction(self.engine) as conn:
                self._require_empty(conn)

                def batch_ended(size: int) -> None:  # the source log signed a checkpoint here
                    cp_root = TileTree(size, self._overlay_fetch(conn, {}), scratch).root()
                    self._store_checkpoint(conn, Checkpoint(origin, size, cp_root), signer, clock)

                size = self._import_stream(conn, items, batch_ended)
                if TileTree(size, self._overlay_fetch(conn, {}), scratch).root() != root:
                    raise IntegrityError(
                        "imported records do not reproduce the expected root", size
                    )
                if size == 0:  # an export of an empty log: the checkpoint `init` signed is it
                    return self._latest_checkpoint(conn)[1]
                note = self._store_checkpoint(conn, Checkpoint(origin, size, root), signer, clock)
        except SQLAlchemyError as e:
            why = str(getattr(e, "orig", None) or e).splitlines()[0]
            raise busy_error(e) or StorageError(f"import failed and was rolled back: {why}") from e
        self.cache.absorb(scratch)
        return note

    def _store_checkpoint(
        self, conn: Connection, cp: Checkpoint, signer: NoteSigner, clock: Callable[[], datetime]
    ) -> str:
        note = sign_checkpoint(cp, signer)
        row = {"size": cp.size, "root": cp.root_hash, "note": note, "time": format_time(clock())}
        conn.execute(schema.checkpoints.insert(), row)
        return note

    def _require_empty(self, conn: Connection) -> None:
        has_record = conn.execute(select(schema.records.c.idx).limit(1)).first() is not None
        has_body = conn.execute(select(schema.bodies.c.digest).limit(1)).first() is not None
        if has_record or has_body or self._latest_checkpoint(conn)[0] != 0:
            raise InvalidInput(
                "import needs an empty ledger and this one already holds records "
                "(run `ledger init` on a new database)"
            )

    def _import_stream(
        self,
        conn: Connection,
        items: Iterable[tuple[Record, Submission]],
        batch_ended: Callable[[int], None],
    ) -> int:
        """Write ``items`` in batches of bounded size; return the new tree size.

        A source batch's records share one time, and the source signed a checkpoint after each;
        so wherever the time steps up, ``batch_ended(size)`` signs one here too (the rule
        ``ledger check`` holds every log to: see docs/design.md, "Check").
        """
        size, prev, last_time = 0, GENESIS_PREV, ""
        batch: list[tuple[Record, Submission]] = []
        held = 0
        for rec, sub in items:
            if rec.index != size + len(batch) or rec.prev != prev:
                raise IntegrityError(f"record {rec.index} does not extend the log", rec.index)
            if rec.index and rec.time != last_time:
                size, held = self._insert(conn, size, batch), 0
                batch_ended(size)
            prev, last_time = rec.leaf_hash.hex(), rec.time
            batch.append((rec, sub))
            held += len(sub.content)
            if len(batch) >= _IMPORT_BATCH or held >= _IMPORT_BATCH_BYTES:
                size, held = self._insert(conn, size, batch), 0
        return self._insert(conn, size, batch)

    def _insert(self, conn: Connection, size: int, batch: list[tuple[Record, Submission]]) -> int:
        """Write bodies, records and tiles for ``batch`` (no checkpoint); empty it; new size."""
        if batch:
            self._write_rows(
                conn,
                [r for r, _ in batch],
                [
                    {"digest": s.digest, "body_type": s.body_type, "content": s.content}
                    for _, s in batch
                ],
            )
            self._write_tiles(conn, size, [r.leaf_hash for r, _ in batch])
        size += len(batch)
        batch.clear()
        return size

    def _write_rows(
        self, conn: Connection, records: list[Record], bodies: list[dict[str, object]]
    ) -> None:
        # The driver's own executemany: SQLAlchemy's per-row parameter processing cost more than
        # the inserts themselves on the bulk path (docs/benchmarks.md).
        driver_rows(
            conn,
            _driver_sql(conn, _INSERT_BODIES),
            [(b["digest"], b["body_type"], b["content"]) for b in bodies],
            many=True,
        )
        # records[i].body names bodies[i]["digest"] (the writer made it so; import checked it)
        driver_rows(
            conn,
            _driver_sql(conn, _INSERT_RECORDS),
            [
                (r.index, r.leaf, r.leaf_hash, b["digest"], r.time)
                for r, b in zip(records, bodies, strict=True)
            ],
            many=True,
        )
        contents = [cast(bytes, b["content"]) for b in bodies]
        derive_rows(conn, records, contents, [b.get("doc") for b in bodies])

    def _commit(
        self,
        conn: Connection,
        head: LogHead,
        records: list[Record],
        bodies: list[dict[str, object]],
        origin: str,
        signer: NoteSigner,
        now: str,
        cache: TileCache,
        *,
        read: TileFetch | None = None,
    ) -> tuple[str, dict[TileKey, bytes]]:
        """Write bodies, records and tiles; sign and store the checkpoint that covers them.

        ``read`` is the tile reader of a head already held to :func:`check_head_is_signed` in
        this transaction; without it, the head is checked here first.
        """
        if read is None:
            read = self._signed_head(conn, origin, _own_verifier(signer))[2]
        self._write_rows(conn, records, bodies)
        size = head.size + len(records)
        changed = self._write_tiles(conn, head.size, [r.leaf_hash for r in records], read)
        for key, blob in changed.items():
            # A changed tile is a stored one grown by the batch's hashes: the levels the head
            # check just computed of its stored bytes carry over, only the new entries hash.
            cache.hold(key, self._stored_levels.levels(key, blob))
        root = TileTree(size, self._overlay_fetch(conn, changed), cache).root()
        note = sign_checkpoint(Checkpoint(origin, size, root), signer)
        driver_rows(conn, _driver_sql(conn, _INSERT_CHECKPOINT), (size, root, note, now))
        return note, changed

    def _write_tiles(
        self,
        conn: Connection,
        size: int,
        leaf_hashes: list[bytes],
        read: TileFetch | None = None,
    ) -> dict[TileKey, bytes]:
        edge_keys = edge_tile_keys(size)
        stored = (read or self._memo_fetch(conn))(list(edge_keys.values()))
        edges = {level: stored[key] for level, key in edge_keys.items() if key in stored}
        if len(edges) != len(edge_keys):
            raise IntegrityError(f"right-edge tiles missing for tree size {size}", index=size)
        changed = integrate(size, edges, leaf_hashes)
        # The driver's own SQL, as for the rows: a batch writes a few tiles, and SQLAlchemy's
        # per-statement work cost more than the statements (docs/benchmarks.md).
        updates = [(v, k[0], k[1]) for k, v in changed.items() if k in stored]
        inserts = [(k[0], k[1], v) for k, v in changed.items() if k not in stored]
        if updates:
            driver_rows(conn, _driver_sql(conn, _UPDATE_TILE), updates, many=True)
        if inserts:
            driver_rows(conn, _driver_sql(conn, _INSERT_TILE), inserts, many=True)
        return changed


def _check_logged(logged: dict[bytes, tuple[int, bytes]], tree_leaf: dict[int, bytes]) -> None:
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
