"""A failed integration batch of PostgreSQL's shared write path, retried row by row.

:class:`Quarantine` is the part of :class:`ledger.integrator.SharedSequencer` that handles a batch
that failed for a reason that is not transient: it finds out whether the rows or the log itself
are at fault, marks the rows that are, or tells every waiting appender why the log is failing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime

from sqlalchemy import Connection

from ledger.bodies import Submission
from ledger.errors import Error, Overloaded, RefusedValue, StorageError
from ledger.note import NoteSigner
from ledger.pending import (
    INTEGRATED_CHANNEL,
    RETRY_SECONDS,
    NothingPending,
    error_text,
    submission,
)
from ledger.pending_acks import DB_NOW, sign_failure, sign_row_error
from ledger.shared_parts import SharedParts
from ledger.storage import SequencedBatch

__all__ = ["Quarantine"]

log = logging.getLogger(__name__)


# The size the log has reached as far as its rows show (a failure may be a missing checkpoint).
_REACHED = (
    "SELECT greatest((SELECT coalesce(max(idx) + 1, 0) FROM records),"
    " (SELECT coalesce(max(size), 0) FROM checkpoints))"
)


class Quarantine(SharedParts):
    """The integrator's handling of a failed batch (state is the shared sequencer's)."""

    _origin: str
    _signer: NoteSigner
    _clock: Callable[[], datetime]
    _mac_key: bytes
    _ack_key: bytes

    def _finish(self, conn: Connection, read: list[bytes], seq: SequencedBatch) -> None:
        raise NotImplementedError

    def _integrated(self, read: list[bytes], seq: SequencedBatch) -> None:
        raise NotImplementedError

    def _quarantine(self, read: list[bytes], batch_error: Error) -> None:
        """A batch failed for a reason that is not transient. Retry its rows one by one: if any
        goes in, the failure was the others' own, and each is marked with its error (only its
        appender is told). If none does, the log itself is failing (a head that is not signed,
        say): nothing is marked — the rows stay durable for when it is repaired — and every
        waiting appender, in every process, is told why."""
        log.warning("integration batch failed (%s); retrying its rows one by one", batch_error)
        failed: list[tuple[bytes, Error]] = []
        refused: list[tuple[bytes, Error]] = []
        submitted: dict[bytes, tuple[object, object]] = {}  # each row's MAC and time, as read
        integrated = 0
        for digest in read:

            def one(conn: Connection, d: bytes = digest) -> list[Submission]:
                row = conn.exec_driver_sql(
                    "SELECT body_type, content, mac, submitted FROM pending WHERE digest = %s "
                    "AND done_at IS NULL AND error IS NULL",
                    (d,),
                ).first()
                if row is None:
                    raise NothingPending
                submitted[d] = (row[2], row[3])
                return [
                    submission(
                        d,
                        row[0],
                        bytes(row[1]),
                        row[2],
                        self._mac_key,
                        submitted=row[3],
                        now=time.time(),
                    )
                ]

            def done(conn: Connection, seq: SequencedBatch, d: bytes = digest) -> None:
                self._finish(conn, [d], seq)

            try:
                seq = self._store.sequence(one, self._origin, self._signer, self._clock, after=done)
                self._integrated([digest], seq)
                integrated += 1
            except NothingPending:
                continue
            except RefusedValue as e:  # the database refuses a value of this row's, every time
                refused.append((digest, e))
            except (StorageError, Overloaded):
                break  # transient: leave the rest pending
            except Error as e:
                failed.append((digest, e))
        for digest, why in refused:  # its own fault whether or not another row went in
            self._mark_failed(digest, submitted[digest], why)
        if integrated:
            for digest, why in failed:
                self._mark_failed(digest, submitted[digest], why)
        elif failed:
            self._broadcast_failure(failed[0][1])
            self._stop.wait(RETRY_SECONDS)

    def _broadcast_failure(self, e: Error) -> None:
        """Tell every process's waiter that integration fails for the whole log (authenticated:
        :func:`~ledger.pending_acks.sign_failure`)."""
        size = 0  # unknown: the window and the single use still bound it
        with suppress(Exception), self._store.engine.connect() as conn:
            size = int(conn.exec_driver_sql(_REACHED).scalar_one())
        body = sign_failure(self._ack_key, self._schema, error_text(e)[:4000], time.time(), size)
        self._notify(INTEGRATED_CHANNEL, f"{self._schema}\n{body}")

    def _mark_failed(self, digest: bytes, read: tuple[object, object], e: Error) -> None:
        """Mark the row of ``digest`` as ``read`` (its MAC and submission time: a body submitted
        again since is not this failure's) failed with ``e``, authenticated for that submission
        (:func:`sign_row_error`)."""
        mac, submitted = read
        with suppress(Error), self._store.engine.begin() as conn:
            at = float(conn.exec_driver_sql(DB_NOW).scalar_one())  # the database's clock
            error = sign_row_error(self._ack_key, self._schema, digest, mac, error_text(e), at)
            conn.exec_driver_sql(
                "UPDATE pending SET error = %s WHERE digest = %s "
                "AND mac IS NOT DISTINCT FROM %s AND submitted IS NOT DISTINCT FROM %s",
                (error, digest, mac, submitted),
            )
            conn.exec_driver_sql("SELECT pg_notify(%s, current_schema())", (INTEGRATED_CHANNEL,))
