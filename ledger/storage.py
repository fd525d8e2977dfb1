"""The ledger's database: one class that owns every query and every transaction.

This module holds the schema, metadata and the write path. :class:`LedgerStore` extends the
import (:class:`ledger.store_import.StoreImport`), which extends the write primitives
(:class:`ledger.store_rows.StoreRows`), which extend the reads
(:class:`ledger.store_reads.StoreReads`).

Appends go through :meth:`LedgerStore.sequence`, which under the single write lock reads the head,
assigns indices, times and ``prev`` links, writes bodies, records and tiles, signs a checkpoint and
commits — all or nothing. Reads never take the lock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

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
    LOCK_TIMEOUT_SECONDS,
    busy_error,
    driver_rows,
    driver_send,
    in_pipeline,
    lock_busy,
    make_engine,
    migrate,
    schema_exists,
    sqlite_file,
    upgrade_schema,
    write_transaction,
)
from ledger._internal.db_errors import one_line
from ledger._internal.sqlite_queue import WRITER_LOCK_SUFFIX, lock_path, writers_queue
from ledger.bodies import Submission
from ledger.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint, sign_checkpoint
from ledger.errors import (
    ConflictError,
    IntegrityError,
    NotFound,
    Overloaded,
    StorageError,
)
from ledger.merkle import EMPTY_ROOT
from ledger.note import NoteSigner, NoteVerifier, parse_verifier
from ledger.record import Record, format_time
from ledger.registry.entries import REGISTRY_ROWS, registry_rows_of
from ledger.store_import import StoreImport
from ledger.store_reads import _HEAD, _LATEST_CHECKPOINT
from ledger.store_rows import derive_rows
from ledger.tiles import (
    StoredLevels,
    TileCache,
    TileKey,
    TileTree,
    batch_proofs,
    edge_tile_keys,
)
from ledger.writer_checks import (
    LogHead,
    TileFetch,
    check_consistency_handed_out,
    check_head_is_signed,
    check_inclusion_handed_out,
    check_inclusions_handed_out,
    check_logged,
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


@dataclass(frozen=True)
class _EarlyReads:
    """Reads a pipelined write transaction queued before its batch's own (:func:`driver_send`
    cursors): the head, the latest checkpoint, the registry's rows."""

    head: Any
    checkpoint: Any
    registry: Any


@lru_cache(maxsize=8)
def _own_verifier(signer: NoteSigner) -> NoteVerifier:
    return parse_verifier(signer.verifier_key())


