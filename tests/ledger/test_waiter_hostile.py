"""What the hostile test of 2026-12-01 found in the waiter's one-query look (ledger.waiter), each
made to happen here with PostgreSQL's own locks and rows, no patching.

1. An acknowledged row whose index was erased (done, but no record) crashed the look: every
   append the process waited for failed with a ``TypeError``. Such a row is now a claim that
   answers nothing, and the body is looked up in the log.
2. A failed row (a squatter's) read by a look just before the wait's own insert replaced it
   answered that wait with the old row's error, and the body was then logged. A failed row now
   answers only the waits whose insert had committed before the rows were read.
3. A squatter's row planted just before the real body's append made that append fail once: the
   append found the row pending, became its duplicate, and got the squatter's error when the
   integrator refused the row. It now queues the body again, which replaces the failed row.
4. Anyone who can connect could NOTIFY "integration failed" and fail every append waiting in
   every process (older than this change). Such a notification now counts only with an HMAC under
   the acknowledgement key, which only a holder of the key file can derive."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from ledger.bodies import parse_submission
from ledger.errors import IntegrityError, StorageError
from ledger.log import Ledger
from ledger.sequencer import AppendResult, Job
from tests.conftest import envelope, pg_conninfo
from tests.ledger.pending_rows import hold_up_integration, pending_error


def _squat(lg: Ledger, digest: bytes) -> None:
    """A row for ``digest`` with other bytes and no MAC, by someone without the key file (no
    NOTIFY: the integrator finds it only with the next real submission)."""
    with lg.store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO pending (digest, body_type, content, mac) VALUES (:d, 'dsse', :c, :m)"
            ),
            {"d": digest, "c": envelope(99), "m": b"\0" * 32},
        )


@contextmanager
def _waiting_behind_held_integration(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Ledger, Ledger, threading.Event, Future[AppendResult]]]:
    """A lease holder whose integration is held up (until the event is set) and a second
    Ledger whose append of ``envelope(1)`` has its pending row stored and waits."""
    with Ledger.create(pg_url, "test.example/ledger", key_path) as holder:
        holder.append(envelope(0))
        gate = hold_up_integration(monkeypatch)
        other = Ledger.open(pg_url, key_path)
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(other.append, envelope(1))
            time.sleep(0.5)  # its row is pending; the holder's integration is held up
            yield holder, other, gate, waiting


def test_a_row_whose_index_was_erased_is_looked_up_in_the_log(pg_url: str, key_path: Path) -> None:
    body = envelope(1)
    digest = hashlib.sha256(body).digest()
    with Ledger.create(pg_url, "test.example/ledger", key_path) as holder:
        first = holder.append(body)
        with Ledger.open(pg_url, key_path) as other:
            other.append(envelope(2))
            with other.store.engine.begin() as conn:  # done, with leaf and proof, but no index
                conn.execute(text("UPDATE pending SET idx = NULL WHERE digest = :d"), {"d": digest})
            with ThreadPoolExecutor(1) as pool:
                beside = pool.submit(other.append_many, [envelope(100 + i) for i in range(50)])
                again = other.append(body)  # logged already: its look reads the erased row
                assert (again.index, again.leaf_hash, again.duplicate) == (
                    first.index,
                    first.leaf_hash,
                    True,
                )
                assert len(beside.result(timeout=60)) == 50  # the others are not failed


def test_a_failed_row_replaced_by_the_waits_own_insert_does_not_answer_it(
    pg_url: str, key_path: Path
) -> None:
    real = envelope(7)
    digest = hashlib.sha256(real).digest()
    with Ledger.create(pg_url, "test.example/ledger", key_path) as holder:
        holder.append(envelope(0))
        with Ledger.open(pg_url, key_path) as other:
            other.append(envelope(1))
            _squat(other, digest)
            deadline = time.monotonic() + 30
            while pending_error(other, digest) is None:
                assert time.monotonic() < deadline, "the squatted row was never marked failed"
                time.sleep(0.05)
            with (
                psycopg.connect(pg_conninfo(pg_url)) as row_lock,
                psycopg.connect(pg_conninfo(pg_url)) as table_lock,
                ThreadPoolExecutor(2) as pool,
            ):
                row_lock.execute("SELECT 1 FROM pending WHERE digest = %s FOR UPDATE", (digest,))
                appended = pool.submit(
                    lambda: other._seq().submit(parse_submission(real)).result(timeout=90)
                )
                time.sleep(0.3)  # the insert that replaces the failed row waits for the row lock
                locked = threading.Event()

                def lock_records() -> None:  # queued behind that insert: the look's log lookup
                    table_lock.execute("LOCK TABLE records IN ACCESS EXCLUSIVE MODE")  # waits
                    locked.set()
                    table_lock.commit()

                pool.submit(lock_records)
                time.sleep(0.2)
                with psycopg.connect(pg_conninfo(pg_url), autocommit=True) as c:  # look at all
                    c.execute("SELECT pg_notify('ledger_integrated', current_schema())")
                time.sleep(0.3)  # the look has read the failed row and waits on records
                row_lock.commit()  # the insert replaces the row and commits
                result = appended.result(timeout=90)
            assert not result.duplicate
            assert holder.store.record(result.index).body == "sha256:" + digest.hex()


def test_a_forged_failure_notification_fails_no_append(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Ledger.create(pg_url, "test.example/ledger", key_path) as holder:
        holder.append(envelope(1))
        gate = hold_up_integration(monkeypatch)
        with Ledger.open(pg_url, key_path) as other, ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(other.append_many, [envelope(10 + i) for i in range(5)])
            time.sleep(0.5)
            with psycopg.connect(pg_conninfo(pg_url), autocommit=True) as c:
                for forged in (
                    "StorageError: forged",
                    "IntegrityError: forged\nmac:" + "A" * 44,
                    "StorageError: forged\nmac:not base64!",
                ):
                    c.execute(
                        "SELECT pg_notify('ledger_integrated', current_schema() || chr(10) || %s)",
                        (forged,),
                    )
            time.sleep(0.5)
            assert not waiting.done()  # not failed by any of them
            gate.set()
            assert [r.index for r in waiting.result(timeout=60)] == [1, 2, 3, 4, 5]


def test_the_holders_own_failure_notification_fails_another_processs_appends(
    pg_url: str, key_path: Path
) -> None:
    with Ledger.create(pg_url, "test.example/ledger", key_path) as holder:
        holder.append(envelope(1))
        with Ledger.open(pg_url, key_path) as other:
            other.append(envelope(2))
            with holder.store.engine.begin() as conn:  # the head's checkpoint removed
                conn.execute(text("ALTER TABLE checkpoints DISABLE TRIGGER USER"))
                conn.execute(text("DELETE FROM checkpoints WHERE size = 2"))
                conn.execute(text("ALTER TABLE checkpoints ENABLE TRIGGER USER"))
            with pytest.raises(IntegrityError, match=r"latest|checkpoint"):
                other.append(envelope(3))  # told by the holder's signed notification
            assert holder.store.size() == 2


def test_a_digest_squatted_just_before_the_real_append_does_not_fail_it(
    pg_url: str, key_path: Path
) -> None:
    with Ledger.create(pg_url, "test.example/ledger", key_path) as holder:
        holder.append(envelope(0))
        with Ledger.open(pg_url, key_path) as other:
            other.append(envelope(1))
            for n, lg in ((7, holder), (8, other)):  # the lease holder's process, and another
                real = envelope(n)
                digest = hashlib.sha256(real).digest()
                _squat(lg, digest)
                result = lg.append(real)
                assert not result.duplicate
                assert holder.store.record(result.index).body == "sha256:" + digest.hex()
                again = lg.append(real)
                assert (again.index, again.duplicate) == (result.index, True)


def test_a_body_queued_again_after_the_submitter_ended_is_failed_on_close(
    pg_url: str, key_path: Path
) -> None:
    """A waiter's resubmission (a squatted digest) queued while the ledger closes, after the
    submitter took its last job: close() fails it instead of leaving its caller waiting
    forever (the third hostile test of 2026-12-01 held an append 70 s and counting)."""
    told: list[object] = []
    lg = Ledger.create(pg_url, "test.example/ledger", key_path)
    try:
        lg.append(envelope(0))
        seq = lg._seq()
        seq._queue.put(None)  # type: ignore[union-attr]  # the submitter takes its last job
        seq._threads[0].join(10)  # type: ignore[union-attr]
        seq._queue.put(Job([parse_submission(envelope(1))], told.append))  # type: ignore[union-attr]
    finally:
        lg.close()
    assert len(told) == 1 and isinstance(told[0], StorageError)
    assert "closed" in str(told[0])


def test_close_waits_a_moment_for_appends_about_to_be_acknowledged(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() gives waiting appends up to 5 s to be acknowledged before it fails them (its
    check had counted the submitter, which had ended by then, so it failed them at once)."""
    with _waiting_behind_held_integration(pg_url, key_path, monkeypatch) as (
        _,
        other,
        gate,
        waiting,
    ):
        threading.Timer(1.0, gate.set).start()  # released while other is closing
        other.close()
        assert waiting.result(timeout=10).index == 1


