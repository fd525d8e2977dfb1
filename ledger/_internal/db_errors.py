"""Database failures in one line each: psycopg and sqlite3 errors become the ledger's own.

SQLAlchemy's message for a failed statement spreads its SQL, its parameters and a link over
several lines, and a refused connection reads like a missing ledger. Here every driver error is
named for what it is — the server refused the connection, the database or the ledger does not
exist, the file system is read-only — and a failed write gives the driver's one-line reason.
:func:`install` hooks this into an engine's ``handle_error`` event, so every connection attempt
and every statement of every caller passes through it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, ExceptionContext
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import Error, NotFound, RefusedValue, StorageError

__all__ = ["Target", "install", "one_line"]

_SERVER = re.compile(r'connection to server (?:at "([^"]+)", port (\d+)|on socket "([^"]+)")')
_MISSING_TABLE = re.compile(r'^(?:no such table: (\w+)|relation "(\w+)" does not exist)')
_MISSING_DB = re.compile(r'^database "[^"]*" does not exist')
_PG_READ_ONLY = "25006"  # read_only_sql_transaction
_PG_UNDEFINED_TABLE = "42P01"
_PG_DATA_EXCEPTION = "22"  # SQLSTATE class: a value the statement held was refused


@dataclass(frozen=True)
class Target:
    """The database an engine talks to, as error messages name it."""

    url: str  # rendered without its password
    path: Path | None  # the SQLite file, if it is one
    where: str  # host:port of a PostgreSQL server
    database: str

    @classmethod
    def of(cls, url: URL, path: Path | None) -> Target:
        where = f"{url.host or 'localhost'}:{url.port or 5432}"
        return cls(url.render_as_string(hide_password=True), path, where, url.database or "")

    @property
    def name(self) -> str:
        if self.path is not None:
            return f"sqlite file {self.path}"
        return f'PostgreSQL database "{self.database}" at {self.where}'


Busy = Callable[[SQLAlchemyError], Error | None]


def install(engine: Engine, target: Target, busy: Busy) -> None:
    """Raise every driver error ``engine`` meets as the ledger's own; ``busy`` names a writer
    that timed out waiting for the lock (``Overloaded``)."""
    event.listen(engine, "handle_error", partial(_raise_ledger_error, target, busy))


def one_line(e: BaseException) -> str:
    """The first line of a message, without SQLAlchemy's ``(driver.Class)`` prefix."""
    lines = str(e).strip().splitlines()
    return re.sub(r"^\([\w.]+\) ", "", lines[0]) if lines else e.__class__.__name__


def _raise_ledger_error(target: Target, busy: Busy, ctx: ExceptionContext) -> None:
    orig = ctx.original_exception
    if ctx.statement is None and ctx.connection is None:  # failed while connecting
        raise _connect_error(target, orig) from orig
    overloaded = busy(ctx.sqlalchemy_exception) if ctx.sqlalchemy_exception else None
    if overloaded is not None:
        raise overloaded from orig
    writing = ctx.connection is not None and ctx.connection.get_execution_options().get(
        "ledger_write", False
    )
    raise translate(target, orig, writing=writing) from orig


def translate(target: Target, orig: BaseException, *, writing: bool) -> Error:
    """The ledger's own error for a driver error met on a working connection (also for code
    that calls the driver directly, as the PostgreSQL submitter does)."""
    sqlstate = getattr(orig, "sqlstate", None)
    reason = _reason(orig)
    if sqlstate == _PG_READ_ONLY or getattr(orig, "sqlite_errorname", "").startswith(
        "SQLITE_READONLY"
    ):
        return StorageError(f"the database is read-only ({target.name})")
    table = _MISSING_TABLE.match(reason)
    if table and (sqlstate in (None, _PG_UNDEFINED_TABLE)):
        return _missing_table(target, table.group(1) or table.group(2))
    if getattr(orig, "sqlite_errorname", "") == "SQLITE_NOTADB":
        return NotFound(f"no ledger at {target.path}: it is not an SQLite database")
    what = "the write failed and was rolled back" if writing else "database error"
    if _refused_value(orig, sqlstate):
        return RefusedValue(f"{what}: {reason}")
    return StorageError(f"{what}: {reason}")


def _refused_value(orig: BaseException, sqlstate: object) -> bool:
    """Whether ``orig`` refused a value the statement held: PostgreSQL's data exceptions, or the
    driver's own refusal before sending (DB-API's ``DataError``: psycopg's for a NUL in text)."""
    if isinstance(sqlstate, str) and sqlstate.startswith(_PG_DATA_EXCEPTION):
        return True
    return any(c.__name__ == "DataError" for c in type(orig).__mro__)


def _reason(orig: BaseException) -> str:
    """The driver's one-line reason: PostgreSQL's primary message, or SQLite's text."""
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return str(primary) if primary else one_line(orig)


def _connect_error(target: Target, orig: BaseException) -> Error:
    if target.path is not None:
        return _sqlite_open_error(target.path, one_line(orig))
    first = one_line(orig).removeprefix("connection failed: ")
    server = _SERVER.search(first)
    where = target.where
    if server:
        where = server.group(3) or f"{server.group(1)}:{server.group(2)}"
    reason = re.sub(r"^FATAL:\s*", "", first.rsplit(" failed: ", 1)[-1]) if server else first
    reason = reason[:1].lower() + reason[1:] if reason[:2].istitle() else reason
    message = f"cannot connect to PostgreSQL at {where}: {reason}"
    return NotFound(message) if _MISSING_DB.match(reason) else StorageError(message)


def _sqlite_open_error(path: Path, reason: str) -> Error:
    directory = path.parent
    if not directory.is_dir():
        return StorageError(f"cannot open sqlite file {path}: directory {directory} does not exist")
    if os.statvfs(directory).f_flag & os.ST_RDONLY and not path.exists():
        return StorageError(
            f"the database is read-only: cannot create {path}: read-only file system"
        )
    if os.statvfs(directory).f_flag & os.ST_RDONLY:
        return StorageError(
            f"the database is read-only: {path} is on a read-only file system "
            "(SQLite writes a -shm file beside it even to read)"
        )
    if not path.exists():
        return NotFound(f"no ledger at {path}")
    return StorageError(f"cannot open sqlite file {path}: {reason}")


def _missing_table(target: Target, table: str) -> Error:
    if table == "ledger_meta":
        return NotFound(
            f"no ledger in {target.name}: run `ledger init --origin NAME --db {target.url}` first"
        )
    return StorageError(f"table {table} is missing from {target.name}")
