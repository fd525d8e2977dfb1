"""One read transaction of an audit answer, its hot statements run on the driver itself.

An evidence answer is a few short statements (latest checkpoint, search, records with bodies);
through SQLAlchemy's ``exec_driver_sql`` each cost several times what SQLite takes to run it.
:func:`read_begin` opens the connection's read transaction the usual way (the engine's ``begin``
hook: ``BEGIN`` on SQLite, so every statement sees one snapshot), and :func:`sqlite_rows` runs a
statement on the ``sqlite3`` connection underneath, inside that transaction. PostgreSQL keeps
``exec_driver_sql`` (its reads wait on the network, not on Python).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from ledger.errors import StorageError

__all__ = ["read_begin", "sqlite_driver", "sqlite_rows"]


def read_begin(conn: Connection) -> None:
    """Start ``conn``'s read transaction now (if it has none), so statements run on the driver
    below share its snapshot."""
    if not conn.in_transaction():
        conn.begin()


def sqlite_driver(conn: Connection) -> sqlite3.Connection | None:
    """The ``sqlite3`` connection under ``conn``, in its read transaction; ``None`` for any other
    database."""
    if conn.dialect.name != "sqlite":
        return None
    read_begin(conn)
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


def sqlite_rows(
    raw: sqlite3.Connection, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
) -> list[Any]:
    """Every row of one statement on the driver (which caches the prepared statement); a
    database error surfaces as :class:`StorageError`, as through the engine."""
    try:
        return raw.execute(sql, params).fetchall()
    except sqlite3.Error as e:
        raise StorageError(f"database read failed: {e}") from e
