"""A write that waited past the lock timeout is ``Overloaded`` ("retry"), and its message names
the lock it waited for: the ledger's write lock only when that is what was held — not a table
lock taken by DDL, a row lock, or SQLite's file lock held by a connection outside the writers'
queue."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from ledger._internal import db
from ledger._internal.sqlite_queue import WRITER_LOCK_SUFFIX
from ledger.bodies import parse_submission
from ledger.errors import Overloaded
from ledger.log import Ledger
from tests.conftest import envelope

_WRITE_LOCK = "another writer has held the ledger's write lock"
_HOLD = {
    "write lock": "SELECT pg_advisory_xact_lock(hashtextextended('provenance-ledger:' || "
    "current_schema(), 0))",
    "table lock": "LOCK TABLE records IN ACCESS EXCLUSIVE MODE",  # as a migration's DDL does
    "row lock": "SELECT FROM tiles WHERE level = 0 AND idx = 0 FOR UPDATE",  # the right edge's
}
_TOLD = {
    "write lock": f"the ledger is busy ({_WRITE_LOCK} for over 0.2 s): retry",
    "table lock": "the ledger is busy (another session has held a lock on a table or other "
    "object the write needs (not the write lock: DDL such as a migration, say) for over "
    "0.2 s): retry",
    "row lock": 'the ledger is busy (another transaction has held a row lock in relation "tiles" '
    "for over 0.2 s): retry",
}


@pytest.mark.parametrize("pipeline", [False, True], ids=["unpipelined", "pipelined"])
@pytest.mark.parametrize("held", list(_HOLD))
def test_a_postgresql_write_names_the_lock_it_waited_for(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch, held: str, pipeline: bool
) -> None:
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        size = lg.store.size()
        monkeypatch.setattr(db, "LOCK_TIMEOUT_SECONDS", 0.2)
        conninfo = make_url(pg_url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(conninfo) as holder:  # one transaction, held until the end
            holder.execute(_HOLD[held])
            with pytest.raises(Overloaded) as told:
                lg.store.sequence(
                    [parse_submission(envelope(1))],
                    lg.origin,
                    lg.require_signer(),
                    lambda: datetime.now(UTC),
                    pipeline=pipeline,
                )
            holder.rollback()
        assert str(told.value) == _TOLD[held]
        assert told.value.retry_after  # still HTTP 503 with Retry-After, exit 4
        assert lg.store.size() == size


def test_sqlite_names_a_file_lock_held_outside_the_writers_queue(
    tmp_path: Path, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "LOCK_TIMEOUT_SECONDS", 0.3)
    file = tmp_path / "l.db"
    Ledger.create(f"sqlite:///{file}", "example.org/l", key_path).close()
    with Ledger.open(f"sqlite:///{file}", key_path) as lg:
        blocker = sqlite3.connect(file, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another program's write transaction: no queue
        try:
            with pytest.raises(Overloaded) as told:
                lg.append(envelope(1))
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert str(told.value) == (
            "the ledger is busy (another connection has held the SQLite file's write lock for "
            "over 0.3 s): retry"
        )
        fd = os.open(f"{file}{WRITER_LOCK_SUFFIX}", os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)  # a ledger writer of another process, in the queue
        try:
            with pytest.raises(Overloaded) as told:
                lg.append(envelope(1))
        finally:
            os.close(fd)
        assert str(told.value) == f"the ledger is busy ({_WRITE_LOCK} for over 0.3 s): retry"
        assert lg.append(envelope(1)).index == 0  # and a retry goes in


def test_a_table_lock_held_by_ddl_fails_waiting_appends_at_their_deadline(
    pg_url: str, key_path: Path
) -> None:
    """The waiter reads the log with a bounded lock wait: DDL holding ``records`` (which blocks
    even plain reads) must not keep an append waiting past its deadline. Found by the hostile
    test: the append answered only when the lock went, 150 s later."""
    import threading
    import time

    from ledger.errors import StorageError

    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        seq = lg._seq()
        seq._wait_timeout = 2.0  # type: ignore[union-attr]
        conninfo = make_url(pg_url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(conninfo) as holder:
            holder.execute("LOCK TABLE records IN ACCESS EXCLUSIVE MODE")
            released = threading.Timer(15.0, holder.rollback)  # a waiter that ignores its
            released.start()  # deadline returns only now: the test fails, it does not hang
            start = time.monotonic()
            try:
                with pytest.raises(StorageError) as told:
                    lg.append(envelope(1))
                waited = time.monotonic() - start
            finally:
                released.cancel()
                holder.rollback()
        assert waited < 6.0, waited
        assert "not acknowledged within 2 s" in str(told.value)
        assert "waited for a lock" in str(told.value)
        assert "submitting the same body again is safe" in str(told.value)
        assert lg.append(envelope(1)).index == 1  # the lock gone, the same body is logged once


def test_a_submission_blocked_by_ddl_fails_before_its_appender_gives_up_and_never_goes_in(
    pg_url: str, key_path: Path
) -> None:
    """The submitter waits for a lock a second less than its appenders wait: they get its
    error (the lock named, "retry"), and the row is not inserted after they were told it failed.
    Found by the hostile test: the appender got the waiter's generic timeout, and the blocked
    insert went in later, so the body was logged though its only submitter was told it failed."""
    import time

    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        seq = lg._seq()
        seq._wait_timeout = 3.0  # type: ignore[union-attr]  # before the submitter connects
        lg.append(envelope(0))
        size = lg.store.size()
        conninfo = make_url(pg_url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(conninfo) as holder:
            holder.execute("LOCK TABLE pending IN EXCLUSIVE MODE")  # reads pass, inserts wait
            start = time.monotonic()
            try:
                with pytest.raises(Overloaded) as told:
                    lg.append(envelope(1))
                waited = time.monotonic() - start
            finally:
                holder.rollback()
        assert waited < 3.0, waited
        assert "a lock on a table or other object" in str(told.value)
        assert "for over 2 s): retry" in str(told.value)
        assert told.value.retry_after
        time.sleep(1.0)
        assert lg.store.size() == size  # the refused submission did not go in later
        again = lg.append(envelope(1))
        assert (again.index, again.duplicate) == (size, False)


def test_a_failed_row_of_an_earlier_submission_is_not_the_answer_to_a_new_one(
    pg_url: str, key_path: Path
) -> None:
    """A pending row that failed before (another submission's) is replaced by the next
    submission of that body; while that insert waits (a row lock held here for 3 s), the
    waiter must not answer it with the old row's error. Found by the hostile test: the new
    append got "planted" after 1.7 s, and its body was logged a moment later anyway."""
    import threading

    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        size = lg.store.size()
        sub = parse_submission(envelope(1))
        conninfo = make_url(pg_url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(conninfo) as holder:
            holder.execute(
                "INSERT INTO pending (digest, body_type, content, mac, submitted, error)"
                " VALUES (%s, 'dsse', 'x', 'x', 0, 'StorageError: planted')",
                (sub.digest,),
            )
            holder.commit()
            holder.execute("SELECT 1 FROM pending WHERE digest = %s FOR UPDATE", (sub.digest,))
            released = threading.Timer(3.0, holder.rollback)
            released.start()
            try:
                got = lg.append(envelope(1))
            finally:
                released.join()
        assert (got.index, got.duplicate) == (size, False)
        assert lg.store.size() == size + 1
