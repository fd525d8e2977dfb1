"""The vocabulary of PostgreSQL's pending rows (see :mod:`ledger.integrator`): how a row is
authenticated and read back, how a notification names what was integrated, how errors travel
between processes as text, and one job's wait for its acknowledgements."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast, get_args

from ledger import errors
from ledger.bodies import Submission
from ledger.errors import Error, IntegrityError, StorageError
from ledger.note import NoteSigner
from ledger.record import BodyType
from ledger.sequencer import AppendResult, Job


class NothingPending(Exception):
    """Raised inside the integration transaction to end it early: there is nothing to do."""


@dataclass
class Wait:
    """One job's submissions waiting for integration. It completes once every submission is
    acknowledged *and* the submitter has recorded which of them it made pending (``ready``)."""

    job: Job
    deadline: float
    results: list[AppendResult | Error | None] = field(default_factory=list)
    duplicate: list[bool] = field(default_factory=list)
    remaining: int = 0
    ready: bool = False
    finished: bool = False
    # the submission time (s) its rows were inserted with, once ready: with the pending key it
    # gives the MAC of each row this wait made (one an error must be written for to count)
    submitted: int | None = None
    inserted_at: float = 0.0  # when its insert began, by the database's clock
    # the waiter thread, the integrator thread (the lease holder's own appends) and the
    # submitter all settle waits: each step is atomic
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def resolve(self, position: int, result: AppendResult | Error) -> None:
        """Settle one submission: its acknowledgement, or the error that failed it alone (the
        others of the job are settled on their own)."""
        with self.lock:
            if self.finished or self.results[position] is not None:
                return
            self.results[position] = result
            self.remaining -= 1
            self.complete()

    def complete(self) -> None:
        with self.lock:
            if self.finished or self.remaining or not self.ready:
                return
            self.finished = True
            results = cast(list[AppendResult | Error], self.results)
        self.job.done(
            [
                r
                if isinstance(r, Error)
                else AppendResult(
                    r.index, r.leaf_hash, r.inclusion_proof, r.tree_size, r.checkpoint, d
                )
                for r, d in zip(results, self.duplicate, strict=True)
            ]
        )

    def fail(self, error: BaseException) -> None:
        """Fail what is left of the job (its insert failed, its deadline passed, the log
        failed, the process is closing). Once its insert has committed and some of its bodies
        are settled, those keep their outcomes and only the open ones get ``error`` (as a ledger
        :class:`~ledger.errors.Error`, so each body has one); otherwise the whole job fails with
        ``error`` (a chunk's future raises it)."""
        with self.lock:
            if self.finished:
                return
            partial = self.ready and any(r is not None for r in self.results)
            if partial:
                told = error if isinstance(error, Error) else as_error(error)
                for i, r in enumerate(self.results):
                    if r is None:
                        self.results[i] = told
                self.remaining = 0
            else:
                self.finished = True
        if partial:
            self.complete()
        else:
            self.job.done(error)


def as_error(e: BaseException) -> Error:
    told = StorageError(f"append failed: {type(e).__name__}: {e}")
    told.__cause__ = e
    return told


_BAD_ROW = "pending row sha256:"  # how every BadRow's message begins


class BadRow(IntegrityError):
    """A pending row that is not what an appender with the ledger's key wrote."""


def names_bad_row(error: str) -> bool:
    """Whether a failed row's error text (:func:`error_text`) is a :class:`BadRow`'s: the row
    was not an appender's (planted, stale, another body), so an appender whose own insert did
    not write it is not the one that failed."""
    return error.partition(": ")[2].startswith(_BAD_ROW)


MAX_PENDING_AGE_SECONDS = 300  # a row older than this (by its MAC'd submission time) is stale


def submission(
    digest: bytes,
    body_type: str,
    content: bytes,
    mac: bytes,
    key: bytes,
    *,
    submitted: int | None,
    now: float,
) -> Submission:
    """A pending row as a submission, once it is what an appender holding the ledger's key wrote,
    recently: its MAC verifies over digest, body type and submission time (a database writer
    without the key file cannot plant a row the ledger would sign into the log), that time is
    within :data:`MAX_PENDING_AGE_SECONDS` of ``now`` (a row held back or revived later — after
    its signer was revoked, say — is not signed in; its appender gave up long before), and its
    body is the one its digest names."""
    if submitted is None or not hmac.compare_digest(
        row_mac(key, digest, body_type, submitted), bytes(mac or b"")
    ):
        raise BadRow(f"{_BAD_ROW}{digest.hex()} was not written by a ledger appender")
    if abs(now - submitted) > MAX_PENDING_AGE_SECONDS:
        raise BadRow(
            f"{_BAD_ROW}{digest.hex()} is stale (submitted {int(now - submitted)} s "
            f"ago; the limit is {MAX_PENDING_AGE_SECONDS} s): submit the body again"
        )
    if hashlib.sha256(content).digest() != digest:
        raise BadRow(f"{_BAD_ROW}{digest.hex()} holds another body")
    if body_type not in get_args(BodyType):
        raise BadRow(f"{_BAD_ROW}{digest.hex()} has an unknown body type")
    return Submission(content, cast(BodyType, body_type), digest)


def row_mac(key: bytes, digest: bytes, body_type: str, submitted: int) -> bytes:
    message = digest + b"\n" + body_type.encode() + b"\n" + str(submitted).encode()
    return hmac.new(key, message, hashlib.sha256).digest()


def pending_mac_key(signer: NoteSigner) -> bytes:
    """The key pending rows are authenticated with: derived from the checkpoint key (Ed25519
    signatures are deterministic), so every process that may append has it and nobody else."""
    return hashlib.sha256(signer.sign(b"provenance-ledger pending-row MAC key v1")).digest()


PREFIX = 4  # bytes of a digest named in an integration notification
PENDING_CHANNEL = "ledger_pending"  # NOTIFY when rows became pending (wakes the integrator)
INTEGRATED_CHANNEL = "ledger_integrated"  # NOTIFY after each batch (and to fail every waiter)
IDLE_POLL_SECONDS = 0.2  # the integrator's and waiter's fallback poll when no NOTIFY arrives
RETRY_SECONDS = 0.5  # pause after a database error before a thread tries again
MAX_HINT = 7000  # bytes of payload naming digests
MAX_PAYLOAD = 7900  # bytes of a whole notification's payload (PostgreSQL allows under 8000)


HINT_MARK = "~"  # a notification's element naming digests: this and base64 of their prefixes


def hint(digests: Sequence[bytes]) -> str:
    """The notification suffix naming ``digests`` by their first :data:`PREFIX` bytes, packed
    as base64 (5.3 characters a digest: a batch of up to 1,312 is named; "\t*", every waiter
    looks, past that). Until 2026-12-01 each was 8 hex digits and a comma (9 characters): a
    batch of over 777 named everything, and with ``:batch`` appends every batch was one that
    had each process's waiter look up every body it waited for."""
    if not digests:
        return "\t"
    packed = HINT_MARK + base64.b64encode(b"".join(d[:PREFIX] for d in digests)).decode()
    return "\t" + packed if len(packed) < MAX_HINT else "\t*"


def hinted(elements: Sequence[str]) -> set[bytes]:
    """The digest prefixes a notification's ``elements`` name (:func:`hint`'s; an element in
    the earlier form, 8 hex digits, is read too, so a waiter still understands an integrator of
    the release before while both run). What is neither names nothing."""
    out: set[bytes] = set()
    for e in elements:
        if e.startswith(HINT_MARK):
            with suppress(binascii.Error, ValueError):
                packed = base64.b64decode(e[len(HINT_MARK) :], validate=True)
                out.update(packed[i : i + PREFIX] for i in range(0, len(packed), PREFIX))
        elif len(e) == 2 * PREFIX:
            with suppress(ValueError):
                out.add(bytes.fromhex(e))
    return out


def error_text(e: BaseException) -> str:
    """``ClassName: message``, naming the nearest class of :mod:`ledger.errors`."""
    name = next((c.__name__ for c in type(e).__mro__ if getattr(errors, c.__name__, None) is c), "")
    return f"{name or 'StorageError'}: {e}"


def error_from_text(text: str) -> Error:
    """The ledger error a failed pending row records (``ClassName: message``)."""
    name, _, message = text.partition(": ")
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, Error) and cls is not errors.AppendsFailed:
        with suppress(TypeError):
            return cls(message)
    return StorageError(text)


