"""The waiter of PostgreSQL's shared write path: it acknowledges this process's appends.

:class:`Waiting` is the part of :class:`ledger.integrator.SharedSequencer` that runs its
*waiter* thread: it ``LISTEN``\\ s for integrations and, for the bodies its process waits on,
acknowledges each from its verified acknowledgement row (:mod:`ledger.pending_acks`) or, failing
that, from the log itself (record, latest checkpoint verified with the ledger's key, proof from
the tiles verified against it). Only then are the callers' futures resolved.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from ledger._internal.db import PlannedEachTime, milliseconds, prepare_for
from ledger._internal.db_errors import one_line
from ledger.checkpoint import SignedCheckpoint
from ledger.errors import Error, IntegrityError, Overloaded, StorageError
from ledger.merkle import hash_leaf
from ledger.pending import (
    IDLE_POLL_SECONDS,
    INTEGRATED_CHANNEL,
    PREFIX,
    RETRY_SECONDS,
    Wait,
    as_error,
    error_from_text,
    names_bad_row,
)
from ledger.pending import row_mac as pending_row_mac
from ledger.pending_acks import (
    LISTEN_SKEW_SECONDS,
    AckReader,
    FailureNotices,
    open_row_error,
)
from ledger.record import names_body
from ledger.sequencer import AppendResult, Job, Outcome
from ledger.shared_parts import SharedParts
from ledger.store_reads import bounded_lock_waits
from ledger.writer_checks import check_inclusions_handed_out

__all__ = ["Waiting"]

log = logging.getLogger(__name__)


def _tampered() -> IntegrityError:
    """The answer to an append whose pending row was marked failed, twice more after it was
    sent again, in a way no process holding the key file did (:meth:`Waiting._opened`)."""
    return IntegrityError(
        "refusing the failure written on this body's pending row: no process holding the "
        "ledger's key wrote it (the database is being tampered with; run `ledger check`). "
        "The body was submitted again and the row was marked again (or this host's clock and "
        "the integrator's differ by over 5 minutes); submitting it once more is safe"
    )


_FULL_LOOK_SECONDS = 1.0  # while bodies wait, look for all of them at least this often
# A read that waits longer for a lock (DDL holding the records or pending table) gives up for
# this round: the waiter must stay free to fail waits at their deadline.
_READ_LOCK_SECONDS = 1.0


class Waiting(SharedParts):
    """The waiter thread's half of the shared sequencer (state and connections are its own)."""

    _lock: threading.Lock
    _waiting: dict[bytes, list[tuple[Wait, int]]]
    _hints: set[bytes] | None
    _ack_elements: list[tuple[str, set[bytes]]]
    _acks: AckReader
    _wait_timeout: float
    _checkpoint: Callable[[], SignedCheckpoint]
    _queue: queue.Queue[Job | None]
    _failures: FailureNotices
    _mac_key: bytes  # pending rows'
    _ack_key: bytes  # acknowledgements' and failed rows' errors

    def _waiter(self) -> None:
        while not self._stop.is_set():
            try:
                with self._session() as conn:
                    conn.execute(f"LISTEN {INTEGRATED_CHANNEL}")
                    self._failures.listening(time.time())
                    conn.execute(f"SET lock_timeout = {milliseconds(_READ_LOCK_SECONDS)}")
                    last_full = time.monotonic()
                    while not self._stop.is_set():
                        self._notified(conn, IDLE_POLL_SECONDS, collect=True)
                        if not self._waiting:
                            self._hints, self._ack_elements = set(), []
                            continue
                        hints, self._hints = self._hints, set()
                        notified, self._ack_elements = self._ack_elements, []
                        self._settle_notified(notified)
                        full = hints is None or time.monotonic() - last_full > _FULL_LOOK_SECONDS
                        if full:
                            last_full = time.monotonic()
                        self._resolve(conn, hints, full)
            except psycopg.Error as e:
                log.warning("waiter connection lost: %s", e)
                self._stop.wait(RETRY_SECONDS)
            except Exception as e:  # never let the thread die: fail this round's waiters
                log.exception("resolving appends failed")
                self._fail_all(e)

    def _settle_notified(self, elements: list[tuple[str, set[bytes]]]) -> None:
        """Acknowledge what notifications carried acknowledgements for (verified, see
        :meth:`AckReader.from_notification`); the rest is looked up by :meth:`_resolve`. An
        element is opened only if its notification names a body this process waits for."""
        if not elements:
            return
        with self._lock:
            mine = {d[:PREFIX] for d in self._waiting}
        for element, named in elements:
            if mine.isdisjoint(named):
                continue
            found = self._acks.from_notification(element, self._schema, self._waiting)
            for digest, result in found.items():
                self._settle(digest, result)

    def _resolve(self, conn: psycopg.Connection[Any], hints: set[bytes] | None, full: bool) -> None:
        """Acknowledge what was integrated. Only bodies a notification named are looked up,
        unless a notification named everything or marked rows failed (``hints`` is None), and
        on a ``full`` look (once a second) those that have waited over a second too: a lost
        notification costs latency, never an answer. A body's acknowledgement row, once
        verified, answers at once; one still queued waits for its own integration; the rest
        are looked up in the log (:meth:`_look`)."""
        old = time.monotonic() + self._wait_timeout - _FULL_LOOK_SECONDS  # deadlines before: old
        with self._lock:
            digests = [
                d
                for d, entries in self._waiting.items()
                if hints is None
                or d[:PREFIX] in hints
                or (full and any(w.deadline < old for w, _ in entries))
            ]
        blocked = ""
        try:
            with bounded_lock_waits(_READ_LOCK_SECONDS):
                self._look(conn, digests)
        except (Overloaded, psycopg.errors.LockNotAvailable) as e:
            # A lock held on the pending rows, the records, tiles or checkpoints (by DDL, say)
            # past a second: look again next round; the waits below still expire on time.
            why = f"reading the log waited over {_READ_LOCK_SECONDS:g} s for a lock (DDL's?)"
            blocked = f"; {why}"
            log.warning("acknowledgements not read this round: %s (%s)", why, one_line(e))
        now = time.monotonic()
        expired: list[Wait] = []
        with self._lock:  # only the waits past their own deadline: a later caller of the
            for d in list(self._waiting):  # same body keeps waiting for its own
                entries = self._waiting[d]
                expired += [w for w, _ in entries if w.deadline < now]
                kept = [(w, p) for w, p in entries if w.deadline >= now]
                if kept:
                    self._waiting[d] = kept
                else:
                    del self._waiting[d]
        for w in expired:
            w.fail(
                StorageError(
                    f"not acknowledged within {self._wait_timeout:g} s (is a ledger process with "
                    "its key running and its database healthy?); submitting the same body again "
                    f"is safe: it is logged at most once{blocked}"
                )
            )

    def _look(self, conn: psycopg.Connection[Any], digests: list[bytes]) -> None:
        """Settle what the pending rows, or else the log, say about ``digests`` (the caller
        bounds its reads' lock waits). One query reads every row of them: a verified
        acknowledgement answers; a row still to be integrated says there is nothing to look up
        yet (its integration names it again); a failed row's error answers a wait whose own
        insert has committed. Only bodies left open — no row (logged before, or acknowledged
        long ago), an acknowledgement that did not verify, a failed row — are looked up in the
        log. Until 2026-12-01 every body of a look was looked up in the log and its failed row
        read by a query of its own, though most were still queued (``:batch`` appends: a look
        at thousands of bodies, each once a second; docs/benchmarks.md)."""
        if not digests:
            return
        with self._lock:  # the waits whose insert committed before the rows are read
            ready = {d: self._ready_waits(d) for d in digests}
        states = self._acks.states(conn, digests)
        for digest, result in states.acks.items():
            self._settle(digest, result)
        with self._lock:
            digests = [d for d in digests if d in self._waiting]
        open_ = states.unsettled(digests)
        found = _logged(conn, open_) if open_ else {}
        if found:
            self._acknowledge(found)
        with self._lock:  # a failed row says nothing to a wait whose own insert had not
            failed = [  # committed when the rows were read: that insert replaces the row (an
                d  # earlier submission's); nor to a wait that came since
                for d in digests
                if d in states.failed
                and d not in found
                and (now := self._ready_waits(d))
                and {id(w) for w in now} <= {id(w) for w in ready[d]}
            ]
        for digest in failed:
            text = self._opened(digest, *states.failed[digest])
            if text is None:
                self._send_again(digest, _tampered())
            elif names_bad_row(text):  # a wait found the row pending: a squatter's, say
                self._send_again(digest, error_from_text(text))
            else:
                self._settle(digest, error=error_from_text(text))

    def _opened(self, digest: bytes, stored: str, row_mac: bytes | None) -> str | None:
        """The error of the failed row of ``digest`` if the integrator wrote it
        (:func:`~ledger.pending_acks.open_row_error`) for the submission the row holds — and, if
        a wait of this process made the row, that row is still its own (the MAC its insert
        wrote, which this process computes: the row's columns are anyone's to rewrite, so a
        genuine error of a planted row could otherwise be copied, with that row's MAC, onto a
        real submission). None: the error is forged."""
        with self._lock:
            entries = list(self._waiting.get(digest, ()))
            own = [
                (w.job.subs[p].body_type, w.submitted)
                for w, p in entries
                if not w.duplicate[p] and w.submitted is not None
            ]
            newest = max((w.inserted_at for w, _ in entries), default=0.0)
        text = None
        if all(row_mac == pending_row_mac(self._mac_key, digest, t, at) for t, at in own):
            opened = open_row_error(self._ack_key, self._schema, digest, row_mac, stored)
            # signed before a wait's insert committed: not this row's failure (every wait found
            # the row pending, or made it); an old genuine one written back onto a row revived
            # for it answered a wait that found that row pending (the fourth hostile test)
            if opened is not None and opened[1] >= newest - LISTEN_SKEW_SECONDS:
                text = opened[0]
        if own and text is not None and names_bad_row(text):
            # the integrator's, but of a row this process made and wrote with the key, fresh
            # (stale after 300 s; a wait gives up after 60): someone altered the row under it
            # (or the hosts' clocks are 5 minutes apart). Found by the third hostile test of
            # 2026-12-02: one UPDATE of the row's time failed its append at once.
            text = None
        if text is None:
            log.warning(
                "the pending row of %s is marked failed without the ledger's key: %.200s",
                digest.hex()[:16],
                stored,
            )
        return text

    def _send_again(self, digest: bytes, error: Error) -> None:
        """The row of ``digest`` is failed in a way that is not an answer: a row error no process
        holding the key file wrote (:func:`~ledger.pending_acks.open_row_error`: a database
        writer's, in words and status of its choosing, which keeps the integrator off the row),
        or one the integrator wrote for a row that was not an appender's (planted, stale,
        another body: a squatter's, which the waits found pending). Every wait for it queues
        its body again (the submission replaces a failed row and clears the error; its "new" or
        "duplicate" is that submission's, so of several processes' waits one is new); at most
        twice per body, then it gets ``error``. Found by the hostile tests of 2026-12-01 (the
        real body's append failed once with the squatter's error) and 2026-12-02 (forged
        errors)."""
        with self._lock:
            entries = self._waiting.pop(digest, [])
        for w, position in entries:
            if not (w.job.resubmitted < 2 and self._requeue(w, position)):
                w.resolve(position, error)

    def _requeue(self, w: Wait, position: int) -> bool:
        """Queue ``w``'s body at ``position`` again as a job of one whose outcome settles it
        there (its duplicate flag the new submission's), under the first submission's deadline
        (a fresh one for each try let a writer stretch an append to three times its bound);
        False if the queue is full."""

        def done(outcome: list[Outcome] | BaseException) -> None:
            result = outcome[0] if isinstance(outcome, list) else outcome
            if isinstance(result, AppendResult):
                with w.lock:
                    w.duplicate[position] = result.duplicate
                w.resolve(position, result)
            else:
                w.resolve(position, result if isinstance(result, Error) else as_error(result))

        job = Job(
            [w.job.subs[position]],
            done,
            w.job.queued,
            resubmitted=w.job.resubmitted + 1,
            after=w.submitted or 0,
        )
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            return False
        return True

    def _ready_waits(self, digest: bytes) -> list[Wait]:
        """The waits for ``digest`` if every one's insert has committed, else none (the caller
        holds ``_lock``; the list keeps them alive, so their identities stay theirs)."""
        entries = self._waiting.get(digest, ())
        if not all(w.ready for w, _ in entries):
            return []
        return [w for w, _ in entries]

    def _acknowledge(self, found: dict[bytes, tuple[int, bytes]]) -> None:
        signed = self._checkpoint()  # verified with the ledger's key (cached by note text)
        cp = signed.checkpoint
        refused: dict[bytes, str] = {}
        for digest, (index, leaf) in found.items():
            if not 0 <= index < cp.size:  # a planted or uncovered row
                where = "is stored below index 0" if index < 0 else "is not covered"
                refused[digest] = f"the body's record {index} {where}"
            elif not names_body(leaf, index, digest):  # a row whose indexed digest was rewritten
                refused[digest] = f"record {index} does not hold this body"
        for digest, why in refused.items():
            self._settle(
                digest,
                error=IntegrityError(
                    f"refusing to acknowledge: {why} (the log has been tampered with; run "
                    "`ledger check`)",
                    found[digest][0],
                ),
            )
        digests = sorted((d for d in found if d not in refused), key=lambda d: found[d][0])
        if not digests:
            return
        indices = [found[d][0] for d in digests]
        leaves, proofs = self._store.tree(cp.size).leaves_and_proofs(indices)
        check_inclusions_handed_out(leaves, indices, proofs, cp)
        for digest, index, leaf, proof in zip(digests, indices, leaves, proofs, strict=True):
            if leaf != hash_leaf(found[digest][1]):
                self._settle(
                    digest,
                    error=IntegrityError(
                        f"refusing to acknowledge: record {index}'s leaf is not the tree's", index
                    ),
                )
                continue
            self._settle(digest, AppendResult(index, leaf, proof, cp.size, signed.note, False))

    def _settle(
        self, digest: bytes, result: AppendResult | None = None, error: Error | None = None
    ) -> None:
        """Settle every wait for ``digest``: its acknowledgement, or ``error`` for that body
        alone (the other bodies of its job are settled on their own)."""
        with self._lock:
            entries = self._waiting.pop(digest, [])
        if result is not None:
            self._failures.saw(result.tree_size, time.time())
        outcome = result or error or StorageError("append failed")
        for w, position in entries:
            w.resolve(position, outcome)


# The log's record of each body, on the waiter's own connection: binary digests, planned for
# their number each time (see :class:`ledger._internal.db.PlannedEachTime`).
_LOGGED = PlannedEachTime(
    "SELECT body_digest, idx, leaf FROM records WHERE body_digest = ANY(%b::bytea[])"
)


def _logged(conn: psycopg.Connection[Any], digests: list[bytes]) -> dict[bytes, tuple[int, bytes]]:
    """``(index, record bytes)`` of each of ``digests`` that is in the log."""
    rows = conn.execute(_LOGGED, (digests,), prepare=prepare_for(_LOGGED)).fetchall()
    return {bytes(d): (int(i), bytes(leaf)) for d, i, leaf in rows}
