"""The integrator thread of PostgreSQL's shared write path: the lease, and the batches under it.

:class:`LeaseHolder` is the part of :class:`ledger.integrator.SharedSequencer` that tries for the
ledger's lease (a session advisory lock), and while it holds it moves pending rows into the log
in large batches, acknowledges its own process's appends and notifies every other process's
waiter (see :mod:`ledger.integrator` for the whole path).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, cast

import psycopg
from sqlalchemy import Connection

from ledger import pending_acks
from ledger._internal import db_errors
from ledger._internal.db import prepare_for
from ledger.bodies import Submission
from ledger.errors import Error, Overloaded, RefusedValue, StorageError
from ledger.pending import (
    IDLE_POLL_SECONDS,
    INTEGRATED_CHANNEL,
    MAX_PAYLOAD,
    PENDING_CHANNEL,
    RETRY_SECONDS,
    BadRow,
    NothingPending,
    Wait,
    error_text,
    hint,
    submission,
)
from ledger.pending_acks import DB_NOW, encode_acks, finish_params, sign_row_error
from ledger.quarantine import Quarantine
from ledger.sequencer import AppendResult
from ledger.storage import SequencedBatch

__all__ = ["LEASE_POLL_SECONDS", "LeaseHolder"]

log = logging.getLogger(__name__)

LEASE_POLL_SECONDS = 0.25  # how often a process without the lease asks for it
_LEASE_KEY = "hashtextextended('provenance-ledger-integrator:' || current_schema(), 0)"
_ANY_PENDING = "SELECT 1 FROM pending WHERE done_at IS NULL AND error IS NULL LIMIT 1"
_STALLED_SECONDS = 5.0  # a wait this old, with the lease held elsewhere: integrate anyway
GATHER_SECONDS = 0.001  # how long a batch waits for the appenders the last one answered


def _db_now(conn: Connection) -> float:
    """The database's clock (s), in ``conn``'s transaction (:data:`DB_NOW`)."""
    row = _execute(conn, DB_NOW, ()).fetchone()
    assert row is not None
    return float(row[0])


def _execute(conn: Connection, sql: str, params: Any) -> psycopg.Cursor[Any]:
    """Run one of the integrator's own statements on the driver's connection under ``conn``
    (same transaction): SQLAlchemy's work per statement cost as much as the statement here.
    A driver error becomes the ledger's, as the engine would make it (``db_errors``)."""
    driver = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
    try:
        return driver.execute(sql, params, prepare=prepare_for(sql) is not False)
    except psycopg.Error as e:
        target = db_errors.Target.of(conn.engine.url, None)
        raise db_errors.translate(target, e, writing=True) from e


def _deadlocked(e: BaseException) -> bool:
    """Whether ``e`` was caused by PostgreSQL ending a statement to break a deadlock."""
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, psycopg.errors.DeadlockDetected) or isinstance(
            getattr(seen, "orig", None), psycopg.errors.DeadlockDetected
        ):
            return True
        seen = seen.__cause__
    return False


def _still_pending(e: StorageError | Overloaded) -> Error:
    """What an appender waiting on a failed integration batch is told: the batch's error (same
    class, so the same status and exit code), and that its submission was not lost — the row is
    durable and stays pending, a later batch logs it, and the same body again returns its record
    (the batch's own message says only that it was rolled back)."""
    text = (
        f"{e}; not acknowledged, but the submission stays pending: a later batch logs it, and "
        "appending the same body again returns its record"
    )
    told = Overloaded(text, e.retry_after) if isinstance(e, Overloaded) else StorageError(text)
    told.__cause__ = e
    return told