# A row marked failed is replaced by the new submission (which may be the real body of a digest
# someone squatted on with other bytes).
# Any other row of the digest is replaced too when the body is not in the log: one that carries
# an acknowledgement then is not the integrator's (which logs the body in the same transaction).
# "Not in the log" is read in the statement's snapshot, but ON CONFLICT judges the row's latest
# committed version (READ COMMITTED): a batch that logged the body and acknowledged its row after
# the snapshot was taken would look like a squatter's acknowledgement, and the row would be made
# pending again — its submitter told "new" beside the one whose row was logged. So a row is
# replaced only if it is the very version the snapshot sees (same ctid: a tuple does not move
# without an update): no batch, quarantine or other submitter has touched it since the body was
# found not logged, and the row's state and the log's agree. Whoever finds a row changed since
# is a duplicate of the submission that changed it. This decides "new" in the database, in the
# same one statement, for every process at once.
# One statement for the whole batch (the rows as arrays), and its own wake-up: on a
# submit_connection() (whose commits do not wait for their WAL flush, see there) the NOTIFY may
# ride in the same transaction — the integrator if any row became pending, else every waiter
# (the bodies are logged already).
_INSERT_PENDING = (
    "WITH ins AS ("
    "INSERT INTO pending (digest, body_type, content, mac, submitted)"
    " SELECT v.digest, v.body_type, v.content, v.mac, v.submitted FROM {rows}"
    # The logged digests among these, found by one index scan (an InitPlan, whatever the plan
    # cache guesses of the arrays' length: never a scan of records).
    " WHERE v.digest <> ALL (ARRAY(SELECT body_digest FROM records WHERE body_digest {logged}))"
    " ORDER BY v.n"
    " ON CONFLICT (digest) DO UPDATE SET error = NULL, body_type = EXCLUDED.body_type,"
    " content = EXCLUDED.content, mac = EXCLUDED.mac, submitted = EXCLUDED.submitted,"
    " idx = NULL, leaf = NULL, proof = NULL, cp_size = NULL, done_at = NULL"
    " WHERE (pending.error IS NOT NULL OR pending.idx IS NOT NULL OR pending.done_at IS NOT NULL)"
    " AND pending.ctid = (SELECT s.ctid FROM pending s WHERE s.digest = pending.digest)"
    " RETURNING digest)"
    # and the database's time (s) the statement began: before its rows could be read, so before
    # any failure of them was signed (pending_acks.sign_row_error, by the database's clock too)
    " SELECT digest, NULL::float8 FROM ins UNION ALL SELECT NULL, db_now FROM (SELECT pg_notify("
    "CASE WHEN EXISTS (SELECT FROM ins) THEN %(pending)s ELSE %(integrated)s END, %(payload)s),"
    " extract(epoch FROM statement_timestamp())::float8 AS db_now) AS woken"
)
_COLUMNS = "v(digest, body_type, content, mac, submitted, n)"
# Many rows as arrays; one row (a single append, the common case) as plain parameters, which the
# driver adapts in a third of the client CPU of five one-element arrays.
_INSERT_MANY = _INSERT_PENDING.format(
    rows="unnest(%(d)b::bytea[], %(t)s::text[], %(c)b::bytea[], %(m)b::bytea[], %(s)s::bigint[])"
    f" WITH ORDINALITY AS {_COLUMNS}",
    logged="= ANY(%(d)b::bytea[])",
)
_INSERT_ONE = _INSERT_PENDING.format(
    rows=f"(VALUES (%(d)s::bytea, %(t)s::text, %(c)s::bytea, %(m)s::bytea, %(s)s::bigint, 1))"
    f" AS {_COLUMNS}",
    logged="= %(d)s",
)


