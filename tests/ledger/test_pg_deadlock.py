"""Two submitters of the same bodies in opposite orders can deadlock on PostgreSQL's pending
rows (their order is the log's, so it is kept). PostgreSQL ends one statement; the submitter
sends it again (it is idempotent by digest) instead of failing the appends."""

from __future__ import annotations

import hashlib
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from ledger.errors import AppendsFailed, StorageError
from ledger.log import Ledger
from ledger.sequencer import AppendResult
from tests.conftest import envelope

_ROW = (
    "INSERT INTO pending (digest, body_type, content, mac, submitted) "
    "VALUES (%s, 'dsse', %s, '', 0)"
)


def test_a_submission_ended_by_a_deadlock_is_sent_again(pg_url: str, key_path: Path) -> None:
    a, b = envelope(1), envelope(2)
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))  # the shared path's table and connections exist
        conninfo = make_url(pg_url).set(drivername="postgresql").render_as_string(False)
        other = psycopg.connect(conninfo)  # another submitter, mid-transaction
        try:
            other.execute(_ROW, (hashlib.sha256(b).digest(), b))
            results: list[list[AppendResult]] = []
            errors: list[BaseException] = []

            def submit() -> None:
                try:
                    results.append(lg.append_many([a, b]))  # takes a's row, waits for b's
                except BaseException as e:
                    errors.append(e)

            t = threading.Thread(target=submit)
            t.start()
            time.sleep(0.3)
            # The other submitter now wants a's row: a cycle. The submitter, waiting longer,
            # is the one PostgreSQL's deadlock check (deadlock_timeout, 1 s) ends.
            # (Had PostgreSQL ended this side instead, the test would prove less, not wrong.)
            with suppress(psycopg.errors.DeadlockDetected):
                other.execute(_ROW + " ON CONFLICT DO NOTHING", (hashlib.sha256(a).digest(), a))
            other.rollback()  # it gives up: the submitter's retry goes through
            t.join(60)
        finally:
            other.close()
        assert not errors, f"the deadlock failed the appends: {errors[0]!r}"
        assert [r.index for r in results[0]] == [1, 2]
        assert lg.store.record(1).leaf and lg.store.bodies([hashlib.sha256(a).digest()])


def test_an_integration_batch_ended_by_a_deadlock_fails_no_append(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The integrator's batch can be the statement PostgreSQL ends (a submitter replacing one of
    its rows holds another): nothing was written, so the batch is simply run again, and no
    appender waiting in this process is failed with it."""
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        sequence = lg.store.sequence
        ended: list[int] = []

        def deadlocked_once(*args: Any, **kw: Any) -> Any:
            if not ended:
                ended.append(1)
                try:  # as the engine reports it: the driver's error under the ledger's
                    raise psycopg.errors.DeadlockDetected("deadlock detected")
                except psycopg.Error as e:
                    raise StorageError(
                        "append failed and was rolled back: deadlock detected"
                    ) from e
            return sequence(*args, **kw)

        monkeypatch.setattr(lg.store, "sequence", deadlocked_once)
        results = lg.append_many([envelope(1), envelope(2)])
        assert ended == [1]
        assert [r.index for r in results] == [1, 2]
        assert not any(r.duplicate for r in results)


def test_a_failed_integration_batch_tells_its_waiters_their_submission_stays_pending(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unlike a deadlock, any other failure of the integrator's batch is told to this process's
    waiters — as not acknowledged, not as lost: the rows stay pending, a later batch logs them,
    and the same bodies again return their records."""
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        sequence = lg.store.sequence
        failed: list[int] = []

        def fails_once(*args: Any, **kw: Any) -> Any:
            if not failed:
                failed.append(1)
                raise StorageError("append failed and was rolled back: disk full")
            return sequence(*args, **kw)

        monkeypatch.setattr(lg.store, "sequence", fails_once)
        with pytest.raises(AppendsFailed) as caught:
            lg.append_many([envelope(1), envelope(2)])
        told = caught.value.__cause__
        assert isinstance(told, StorageError)
        assert str(told).startswith("append failed and was rolled back: disk full; ")
        assert "not acknowledged, but the submission stays pending" in str(told)
        assert isinstance(told.__cause__, StorageError)  # the batch's own error
        results = lg.append_many([envelope(1), envelope(2)])
        assert [r.index for r in results] == [1, 2]
        assert all(r.duplicate for r in results)  # made pending by the first, failed call
        assert lg.store.size() == 3


def test_a_writer_that_cannot_connect_is_the_ledgers_error(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared writer opens its connections on the first write: a refused one is the
    ledger's StorageError (problem+json 503 over HTTP), not the driver's exception (a 500)."""
    from ledger import integrator

    def refused(*args: Any, **kw: Any) -> None:
        raise psycopg.OperationalError("connection refused")

    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        monkeypatch.setattr(integrator.SharedSequencer, "__init__", refused)
        with pytest.raises(StorageError, match=r"^cannot start the writer: connection refused"):
            lg.append(envelope(1))
        monkeypatch.undo()
        assert lg.append(envelope(1)).index == 0