def test_close_is_bounded_while_the_database_holds_the_submission(
    pg_url: str, key_path: Path
) -> None:
    """A foreign ``LOCK TABLE records`` holds the submitter's insert: close() cancels it after
    5 s instead of waiting out its 59 s lock bound (the hostile test of 2026-12-01 measured
    close() at the lock's whole 25 s). The append is told the ledger closed, and nothing of it
    was stored."""
    body = envelope(7)
    digest = hashlib.sha256(body).digest()
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
    lg = Ledger.open(pg_url, key_path)
    lg.append(envelope(1))  # the threads and their connections are up
    with psycopg.connect(pg_conninfo(pg_url)) as locker, ThreadPoolExecutor(1) as pool:
        locker.execute("LOCK TABLE records IN ACCESS EXCLUSIVE MODE")
        held = pool.submit(lg.append, body)
        time.sleep(1.0)  # the submitter is inside its INSERT, waiting for the lock
        assert not held.done()
        started = time.monotonic()
        lg.close()
        took = time.monotonic() - started
        with pytest.raises(StorageError, match="closed before this append was integrated") as e:
            held.result(timeout=5)
        assert "stored" not in str(e.value)  # its insert was cancelled: nothing to look for
        locker.rollback()
    assert took < 15, took  # 5 s for the submitter, then the cancel; was the lock's whole bound
    with Ledger.open(pg_url, key_path) as after:
        assert after.store.latest_checkpoint()[0] == 2
        with after.store.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT count(*) FROM pending WHERE digest = :d"), {"d": digest}
            )
            assert rows.scalar() == 0


def test_an_append_failed_on_close_after_its_row_was_stored_says_it_may_still_be_logged(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() fails an append whose pending row has committed but is not integrated yet; the
    lease holder (another process) logs it later. The error says so, instead of reading like a
    refusal, and appending the body again finds its record."""
    with _waiting_behind_held_integration(pg_url, key_path, monkeypatch) as (
        holder,
        other,
        gate,
        waiting,
    ):
        other.close()
        with pytest.raises(StorageError, match="may still be logged") as e:
            waiting.result(timeout=10)
        assert "submitting the same body again is safe" in str(e.value)
        gate.set()
        again = holder.append(envelope(1))
        assert (again.index, again.duplicate) == (1, True)
