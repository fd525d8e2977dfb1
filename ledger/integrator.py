"""PostgreSQL's shared write path: appenders commit submissions, one integrator sequences.

Several processes (``ledger serve`` workers, on one machine or many) append to one PostgreSQL
ledger. Each runs one :class:`SharedSequencer` with three threads:

* the **submitter** drains this process's queue and inserts the bodies as ``pending`` rows in one
  statement and one commit that also ``NOTIFY``\\ s, and does not wait for its WAL flush (the
  batch's durable commit flushes it first: :func:`ledger.pending.submit_connection`). No global
  lock is taken.
* the **integrator** tries for the ledger's *lease*, a session advisory lock. The one process that
  holds it moves pending rows into the log in large batches through :meth:`LedgerStore.sequence`
  (the same transaction, write lock, head check and signed checkpoint as every other write),
  deletes them in that transaction and ``NOTIFY``\\ s. When the holder dies PostgreSQL ends its
  session, which frees the lock; another process's integrator takes it within
  :data:`LEASE_POLL_SECONDS`. The lease is for efficiency only: the write lock keeps two
  integrators from ever interleaving.
* the **waiter** ``LISTEN``\\ s for integrations. For the bodies its process waits on, it takes
  the acknowledgements the notification carries (HMAC'd by the integrator,
  :func:`ledger.pending_acks.encode_acks`) or reads their acknowledgement rows, verifies each
  (record, proof against the checkpoint), and only then resolves the callers' futures. The lease
  holder's own process is acknowledged by its integrator from the batch in hand.

The contract is the single-process sequencer's: an append is acknowledged only once it is durable,
integrated, proved and covered by a signed checkpoint. A crash anywhere loses nothing acknowledged:
a committed pending row is integrated by whoever holds the lease next (one a server crash loses
was never acknowledged), and submitting the same body again
(idempotent by digest) waits for the same record.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

import psycopg

from ledger._internal import db, db_errors
from ledger.bodies import Submission
from ledger.checkpoint import SignedCheckpoint
from ledger.errors import Overloaded, StorageError
from ledger.lease import LEASE_POLL_SECONDS, LeaseHolder
from ledger.note import NoteSigner, parse_verifier
from ledger.pending import (
    Inserted,
    Wait,
    error_from_text,
    hinted,
    insert_pending,
    notify,
    notify_connection,
    pending_mac_key,
    submit_connection,
)
from ledger.pending_acks import (
    ACK_PREFIX,
    AckReader,
    FailureNotices,
    ack_mac_key,
)
from ledger.sequencer import AppendResult, Chunk, Job, append_in_chunks, queue_chunks, single_done
from ledger.storage import LedgerStore
from ledger.waiter import Waiting

__all__ = ["LEASE_POLL_SECONDS", "SharedSequencer"]

# close(): how long the submitter may take to finish what was queued, and the other threads to
# end, before close() cancels or leaves them; and how long waiting appends get to be acknowledged
_CLOSE_SECONDS = 5.0
_DEADLOCK_RETRIES = 3  # a submission PostgreSQL ended to break a deadlock is sent again this often

log = logging.getLogger(__name__)


class SharedSequencer(Waiting, LeaseHolder):
    """This process's part of the shared PostgreSQL write path (see the module docstring)."""

    def __init__(
        self,
        store: LedgerStore,
        origin: str,
        signer: NoteSigner,
        clock: Callable[[], datetime],
        checkpoint: Callable[[], SignedCheckpoint],
        *,
        max_batch: int = 1000,
        max_pending: int = 20_000,
        wait_timeout: float = 60.0,
    ) -> None:
        self._store, self._origin, self._signer, self._clock = store, origin, signer, clock
        self._checkpoint = checkpoint
        self._acks = AckReader(parse_verifier(signer.verifier_key()), origin, ack_mac_key(signer))
        self._mac_key = pending_mac_key(signer)
        self._max_batch, self._max_pending = max_batch, max_pending
        self._wait_timeout = wait_timeout
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_pending)
        self._held: Job | None = None
        self._lock = threading.Lock()
        self._waiting: dict[bytes, list[tuple[Wait, int]]] = {}
        self._stop = threading.Event()
        self._hints: set[bytes] | None = set()  # digest prefixes integrated since the last look
        self._ack_elements: list[tuple[str, set[bytes]]] = []  # acknowledgements, with hints
        self._ack_key = ack_mac_key(signer)
        self._failures = FailureNotices(self._ack_key)  # the waiter's: each failure counts once
        self._connect_kw = db.driver_connect_args(store.engine)
        self._submit_conn: psycopg.Connection[Any] | None = None
        self._submit_bound_set: float | None = None  # the lock and statement timeout it has
        self._notify_conn: psycopg.Connection[Any] | None = None
        self._notify_lock = threading.Lock()
        self._closing = False  # close() cancelled a submission held up in the database
        self._schema = self._current_schema()
        self._threads = [
            threading.Thread(target=self._submitter, name="ledger-submitter", daemon=True),
            threading.Thread(target=self._integrator, name="ledger-integrator", daemon=True),
            threading.Thread(target=self._waiter, name="ledger-waiter", daemon=True),
        ]
        for t in self._threads:
            t.start()

    # -- the caller's side ----------------------------------------------------------------------

    def submit(self, sub: Submission) -> Future[AppendResult]:
        fut: Future[AppendResult] = Future()
        if len(self._waiting) >= self._max_pending:
            raise _overloaded()
        try:
            self._queue.put_nowait(Job([sub], single_done(fut)))
        except queue.Full:
            raise _queue_full() from None
        return fut

    def submit_many(self, subs: Sequence[Submission]) -> list[tuple[int, Chunk]]:
        """Queue ``subs`` in order as jobs of at most ``max_batch`` and return each job's
        ``(size, future)`` at once: one job, wait and future per chunk, not per body (an HTTP
        batch's entries). A row failed alone (a value the database refuses, say) fails its own
        outcome in its chunk's list, not those of the bodies beside it. A chunk that does not
        fit fails with :class:`~ledger.errors.Overloaded` on its future."""

        def refused() -> Overloaded | None:
            return _overloaded() if len(self._waiting) >= self._max_pending else None

        return queue_chunks(self._queue, subs, self._max_batch, _queue_full, refused)

    def append_many(self, subs: Sequence[Submission]) -> list[AppendResult]:
        """Submit many and wait for all; outcomes as :meth:`Sequencer.append_many`'s, each
        submission's its own (see :meth:`submit_many`)."""
        return append_in_chunks(self._queue, subs, self._max_batch)

    def alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    def close(self) -> None:
        """Finish what was queued, give waiting appends a moment, then fail what is left.

        Bounded even when the database holds this process up (a foreign ``LOCK TABLE``, say):
        a submission still running after :data:`_CLOSE_SECONDS` is cancelled (nothing of it
        was committed; its appenders are told the ledger closed), and a thread still inside the
        database after as long again is left to end on its own statement timeout."""
        self._queue.put(None)
        self._end_submitter()
        deadline = time.monotonic() + _CLOSE_SECONDS
        while (
            self._waiting
            and time.monotonic() < deadline
            and all(t.is_alive() for t in self._threads[1:])  # (the submitter has ended)
        ):
            time.sleep(0.01)  # give queued appends a moment to be acknowledged
        self._stop.set()
        deadline = time.monotonic() + _CLOSE_SECONDS
        for t in self._threads[1:]:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():  # held in the database: its lock or statement timeout ends it
                log.warning("closing without %s: it is still waiting on the database", t.name)
        for conn in (self._submit_conn, self._notify_conn):
            if conn is not None:
                with suppress(Exception):
                    conn.close()
        while True:  # a job queued after the submitter ended (a waiter's resubmission): failed
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.done(_closed())
        self._fail_all(_closed(submitted=True), pending_only=True)
        self._fail_all(_closed())

    def _end_submitter(self) -> None:
        """Let the submitter make durable what was queued before :meth:`close`; if the database
        holds it up longer than :data:`_CLOSE_SECONDS`, cancel its statement (and fail, without
        sending, whatever it still has queued)."""
        submitter = self._threads[0]
        submitter.join(_CLOSE_SECONDS)
        deadline = time.monotonic() + _CLOSE_SECONDS
        self._closing = submitter.is_alive()
        while submitter.is_alive() and time.monotonic() < deadline:
            conn = self._submit_conn
            if conn is not None and not conn.closed:
                with suppress(Exception):  # ends the INSERT only; a COMMIT is not interrupted
                    conn.cancel_safe(timeout=1.0)
            submitter.join(0.2)
        if submitter.is_alive():
            log.warning("closing without the submitter: it is still waiting on the database")

    # -- connections ----------------------------------------------------------------------------

    @contextmanager
    def _session(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of our own (LISTEN and the session lease outlive any transaction)."""
        conn = psycopg.connect(**self._connect_kw, autocommit=True)
        try:
            yield conn
        finally:
            with suppress(Exception):
                conn.close()

    def _notify(self, channel: str, payload: str) -> None:
        """Wake listeners, after the write this announces has committed, outside any durable
        transaction (see :func:`ledger.pending.notify_connection`). A notification that cannot be
        sent is logged and dropped: the listeners' poll finds the work a moment later."""
        with self._notify_lock:
            try:
                if self._notify_conn is None or self._notify_conn.closed:
                    self._notify_conn = notify_connection(self._connect_kw)
                notify(self._notify_conn, channel, payload)
            except psycopg.Error as e:
                log.warning("could not notify %s (listeners will poll): %s", channel, e)
                if self._notify_conn is not None and self._notify_conn.broken:
                    self._notify_conn = None

    def _current_schema(self) -> str:
        with self._session() as conn:
            row = conn.execute("SELECT current_schema()").fetchone()
        return str(row[0]) if row else "public"

    def _notified(
        self, conn: psycopg.Connection[Any], timeout: float, *, collect: bool = False
    ) -> bool:
        """Wait up to ``timeout`` for a notification about this ledger; drain the rest. A
        notification that integration failed for the whole log fails this process's waiters.
        Digest prefixes named by integration notifications collect in ``self._hints`` (``None``:
        look at everything)."""
        mine, failure = False, None
        for n in [*conn.notifies(timeout=timeout, stop_after=1), *conn.notifies(timeout=0)]:
            head, _, body = n.payload.partition("\n")
            schema, tab, named = head.partition("\t")
            if schema != self._schema:
                continue
            mine = True
            if body:  # a failure of the whole log: only one the key's holder announced counts
                error = self._failures.open(schema, body, time.time())
                if error is None:
                    log.warning("ignoring a failure notification: no valid HMAC, stale or seen")
                failure = error or failure
            if not collect:
                continue
            elements = named.split(",")
            ack = elements.pop() if elements[-1].startswith(ACK_PREFIX) else None
            if not tab or elements == ["*"] or self._hints is None:
                self._hints = None
                if ack is not None:
                    self._ack_elements.append((ack, hinted(elements)))
                continue
            prefixes = hinted(elements)
            self._hints.update(prefixes)
            if ack is not None:  # the batch's acknowledgements themselves
                self._ack_elements.append((ack, prefixes))
        if failure:
            self._fail_all(error_from_text(failure))
        return mine

    # -- the submitter --------------------------------------------------------------------------

    def _next_jobs(self) -> tuple[list[Job], bool]:
        first = self._held or self._queue.get()
        self._held = None
        if first is None:
            return [], True
        jobs, count = [first], len(first.subs)
        while count < self._max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            if count + len(job.subs) > self._max_batch:
                self._held = job
                break
            jobs.append(job)
            count += len(job.subs)
        return jobs, False

    def _submitter(self) -> None:
        while True:
            jobs, stop = self._next_jobs()
            if jobs:
                self._make_durable(jobs)
            if stop:
                if self._held is not None:
                    self._make_durable([self._held])
                return

    def _make_durable(self, jobs: list[Job]) -> None:
        # Each append's deadline runs from its submission: a job queued behind a blocked insert
        # has waited already (it was given a fresh 60 s here, and answered after ~2x that).
        waits = [Wait(job, job.queued + self._wait_timeout) for job in jobs]
        with self._lock:  # registered before the commit, so no integration can be missed
            for w in waits:
                n = len(w.job.subs)
                w.results, w.duplicate, w.remaining = [None] * n, [False] * n, n
                for i, sub in enumerate(w.job.subs):
                    self._waiting.setdefault(sub.digest, []).append((w, i))
        if self._closing:  # close() cancelled a held-up submission: send nothing more
            self._forget(waits, _closed())
            return
        subs = [s for job in jobs for s in job.subs]
        bound = self._submit_bound(min(w.deadline for w in waits))
        started = time.monotonic()
        try:
            got = self._insert_pending(subs, bound, max(job.after for job in jobs))
        except psycopg.errors.LockNotAvailable as e:  # DDL's lock, say: named, "retry"
            self._forget(waits, db.pg_lock_busy(e, write_lock=False, seconds=bound))
            return
        except psycopg.Error as e:  # called on the driver directly: name it as the engine would
            timeout = self._submit_bound_set  # the statement's ends 0.5 s after it
            if (
                isinstance(e, psycopg.errors.QueryCanceled)
                and timeout is not None
                and time.monotonic() - started >= timeout
            ):  # our statement_timeout: several lock waits in a row, each under the bound
                self._forget(waits, db.lock_busy("the submission's insert was held up", bound))
                return
            if isinstance(e, psycopg.errors.QueryCanceled) and self._closing:
                self._forget(waits, _closed())  # close() cancelled it: rolled back, not stored
                return
            # anything else, a cancel by an administrator (pg_cancel_backend) included: the
            # server's own reason, not "busy" (SQLSTATE 57014 is both; only the time tells)
            target = db_errors.Target.of(self._store.engine.url, None)
            self._forget(waits, db_errors.translate(target, e, writing=True))
            return
        except Exception as e:
            self._forget(waits, e)
            return
        inserted = set(got.digests)
        with self._lock:  # only the first of equal bodies made pending here is new
            for w in waits:
                for i, sub in enumerate(w.job.subs):
                    w.duplicate[i] = sub.digest not in inserted
                    inserted.discard(sub.digest)
                w.ready, w.submitted, w.inserted_at = True, got.submitted, got.db_time
        for w in waits:
            w.complete()

    def _insert_pending(self, subs: list[Submission], bound: float, after: int) -> Inserted:
        """Insert pending rows (skipping bodies already in the log) and wake the integrator (or
        the waiters, if every body was logged already), submitted later than ``after``
        (:attr:`Job.after`); return what it did (:class:`~ledger.pending.Inserted`). One statement in autocommit, one round trip, committed when it returns without
        waiting for its WAL flush (:func:`ledger.pending.submit_connection` says why that is
        enough)."""
        conn = self._submit_conn
        if conn is None or conn.closed:  # the submitter's own: no pool checkout per append
            conn = self._submit_conn = submit_connection(self._connect_kw)
            self._submit_bound_set = None
        if self._submit_bound_set is None or abs(bound - self._submit_bound_set) > 1.0:
            ms = db.milliseconds(bound)  # one round trip, only when the bound moves
            # a lock wait past the bound names its lock; the statement's is a backstop for
            # several waits in a row, each under it (both end before the appenders' deadline)
            conn.execute(f"SET lock_timeout = {ms}; SET statement_timeout = {ms + 500}")
            self._submit_bound_set = bound
        retries = _DEADLOCK_RETRIES
        while True:
            try:
                return self._insert_rows(conn.cursor(), subs, after)
            except psycopg.errors.DeadlockDetected:
                # Another submitter inserted some of the same bodies in another order (pending
                # rows keep the order given: it is the log's). PostgreSQL rolled this statement
                # back; the statement is idempotent by digest, so it is simply sent again.
                if not retries:
                    raise
                retries -= 1
            except BaseException:
                if conn.broken:
                    self._submit_conn = None
                raise

    def _submit_bound(self, deadline: float) -> float:
        """How long a submission may wait for locks (each, and its statement in all): until a
        second before the earliest of its appenders' deadlines, so that they get the
        submission's error (naming the lock, "retry") and the row never goes in after they were
        told it failed."""
        left = deadline - time.monotonic() - 1.0
        return min(db.LOCK_TIMEOUT_SECONDS, max(0.1, left))

    def _insert_rows(
        self, cur: psycopg.Cursor[Any], subs: list[Submission], after: int
    ) -> Inserted:
        now = max(int(time.time()), after + 1)
        return insert_pending(cur, subs, self._mac_key, now, self._schema)

    def _forget(self, waits: list[Wait], error: BaseException) -> None:
        with self._lock:
            for w in waits:
                for sub in w.job.subs:
                    rest = [e for e in self._waiting.get(sub.digest, []) if e[0] is not w]
                    if rest:
                        self._waiting[sub.digest] = rest
                    else:
                        self._waiting.pop(sub.digest, None)
        for w in waits:
            w.fail(error)

    def _oldest_wait(self) -> float:
        with self._lock:
            deadlines = [w.deadline for entries in self._waiting.values() for w, _ in entries]
        if not deadlines:
            return 0.0
        return time.monotonic() - (min(deadlines) - self._wait_timeout)

    def _fail_all(self, error: BaseException, *, pending_only: bool = False) -> None:
        """Fail this process's waits with ``error``; with ``pending_only`` only those whose rows
        are pending (the submitter's insert committed): ``error`` then says the row stays
        pending, which is not yet true of the others (they go on waiting)."""
        with self._lock:
            waits = {
                id(w): w
                for entries in self._waiting.values()
                for w, _ in entries
                if w.ready or not pending_only
            }
            for d in list(self._waiting):
                kept = [(w, i) for w, i in self._waiting[d] if id(w) not in waits]
                if kept:
                    self._waiting[d] = kept
                else:
                    del self._waiting[d]
        for w in waits.values():
            w.fail(error)


def _closed(submitted: bool = False) -> StorageError:
    """The error of an append this process stops waiting for on close. One whose submission
    committed (``submitted``) is still pending: another process's integrator (or this one's,
    held in the database past the close) may log it later, so its caller must not take the
    error for a refusal."""
    if submitted:
        return StorageError(
            "the ledger was closed before this append was integrated; its submission was stored "
            "and may still be logged by another ledger process: submitting the same body again "
            "is safe (it is logged at most once) and tells which record it got"
        )
    return StorageError("the ledger was closed before this append was integrated")


def _overloaded() -> Overloaded:
    return Overloaded("too many appends are waiting for integration; retry shortly", 1.0)


def _queue_full() -> Overloaded:
    return Overloaded("the append queue is full; retry shortly", retry_after=1.0)
