"""The ledger database's reads: records, bodies, checkpoints and tiles (never the write lock).

:class:`StoreReads` is the read half of :class:`ledger.storage.LedgerStore`; the write path uses
its in-transaction helpers (``_head``, ``_latest_checkpoint``, the tile fetchers) under the lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, Engine, and_, or_, select
from sqlalchemy.exc import SQLAlchemyError

from ledger._internal import schema
from ledger._internal.cells import as_stored, blob, integer
from ledger._internal.db import PlannedEachTime, driver_rows, milliseconds
from ledger._internal.db_errors import one_line
from ledger.errors import Error, IntegrityError, NotFound, StorageError
from ledger.merkle import hash_leaf
from ledger.record import Record, names_body
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH, TileCache, TileKey, TileTree
from ledger.writer_checks import LogHead, TileFetch

__all__ = ["StoreReads"]

_CHUNK = 500  # bound parameters per IN (...) query
_SQLITE_BY_DIGEST = "SELECT body_digest, idx, leaf FROM records WHERE body_digest IN ({})"
_PG_BY_DIGEST = PlannedEachTime(
    "SELECT body_digest, idx, leaf FROM records WHERE body_digest = ANY(%s)"
)
_PG_TILES = (
    "SELECT level, idx, hashes FROM tiles WHERE (level, idx) IN "
    "(SELECT * FROM unnest(%s::int[], %s::bigint[]))"
)
_SQLITE_TILES = "SELECT level, idx, hashes FROM tiles WHERE "
_HEAD = (
    "SELECT idx, leaf_hash, time, (SELECT min(idx) FROM records), leaf FROM records "
    "ORDER BY idx DESC LIMIT 1"
)
_LATEST_CHECKPOINT = "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1"


class StoreReads:
    """Every read of one ledger database (see the module docstring)."""

    engine: Engine
    cache: TileCache

    def _head(self, conn: Connection, writing: bool = False) -> LogHead:
        # One round trip for both ends, in the driver's own SQL (the writer asks every batch).
        return self._head_of(driver_rows(conn, _HEAD), writing)

    def _head_of(self, rows: Sequence[Any], writing: bool) -> LogHead:
        """The head from the rows of :data:`_HEAD` (``writing``: held to the checks a writer
        needs)."""
        if not rows:
            return LogHead(0, None, None)
        idx, leaf_hash, time, first, leaf = rows[0]  # as stored: a tampered type fails the
        if type(idx) is not int:  # head check; SQLite sorts a text or real index last
            raise IntegrityError(
                f"the records table was altered: its last record's index is stored as {idx!r}, "
                "not an integer (run `ledger check` to find where)"
            )
        if not writing:  # a reader needs the size only
            return LogHead(idx + 1, leaf_hash, time, first)
        if type(leaf) is bytes and type(leaf_hash) is bytes and hash_leaf(leaf) == leaf_hash:
            # the next record's time starts from this one's: the signed leaf's, not the column's
            try:
                signed_time: str | None = Record.from_leaf(leaf).time
            except Error:
                signed_time = None
            if time != signed_time:
                raise IntegrityError(
                    f"record {idx}'s stored time {time!r} is not the time its leaf records "
                    f"({signed_time}); refusing to extend the log (run `ledger check`)",
                    idx,
                )
        elif type(leaf_hash) is bytes:  # a leaf hash of the wrong type fails the head check
            raise IntegrityError(
                f"record {idx}'s stored leaf does not hash to its leaf hash; refusing to extend "
                "the log (run `ledger check`)",
                idx,
            )
        return LogHead(idx + 1, leaf_hash, time, first)

    def _records_by_digest(
        self, conn: Connection, digests: Sequence[bytes]
    ) -> dict[bytes, tuple[int, bytes]]:
        """``(index, leaf)`` of every body among ``digests`` in the log, each leaf checked to
        name its body at its index (the caller checks the leaf against the tree)."""
        return self._by_digest_of(
            [driver_rows(conn, sql, params) for sql, params in self._by_digest_reads(conn, digests)]
        )

    def _by_digest_reads(
        self, conn: Connection, digests: Sequence[bytes]
    ) -> list[tuple[str, tuple[object, ...]]]:
        """The reads (driver SQL, parameters) of :meth:`_records_by_digest`."""
        # The driver's own SQL: the writer asks for every digest of every batch, and SQLAlchemy's
        # expanding IN (...) cost more per digest than the lookup (docs/benchmarks.md).
        unique = list(dict.fromkeys(digests))
        if conn.dialect.name == "postgresql":  # one array parameter, however many
            return [(_PG_BY_DIGEST, ([bytes(d) for d in unique],))] if unique else []
        return [
            (_SQLITE_BY_DIGEST.format(", ".join("?" * len(chunk))), tuple(chunk))
            for chunk in (unique[i : i + _CHUNK] for i in range(0, len(unique), _CHUNK))
        ]

    def _by_digest_of(self, results: Sequence[Sequence[Any]]) -> dict[bytes, tuple[int, bytes]]:
        """:meth:`_records_by_digest` from the rows of its reads."""
        out: dict[bytes, tuple[int, bytes]] = {}
        for rows in results:
            for digest, idx, leaf in rows:
                if type(leaf) is not bytes or not names_body(leaf, idx, bytes(digest)):
                    # the indexed digest column was rewritten: answering with this record (a
                    # duplicate's acknowledgement) would prove another body
                    raise IntegrityError(
                        f"record {idx} is indexed under body sha256:{bytes(digest).hex()} but "
                        "does not hold it (the log has been tampered with; run `ledger check`)",
                        idx if type(idx) is int else None,
                    )
                out[bytes(digest)] = (idx, leaf)
        return out

    def indices_by_digest(self, digests: Sequence[bytes]) -> dict[bytes, int]:
        """The index of every body among ``digests`` that is in the log."""
        with self._conn() as conn:
            return {d: at for d, (at, _) in self._records_by_digest(conn, digests).items()}

    def leaves_by_digest(self, digests: Sequence[bytes]) -> dict[bytes, tuple[int, bytes]]:
        """``(index, leaf)`` of every body among ``digests`` that is in the log."""
        with self._conn() as conn:
            return self._records_by_digest(conn, digests)

    def _fetch_tiles(self, conn: Connection, keys: Sequence[TileKey]) -> dict[TileKey, bytes]:
        # The driver's own SQL: building a new SQLAlchemy expression per call cost more than the
        # query (its cache key is recomputed every time), and this runs several times per batch.
        out: dict[TileKey, bytes] = {}
        pg = conn.dialect.name == "postgresql"
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            if not chunk:
                continue
            if pg:
                rows = driver_rows(conn, *self._tile_read(chunk))
            else:  # an OR of primary-key lookups: SQLite scans the table for a row-value IN
                sql = _SQLITE_TILES + " OR ".join(["(level = ? AND idx = ?)"] * len(chunk))
                rows = driver_rows(conn, sql, tuple(x for k in chunk for x in k))
            for level, idx, hashes in rows:
                out[(level, idx)] = bytes(hashes)
        return out

    def _tile_read(self, keys: Sequence[TileKey]) -> tuple[str, tuple[object, ...]]:
        """PostgreSQL's read of the tiles ``keys`` (driver SQL, parameters)."""
        return _PG_TILES, ([k[0] for k in keys], [k[1] for k in keys])

    def _memo_fetch(
        self, conn: Connection, read: Mapping[TileKey, bytes] | None = None
    ) -> TileFetch:
        """A tile reader for one transaction that reads each tile from the database once
        (``read``: tiles already read in this transaction)."""
        memo: dict[TileKey, bytes] = dict(read or {})

        def fetch(keys: Sequence[TileKey]) -> dict[TileKey, bytes]:
            missing = [k for k in keys if k not in memo]
            if missing:
                memo.update(self._fetch_tiles(conn, missing))
            return {k: memo[k] for k in keys if k in memo}

        return fetch

    def _overlay_fetch(
        self, conn: Connection, overlay: Mapping[TileKey, bytes]
    ) -> Callable[[Sequence[TileKey]], dict[TileKey, bytes]]:
        def fetch(keys: Sequence[TileKey]) -> dict[TileKey, bytes]:
            out = {k: overlay[k] for k in keys if k in overlay}
            out.update(self._fetch_tiles(conn, [k for k in keys if k not in overlay]))
            return out

        return fetch

    def _latest_checkpoint(self, conn: Connection) -> tuple[int, str]:
        return self._checkpoint_of(driver_rows(conn, _LATEST_CHECKPOINT))

    def _checkpoint_of(self, rows: Sequence[Any]) -> tuple[int, str]:
        if not rows:
            raise NotFound("the ledger has no checkpoint: run `ledger init` first")
        return rows[0][0], rows[0][1]

    def latest_checkpoint(self) -> tuple[int, str]:
        with self._conn() as conn:
            return self._latest_checkpoint(conn)

    def checkpoint_at(self, size: int) -> str:
        c = schema.checkpoints.c
        with self._conn() as conn:
            note = conn.execute(select(c.note).where(c.size == size)).scalar()
        if note is None:
            raise NotFound(f"no checkpoint was signed at tree size {size}")
        return str(note)

    def iter_checkpoints(self, chunk: int = 2000) -> Iterator[tuple[int, bytes, str]]:
        """Every checkpoint by size, from the lowest stored (even a negative one), in pages."""
        c = schema.checkpoints.c
        after: int | None = None
        while True:
            with self._conn() as conn:
                q = select(c.size, *as_stored(conn, c.root), c.note)
                q = q if after is None else q.where(c.size > after)
                rows = conn.execute(q.order_by(c.size).limit(chunk)).all()
            if not rows:
                return
            for row in rows:
                integer(row.size, "a checkpoint size")
                where = max(row.size - 1, 0)
                root = blob(row.root, row.root_t, f"checkpoint at size {row.size}: root", where)
                yield row.size, root, row.note
            after = rows[-1].size

    def size(self) -> int:
        with self._conn() as conn:
            return self._head(conn).size

    def tree(self, size: int) -> TileTree:
        """A view of the tree at ``size`` whose tile reads each use a short read transaction."""

        def fetch(keys: Sequence[TileKey]) -> dict[TileKey, bytes]:
            with self._conn() as conn:
                return self._fetch_tiles(conn, keys)

        return TileTree(size, fetch, self.cache)

    def record(self, index: int) -> Record:
        rows = self.records(index, index + 1)
        if not rows:
            raise NotFound(f"no record at index {index}")
        return rows[0]

    def records(self, start: int, end: int) -> list[Record]:
        r = schema.records.c
        with self._conn() as conn:
            rows = conn.execute(
                select(r.leaf).where(r.idx >= start, r.idx < end).order_by(r.idx)
            ).all()
        return [Record.from_leaf(bytes(row.leaf)) for row in rows]

    def iter_rows(
        self, chunk: int = 10_000, *, start: int | None = 0
    ) -> Iterator[tuple[int, bytes, bytes, bytes, str]]:
        """Stored record rows as they are on disk, in index order, from ``start`` (``None``: from
        the lowest stored index, even a negative one — what ``ledger check`` needs)."""
        r = schema.records.c
        while True:
            with self._conn() as conn:
                q = select(
                    r.idx,
                    *as_stored(conn, r.leaf),
                    *as_stored(conn, r.leaf_hash),
                    *as_stored(conn, r.body_digest),
                    r.time,
                )
                q = q if start is None else q.where(r.idx >= start)
                rows = conn.execute(q.order_by(r.idx).limit(chunk)).all()
            if not rows:
                return
            for row in rows:
                i = integer(row.idx, "a record index")
                yield (
                    i,
                    blob(row.leaf, row.leaf_t, f"record {i}: leaf", i),
                    blob(row.leaf_hash, row.leaf_hash_t, f"record {i}: leaf hash", i),
                    blob(row.body_digest, row.body_digest_t, f"record {i}: body digest", i),
                    row.time,
                )
            start = rows[-1].idx + 1

    def bodies(self, digests: Sequence[bytes]) -> dict[bytes, tuple[str, bytes]]:
        """Bodies by digest; a body not stored as bytes raises :class:`IntegrityError`."""
        b = schema.bodies.c
        out: dict[bytes, tuple[str, bytes]] = {}
        with self._conn() as conn:
            for i in range(0, len(digests), _CHUNK):
                q = select(*as_stored(conn, b.digest), b.body_type, *as_stored(conn, b.content))
                for row in conn.execute(q.where(b.digest.in_(digests[i : i + _CHUNK]))):
                    digest = blob(row.digest, row.digest_t, "a body's digest", None)
                    what = f"body sha256:{digest.hex()}"
                    out[digest] = (row.body_type, blob(row.content, row.content_t, what, None))
        return out

    def iter_tiles(self, chunk: int = 500) -> Iterator[tuple[TileKey, bytes]]:
        """Every tile by (level, index), from the lowest stored (even a negative one), in pages."""
        t = schema.tiles.c
        after: TileKey | None = None
        while True:
            with self._conn() as conn:
                q = select(t.level, t.idx, *as_stored(conn, t.hashes))
                if after is not None:
                    level, idx = after
                    q = q.where(or_(t.level > level, and_(t.level == level, t.idx > idx)))
                rows = conn.execute(q.order_by(t.level, t.idx).limit(chunk)).all()
            if not rows:
                return
            for row in rows:
                key = (integer(row.level, "a tile level"), integer(row.idx, "a tile index"))
                where = max(row.idx, 0) * TILE_WIDTH << (TILE_HEIGHT * max(row.level, 0))
                yield key, blob(row.hashes, row.hashes_t, f"tile {key}", where)
            after = rows[-1].level, rows[-1].idx

    def _conn(self) -> _ReadConnection:
        return _ReadConnection(self.engine)


