"""Reading cells as they are stored: SQLite keeps any type in any column.

``ledger check`` and export must name the index of a cell of the wrong type (TEXT where bytes
belong), not crash on it, so bytes columns are read through :func:`as_stored` and :func:`blob`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, LargeBinary, cast, func, null
from sqlalchemy.sql.elements import ColumnElement

from ledger.errors import IntegrityError


def as_stored(conn: Connection, col: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    """A bytes column as stored, with its storage class (``<name>_t``) on SQLite.

    SQLite keeps any type in any column, and its driver fails on text that is not UTF-8, so the
    column is read as ``CAST(… AS BLOB)`` beside ``typeof(…)``; :func:`blob` refuses non-blobs.
    """
    name = str(col.key)
    if conn.dialect.name == "sqlite":
        return [cast(col, LargeBinary).label(name), func.typeof(col).label(name + "_t")]
    return [col, null().label(name + "_t")]


def integer(value: object, what: str) -> int:
    if type(value) is not int:
        raise IntegrityError(
            f"{what} is stored as {type(value).__name__} {value!r}, not an integer"
        )
    return value


def blob(value: object, storage: object, what: str, index: int | None) -> bytes:
    """A cell that must hold bytes; SQLite stores any type in any column, so say so if not."""
    if storage not in (None, "blob") or not isinstance(value, bytes | bytearray | memoryview):
        kind = storage if storage is not None else type(value).__name__
        raise IntegrityError(f"{what} is stored as {kind}, not bytes", index)
    return bytes(value)