class Inserted(NamedTuple):
    """What :func:`insert_pending` did: the digests it made pending, the submission time its
    rows were MAC'd with, and the database's time (s) its statement began."""

    digests: set[bytes]
    submitted: int
    db_time: float


def insert_pending(
    cur: Any, subs: Sequence[Submission], key: bytes, now: int, payload: str
) -> Inserted:
    """Insert ``subs`` as pending rows (skipping bodies already in the log), MAC'd with ``key`` at
    submission time ``now``, and wake whom it concerns with ``payload`` (the integrator if any
    row became pending, else every waiter: the bodies are logged already). One statement: on a
    :func:`submit_connection` one round trip that is also the commit. Returns the digests this
    call made pending (of equal bodies, the first): across every process, exactly one submission
    makes a body pending for the record it gets (see :data:`_INSERT_PENDING`); and when, by the
    database's clock."""
    first: dict[bytes, Submission] = {}
    for s in subs:
        first.setdefault(s.digest, s)
    # In the order given, which is the order they are logged in (pending.seq). So two appenders
    # of the same bodies in different orders can deadlock: PostgreSQL ends one statement, which
    # the submitter sends again (SharedSequencer._insert_pending); sorting here would reorder the
    # log.
    unique = list(first.values())
    params: dict[str, object] = {
        "d": [s.digest for s in unique],
        "t": [s.body_type for s in unique],
        "c": [s.content for s in unique],
        "m": [row_mac(key, s.digest, s.body_type, now) for s in unique],
        "s": [now] * len(unique),
    }
    if len(unique) == 1:
        params = {k: cast(list[object], v)[0] for k, v in params.items()}
    params.update(pending=PENDING_CHANNEL, integrated=INTEGRATED_CHANNEL, payload=payload)
    sql = _INSERT_ONE if len(unique) == 1 else _INSERT_MANY
    rows = cur.execute(sql, params, prepare=True).fetchall()
    db_time = next(float(r[1]) for r in rows if r[0] is None)
    return Inserted({bytes(r[0]) for r in rows if r[0] is not None}, now, db_time)


