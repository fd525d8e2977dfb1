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

__all__ = ["AppendResult", "Sequencer"]


@dataclass(frozen=True)
class AppendResult:
    """An acknowledged append: durable, integrated, proved and covered by a signed checkpoint."""

    index: int
    leaf_hash: bytes
    inclusion_proof: list[bytes]
    tree_size: int
    checkpoint: str
    duplicate: bool


_Item = tuple[Submission, "Future[AppendResult]"]


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
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=max_pending)
        self._worker = threading.Thread(target=self._run, name="ledger-sequencer", daemon=True)
        self._worker.start()

    def submit(self, sub: Submission) -> Future[AppendResult]:
        fut: Future[AppendResult] = Future()
        try:
            self._queue.put_nowait((sub, fut))
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
        futures: list[Future[AppendResult]] = []
        for sub in subs:
            fut: Future[AppendResult] = Future()
            self._queue.put((sub, fut))
            futures.append(fut)
        outcomes: list[AppendResult | BaseException] = []
        for f in futures:
            err = f.exception()  # waits; a failed batch never stops us waiting for the rest
            outcomes.append(f.result() if err is None else err)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            raise AppendsFailed(
                f"{len(failed)} of {len(outcomes)} appends failed "
                f"({len(outcomes) - len(failed)} committed): {failed[0]}",
                outcomes,
            ) from failed[0]
        return [o for o in outcomes if isinstance(o, AppendResult)]

    def alive(self) -> bool:
        return self._worker.is_alive()

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._integrate(batch)
            if stop:
                return

    def _integrate(self, batch: list[_Item]) -> None:
        try:
            seq = self._store.sequence(
                [s for s, _ in batch], self._origin, self._signer, self._clock
            )
        except (
            Exception
        ) as e:  # the batch's callers get the error; the worker serves the next batch
            for _, fut in batch:
                fut.set_exception(e)
            return
        results = zip(batch, seq.indices, seq.new, seq.proofs, seq.leaf_hashes, strict=True)
        for (_, fut), index, new, proof, leaf in results:
            fut.set_result(AppendResult(index, leaf, proof, seq.tree_size, seq.checkpoint, not new))