class LedgerStore(StoreImport):
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
        if self._new_file is None:
            self.engine.dispose()
            return
        # A file this store brought into being and created no ledger in. Another `init` of the
        # same new path may have won the race to create one in it: in the writers' queue (so
        # that one is not mid-transaction), the file is removed only if it holds no ledger.
        try:
            with writers_queue(lock_path(self._new_file), LOCK_TIMEOUT_SECONDS, lock_busy):
                keep = False
                with suppress(Exception):  # unreadable: it holds no ledger of anyone's
                    keep = schema_exists(self.engine)
                self.engine.dispose()
                if not keep:
                    for suffix in ("", "-wal", "-shm", "-journal", WRITER_LOCK_SUFFIX):
                        with suppress(OSError):  # missing, or a read-only file system
                            Path(f"{self._new_file}{suffix}").unlink()
        except Overloaded:  # a writer holds the file all that time: it is not ours to remove
            self.engine.dispose()

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
        pipeline: bool = False,
    ) -> SequencedBatch:
        """Sequence and integrate ``batch`` in one transaction, and sign a checkpoint over it.

        ``batch`` may be a function that reads the submissions inside the transaction, under the
        write lock (the integrator reads pending rows so); ``after`` runs in the same transaction
        before it commits (the integrator deletes those rows and notifies). Without ``prove`` no
        inclusion proofs are computed (their callers read them after the commit). ``pipeline``:
        on PostgreSQL, send the transaction's writes without waiting for each
        (:func:`~ledger._internal.db.write_transaction`; the integrator's batches).
        """
        scratch = self.cache.scratch()
        try:
            with write_transaction(self.engine, pipeline=pipeline) as conn:
                # Pipelined: the head, the latest checkpoint and the registry go with the lock
                # and the batch's own read, one round trip.
                early = self._early_reads(conn) if in_pipeline(conn) else None
                subs = batch(conn) if callable(batch) else batch
                result = self._sequence(conn, subs, origin, signer, clock, scratch, prove, early)
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
        early: _EarlyReads | None = None,
    ) -> SequencedBatch:
        verifier = _own_verifier(signer)
        head, latest, read, logged = self._signed_head(
            conn, origin, verifier, [s.digest for s in batch], early
        )
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
                conn,
                head,
                records,
                bodies,
                origin,
                signer,
                now,
                cache,
                read=read,
                registry=None if early is None else registry_rows_of(early.registry.fetchall()),
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
            check_logged(logged, dict(zip(dup_at, tree.leaves_and_proofs(dup_at)[0], strict=True)))
            return SequencedBatch(indices, new_flags, cp.size, note, [], [], written)
        leaves, proofs = batch_proofs(tree, indices, [r.leaf_hash for r in records])
        check_logged(
            logged,
            {i: h for i, h, new in zip(indices, leaves, new_flags, strict=True) if not new},
        )
        check_inclusions_handed_out(leaves, indices, proofs, cp)  # a failure rolls back
        return SequencedBatch(indices, new_flags, cp.size, note, leaves, proofs, written)

    def _early_reads(self, conn: Connection) -> _EarlyReads:
        return _EarlyReads(
            driver_send(conn, _HEAD),
            driver_send(conn, _LATEST_CHECKPOINT),
            driver_send(conn, REGISTRY_ROWS),
        )

    def _signed_head(
        self,
        conn: Connection,
        origin: str,
        verifier: NoteVerifier,
        digests: Sequence[bytes] = (),
        early: _EarlyReads | None = None,
    ) -> tuple[LogHead, SignedCheckpoint, TileFetch, dict[bytes, tuple[int, bytes]]]:
        """The head, read under the write lock and held to :func:`check_head_is_signed`.

        Also returns the tile reader the check used, so the writer reuses the edge tiles it read,
        and the records of the bodies among ``digests`` already logged
        (:meth:`_records_by_digest`): read with the head and the latest checkpoint, which in
        pipeline mode is one round trip.
        """
        if early is None:
            reads = [(_HEAD, ()), (_LATEST_CHECKPOINT, ()), *self._by_digest_reads(conn, digests)]
            head_rows, cp_rows, *found = [driver_rows(conn, sql, p) for sql, p in reads]
            head = self._head_of(head_rows, writing=True)
            read = self._memo_fetch(conn)
        else:  # pipelined: the logged digests and the right-edge tiles in one round trip
            head = self._head_of(early.head.fetchall(), writing=True)
            cp_rows = early.checkpoint.fetchall()
            keys = list(edge_tile_keys(head.size).values())
            tiles = driver_send(conn, *self._tile_read(keys)) if keys else None
            sent = [driver_send(conn, sql, p) for sql, p in self._by_digest_reads(conn, digests)]
            edges = {(lv, i): bytes(h) for lv, i, h in (tiles.fetchall() if tiles else [])}
            found = [c.fetchall() for c in sent]
            read = self._memo_fetch(conn, edges)
        note = self._checkpoint_of(cp_rows)[1]
        latest = check_head_is_signed(
            head, note, verifier, origin, read, stored=self._stored_levels
        )
        return head, latest, read, self._by_digest_of(found)

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
        registry: list[tuple[int, bytes]] | None = None,
    ) -> tuple[str, dict[TileKey, bytes]]:
        """Write bodies, records and tiles; sign and store the checkpoint that covers them.

        ``read`` is the tile reader of a head already held to :func:`check_head_is_signed` in
        this transaction; without it, the head is checked here first.
        """
        if read is None:
            read = self._signed_head(conn, origin, _own_verifier(signer))[2]
        self._write_rows(conn, records, bodies, registry)
        size = head.size + len(records)
        changed = self._write_tiles(conn, head.size, [r.leaf_hash for r in records], read)
        for key, blob in changed.items():
            # A changed tile is a stored one grown by the batch's hashes: the levels the head
            # check just computed of its stored bytes carry over, only the new entries hash.
            cache.hold(key, self._stored_levels.levels(key, blob))
        root = TileTree(size, self._overlay_fetch(conn, changed), cache).root()
        note = sign_checkpoint(Checkpoint(origin, size, root), signer)
        self._insert_checkpoint(conn, size, root, note, now)
        return note, changed
