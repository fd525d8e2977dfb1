"""Engines for the two backends, and the one write lock appends take.

SQLite: WAL, ``synchronous=FULL`` (an acknowledged append survives power loss), 8 KiB pages,
a busy timeout, and ``BEGIN IMMEDIATE`` for writers so two processes never interleave a batch.
A connection that writes may cache :data:`SQLITE_CACHE_KIB` of pages (readers keep SQLite's
default), and the WAL is checkpointed every :data:`SQLITE_CHECKPOINT_PAGES` pages.
PostgreSQL: a transaction-scoped advisory lock serialises writers across every replica. Its key
is derived from the schema the ledger lives in, so ledgers in different schemas of one database
never wait for each other. Both backends give up after :data:`LOCK_TIMEOUT_SECONDS`;
:func:`busy_error` turns that into one line, :class:`~ledger.errors.Overloaded`, naming the lock
that was waited for (the write lock, or a row or table lock someone else holds).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, urlsplit

from sqlalchemy import URL, Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from ledger._internal import db_errors
from ledger._internal.sqlite_queue import lock_path, writers_queue
from ledger.errors import InvalidInput, NotFound, Overloaded, StorageError

LOCK_TIMEOUT_SECONDS = 60  # how long a writer waits for the write lock, on both backends
# One advisory lock per ledger: the 64-bit key hashes the schema name (one ledger per schema).
# One round trip that opens the transaction, sets its lock timeout and takes the lock: sent as one
# simple-protocol query on a connection the driver leaves in autocommit, so the driver sends no
# BEGIN of its own first (a round trip per write transaction saved); it still sends COMMIT or
# ROLLBACK, as it does for any transaction the server reports open.
# (The timeout is filled in at each write, from LOCK_TIMEOUT_SECONDS then: tests shorten it.)
_PG_LOCK = (
    "SELECT set_config('lock_timeout', '{timeout}ms', true), "
    "pg_advisory_xact_lock(hashtextextended('provenance-ledger:' || current_schema(), 0))"
)
_PG_BEGIN_AND_LOCK = "BEGIN; " + _PG_LOCK
_PG_LOCK_NOT_AVAILABLE = "55P03"
_MIGRATIONS = Path(__file__).with_name("migrations")
# SQLite's page cache per connection (an upper bound: pages are allocated as they are read) and
# the WAL's automatic checkpoint interval. A batch's 1,000 bodies land on random pages of the two
# digest indexes (bodies, records.body_digest): with SQLite's 2 MiB default those pages were read
# back from the file every batch, and a checkpoint every 1,000 pages (about one per batch) copied
# and fsynced them into the database file again and again (docs/benchmarks.md, "Bulk, issue 8").
SQLITE_CACHE_KIB = 64 * 1024
SQLITE_CHECKPOINT_PAGES = 4000  # 31 MiB of 8 KiB pages; one wal-index hash block holds 4,096
# SQLite: the writers' queue file beside each ledger file (see write_transaction), by engine
_writer_locks: weakref.WeakKeyDictionary[Engine, Path] = weakref.WeakKeyDictionary()


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as e:
        raise InvalidInput(
            "malformed database URL: use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        ) from e


def sqlite_file(url: str) -> Path | None:
    """The file a ``sqlite:`` URL names (also in its ``file:`` URI form); None otherwise."""
    parsed = parse_url(url)
    db = parsed.database
    if parsed.get_backend_name() != "sqlite" or not db or db == ":memory:":
        return None
    return Path(urlsplit(db).path if _is_uri(parsed) else db)


PG_CONNECT_TIMEOUT = 10  # seconds a PostgreSQL connection attempt may take, unless the URL says


def make_engine(url: str, *, create: bool = False) -> Engine:
    """An engine for ``sqlite:///PATH`` or ``postgresql+psycopg://…`` with the ledger's settings.

    Only ``create`` (``ledger init``) may bring a SQLite file into being: any other opening of a
    file that is not there is :class:`NotFound` and leaves nothing behind. Every database error
    the engine meets later is raised as the ledger's own, in one line (see ``db_errors``).
    """
    parsed = parse_url(url)
    target = parsed  # as the user spelled it, for messages
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = sqlite_file(url)
        if path is None:
            raise InvalidInput("an in-memory SQLite ledger would vanish; give a file path")
        engine = _sqlite_engine(parsed, path, create)
    elif backend == "postgresql":
        path = None
        connect_args = (
            {} if "connect_timeout" in parsed.query else {"connect_timeout": PG_CONNECT_TIMEOUT}
        )
        # Every statement waits at most LOCK_TIMEOUT_SECONDS for a lock, reads too (a read waits
        # only for DDL's lock, but without a bound an append's admission or an audit query
        # waited as long as the DDL held it); write transactions set their own, the same.
        # In the URL's options, so the writer's own driver connections (made from the engine's
        # URL) and `ledger check`'s workers get it too.
        own = str(parsed.query.get("options", ""))
        if "lock_timeout" not in own:
            bound = f"{own} -c lock_timeout={_lock_timeout_ms()}".strip()
            parsed = parsed.update_query_dict({"options": bound})
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(
            parsed,
            pool_size=10,
            max_overflow=10,
            connect_args=connect_args,
        )
    else:
        raise InvalidInput(
            f"unsupported database {backend!r}: use sqlite:///PATH or postgresql+psycopg://…"
        )
    db_errors.install(engine, db_errors.Target.of(target, path), busy_error)
    return engine


def driver_connect_args(engine: Engine) -> dict[str, Any]:
    """The keyword arguments that connect the engine's DB-API driver as the engine would (for a
    connection of one's own: a session lock, LISTEN, an async connection on the event loop)."""
    args, kw = engine.dialect.create_connect_args(engine.url)
    if args:
        kw["conninfo"] = args[0]
    if engine.dialect.name == "postgresql" and "connect_timeout" not in engine.url.query:
        kw["connect_timeout"] = PG_CONNECT_TIMEOUT  # as the engine's own (make_engine)
    return dict(kw)


