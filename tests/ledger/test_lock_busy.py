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
        told_queued = _refused_behind_a_ledger_writer(file, lg, 1, mark=None)
        assert str(told_queued) == f"the ledger is busy ({_WRITE_LOCK} for over 0.3 s): retry"
        assert lg.append(envelope(1)).index == 0  # and a retry goes in


def _refused_behind_a_ledger_writer(
    file: Path, lg: Ledger, i: int, mark: bytes | None
) -> Overloaded:
    """Append envelope ``i`` while the writers' queue is held here, as by a ledger writer of
    another process (its state byte ``mark`` written, if given); return the refusal."""
    fd = os.open(f"{file}{WRITER_LOCK_SUFFIX}", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if mark is not None:
            os.pwrite(fd, mark, 0)
        with pytest.raises(Overloaded) as told:
            lg.append(envelope(i))
    finally:
        os.close(fd)
    return told.value


def test_a_writer_queued_behind_one_that_waits_for_a_foreign_lock_names_the_foreign_lock(
    tmp_path: Path, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program holds SQLite's write lock (no queue); one ledger writer has its turn and
    waits for that lock, two more wait behind it in the queue. All are told it was SQLite's
    lock held outside the queue, not "another writer has held the ledger's write lock" (which
    those behind were told before) — the last too, after the one before it gave up (a waiter
    that never had its turn does not touch the head's mark). A turn that ended normally leaves
    no such mark: a writer held up by a live ledger transaction is still told the write lock."""
    import threading
    import time

    monkeypatch.setattr(db, "LOCK_TIMEOUT_SECONDS", 2.0)  # the first writer's, both waits
    file = tmp_path / "l.db"
    Ledger.create(f"sqlite:///{file}", "example.org/l", key_path).close()
    with (
        Ledger.open(f"sqlite:///{file}", key_path) as first,
        Ledger.open(f"sqlite:///{file}", key_path) as second,
        Ledger.open(f"sqlite:///{file}", key_path) as third,
    ):
        first.append(envelope(0))  # a normal turn: the file now says its holder held the lock
        blocker = sqlite3.connect(file, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another program's write transaction: no queue
        told: dict[str, BaseException] = {}

        def append(name: str, lg: Ledger, i: int) -> None:
            try:
                lg.append(envelope(i))
            except Exception as e:
                told[name] = e

        try:
            ahead = threading.Thread(target=append, args=("ahead", first, 1))
            ahead.start()
            time.sleep(0.3)  # the first has its turn and waits in SQLite's busy handler
            monkeypatch.setattr(db, "LOCK_TIMEOUT_SECONDS", 0.5)  # the second gives up first
            behind = threading.Thread(target=append, args=("behind", second, 2))
            behind.start()
            time.sleep(0.1)  # the second is queued (its 0.5 s read); the third waits longer
            monkeypatch.setattr(db, "LOCK_TIMEOUT_SECONDS", 0.9)
            last = threading.Thread(target=append, args=("last", third, 3))
            last.start()
            for t in (ahead, behind, last):
                t.join(10)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert set(told) == {"ahead", "behind", "last"}
        assert all(isinstance(e, Overloaded) for e in told.values()), told
        assert "another connection has held the SQLite file's write lock" in str(told["ahead"])
        foreign = (
            "the ledger is busy (another connection has held the SQLite file's write lock, "
            "outside the ledger's writers' queue (the writer ahead of this one waits for it "
            "too) for over "
        )
        assert str(told["behind"]).startswith(foreign), told["behind"]
        assert str(told["last"]).startswith(foreign), told["last"]
        assert first.store.size() == 1  # neither went in
        held = _refused_behind_a_ledger_writer(file, second, 2, mark=b"H")  # mid-transaction
        assert str(held).startswith(f"the ledger is busy ({_WRITE_LOCK} for over "), held
        assert second.append(envelope(2)).index == 1  # and a retry goes in


def test_a_table_lock_held_by_ddl_fails_waiting_appends_at_their_deadline(
    pg_url: str, key_path: Path
) -> None:
    """The waiter reads the log with a bounded lock wait: DDL holding ``records`` (which blocks
    even plain reads) must not keep it from failing a wait at its deadline. Found by the hostile
    test: the append answered only when the lock went, 150 s later."""
    import threading
    import time

    from ledger.errors import StorageError
    from ledger.pending import Wait
    from ledger.sequencer import Job

    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        seq = lg._seq()
        seq._stop.set()  # type: ignore[union-attr]  # this test plays the waiter
        for t in seq._threads:  # type: ignore[union-attr]
            t.join(10)
        told: list[object] = []
        sub = parse_submission(envelope(1))
        w = Wait(Job([sub], told.append), time.monotonic() + 0.5, [None], [False], 1)
        w.ready = True  # its row is pending (as if): only the waiter can answer it now
        with seq._lock:  # type: ignore[union-attr]
            seq._waiting[sub.digest] = [(w, 0)]  # type: ignore[union-attr]
        conninfo = make_url(pg_url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(conninfo) as holder, seq._session() as session:  # type: ignore[union-attr]
            session.execute("SET lock_timeout = 1000")  # as the waiter's own session
            holder.execute("LOCK TABLE records IN ACCESS EXCLUSIVE MODE")
            released = threading.Timer(15.0, holder.rollback)  # a waiter that ignores its
            released.start()  # deadline returns only now: the test fails, it does not hang
            time.sleep(0.6)  # past the wait's deadline
            start = time.monotonic()
            try:
                seq._resolve(session, None, True)  # type: ignore[union-attr]
                waited = time.monotonic() - start
            finally:
                released.cancel()
                holder.rollback()
        assert waited < 5.0, waited
        assert len(told) == 1 and isinstance(told[0], StorageError)
        assert "not acknowledged within" in str(told[0])
        assert "waited over 1 s for a lock" in str(told[0])


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


def test_an_append_queued_behind_a_blocked_submission_is_answered_by_its_own_deadline(
    pg_url: str, key_path: Path
) -> None:
    """A job's deadline runs from its submission, not from when the submitter takes it up: one
    queued behind an insert blocked by DDL's lock was given a fresh deadline then, and answered
    after about twice its wait (found by the hostile test: 112-119 s against 60 s)."""
    import threading
    import time

    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        seq = lg._seq()
        seq._wait_timeout = 3.0  # type: ignore[union-attr]
        lg.append(envelope(0))
        conninfo = make_url(pg_url).set(drivername="postgresql").render_as_string(False)
        answered: dict[int, float] = {}

        def append(i: int) -> None:
            start = time.monotonic()
            with pytest.raises(Overloaded):
                lg.append(envelope(i))
            answered[i] = time.monotonic() - start

        with psycopg.connect(conninfo) as holder:
            holder.execute("LOCK TABLE pending IN EXCLUSIVE MODE")
            first = threading.Thread(target=append, args=(1,))
            first.start()
            time.sleep(0.5)  # the first insert is blocked; the second queues behind it
            second = threading.Thread(target=append, args=(2,))
            second.start()
            first.join(30)
            second.join(30)
            holder.rollback()
        assert set(answered) == {1, 2}
        assert max(answered.values()) < 3.0, answered
        conn = seq._submit_conn  # type: ignore[union-attr]
        lock, statement = conn.execute(
            "SELECT extract(epoch FROM current_setting('lock_timeout')::interval),"
            " extract(epoch FROM current_setting('statement_timeout')::interval)"
        ).fetchone()
        assert 0 < float(lock) < float(statement) <= float(lock) + 0.5 < 3.0  # both, bounded


def test_every_connection_bounds_its_lock_waits_and_keeps_its_schema(
    pg_url: str, key_path: Path
) -> None:
    """Reads wait at most LOCK_TIMEOUT_SECONDS for a lock (an admission's registry read waited
    as long as DDL held `records`); the bound rides in the URL's options, beside the schema, so
    the writer's own driver connections keep both."""
    from sqlalchemy import text

    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        with lg.store.engine.connect() as conn:
            assert conn.execute(text("SHOW lock_timeout")).scalar() == "1min"
            schema = conn.execute(text("SELECT current_schema()")).scalar()
        seq = lg._seq()
        with seq._session() as raw:  # type: ignore[union-attr]
            assert raw.execute("SELECT current_schema()").fetchone()[0] == schema
            assert raw.execute("SHOW lock_timeout").fetchone()[0] == "1min"
        assert schema != "public"


def test_a_failed_batch_tells_only_pending_rows_that_they_stay_pending(
    pg_url: str, key_path: Path
) -> None:
    """When the integrator's batch fails, only the waits whose rows are pending hear "stays
    pending: a later batch logs it"; a wait whose insert has not committed goes on waiting (it
    was told so, and its insert then failed: the body was never logged)."""
    from ledger.errors import StorageError
    from ledger.lease import _still_pending
    from ledger.pending import Wait
    from ledger.sequencer import Job

    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        seq = lg._seq()
        told: dict[str, object] = {}
        subs = {n: parse_submission(envelope(n)) for n in (1, 2)}
        waits = {}
        for n, name in ((1, "pending"), (2, "inserting")):
            job = Job([subs[n]], lambda outcome, name=name: told.__setitem__(name, outcome))
            w = Wait(job, deadline=1e12, results=[None], duplicate=[False], remaining=1)
            w.ready = name == "pending"
            waits[name] = w
            with seq._lock:  # type: ignore[union-attr]
                seq._waiting.setdefault(subs[n].digest, []).append((w, 0))  # type: ignore[union-attr]
        seq._fail_all(_still_pending(StorageError("batch rolled back")), pending_only=True)  # type: ignore[union-attr]
        assert "stays pending" in str(told["pending"])
        assert "inserting" not in told
        assert subs[2].digest in seq._waiting  # type: ignore[union-attr]
        assert subs[1].digest not in seq._waiting  # type: ignore[union-attr]
        with seq._lock:  # type: ignore[union-attr]
            seq._waiting.clear()  # type: ignore[union-attr]


def test_a_submission_cancelled_by_an_administrator_is_not_called_busy(
    pg_url: str, key_path: Path
) -> None:
    """``pg_cancel_backend`` on the submitter's blocked insert fails the append with the
    server's reason, not "busy … retry" (PostgreSQL gives a cancel and a statement timeout the
    same SQLSTATE). Found by the hostile test: it was reported as "held up (locks?)". Nothing
    goes in, and the body can be appended afterwards."""
    import threading
    import time

    from ledger.errors import StorageError

    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        size = lg.store.size()
        conninfo = make_url(pg_url).set(drivername="postgresql").render_as_string(False)
        told: list[BaseException] = []

        def append() -> None:
            try:
                lg.append(envelope(1))
            except Exception as e:
                told.append(e)

        with psycopg.connect(conninfo) as holder, psycopg.connect(conninfo) as admin:
            admin.autocommit = True
            holder.execute("LOCK TABLE pending IN EXCLUSIVE MODE")  # the insert waits
            worker = threading.Thread(target=append)
            worker.start()
            cancelled = False
            for _ in range(100):  # until the insert is seen waiting, then cancel it
                row = admin.execute(
                    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO pending%'"
                ).fetchone()
                if row is not None:
                    cancelled = bool(row[0])
                    break
                time.sleep(0.05)
            worker.join(30)
            holder.rollback()
        assert cancelled
        assert len(told) == 1
        assert isinstance(told[0], StorageError) and not isinstance(told[0], Overloaded)
        assert "canceling statement due to user request" in str(told[0])
        assert lg.store.size() == size
        again = lg.append(envelope(1))
        assert (again.index, again.duplicate) == (size, False)
