"""The rows one batch writes: bodies, records, tiles, a checkpoint, and the rows derived from them.

:class:`StoreRows` holds the write primitives that appends (:class:`ledger.storage.LedgerStore`)
and imports (:class:`ledger.store_import.StoreImport`) share. Each runs inside the caller's write
transaction, under the write lock; none commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Connection

from ledger._internal import schema
from ledger._internal.db import BulkInsert, driver_rows, driver_sql
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.errors import IntegrityError
from ledger.index.rows import derive_index_rows
from ledger.note import NoteSigner
from ledger.record import Record, format_time
from ledger.registry.entries import derive_registry_rows
from ledger.store_reads import StoreReads
from ledger.tiles import TileKey, edge_tile_keys, integrate
from ledger.writer_checks import TileFetch

__all__ = ["StoreRows", "derive_rows"]

_INSERT_BODIES = BulkInsert(
    "bodies", (("digest", "bytea"), ("body_type", "text"), ("content", "bytea"))
)
_INSERT_RECORDS = BulkInsert(
    "records",
    (
        ("idx", "bigint"),
        ("leaf", "bytea"),
        ("leaf_hash", "bytea"),
        ("body_digest", "bytea"),
        ("time", "text"),
    ),
)
_UPDATE_TILE = "UPDATE tiles SET hashes = ? WHERE level = ? AND idx = ?"
_INSERT_TILE = "INSERT INTO tiles (level, idx, hashes) VALUES (?, ?, ?)"
_INSERT_CHECKPOINT = "INSERT INTO checkpoints (size, root, note, time) VALUES (?, ?, ?, ?)"


def derive_rows(
    conn: Connection,
    records: Sequence[Record],
    contents: Sequence[bytes],
    docs: Sequence[object] | None = None,
    registry: list[tuple[int, bytes]] | None = None,
) -> None:
    """Rows derived from a batch's bodies, written in the batch's own transaction (so they exist
    iff their records do). Every path that commits records MUST call this once per batch, with
    ``records[i]`` the record of ``contents[i]``, in index order. Today: the trust registry's
    rows, then the audit indexes (after the registry's, whose rows they read). Each deriver is a
    pure function of the records and bodies (and the rows before them), which ``ledger check``
    replays and compares. ``docs[i]``, when given, is ``contents[i]`` as the strict parser read
    it (so the index derivation does not parse it again). ``registry``: the registry's rows
    before the batch, read in its transaction (:func:`~ledger.registry.entries.read_rows`)."""
    if derive_registry_rows(conn, records, contents):
        registry = None  # read again: the index derivation needs the rows just written
    derive_index_rows(conn, records, contents, docs, registry)


class StoreRows(StoreReads):
    """The write primitives of one ledger database (see the module docstring)."""

    def _store_checkpoint(
        self, conn: Connection, cp: Checkpoint, signer: NoteSigner, clock: Callable[[], datetime]
    ) -> str:
        note = sign_checkpoint(cp, signer)
        row = {"size": cp.size, "root": cp.root_hash, "note": note, "time": format_time(clock())}
        conn.execute(schema.checkpoints.insert(), row)
        return note

    def _insert_checkpoint(
        self, conn: Connection, size: int, root: bytes, note: str, time: str
    ) -> None:
        """Store a checkpoint already signed (the writer's own SQL: one statement per batch)."""
        driver_rows(conn, driver_sql(conn, _INSERT_CHECKPOINT), (size, root, note, time))

    def _write_rows(
        self,
        conn: Connection,
        records: list[Record],
        bodies: list[dict[str, object]],
        registry: list[tuple[int, bytes]] | None = None,
    ) -> None:
        # The driver's own executemany: SQLAlchemy's per-row parameter processing cost more than
        # the inserts themselves on the bulk path (docs/benchmarks.md).
        _INSERT_BODIES.run(conn, [(b["digest"], b["body_type"], b["content"]) for b in bodies])
        # records[i].body names bodies[i]["digest"] (the writer made it so; import checked it)
        _INSERT_RECORDS.run(
            conn,
            [
                (r.index, r.leaf, r.leaf_hash, b["digest"], r.time)
                for r, b in zip(records, bodies, strict=True)
            ],
        )
        contents = [cast(bytes, b["content"]) for b in bodies]
        derive_rows(conn, records, contents, [b.get("doc") for b in bodies], registry)

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
            driver_rows(conn, driver_sql(conn, _UPDATE_TILE), updates, many=True)
        if inserts:
            driver_rows(conn, driver_sql(conn, _INSERT_TILE), inserts, many=True)
        return changed
