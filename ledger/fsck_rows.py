"""Raw driver reads for ``ledger check``: record rows with their bodies, checkpoint rows.

``ledger check`` reads every byte of the log once; SQLAlchemy rows and one ``IN (…)`` query per
2,000 bodies cost more than the checks themselves, so these reads go straight to the DB-API
cursor (``sqlite3`` or ``psycopg``), one query per few thousand records.

A fast row is ``(idx, leaf, leaf_hash, body_digest, time, body_type, content)`` where a bytes
column is of type ``bytes`` only if it is stored as bytes (SQLite keeps any type in any column:
TEXT comes back as ``str``), and ``content`` is ``None`` when no body has the row's digest. A row
the checker does not accept is read again *as stored* (:meth:`RawReader.exact_record`, the way
:func:`ledger._internal.cells.as_stored` reads it) to name what is wrong.

On SQLite, bodies are read by ``rowid`` span: a ledger writes a batch's bodies in the order of
its records, so the bodies of an index range are (nearly always) one run of rowids, read
sequentially instead of one index lookup each. Whatever that run does not hold is looked up by
digest, so the result never depends on the guess.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Engine

from ledger._internal.db_errors import one_line
from ledger.errors import IntegrityError, StorageError

__all__ = ["FastRow", "RawReader"]

FastRow = tuple[Any, Any, Any, Any, Any, Any, Any]

_EXACT = {
    "sqlite": """
SELECT r.idx, CAST(r.leaf AS BLOB), typeof(r.leaf), CAST(r.leaf_hash AS BLOB),
       typeof(r.leaf_hash), CAST(r.body_digest AS BLOB), typeof(r.body_digest),
       CASE typeof(r.time) WHEN 'text' THEN CAST(r.time AS BLOB) ELSE r.time END,
       CASE typeof(r.time) WHEN 'text' THEN 'text:blob' END
FROM records r""",
    "postgresql": """
SELECT r.idx, r.leaf, 'blob', r.leaf_hash, 'blob', r.body_digest, 'blob', r.time, NULL
FROM records r""",
}
_PG_FAST = """
SELECT r.idx, r.leaf, r.leaf_hash, r.body_digest, r.time, b.body_type, b.content
FROM records r LEFT JOIN bodies b ON b.digest = r.body_digest
WHERE r.idx >= %s AND r.idx < %s ORDER BY r.idx"""
_SQLITE_FAST = """
SELECT idx, leaf, leaf_hash, body_digest, time FROM records
WHERE idx >= ? AND idx < ? ORDER BY idx"""
_INDEX_ROWS = {
    "terms": "SELECT kind, value, idx FROM ix_terms WHERE idx >= ? AND idx < ?",
    "deps": "SELECT package, version, idx, digest FROM ix_deps WHERE idx >= ? AND idx < ?",
    "vulns": "SELECT vuln, product, idx, component, status FROM ix_vulns "
    "WHERE idx >= ? AND idx < ?",
}
_TEXT_COLUMNS = {
    "terms": ("ix_terms", ("kind", "value"), ("kind", "value", "idx")),
    "deps": ("ix_deps", ("package", "version", "digest"), ("package", "version", "idx", "digest")),
    "vulns": (
        "ix_vulns",
        ("vuln", "product", "component", "status"),
        ("vuln", "product", "idx", "component", "status"),
    ),
}


def _as_stored_sql(name: str) -> str:
    """The index rows of one table with each text column as ``(bytes, storage class)``."""
    table, texts, order = _TEXT_COLUMNS[name]
    cols = [f"CAST({c} AS BLOB), typeof({c})" if c in texts else c for c in order]
    # names from the constant above only, never from input
    return f"SELECT {', '.join(cols)} FROM {table} WHERE idx >= ? AND idx < ?"  # noqa: S608


def _as_text(row: Sequence[Any], name: str) -> tuple[Any, ...]:
    """A row read by :func:`_as_stored_sql` back in column order: a TEXT column that is UTF-8 as
    its text; anything else (not UTF-8, a BLOB, a number) as ``(storage class, bytes)``, which
    never equals a derived row's text."""
    _, texts, order = _TEXT_COLUMNS[name]
    out: list[Any] = []
    k = 0
    for c in order:
        if c not in texts:
            out.append(row[k])
            k += 1
            continue
        raw, kind = row[k], row[k + 1]
        k += 2
        if kind == "text":
            try:
                out.append(raw.decode())
                continue
            except UnicodeDecodeError:
                pass
        out.append(None if kind == "null" else (kind, raw))
    return tuple(out)


_FIRST_INDEX = "SELECT idx FROM records WHERE idx IS NOT NULL ORDER BY idx ASC LIMIT 1"
_LAST_INDEX = "SELECT idx FROM records WHERE idx IS NOT NULL ORDER BY idx DESC LIMIT 1"
_CPS = {
    "sqlite": "SELECT size, CAST(root AS BLOB), typeof(root), note FROM checkpoints",
    "postgresql": "SELECT size, root, 'blob', note FROM checkpoints",
}


