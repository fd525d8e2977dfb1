"""``ledger reindex`` and ``ledger check``'s index step: the index rows MUST be what the log says.

Both walk the log in chunks, derive each chunk's rows with :func:`ledger.index.rows.index_rows`
(the function the append path uses) and either write them (reindex: every index row deleted and
rebuilt in one transaction that holds the write lock, so no append lands half-indexed) or compare
them with the stored ones (check: the first record whose rows differ is named).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlalchemy import Connection, delete, func, or_, select

from ledger._internal import schema
from ledger._internal.db import write_transaction
from ledger.errors import IntegrityError
from ledger.index.rows import IndexRows, index_rows, insert_rows, stored_rows
from ledger.record import Record
from ledger.registry.entries import read_rows
from ledger.storage import LedgerStore

__all__ = [
    "check_indexes",
    "check_no_stray_rows",
    "first_difference",
    "reindex",
    "rows_disagree",
]

_CHUNK = 2000


def _log(conn: Connection, start: int = 0) -> Iterator[list[tuple[Record, bytes]]]:
    """Every record from ``start`` with its body, in index order, in chunks, on ``conn``."""
    r, b = schema.records.c, schema.bodies.c
    while True:
        rows = conn.execute(
            select(r.idx, r.leaf, r.body_digest).where(r.idx >= start).order_by(r.idx).limit(_CHUNK)
        ).all()
        if not rows:
            return
        digests = [bytes(row.body_digest) for row in rows]
        bodies = {
            bytes(d): bytes(c)
            for d, c in conn.execute(select(b.digest, b.content).where(b.digest.in_(digests)))
        }
        out = []
        for row in rows:
            rec = Record.from_leaf(bytes(row.leaf))
            content = bodies.get(bytes(row.body_digest))
            if content is None:
                raise IntegrityError(f"record {rec.index}: body {rec.body} is missing", rec.index)
            out.append((rec, content))
        yield out
        start = rows[-1].idx + 1


def index_existing(conn: Connection, progress: Callable[[int], None] | None = None) -> int:
    """Derive and insert the index rows of every record, on ``conn`` (inside its transaction)."""
    registry = read_rows(conn)
    written = done = 0
    for chunk in _log(conn):
        rows = index_rows([r for r, _ in chunk], [c for _, c in chunk], registry)
        insert_rows(conn, rows)
        written += len(rows)
        done += len(chunk)
        if progress is not None:
            progress(done)
    return written


def reindex(store: LedgerStore, progress: Callable[[int], None] | None = None) -> int:
    """Delete every index row and derive them again from the log, in one transaction that holds
    the write lock; the number of rows written."""
    with write_transaction(store.engine) as conn:
        for table in schema.INDEX_TABLES:
            conn.execute(delete(table))
        return index_existing(conn, progress)


def first_difference(want: IndexRows, got: IndexRows) -> int | None:
    """The lowest record index whose rows differ (every row's third field is its record)."""
    lowest: int | None = None
    pairs: list[tuple[list[tuple[object, ...]], list[tuple[object, ...]]]] = [
        (list(want.terms), list(got.terms)),
        (list(want.deps), list(got.deps)),
        (list(want.vulns), list(got.vulns)),
    ]
    for w, g in pairs:
        if w == g:
            continue
        diff = set(w) ^ set(g) or set(w + g)  # same set, different multiplicity: any row
        first = min(int(str(row[2])) for row in diff)
        lowest = first if lowest is None else min(lowest, first)
    return lowest


def check_indexes(store: LedgerStore) -> int:
    """Derive every index row from the log and compare with the stored ones;
    :class:`IntegrityError` naming the first record whose rows disagree. Returns the row count."""
    with store._conn() as conn:
        registry = read_rows(conn)
    total, size = 0, 0
    while True:
        with store._conn() as conn:
            chunk = next(_log(conn, size), None)
            if chunk is None:
                break
            start, end = chunk[0][0].index, chunk[-1][0].index + 1
            got = stored_rows(conn, start, end)
        want = index_rows([r for r, _ in chunk], [c for _, c in chunk], registry).sorted()
        where = first_difference(want, got)
        if where is not None:
            raise rows_disagree(where)
        total += len(want)
        size = end
    check_no_stray_rows(store, size)
    return total


def rows_disagree(where: int) -> IntegrityError:
    """The failure for record ``where``, the first whose stored index rows differ."""
    return IntegrityError(
        f"audit index rows of record {where} disagree with the log "
        "(run `ledger reindex` to rebuild them)",
        where,
    )


def check_no_stray_rows(store: LedgerStore, size: int) -> None:
    """No index table holds a row for a record outside ``[0, size)``, or for no record at all
    (a NULL or non-integer index)."""
    with store._conn() as conn:
        for table in schema.INDEX_TABLES:
            if conn.execute(select(table.c.idx).where(table.c.idx.is_(None)).limit(1)).first():
                raise IntegrityError(
                    f"audit index table {table.name} has a row for no record (its index is NULL)",
                    None,
                )
            stray = conn.execute(
                select(func.min(table.c.idx)).where(or_(table.c.idx < 0, table.c.idx >= size))
            ).scalar()
            if stray is not None:
                raise IntegrityError(
                    f"audit index table {table.name} has rows for record {stray!r}, which the "
                    f"log does not hold ({size} records)",
                    stray if type(stray) is int else None,
                )
