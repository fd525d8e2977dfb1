"""The integrator's pipelined write transaction on PostgreSQL (``sequence(pipeline=True)``):
its statements are queued and their errors surface at the next read or at the commit. Such an
error must still be the ledger's own, and leave nothing written; a busy write lock is still
``Overloaded``; and a pipelined batch logs exactly what an unpipelined one does."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection

from ledger._internal import db
from ledger._internal.db import driver_rows
from ledger.bodies import parse_submission
from ledger.errors import Overloaded, StorageError
from ledger.log import Ledger
from ledger.storage import SequencedBatch
from tests.conftest import envelope, pg_conninfo


def _clock() -> datetime:
    return datetime.now(UTC)


def test_a_queued_write_that_fails_is_the_ledgers_error_and_writes_nothing(
    pg_url: str, key_path: Path
) -> None:
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        size, note = lg.store.size(), lg.store.latest_checkpoint()[1]

        def clash(conn: Connection, seq: SequencedBatch) -> None:
            # queued, not run yet: the batch's own checkpoint row is already queued before it
            driver_rows(
                conn,
                "INSERT INTO checkpoints (size, root, note, time) VALUES (%s, %s, %s, %s)",
                (seq.tree_size, b"x" * 32, "not a note", "2026-01-01T00:00:00Z"),
            )

        sub = parse_submission(envelope(1))
        with pytest.raises(StorageError) as caught:
            lg.store.sequence(
                [sub], lg.origin, lg.require_signer(), _clock, after=clash, pipeline=True
            )
        assert not isinstance(caught.value, psycopg.Error)
        assert "rolled back" in str(caught.value)
        assert lg.store.size() == size
        assert lg.store.latest_checkpoint()[1] == note
        assert not lg.store.bodies([sub.digest])
        # the connection went back to the pool usable: the next batch commits
        seq = lg.store.sequence([sub], lg.origin, lg.require_signer(), _clock, pipeline=True)
        assert seq.indices == [size] and lg.store.size() == size + 1


def test_a_busy_write_lock_is_overloaded_in_a_pipelined_batch(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        size = lg.store.size()
        monkeypatch.setattr(db, "LOCK_TIMEOUT_SECONDS", 0.2)
        holder = psycopg.connect(pg_conninfo(pg_url), autocommit=True)
        try:
            holder.execute(
                "SELECT pg_advisory_lock(hashtextextended('provenance-ledger:' || "
                "current_schema(), 0))"
            )
            with pytest.raises(Overloaded):
                lg.store.sequence(
                    [parse_submission(envelope(1))],
                    lg.origin,
                    lg.require_signer(),
                    _clock,
                    pipeline=True,
                )
        finally:
            holder.close()
        assert lg.store.size() == size


def test_a_pipelined_batch_logs_what_an_unpipelined_one_does(pg_url: str, key_path: Path) -> None:
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        subs = [parse_submission(envelope(i)) for i in (1, 2, 1, 0)]
        plain = lg.store.sequence(subs[:2], lg.origin, lg.require_signer(), _clock)
        piped = lg.store.sequence(subs, lg.origin, lg.require_signer(), _clock, pipeline=True)
        assert plain.indices == [1, 2]
        assert piped.indices == [1, 2, 1, 0] and piped.new == [False] * 4
        fresh = parse_submission(envelope(3))
        more = lg.store.sequence(
            [fresh, subs[0]], lg.origin, lg.require_signer(), _clock, pipeline=True
        )
        assert more.indices == [3, 1] and more.new == [True, False]
        assert lg.store.size() == 4
        assert lg.store.bodies([fresh.digest])[fresh.digest][1] == envelope(3)
        assert hashlib.sha256(envelope(3)).digest() == fresh.digest


@pytest.mark.parametrize(
    ("sql", "read"),
    [
        ("SELECT 1", True),
        ("  with x AS (SELECT 1) SELECT * FROM x", True),
        ("WITH\nx AS (SELECT 1) SELECT * FROM x", True),
        ("INSERT INTO t VALUES (1)", False),
        ("UPDATE t SET a = 1", False),
    ],
)
def test_a_pipelined_statement_s_rows_are_waited_for_when_it_reads(sql: str, read: bool) -> None:
    # a read taken for a write would silently return no rows in a pipelined transaction
    assert db._reads(sql) is read