class LeaseHolder(Quarantine):
    """The integrator thread's half of the shared sequencer (state is the sequencer's)."""

    _max_batch: int
    _ack_key: bytes
    _lock: threading.Lock  # guards _waiting: this process's appends waiting, by body digest
    _waiting: dict[bytes, list[tuple[Wait, int]]]
    _purged_at = float("-inf")  # when this process's batch last dropped old acknowledged rows

    def _integrator(self) -> None:
        while not self._stop.is_set():
            try:
                with self._session() as lease:
                    self._hold_lease(lease)
            except psycopg.Error as e:  # the lease connection broke: the lock went with it
                log.warning("integrator lease connection lost: %s", e)
                self._stop.wait(RETRY_SECONDS)

    def _hold_lease(self, lease: psycopg.Connection[Any]) -> None:
        while not self._stop.is_set():
            row = lease.execute(f"SELECT pg_try_advisory_lock({_LEASE_KEY})").fetchone()
            if row and row[0]:
                break
            if self._oldest_wait() > _STALLED_SECONDS:
                # The holder is alive but not integrating (stopped, stalled): the lease only
                # saves work, the write lock keeps this safe, so integrate without it.
                self._integrate_once()
            self._stop.wait(LEASE_POLL_SECONDS)
        else:
            return
        lease.execute(f"LISTEN {PENDING_CHANNEL}")
        woken = True  # rows may have been left pending by a process that died holding it
        commits = 1  # the submitters' commits (notifications) the next batch gathers
        while not self._stop.is_set():
            # Woken by a NOTIFY there is work; after a quiet poll, one cheap look first, so
            # an idle ledger does not take the write lock five times a second.
            work = woken or lease.execute(_ANY_PENDING).fetchone() is not None
            done = self._integrate_once() if work else 0
            if done < 0:  # ended by a deadlock: the same rows again, at once
                woken = True
                continue
            if done > 0:
                # Integrate again at once only if rows came in meanwhile (their notifications
                # are here) or the batch was full; else wait for the next notification instead
                # of paying a transaction to find nothing.
                if done >= self._max_batch:
                    woken, commits = True, 1
                    continue
                commits = self._gathered(lease, min(done, commits))
                woken = commits > 0
                if woken:
                    continue
            woken, commits = self._notified(lease, IDLE_POLL_SECONDS), 1  # a dead session raises

    def _gathered(self, lease: psycopg.Connection[Any], answered: int) -> int:
        """Group commit: after a batch gathered from ``answered`` submitter commits (one
        notification each; at most one per row it logged), wait up to :data:`GATHER_SECONDS` for
        as many new commits as that plus those that came meanwhile, so the next batch holds the
        appenders the last one answered, not only those that came back first. It starts the
        moment they are here. One process's many appenders are one commit (its submitter joins
        them), so it never waits for them. Returns the commits gathered (0: none came)."""
        mine = self._count(lease.notifies(timeout=0))
        want, deadline = mine + answered, time.monotonic() + GATHER_SECONDS
        while mine < want:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            mine += self._count(lease.notifies(timeout=left, stop_after=want - mine))
        return mine

    def _count(self, notes: Iterable[psycopg.Notify]) -> int:
        return sum(n.payload.partition("\t")[0].partition("\n")[0] == self._schema for n in notes)

    def _integrate_once(self) -> int:
        """Integrate one batch of pending rows; the number integrated (0: none, or it failed;
        -1: PostgreSQL ended it to break a deadlock, try again)."""
        read: list[bytes] = []
        try:
            seq = self._store.sequence(
                lambda conn: self._read_pending(conn, read),
                self._origin,
                self._signer,
                self._clock,
                after=lambda conn, seq: self._finish(conn, read, seq),
                pipeline=True,
            )
        except NothingPending:
            return 0
        except Error as e:
            return self._batch_failed(read, e)
        except Exception as e:  # a defect, not the rows': keep the thread, tell this process
            log.exception("integration failed unexpectedly, retrying")
            self._fail_all(e)
            self._stop.wait(RETRY_SECONDS)
            return 0
        self._integrated(read, seq)
        return len(seq.indices)

    def _batch_failed(self, read: list[bytes], e: Error) -> int:
        """What :meth:`_integrate_once` returns for a batch that failed with ``e``."""
        if isinstance(e, StorageError | Overloaded) and not isinstance(e, RefusedValue):
            # transient: the rows stay pending
            if _deadlocked(e):
                # PostgreSQL ended this batch to break a deadlock with a submitter replacing one
                # of its rows: nothing was written, the rows are still pending, and the next
                # batch (at once) takes them again. No appender is told: none has failed.
                log.info("integration batch ended by a deadlock; integrating again")
                return -1
            # This process's waiting appenders are told, as a failed batch's callers always were
            # (a busy lock is one line, "retry"); the rows go in with a later batch, and
            # submitting the same body again is safe. Other processes' appenders keep waiting:
            # a notification would reach them late, failing appends made after the retry began.
            log.warning("integration failed, retrying: %s", e)
            self._fail_all(_still_pending(e), pending_only=True)
            self._stop.wait(RETRY_SECONDS)
            return 0
        # Not the moment's (a value the database refuses fails every time): a row's fault or
        # the log's, found out row by row.
        self._quarantine(read, e)
        return 0

    def _read_pending(self, conn: Connection, read: list[bytes]) -> list[Submission]:
        """The oldest pending rows an appender wrote; any other row is marked failed in this
        transaction (its appender, if any, is told) and never reaches the log."""
        rows = _execute(
            conn,
            "SELECT digest, body_type, content, mac, submitted FROM pending "
            "WHERE done_at IS NULL AND error IS NULL ORDER BY seq LIMIT %s",
            (self._max_batch,),
        ).fetchall()
        if not rows:
            raise NothingPending
        subs: list[Submission] = []
        now = time.time()
        for digest, body_type, content, mac, submitted in rows:
            try:
                subs.append(
                    submission(
                        bytes(digest),
                        body_type,
                        bytes(content),
                        mac,
                        self._mac_key,
                        submitted=submitted,
                        now=now,
                    )
                )
            except BadRow as e:
                # Only the row as read: an appender's submission may have replaced it since
                # (the pending rows are not under the write lock), and must not be marked.
                error = sign_row_error(
                    self._ack_key, self._schema, bytes(digest), mac, error_text(e), _db_now(conn)
                )
                _execute(
                    conn,
                    "UPDATE pending SET error = %s WHERE digest = %s "
                    "AND mac IS NOT DISTINCT FROM %s AND submitted IS NOT DISTINCT FROM %s",
                    (error, digest, mac, submitted),
                )
                continue
            read.append(bytes(digest))
        return self._with_local_docs(subs)

    def _with_local_docs(self, subs: list[Submission]) -> list[Submission]:
        """``subs``, each this process submitted with admission's parse of its body: the same
        bytes (the digest is checked against the row's content), so the commit derives its index
        rows from that parse and the signatures admission verified, instead of parsing the body
        and verifying its signatures again (:func:`ledger.index.rows.derive_index_rows`)."""
        with self._lock:
            docs = {
                s.digest: doc
                for s in subs
                for w, i in self._waiting.get(s.digest, ())
                if (doc := w.job.subs[i].doc) is not None
            }
        if not docs:
            return subs
        return [replace(s, doc=docs[s.digest]) if s.digest in docs else s for s in subs]

    def _finish(self, conn: Connection, read: list[bytes], seq: SequencedBatch) -> None:
        """Leave each integrated row's record and proof on it for its waiter (see
        :mod:`ledger.pending_acks`), in the batch's transaction; every
        :data:`~ledger.pending_acks.PURGE_SECONDS` also drop the rows acknowledged long ago."""
        now = time.monotonic()
        purge = now - self._purged_at >= pending_acks.PURGE_SECONDS
        if purge:
            self._purged_at = now
        sql = pending_acks.FINISH_AND_PURGE_SQL if purge else pending_acks.FINISH_SQL
        _execute(conn, sql, finish_params(read, seq, purge))

    def _integrated(self, read: list[bytes], seq: SequencedBatch) -> None:
        """The batch has committed: acknowledge this process's own appends from it, and wake
        every waiter. The payload names the rows by digest prefix, so a process none of whose
        bodies is among them does not query at all (every process's waiter hears every batch),
        and carries the new records' acknowledgements while they fit (``encode_acks``), so a
        waiter needs no query either."""
        if seq.proofs:  # verified against the checkpoint this batch signed, in its transaction
            try:
                for i, digest in enumerate(read):
                    self._settle(
                        digest,
                        AppendResult(
                            seq.indices[i],
                            seq.leaf_hashes[i],
                            seq.proofs[i],
                            seq.tree_size,
                            seq.checkpoint,
                            False,
                        ),
                    )
            except Exception:  # never the integrator's end: the waiter acknowledges the rest
                log.exception("acknowledging this process's appends failed")
        payload = self._schema + hint(read)
        budget = MAX_PAYLOAD - len(payload) - 1
        if seq.proofs and not payload.endswith("*") and budget > 0:
            entries = [
                (digest, seq.records[seq.indices[i]], seq.proofs[i])
                for i, digest in enumerate(read)
                if seq.new[i]
            ]
            element = encode_acks(self._ack_key, self._schema, seq.checkpoint, entries, budget)
            if element is not None:
                payload += "," + element
        self._notify(INTEGRATED_CHANNEL, payload)