_LOCK_WAIT: ContextVar[float | None] = ContextVar("ledger_read_lock_wait", default=None)


@contextmanager
def bounded_lock_waits(seconds: float) -> Iterator[None]:
    """Within this block (this thread), every read of the store waits at most ``seconds`` for a
    lock (PostgreSQL; a plain read waits only for DDL's) and then raises
    :class:`~ledger.errors.Overloaded`: for a thread that must stay free to do other work."""
    token = _LOCK_WAIT.set(seconds)
    try:
        yield
    finally:
        _LOCK_WAIT.reset(token)


def _bound_lock_wait(conn: Connection) -> None:
    seconds = _LOCK_WAIT.get()
    if seconds is not None and conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {milliseconds(seconds)}")


class _ReadConnection:
    """A read connection whose database errors surface as :class:`StorageError`.

    Driver errors arrive already translated (``db_errors``); this catches what SQLAlchemy itself
    raises."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def __enter__(self) -> Connection:
        try:
            self._conn = self._engine.connect()
        except SQLAlchemyError as e:
            raise StorageError(f"cannot reach the database: {one_line(e)}") from e
        try:
            _bound_lock_wait(self._conn)
        except BaseException:
            self._conn.close()
            raise
        return self._conn

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        assert self._conn is not None
        self._conn.close()
        if isinstance(exc, SQLAlchemyError):
            raise StorageError(f"database read failed: {one_line(exc)}") from exc
