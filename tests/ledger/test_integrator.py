"""PostgreSQL's shared write path (ledger.integrator): pending rows, one integrator by lease.

Crash tests: kill -9 the lease holder mid-batch and an appender mid-submit. Every acknowledged
append is in the log, the chain is gapless with no duplicate, ``ledger check`` passes, the lease
moves to a live process, and a body the dead process was waiting on, submitted again, gets the
same record. (SQLite's writer is one process's transaction: its crash test is in
test_concurrency.py.)
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.errors import IntegrityError
from ledger.fsck import check_ledger
from ledger.log import Ledger
from tests.conftest import envelope
from tests.ledger.pending_rows import pending_error
from tests.ledger.test_concurrency import _appender


def _read_acks(proc: subprocess.Popen[str], at_least: int, acked: dict[int, str]) -> int:
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    got = 0
    while got < at_least and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        idx, h = line.split()
        assert acked.setdefault(int(idx), h) == h  # no index handed to two bodies
        got += 1
    assert got >= at_least, "the appender did not get far enough before the deadline"
    return got


def _pending(url: str, submitted_by: float | None = None) -> int:
    """Rows not yet in the log (an integrated row stays a while, acknowledging its body); with
    ``submitted_by``, only those submitted by then (the column holds whole seconds)."""
    with Ledger.open(url) as lg, lg.store.engine.connect() as conn:
        q = "SELECT count(*) FROM pending WHERE idx IS NULL AND submitted <= :t"
        t = int(time.time() + 1) if submitted_by is None else int(submitted_by)
        return int(conn.execute(text(q), {"t": t}).scalar_one())


def _wait_drained(url: str, seconds: float = 60, submitted_by: float | None = None) -> None:
    deadline = time.monotonic() + seconds
    while _pending(url, submitted_by) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _pending(url, submitted_by) == 0, "pending rows were never integrated"


@pytest.mark.slow
def test_kill_9_of_the_lease_holder_mid_batch(pg_url: str, key_path: Path) -> None:
    Ledger.create(pg_url, "test.example/ledger", key_path).close()
    holder = _appender(pg_url, key_path, 0, 1_000_000, 50)  # first: it takes the lease
    acked: dict[int, str] = {}
    sent = _read_acks(holder, 300, acked)  # bodies 0 .. sent-1 are acknowledged
    other = _appender(pg_url, key_path, 5_000_000, 1_000_000, 7)
    _read_acks(other, 30, acked)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    killed_at = time.time()  # every row the dead holder made durable was submitted by then
    _read_acks(other, 200, acked)  # the lease moved: the survivor's appends still complete
    # What the dead process made durable is integrated by the survivor, while it lives. It keeps
    # submitting, so only the rows submitted by the kill are waited for; the column holds whole
    # seconds, so once the kill's second is over no new row joins them.
    time.sleep(max(0.0, int(killed_at) + 1 - time.time()))
    _wait_drained(pg_url, submitted_by=killed_at)
    other.terminate()  # dies as abruptly (no handler): its last submissions may stay pending
    other.wait()
    with Ledger.open(pg_url, key_path) as lg:
        lg.append(envelope(9_999_999))  # this process takes the lease and integrates them too
        _wait_drained(pg_url)
        size = check_ledger(lg.store).records
        records = lg.store.records(0, size)
        assert [r.index for r in records] == list(range(size))
        assert len({r.body_digest for r in records}) == size
        for r in records:
            if r.index in acked:
                assert acked[r.index] == r.leaf_hash.hex()
        assert set(acked) <= set(range(size))
        # The bodies the dead holder was sending, submitted again: the acknowledged ones and
        # any it had made durable get the records they already have, the rest new ones; one
        # record per body either way.
        retry = [envelope(i) for i in range(max(sent - 10, 0), sent + 60)]
        before = lg.store.size()
        results = lg.append_many(retry)
        assert lg.store.size() - before == sum(not r.duplicate for r in results)
        assert all(r.duplicate for r in results[: min(10, sent)])
        by_digest = lg.store.indices_by_digest([hashlib.sha256(b).digest() for b in retry])
        assert [r.index for r in results] == [by_digest[hashlib.sha256(b).digest()] for b in retry]
        assert check_ledger(lg.store).records == lg.store.size()


@pytest.mark.slow
def test_kill_9_of_an_appender_mid_submit_loses_nothing(pg_url: str, key_path: Path) -> None:
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(999_999))  # this process now holds the lease
        proc = _appender(pg_url, key_path, 0, 1_000_000, 3)
        acked: dict[int, str] = {}
        _read_acks(proc, 200, acked)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        lg.append(envelope(999_998))
        _wait_drained(pg_url)
        size = check_ledger(lg.store).records
        stored = {r.index: r.leaf_hash.hex() for r in lg.store.records(0, size)}
        assert all(stored[i] == h for i, h in acked.items())
        assert len(set(stored.values())) == size


def _plant(url: str, digest: bytes, content: bytes, mac: bytes = b"\0" * 32) -> None:
    """A pending row written straight into the database, by someone without the key file."""
    with Ledger.open(url) as lg, lg.store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO pending (digest, body_type, content, mac) VALUES (:d, 'dsse', :c, :m)"
            ),
            {"d": digest, "c": content, "m": mac},
        )


def _error_of(lg: Ledger, digest: bytes) -> str | None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        error = pending_error(lg, digest)
        if error is not None:
            return error
        time.sleep(0.05)
    return None


def test_a_row_planted_without_the_key_is_never_signed_into_the_log(
    pg_url: str, key_path: Path
) -> None:
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(1))
        planted = b"not even JSON, and no signer trusted it"
        digest = hashlib.sha256(planted).digest()  # the right digest, but no MAC
        _plant(pg_url, digest, planted)
        assert not lg.append(envelope(3)).duplicate  # others' appends still complete
        error = _error_of(lg, digest)
        assert error is not None and "not written by a ledger appender" in error
        assert lg.store.leaves_by_digest([digest]) == {}
        assert check_ledger(lg.store).records == 2


def test_a_squatted_digest_does_not_block_the_real_body(pg_url: str, key_path: Path) -> None:
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(1))
        real = envelope(2)
        digest = hashlib.sha256(real).digest()
        _plant(pg_url, digest, envelope(99))  # the real body's digest, other bytes
        assert _error_of(lg, digest) is not None  # the integrator refused the other bytes
        r = lg.append(real)
        assert (r.index, r.duplicate) == (1, False)
        assert lg.store.bodies([digest])[digest][1] == real
        assert _pending(pg_url) == 0


def test_a_body_already_logged_is_acknowledged_as_a_duplicate_with_its_record(
    pg_url: str, key_path: Path
) -> None:
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        first = lg.append(envelope(7))
        again = lg.append(envelope(7))
        assert (again.index, again.duplicate, first.duplicate) == (first.index, True, False)
        assert lg.store.size() == 1
        assert _pending(pg_url) == 0


def test_a_ledger_made_before_the_pending_table_gains_it_on_first_append(
    pg_url: str, key_path: Path
) -> None:
    Ledger.create(pg_url, "test.example/ledger", key_path).close()
    with Ledger.open(pg_url) as lg, lg.store.engine.begin() as conn:
        for table in ("pending", "ix_terms", "ix_deps", "ix_vulns"):  # as at revision 0004
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0004'"))
    with Ledger.open(pg_url, key_path) as lg:
        assert lg.append(envelope(1)).index == 0
    assert _pending(pg_url) == 0


def test_an_unsigned_head_stops_the_integrator_and_fails_the_waiters(
    pg_url: str, key_path: Path
) -> None:
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(1))
        with lg.store.engine.begin() as conn:  # a checkpoint row removed behind the ledger's back
            conn.execute(text("ALTER TABLE checkpoints DISABLE TRIGGER USER"))
            conn.execute(text("DELETE FROM checkpoints WHERE size = 1"))
            conn.execute(text("ALTER TABLE checkpoints ENABLE TRIGGER USER"))
        with pytest.raises(IntegrityError, match=r"latest|checkpoint"):
            lg.append(envelope(2))
        assert lg.store.size() == 1
        # The log failed, not the body: its row stays pending, unmarked, for after the repair.
        assert _pending(pg_url) == 1
        assert pending_error(lg, hashlib.sha256(envelope(2)).digest()) is None


def test_a_checkpoint_signed_by_another_writer_between_batches_is_extended_not_overwritten(
    pg_url: str, key_path: Path
) -> None:
    """A batch signed between two of the lease holder's by another writer (here the store's own
    transaction, as `ledger append` elsewhere would) is seen under the write lock, and the next
    batch extends that checkpoint: one history."""
    from ledger.bodies import parse_submission
    from ledger.log import utc_now
    from ledger.storage import LedgerStore

    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        assert [lg.append(envelope(i)).index for i in range(3)] == [0, 1, 2]
        other = LedgerStore.open(pg_url)
        try:
            sub = parse_submission(envelope(100))
            seq = other.sequence([sub], lg.origin, lg.require_signer(), utc_now)
        finally:
            other.close()
        assert seq.indices == [3]
        results = [lg.append(envelope(i)) for i in range(3, 6)]
        assert [r.index for r in results] == [4, 5, 6]
        assert results[-1].tree_size == 7
        assert check_ledger(lg.store).records == 7


def test_a_tile_rewritten_between_the_lease_holders_batches_is_never_signed_over(
    pg_url: str, key_path: Path
) -> None:
    """A right-edge tile altered behind the ledger's back between two of the lease holder's
    batches: no later batch signs a checkpoint over it (each checks the stored head in full)."""
    from ledger.errors import Error

    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        for i in range(3):
            lg.append(envelope(i))
        signed = lg.store.latest_checkpoint()
        with lg.store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE tiles DISABLE TRIGGER USER"))
            conn.execute(text("UPDATE tiles SET hashes = decode(repeat('00', 96), 'hex')"))
            conn.execute(text("ALTER TABLE tiles ENABLE TRIGGER USER"))
        for i in range(3, 5):
            with pytest.raises(Error):
                lg.append(envelope(i))
        assert lg.store.latest_checkpoint() == signed
        assert lg.store.size() == 3
