"""Batching appends: many callers, one writer, one checkpoint per batch.

Callers :meth:`Sequencer.submit` validated bodies and get a future. One worker thread drains the
queue into batches, has the store sequence each batch in a single transaction (which signs a
checkpoint covering it), computes every caller's inclusion proof against that checkpoint, and only
then resolves the futures. A full queue raises :class:`~ledger.errors.Overloaded` at once instead of
queueing without bound.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from ledger.bodies import Submission
from ledger.errors import AppendsFailed, Overloaded
from ledger.note import NoteSigner
from ledger.storage import LedgerStore

__all__ = [
    "AppendResult",
    "Job",
    "Sequencer",
    "append_in_chunks",
    "chunk_done",
    "gather",
    "single_done",
]


@dataclass(frozen=True)
class AppendResult:
    """An acknowledged append: durable, integrated, proved and covered by a signed checkpoint."""

    index: int
    leaf_hash: bytes
    inclusion_proof: list[bytes]
    tree_size: int
    checkpoint: str
    duplicate: bool


@dataclass
class Job:
    """Submissions that enter one batch together, and how their outcome is delivered."""

    subs: list[Submission]
    done: Callable[[list[AppendResult] | BaseException], None]


def single_done(fut: Future[AppendResult]) -> Callable[[list[AppendResult] | BaseException], None]:
    def done(outcome: list[AppendResult] | BaseException) -> None:
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome[0])

    return done


def chunk_done(
    fut: Future[list[AppendResult]],
) -> Callable[[list[AppendResult] | BaseException], None]:
    def done(outcome: list[AppendResult] | BaseException) -> None:
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)

    return done


def gather(chunks: Sequence[tuple[int, Future[list[AppendResult]]]]) -> list[AppendResult]:
    """Wait for every chunk ``(size, future)``; raise :class:`AppendsFailed` with every outcome in
    order if any failed (an :class:`AppendResult` per committed submission, the exception for
    each failed one), the first failure as its cause."""
    outcomes: list[AppendResult | BaseException] = []
    for size, f in chunks:
        err = f.exception()  # waits; a failed batch never stops us waiting for the rest
        outcomes.extend(f.result() if err is None else [err] * size)
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    if failed:
        raise AppendsFailed(
            f"{len(failed)} of {len(outcomes)} appends failed "
            f"({len(outcomes) - len(failed)} committed): {failed[0]}",
            outcomes,
        ) from failed[0]
    return [o for o in outcomes if isinstance(o, AppendResult)]


def append_in_chunks(
    jobs: queue.Queue[Job | None], subs: Sequence[Submission], max_batch: int
) -> list[AppendResult]:
    """Queue ``subs`` as jobs of at most ``max_batch`` (blocking for queue space) and
    :func:`gather` them: the shared body of both writers' ``append_many``."""
    chunks: list[tuple[int, Future[list[AppendResult]]]] = []
    for lo in range(0, len(subs), max_batch):
        fut: Future[list[AppendResult]] = Future()
        part = list(subs[lo : lo + max_batch])
        jobs.put(Job(part, chunk_done(fut)))
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
    ) -> None:
        self._store, self._origin, self._signer, self._clock = store, origin, signer, clock
        self._max_batch = max_batch
        # Bounded in jobs; a bulk job holds at most max_batch submissions.
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_pending)
        self._held: Job | None = None  # a job that did not fit the last batch
        self._worker = threading.Thread(target=self._run, name="ledger-sequencer", daemon=True)
        self._worker.start()

    def submit(self, sub: Submission) -> Future[AppendResult]:
        fut: Future[AppendResult] = Future()
        try:
            self._queue.put_nowait(Job([sub], single_done(fut)))
        except queue.Full:
            raise Overloaded(
                "the sequencer queue is full; retry shortly", retry_after=1.0
            ) from None
        return fut

    def append_many(self, subs: Sequence[Submission]) -> list[AppendResult]:
        """Submit many and wait for all (blocking for queue space rather than refusing).

        Returns only once every submission has finished. If any failed, raises
        :class:`~ledger.errors.AppendsFailed` carrying every outcome in order (an
        :class:`AppendResult` for each committed one, the exception for each failed one), with
        the first failure as its cause: the caller learns exactly which were committed.
        """
        return append_in_chunks(self._queue, subs, self._max_batch)

    def alive(self) -> bool:
        return self._worker.is_alive()

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join()

    def _run(self) -> None:
        while True:
            first = self._held or self._queue.get()
            self._held = None
            if first is None:
                return
            batch, count, stop = [first], len(first.subs), False
            while count < self._max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                if count + len(job.subs) > self._max_batch:
                    self._held = job
                    break
                batch.append(job)
                count += len(job.subs)
            self._integrate(batch)
            if stop:
                if self._held is not None:
                    self._integrate([self._held])
                return

    def _integrate(self, batch: list[Job]) -> None:
        subs = [s for job in batch for s in job.subs]
        try:
            seq = self._store.sequence(subs, self._origin, self._signer, self._clock)
        except Exception as e:  # the batch's callers get the error; the worker serves the next
            for job in batch:
                job.done(e)
            return
        results = [
            AppendResult(index, leaf, proof, seq.tree_size, seq.checkpoint, not new)
            for index, new, proof, leaf in zip(
                seq.indices, seq.new, seq.proofs, seq.leaf_hashes, strict=True
            )
        ]
        at = 0
        for job in batch:
            job.done(results[at : at + len(job.subs)])
            at += len(job.subs)