def submit_connection(connect_kw: dict[str, Any]) -> Any:
    """The submitter's connection: autocommit, and commits that do not wait for their WAL flush
    (the submitter bounds each insert's lock and statement time itself).

    A pending row need not be on disk before its appender waits: nothing is acknowledged from
    it. The acknowledgement comes only after the integrator's batch that logged the body has
    committed *durably*, and that batch read the row, so its commit record follows the row's
    in the WAL; PostgreSQL flushes the WAL in order, so the flush that makes the batch durable
    makes the row durable too (and the batch holds the body's own record and bytes besides).
    What a server crash can lose is only a row not yet integrated, whose appender was not
    acknowledged: it times out, and submitting the same body again is safe. A crash of the
    appender's process loses nothing: the commit is the server's. Not waiting for the flush
    takes one disk flush off every append's path and lets the wake-up ride in the same
    transaction (a NOTIFYing commit holds a database-wide lock until it is done: cheap when the
    commit does not wait for the disk; see :func:`notify_connection`)."""
    import psycopg

    conn = psycopg.connect(**connect_kw, autocommit=True)
    conn.execute("SET synchronous_commit = off")
    return conn


def notify_connection(connect_kw: dict[str, Any]) -> Any:
    """A connection for :func:`notify`: autocommit, and commits that do not wait for the WAL
    flush. In PostgreSQL a transaction that NOTIFYs holds a database-wide lock from its commit
    until the commit is done, WAL flush included, so NOTIFY inside a durable write serialises
    every such write's flush (measured here: 8 clients inserting and notifying in one
    transaction ran 220-700 commits/s, against 2,800-3,900 with the notification sent after the
    commit in a transaction of its own with ``synchronous_commit = off``; docs/benchmarks.md).
    A notification is only a wake-up: one lost in a crash costs its listeners a poll."""
    import psycopg

    conn = psycopg.connect(**connect_kw, autocommit=True)
    conn.execute("SET synchronous_commit = off")
    return conn


def notify(conn: Any, channel: str, payload: str) -> None:
    """Send one notification on a :func:`notify_connection` (after the write it announces has
    committed: a listener may read at once)."""
    conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))
