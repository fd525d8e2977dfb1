"""Batching appends: many callers, one writer, one checkpoint per batch.

Callers :meth:`Sequencer.submit` validated bodies and get a future. One worker thread drains the
queue into batches, has the store sequence each batch in a single transaction (which signs a
checkpoint covering it), computes every caller's inclusion proof against that checkpoint, and only
then resolves the futures. A full queue raises :class:`~ledger.errors.Overloaded` at once instead of
queueing without bound.

Group commit: a batch's fixed costs (the transaction, the head check, signing the checkpoint,
the commit's fsync) dominate single appends, so the worker waits briefly — at most ``linger``
seconds — for the callers it just answered to come back before it starts the next batch, and
stops waiting the moment they have (see :meth:`Sequencer._gather`). The default,
:data:`DEFAULT_LINGER` (20 ms), is how long a busy HTTP worker takes to bring back the callers of
one batch: its event loop reads and admits their next requests one after another (≈ 0.5 ms of
CPU each, ~32 of them). At 10 ms the deadline cut that cohort in two, and the half left for the
next batch made the p99 (docs/design.md, "Group commit"). A lone caller never waits for it: the
worker lingers only for as many callers as it last answered. Once the write lock is held (after
another process's batch, on a shared SQLite file), the jobs queued meanwhile join the batch
(:meth:`Sequencer._top_up`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.bodies import Submission
from ledger.errors import AppendsFailed, Error, Overloaded
from ledger.note import NoteSigner
from ledger.storage import LedgerStore

__all__ = [
    "DEFAULT_LINGER",
    "AppendResult",
    "Chunk",
    "Job",
    "Outcome",
    "Sequencer",
    "append_in_chunks",
    "chunk_done",
    "gather",
    "queue_chunks",
    "single_done",
]


DEFAULT_LINGER = 0.02  # seconds; `ledger serve`'s LEDGER_LINGER_MS


@dataclass(frozen=True)
class AppendResult:
    """An acknowledged append: durable, integrated, proved and covered by a signed checkpoint."""

    index: int
    leaf_hash: bytes
    inclusion_proof: list[bytes]
    tree_size: int
    checkpoint: str
    duplicate: bool


# One submission's outcome in its chunk: acknowledged, or the error that failed it alone (on
# PostgreSQL the integrator may refuse one row of a batch; see ledger.waiter).
Outcome = AppendResult | Error
Chunk = Future[list[Outcome]]  # a chunk's outcomes in order; its exception: all of it failed


@dataclass
class Job:
    """Submissions that enter one batch together, and how their outcome is delivered."""

    subs: list[Submission]
    done: Callable[[list[Outcome] | BaseException], None]
    queued: float = field(default_factory=time.monotonic)  # when it was submitted
    resubmitted: int = 0  # times a body was queued again (a forged row stood in its place)
    # a resubmission's rows get a later submission time (s) than this, its last submission's:
    # with the same time a row's MAC would be the same, and an error signed for the earlier row
    # would count for the new one (PostgreSQL's shared path)
    after: int = 0


def _deliver(fut: Future[Any], outcome: object) -> None:
    """Hand ``outcome`` to ``fut`` unless its caller cancelled it (an HTTP request that timed
    out, say): that is the caller's business, never the writer's error."""
    try:
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)
    except InvalidStateError:
        pass


def single_done(fut: Future[AppendResult]) -> Callable[[list[Outcome] | BaseException], None]:
    def done(outcome: list[Outcome] | BaseException) -> None:
        _deliver(fut, outcome if isinstance(outcome, BaseException) else outcome[0])

    return done


def chunk_done(fut: Chunk) -> Callable[[list[Outcome] | BaseException], None]:
    def done(outcome: list[Outcome] | BaseException) -> None:
        _deliver(fut, outcome)

    return done


def _queue_full() -> Overloaded:
    return Overloaded("the sequencer queue is full; retry shortly", retry_after=1.0)


def gather(chunks: Sequence[tuple[int, Chunk]]) -> list[AppendResult]:
    """Wait for every chunk ``(size, future)``; raise :class:`AppendsFailed` with every outcome in
    order if any failed (an :class:`AppendResult` per committed submission, the exception for
    each failed one, alone or with its chunk), the first failure as its cause."""
    outcomes: list[AppendResult | BaseException] = []
    for size, f in chunks:
        err = f.exception()  # waits; a failed batch never stops us waiting for the rest
        outcomes.extend(f.result() if err is None else [err] * size)
    AppendsFailed.check(outcomes)
    return [o for o in outcomes if isinstance(o, AppendResult)]


def queue_chunks(
    jobs: queue.Queue[Job | None],
    subs: Sequence[Submission],
    max_batch: int,
    full: Callable[[], Overloaded],
    refused: Callable[[], Overloaded | None] = lambda: None,
) -> list[tuple[int, Chunk]]:
    """Queue ``subs`` in order as jobs of at most ``max_batch`` without blocking, each job's
    ``(size, future)``: the shared body of both writers' ``submit_many``. A chunk the writer
    ``refused`` (its error), or that does not fit the queue (``full()``), fails on its future."""
    chunks: list[tuple[int, Chunk]] = []
    for lo in range(0, len(subs), max_batch):
        fut: Chunk = Future()
        part = list(subs[lo : lo + max_batch])
        error = refused()
        if error is None:
            try:
                jobs.put_nowait(Job(part, chunk_done(fut)))
            except queue.Full:
                error = full()
        if error is not None:
            fut.set_exception(error)
        chunks.append((len(part), fut))
    return chunks


def append_in_chunks(
    jobs: queue.Queue[Job | None],
    subs: Sequence[Submission],
    max_batch: int,
    queued: Callable[[int], None] = lambda _: None,
) -> list[AppendResult]:
    """Queue ``subs`` as jobs of at most ``max_batch`` (blocking for queue space; ``queued``
    with each job's size after it) and :func:`gather` them: the shared body of both writers'
    ``append_many``."""
    chunks: list[tuple[int, Chunk]] = []
    for lo in range(0, len(subs), max_batch):
        fut: Chunk = Future()
        part = list(subs[lo : lo + max_batch])
        jobs.put(Job(part, chunk_done(fut)))
        queued(len(part))
        chunks.append((len(part), fut))
    return gather(chunks)


class Sequencer:
    """The single writer of one ledger in this process."""

    def __init__(
        self,
        store: LedgerStore,
        origin: str,
        signer: NoteSigner,
        clock: Callable[[], datetime],
        *,
        max_batch: int = 1000,
        max_pending: int = 20_000,
        linger: float = DEFAULT_LINGER,
    ) -> None:
        self._store, self._origin, self._signer, self._clock = store, origin, signer, clock
        self._max_batch, self._linger = max_batch, linger
        # Jobs answered by the last batch plus those queued when it answered: callers that may be
        # back soon, and the batch size worth a brief wait (see _gather).
        self._expected = 0
        # Bounded in jobs; a bulk job holds at most max_batch submissions.
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_pending)
        self._held: Job | None = None  # a job that did not fit the last batch
        # While the worker lingers it sleeps until ``_wanted`` jobs are queued (``_arrived``),
        # not until each next one: a wake-up per job cost each append a thread switch
        self._wanted = 0
        self._arrived = threading.Event()
        self._closing = False
        self._worker = threading.Thread(target=self._run, name="ledger-sequencer", daemon=True)
        self._worker.start()

    def submit(self, sub: Submission) -> Future[AppendResult]:
        fut: Future[AppendResult] = Future()
        try:
            self._queue.put_nowait(Job([sub], single_done(fut)))
        except queue.Full:
            raise _queue_full() from None
        self._wake_if_enough()
        return fut

    def submit_many(self, subs: Sequence[Submission]) -> list[tuple[int, Chunk]]:
        """Queue ``subs`` in order as jobs of at most ``max_batch`` and return each job's
        ``(size, future)`` at once: one job, future and wake-up per chunk instead of per body
        (an HTTP batch's entries). A chunk that does not fit the queue fails with
        :class:`~ledger.errors.Overloaded` on its future, as :meth:`submit` raises it."""
        chunks = queue_chunks(self._queue, subs, self._max_batch, _queue_full)
        self._wake_if_enough(len(subs))
        return chunks

    def _wake_if_enough(self, entries: int = 1) -> None:
        """Wake the lingering worker if the jobs it waits for are queued, or if this job holds
        more than one entry: the worker then counts entries, which may fill or overflow its
        batch before the jobs are all there (queued singles are never more entries than jobs,
        and the worker asks for no more jobs than its batch has room for)."""
        wanted = self._wanted
        if wanted and (entries > 1 or self._queue.qsize() >= wanted):
            self._arrived.set()

    def append_many(self, subs: Sequence[Submission]) -> list[AppendResult]:
        """Submit many and wait for all (blocking for queue space rather than refusing).

        Returns only once every submission has finished. If any failed, raises
        :class:`~ledger.errors.AppendsFailed` carrying every outcome in order (an
        :class:`AppendResult` for each committed one, the exception for each failed one), with
        the first failure as its cause: the caller learns exactly which were committed.
        """
        return append_in_chunks(self._queue, subs, self._max_batch, self._wake_if_enough)

    def alive(self) -> bool:
        return self._worker.is_alive()

    def close(self) -> None:
        self._closing = True  # a worker about to linger does not
        self._queue.put(None)
        self._arrived.set()  # a lingering worker takes the stop at once
        self._worker.join()

    def _run(self) -> None:
        while True:
            first = self._held or self._queue.get()
            self._held = None
            if first is None:
                return
            batch, stop = self._gather(first)
            stop = self._integrate(batch) or stop
            if stop:
                if self._held is not None:
                    self._integrate([self._held])
                return

    def _gather(self, first: Job) -> tuple[list[Job], bool]:
        """``first`` and the jobs that join it: every one already queued, then — while fewer
        jobs have arrived than the last batch answered plus those that were queued when it
        answered — any that come within ``linger`` of the queue running dry. Returns the batch
        and whether :meth:`close` was asked for (a job that would overflow ``max_batch`` is held
        over)."""
        batch, expected = [first], self._expected
        deadline: float | None = None
        while True:
            room, stop = self._take(batch)
            if stop or not room or len(batch) >= expected or self._linger <= 0:
                return batch, stop
            now = time.perf_counter()
            if deadline is None:
                deadline = now + self._linger
            if now >= deadline:
                return batch, False
            # singles are one entry a job: never wait for more than the batch has room for
            self._wait_for(min(expected - len(batch), room), deadline - now)

    def _take(self, batch: list[Job]) -> tuple[int, bool]:
        """Move the jobs queued now into ``batch``, in order, while they fit in ``max_batch``;
        one that does not is held over, and closes the batch. Never waits. Returns the room left
        (0: the batch is full or closed) and whether :meth:`close` was asked for."""
        count = sum(len(job.subs) for job in batch)
        while count < self._max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return self._max_batch - count, False
            if job is None:
                return 0, True
            if count + len(job.subs) > self._max_batch:
                self._held = job
                return 0, False
            batch.append(job)
            count += len(job.subs)
        return 0, False

    def _wait_for(self, jobs: int, timeout: float) -> None:
        """Sleep until ``jobs`` jobs are queued or ``timeout`` passes (submitters wake us only
        then: :meth:`_wake_if_enough`). Checked after announcing, so no arrival is missed."""
        self._arrived.clear()
        self._wanted = jobs
        # the queue was empty when the worker chose to wait: anything there now came before the
        # announcement, maybe unseen by its submitter, so take it first
        if self._queue.empty() and not self._closing:
            self._arrived.wait(timeout)
        self._wanted = 0

    def _top_up(self, batch: list[Job]) -> bool:
        """Add to ``batch`` the jobs queued since it was gathered (:meth:`_take`). Called once
        the write lock is held: those that came while another process held it ride along
        instead of waiting a whole batch more. Returns whether :meth:`close` was asked for."""
        if self._held is not None:
            return False  # an older job waits: nothing may pass it
        return self._take(batch)[1]

    def _integrate(self, batch: list[Job]) -> bool:
        """Sequence ``batch`` (topped up under the write lock) and answer its jobs. Returns
        whether :meth:`close` was asked for meanwhile."""
        stop = False

        def under_lock(_conn: object) -> list[Submission]:
            nonlocal stop
            stop = self._top_up(batch)
            return [s for job in batch for s in job.subs]

        try:
            seq = self._store.sequence(under_lock, self._origin, self._signer, self._clock)
        except Exception as e:  # the batch's callers get the error; the worker serves the next
            self._expected = len(batch) + self._queue.qsize()
            for job in batch:
                job.done(e)
            return stop
        results: list[Outcome] = [
            AppendResult(index, leaf, proof, seq.tree_size, seq.checkpoint, not new)
            for index, new, proof, leaf in zip(
                seq.indices, seq.new, seq.proofs, seq.leaf_hashes, strict=True
            )
        ]
        self._expected = len(batch) + self._queue.qsize()  # before any caller can come back
        at = 0
        for job in batch:
            job.done(results[at : at + len(job.subs)])
            at += len(job.subs)
        return stop