class RawReader:
    """One DB-API connection from ``engine``'s pool, for the reads of one range (or the plan)."""

    def __init__(self, engine: Engine) -> None:
        self._dialect = engine.dialect.name
        self._sqlite = self._dialect == "sqlite"
        try:
            self._conn = engine.raw_connection()
        except Exception as e:
            raise StorageError(f"cannot reach the database: {one_line(e)}") from e

    def close(self) -> None:
        self._conn.close()

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        if not self._sqlite:
            sql = sql.replace("?", "%s")
        try:
            cur = self._conn.cursor()
            try:
                cur.execute(sql, tuple(params))
                return list(cur.fetchall())
            finally:
                cur.close()
        except Exception as e:
            raise StorageError(f"database read failed: {one_line(e)}") from e

    # -- records ------------------------------------------------------------------------------

    def records(self, lo: int, hi: int, chunk: int = 4096) -> Iterator[FastRow]:
        """Rows with ``lo <= idx < hi`` in index order, each with its body if one is stored."""
        for start in range(lo, hi, chunk):
            end = min(start + chunk, hi)
            if not self._sqlite:
                yield from self._query(_PG_FAST, (start, end))
                continue
            try:
                rows = self._query(_SQLITE_FAST, (start, end))
            except StorageError:  # TEXT that is not UTF-8: read it as stored
                rows = [self._as_fast(r) for r in self._exact(start, end)]
            yield from self._with_bodies(rows)

    def _exact(self, lo: int, hi: int) -> list[Any]:
        sql = _EXACT[self._dialect] + " WHERE r.idx >= ? AND r.idx < ? ORDER BY r.idx"
        return self._exact_rows(sql, (lo, hi))

    @staticmethod
    def _as_fast(row: Sequence[Any]) -> tuple[Any, ...]:
        idx, leaf, leaf_t, leaf_hash, hash_t, digest, digest_t, time = row
        ok = {"blob"}
        return (
            idx,
            leaf if leaf_t in ok else None,
            leaf_hash if hash_t in ok else None,
            digest if digest_t in ok else None,
            time,
        )

    def _with_bodies(self, rows: list[Any]) -> list[FastRow]:
        bodies: list[Any] = []
        digests = [r[3] for r in rows if type(r[3]) is bytes]
        if digests:
            span = self._query(
                "SELECT min(rowid), max(rowid) FROM bodies WHERE digest IN (?, ?)",
                (digests[0], digests[-1]),
            )[0]
            if span[0] is not None and span[1] - span[0] < 2 * len(rows):
                try:
                    bodies = self._query(
                        "SELECT digest, body_type, content FROM bodies "
                        "WHERE rowid BETWEEN ? AND ? ORDER BY rowid",
                        span,
                    )
                except StorageError:  # TEXT that is not UTF-8: look each up below
                    bodies = []
        if len(bodies) == len(rows) and all(
            b[0] == r[3] for b, r in zip(bodies, rows, strict=True)
        ):  # the usual case: the k-th body belongs to the k-th record
            return [r + b[1:] for r, b in zip(rows, bodies, strict=True)]
        found = {b[0]: b[1:] for b in bodies}
        out: list[FastRow] = []
        for r in rows:
            body = found.get(r[3]) if type(r[3]) is bytes else None
            if body is None and type(r[3]) is bytes:
                body = self._body(r[3])
            out.append(r + (body if body is not None else (None, None)))
        return out

    def _body(self, digest: bytes) -> tuple[Any, Any] | None:
        try:
            rows = self._query("SELECT body_type, content FROM bodies WHERE digest = ?", (digest,))
        except StorageError:  # not UTF-8: the checker reads it again as stored
            return ("", "")
        return (rows[0][0], rows[0][1]) if rows else None

    def exact_record(self, idx: Any) -> tuple[Any, ...]:
        """Row ``idx`` as stored: ``(idx, leaf, leaf_t, leaf_hash, hash_t, digest, digest_t,
        time)``, bytes columns as bytes beside their storage class."""
        return self._exact_rows(_EXACT[self._dialect] + " WHERE r.idx = ?", (idx,))[0]

    def _exact_rows(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        """Rows of an :data:`_EXACT` query with the time folded back into one column: TEXT that
        is not UTF-8 keeps its bytes as lone surrogates, so it can only fail the record's checks
        (which name the record), never the read."""
        return [
            (*r[:7], r[7].decode("utf-8", "surrogateescape") if r[8] == "text:blob" else r[7])
            for r in self._query(sql, params)
        ]

    def next_index(self, at: int) -> Any:
        """The lowest stored index ``>= at`` (SQLite: TEXT and BLOB sort after every number)."""
        rows = self._query("SELECT idx FROM records WHERE idx >= ? ORDER BY idx LIMIT 1", (at,))
        return rows[0][0] if rows else None

    def edge_index(self, last: bool) -> Any:
        """The index stored first (lowest) or last (highest), whatever its type (NULL aside)."""
        sql = _LAST_INDEX if last else _FIRST_INDEX
        rows = self._query(sql)
        return rows[0][0] if rows else None

    def has_null_index(self) -> bool:
        """Whether a row is stored with no index at all (possible only with the schema's NOT
        NULL constraint removed)."""
        return bool(self._query("SELECT 1 FROM records WHERE idx IS NULL LIMIT 1"))

    def highest_numeric_index(self) -> Any:
        """The highest index stored as a number."""
        if self._sqlite:
            sql = "SELECT max(idx) FROM records WHERE typeof(idx) IN ('integer', 'real')"
            return self._query(sql)[0][0]
        return self._query("SELECT max(idx) FROM records")[0][0]

    def count_records(self) -> int:
        return int(self._query("SELECT count(*) FROM records")[0][0])

    def link_before(self, lo: int) -> tuple[Any, Any] | None:
        """Record ``lo - 1``'s stored leaf hash and time: the link a range starting at lo needs."""
        rows = self._exact_rows(_EXACT[self._dialect] + " WHERE r.idx = ?", (lo - 1,))
        return (rows[0][3] if rows[0][4] == "blob" else None, rows[0][7]) if rows else None

    # -- checkpoints --------------------------------------------------------------------------

    def checkpoints(self, after: int, through: int) -> list[tuple[Any, Any, str, Any]]:
        """Checkpoint rows with ``after < size <= through``, then the first one past ``through``:
        ``(size, root, root's storage class, note)``."""
        base = _CPS[self._dialect]
        rows = self._query(f"{base} WHERE size > ? AND size <= ? ORDER BY size", (after, through))
        rows += self._query(f"{base} WHERE size > ? ORDER BY size LIMIT 1", (through,))
        return rows

    def first_checkpoints(self, n: int) -> list[tuple[Any, Any, str, Any]]:
        """The ``n`` lowest-sized checkpoint rows (even a negative size)."""
        return self._query(f"{_CPS[self._dialect]} ORDER BY size LIMIT ?", (n,))

    # -- derived rows ---------------------------------------------------------------------------

    def registry_rows(self) -> list[tuple[int, bytes]]:
        """Every registry row, ``(idx, entry)`` in index order (as :func:`read_rows` reads them)."""
        rows = self._query("SELECT idx, entry FROM registry_entries ORDER BY idx")
        out = []
        for i, e in rows:
            if type(i) is not int or not isinstance(e, bytes | memoryview):
                raise IntegrityError(
                    f"registry row {i!r}: its index or entry is stored as "
                    f"{type(i).__name__} / {type(e).__name__}, not an integer and bytes",
                    i if type(i) is int else None,
                )
            out.append((i, bytes(e)))
        return out

    def orphan_body(self) -> bytes | None:
        """A ``bodies`` row no record names (each record has its own body, so there are as many
        of one as of the other), or ``None``. Such a row would make the real body's append fail
        for good."""
        bodies = self._query("SELECT count(*) FROM bodies")[0][0]
        if bodies <= self.count_records():
            return None
        rows = self._query(
            "SELECT b.digest FROM bodies b LEFT JOIN records r ON r.body_digest = b.digest "
            "WHERE r.body_digest IS NULL LIMIT 1"
        )
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else b""

    def duplicate_meta(self) -> Any:
        """A metadata key stored in more than one row (its primary key dropped), or ``None``."""
        rows = self._query(
            "SELECT key FROM ledger_meta GROUP BY key HAVING count(*) > 1 ORDER BY key LIMIT 1"
        )
        return rows[0][0] if rows else None

    def duplicate_body(self) -> int | None:
        """The lowest record index whose body digest more than one ``bodies`` row holds (the
        primary key forbids it; a database edited without it could serve another body), or
        ``None``."""
        dup = self._query(
            "SELECT digest FROM bodies GROUP BY digest HAVING count(*) > 1 ORDER BY digest LIMIT 1"
        )
        if not dup:
            return None
        at = self._query("SELECT min(idx) FROM records WHERE body_digest = ?", (dup[0][0],))
        return at[0][0] if at and type(at[0][0]) is int else -1

    def index_rows(self, lo: int, hi: int) -> tuple[list[Any], list[Any], list[Any]]:
        """The stored audit index rows of records ``[lo, hi)``: terms, dependencies, vulnerability
        statuses, each as tuples in :mod:`ledger.index.rows`' column order, unsorted."""
        out = []
        for name in ("terms", "deps", "vulns"):
            try:
                out.append(self._query(_INDEX_ROWS[name], (lo, hi)))
            except StorageError:
                if not self._sqlite:
                    raise
                # TEXT that is not UTF-8 (SQLite stores any bytes): read the text columns as
                # stored, so the rows differ from the derived ones and the record is named
                rows = self._query(_as_stored_sql(name), (lo, hi))
                out.append([_as_text(row, name) for row in rows])
        return out[0], out[1], out[2]

    def last_checkpoint_at_most(self, size: int) -> Any:
        return self._query("SELECT max(size) FROM checkpoints WHERE size <= ?", (size,))[0][0]