def _is_uri(url: URL) -> bool:
    return str(url.query.get("uri", "")).lower() in ("true", "1")


def _sqlite_engine(url: URL, path: Path, create: bool) -> Engine:
    if not create:
        if not path.is_file():
            raise NotFound(f"no ledger at {path}")
        # mode=rw: SQLite opens the file or fails, it never creates one
        if not _is_uri(url):
            url = url.set(database="file:" + quote(str(path.absolute())))
            url = url.update_query_dict({"uri": "true"})
        if "mode" not in url.query:
            url = url.update_query_dict({"mode": "rw"})
    engine = create_engine(url, pool_size=8, max_overflow=8)
    event.listen(engine, "connect", partial(_sqlite_connect, create))
    event.listen(engine, "begin", _sqlite_begin)
    _writer_locks[engine] = lock_path(path)
    return engine


def _sqlite_connect(create: bool, dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_connection.cursor()
    if create:  # both persist in the file; a reader must not write to it
        cur.execute("PRAGMA page_size=8192")
        cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute(f"PRAGMA busy_timeout={_lock_timeout_ms()}")
    cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("ledger_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def write_transaction(engine: Engine, *, pipeline: bool = False) -> Iterator[Connection]:
    """A transaction that holds the log's single write lock until it commits or rolls back.

    ``pipeline`` (PostgreSQL; SQLite ignores it): after the lock, the transaction runs in
    psycopg's pipeline mode (:func:`_pipelined`), so its writes cost no round trip each."""
    if engine.dialect.name != "postgresql":
        with _sqlite_write(engine) as conn:
            yield conn
        return
    with engine.connect() as raw:
        conn = raw.execution_options(ledger_write=True, isolation_level="AUTOCOMMIT")
        with conn.begin():
            if not pipeline:
                conn.exec_driver_sql(_PG_BEGIN_AND_LOCK.format(timeout=_lock_timeout_ms()))
                yield conn
                return
            with _pipelined(conn):
                yield conn


@contextmanager
def _pipelined(conn: Connection) -> Iterator[None]:
    """Run ``conn``'s write transaction in psycopg's pipeline mode: begin, take the write lock,
    run the caller's statements, commit.

    Statements are queued, not waited for: a read (:func:`driver_rows`, or a cursor of
    :func:`driver_send` fetched) sends everything queued before it (the first
    read: the ``BEGIN`` and the lock too) and waits for its rows, one round trip; the writes after
    the last read go with the ``COMMIT`` in one round trip at the end. A statement's error
    therefore surfaces at the next read or at that commit; PostgreSQL skips every statement after
    it, the COMMIT included, so nothing is committed, and the error is raised as the ledger's own
    (:func:`ledger._internal.db_errors.translate`); the transaction is then rolled back."""
    import psycopg

    driver: Any = conn.connection.driver_connection
    lock: Any = None
    try:
        with driver.pipeline():
            driver.execute("BEGIN")
            lock = driver.execute(_PG_LOCK.format(timeout=_lock_timeout_ms()))
            yield
            driver.execute("COMMIT")  # sent with the writes still queued, at the pipeline's end
        if driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raise StorageError("the write transaction did not commit; it was rolled back")
    except psycopg.Error as e:
        if e.sqlstate == _PG_LOCK_NOT_AVAILABLE:
            # The error is raised at whichever read came next; the lock's own cursor has its
            # result only if the lock was taken, so a later statement is what timed out.
            raise pg_lock_busy(e, write_lock=lock is None or lock.pgresult is None) from e
        target = db_errors.Target.of(conn.engine.url, None)
        raise db_errors.translate(target, e, writing=True) from e


def _lock_timeout_ms() -> int:
    return milliseconds(LOCK_TIMEOUT_SECONDS)


def milliseconds(seconds: float) -> int:
    """A timeout setting in whole milliseconds, at least 1 (0 would mean "no timeout")."""
    return max(1, int(seconds * 1000))


def in_pipeline(conn: Connection) -> bool:
    """Whether ``conn`` runs in psycopg's pipeline mode (:func:`_pipelined`)."""
    pgconn = getattr(conn.connection.driver_connection, "pgconn", None)
    return pgconn is not None and bool(pgconn.pipeline_status)


@contextmanager
def _sqlite_write(engine: Engine) -> Iterator[Connection]:
    """SQLite's write transaction, after the writers' queue (:mod:`.sqlite_queue`). The lock
    timeout covers both waits: a writer that queued for a while waits that much less for
    ``BEGIN IMMEDIATE``."""
    with (
        writers_queue(_writer_locks.get(engine), LOCK_TIMEOUT_SECONDS, lock_busy) as turn,
        engine.connect() as raw,
    ):
        left = turn.left
        shorter = left < LOCK_TIMEOUT_SECONDS - 0.05  # it queued: rarely, never when alone
        if shorter:
            _busy_timeout(raw, left)
        if not raw.connection.info.get("writer_cache"):
            # A writer's cache only: every pooled connection (the audit readers') at 64 MiB
            # would be a worker's gigabyte on a large ledger
            raw.connection.driver_connection.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")  # type: ignore[union-attr]
            raw.connection.info["writer_cache"] = True
        try:
            conn = raw.execution_options(ledger_write=True)
            with conn.begin():
                turn.holding()
                yield conn
        finally:
            if shorter:
                with suppress(Exception):  # a broken connection is discarded anyway
                    _busy_timeout(raw, LOCK_TIMEOUT_SECONDS)


def _busy_timeout(raw: Connection, seconds: float) -> None:
    driver: Any = raw.connection.driver_connection
    driver.execute(f"PRAGMA busy_timeout={milliseconds(seconds)}")


class PlannedEachTime(str):
    """Driver SQL that PostgreSQL must plan for each execution's parameters, never from a prepared
    statement's generic plan (psycopg prepares a statement from its fifth use).

    For a statement whose rows come from an array parameter (``= ANY(%s)``, ``unnest(%s)``),
    PostgreSQL's generic plan cannot know the array's length; when it is first chosen while a
    table is small (a new ledger; ``pending``, which holds seconds of rows) it is a sequential
    scan, and it stays that for the connection's life: 0.4-0.8 ms a batch where the plan for the
    values (an index scan) takes 0.06 (docs/benchmarks.md). Planning each time costs less."""

    __slots__ = ()


def prepare_for(sql: str) -> bool | None:
    """psycopg's ``prepare`` argument for ``sql``: ``False`` for :class:`PlannedEachTime`, else
    ``None`` (the connection's default)."""
    return False if isinstance(sql, PlannedEachTime) else None


# From this many rows a PostgreSQL insert goes as one statement of column arrays in binary. In a
# pipeline here psycopg's executemany took 16 µs of client CPU for one row of 1 KB and ~25 µs for
# each more (a command per row, each bytea hex-escaped); the binary arrays 29 µs for one row and
# ~5 µs for each more (docs/benchmarks.md, 2026-12-01). The same arrays as text took 25 µs a row.
ARRAY_INSERT_ROWS = 2


class BulkInsert:
    """An ``INSERT`` of many rows into one table through the driver: ``executemany`` on SQLite
    and for a few rows; on PostgreSQL from :data:`ARRAY_INSERT_ROWS` rows, one
    ``INSERT … SELECT FROM unnest(column arrays)``, the arrays sent in binary. Columns are
    (name, PostgreSQL type)."""

    __slots__ = ("_arrays", "_values")

    def __init__(self, table: str, columns: Sequence[tuple[str, str]]) -> None:
        # table and columns are the schema's names, never input
        names = ", ".join(name for name, _ in columns)
        marks = ", ".join("?" * len(columns))
        self._values = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608
        arrays = ", ".join(f"%b::{kind}[]" for _, kind in columns)  # binary: bytea not escaped
        self._arrays = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608

    def run(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` (tuples in the columns' order) in ``conn``'s transaction."""
        if not rows:
            return
        if len(rows) >= ARRAY_INSERT_ROWS and conn.dialect.name == "postgresql":
            driver_rows(conn, self._arrays, [list(column) for column in zip(*rows, strict=True)])
        else:
            driver_rows(conn, driver_sql(conn, self._values), rows, many=True)


def driver_sql(conn: Connection, sql: str) -> str:
    """``sql`` written with ``?`` placeholders, in the driver's own placeholder style."""
    return sql if conn.dialect.paramstyle == "qmark" else sql.replace("?", "%s")


def driver_rows(
    conn: Connection, sql: str, params: Sequence[Any] = (), *, many: bool = False
) -> Sequence[Any]:
    """Run ``sql`` (in the driver's own placeholders) on ``conn``'s DBAPI cursor; its rows, or
    ``[]`` for a statement without any. ``many``: ``params`` is a sequence of parameter rows.

    For the writer's statements, run every batch: ``exec_driver_sql`` built a result object per
    statement, three times the cost of the statement itself on SQLite (docs/benchmarks.md). A
    failure takes the path SQLAlchemy's own statements take (the engine's ``handle_error``
    hook: the ledger's one-line errors, :func:`busy_error`). Like any statement SQLAlchemy runs,
    it begins ``conn``'s transaction if none has begun, so a reader's statements share one
    snapshot whichever way each is run."""
    if not conn.in_transaction():
        conn.begin()  # as SQLAlchemy's autobegin: the engine's "begin" hook issues BEGIN
    cursor = conn.connection.cursor()
    try:
        if many:
            cursor.executemany(sql, params)
        elif isinstance(sql, PlannedEachTime):
            cast(Any, cursor).execute(sql, params, prepare=False)  # psycopg's
        else:
            cursor.execute(sql, params)
        if in_pipeline(conn):  # no result yet: a read waits for its rows, a write is queued
            return cursor.fetchall() if _reads(sql) else []
        return cursor.fetchall() if cursor.description is not None else []
    except Exception as e:
        conn._handle_dbapi_exception(e, sql, params, cursor, None)  # raises
    finally:
        cursor.close()


def _reads(sql: str) -> bool:
    """Whether a pipelined statement's rows are waited for: a ``SELECT``, or a ``WITH`` (whose
    rows, if it has none, fail loudly at the fetch rather than being dropped unseen)."""
    word = sql.lstrip()[:6].upper()
    return word == "SELECT" or (word[:4] == "WITH" and not word[4:5].isalnum())


def driver_send(conn: Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    """Queue one read on ``conn`` in pipeline mode (:func:`_pipelined`) and return its cursor:
    its ``fetchall()`` waits for the rows (a driver error there is translated by
    :func:`_pipelined`), so reads queued together cost one round trip."""
    cursor: Any = conn.connection.cursor()  # psycopg's (pipeline mode is PostgreSQL's)
    cursor.execute(sql, params, prepare=prepare_for(sql))
    return cursor


def busy_error(e: SQLAlchemyError) -> Overloaded | None:
    """The one-line error for a statement that waited :data:`LOCK_TIMEOUT_SECONDS` for a lock
    (SQLite "database is locked", PostgreSQL lock_not_available), naming the lock it waited for
    (the statement says whether it was the write lock's); else ``None``."""
    orig = getattr(e, "orig", None)
    statement = str(getattr(e, "statement", None) or "")
    if getattr(orig, "sqlstate", None) == _PG_LOCK_NOT_AVAILABLE:
        return pg_lock_busy(orig, write_lock="pg_advisory_xact_lock(" in statement)
    if isinstance(e, OperationalError) and "database is locked" in str(orig):
        if statement.startswith("BEGIN IMMEDIATE"):
            # Past the writers' queue (or without one): a connection that does not queue —
            # another program, say — holds the file's write lock.
            return lock_busy("another connection has held the SQLite file's write lock")
        return lock_busy("another connection has held the SQLite file locked")
    return None


def lock_busy(
    holder: str = "another writer has held the ledger's write lock", seconds: float | None = None
) -> Overloaded:
    """The ledger's one line for a lock waited for past ``seconds`` (default
    :data:`LOCK_TIMEOUT_SECONDS`): what held which lock, and "retry" (``Overloaded``: HTTP 503,
    exit 4)."""
    waited = LOCK_TIMEOUT_SECONDS if seconds is None else round(seconds, 1)
    return Overloaded(f"the ledger is busy ({holder} for over {waited:g} s): retry")


# PostgreSQL names the relation of a row lock waited for (the CONTEXT of lock_not_available:
# 'while updating tuple (0,1) in relation "pending"'); a table lock's wait it names not at all.
_PG_ROW_LOCK = re.compile(r'tuple \([^)]*\) in relation "([^"]+)"')


def pg_lock_busy(orig: Any, *, write_lock: bool, seconds: float | None = None) -> Overloaded:
    """:func:`lock_busy` for PostgreSQL's lock_not_available: the write lock (``write_lock``: the
    statement that timed out was the one taking it), a row lock (PostgreSQL names its relation),
    or else a lock on a table or other object — held by a migration or other DDL, say."""
    if write_lock:
        return lock_busy(seconds=seconds)
    row = _PG_ROW_LOCK.search(str(getattr(getattr(orig, "diag", None), "context", None) or ""))
    if row:
        return lock_busy(f'another transaction has held a row lock in relation "{row[1]}"', seconds)
    return lock_busy(
        "another session has held a lock on a table or other object the write needs "
        "(not the write lock: DDL such as a migration, say)",
        seconds,
    )


def schema_exists(engine: Engine) -> bool:
    return inspect(engine).has_table("records")


def migrate(conn: Connection) -> None:
    """Bring the schema to the newest Alembic revision inside the caller's transaction."""
    from alembic import command  # only `init` pays for importing Alembic
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def upgrade_schema(engine: Engine) -> None:
    """Bring an existing ledger's schema to the newest revision (a no-op when it is current)."""
    with write_transaction(engine) as conn:
        migrate(conn)
