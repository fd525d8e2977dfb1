"""The write path the routes share: admit (verify) off the event loop, then sequence and await.

Admission of a Sigstore bundle (milliseconds) and of a batch runs in a worker thread (batches:
at most one per core but one at a time, against one trust state read once per batch); a DSSE
envelope's (tens of microseconds) runs on the loop, where it costs less than the hop; on
PostgreSQL against a trust state read without blocking the loop, in rounds shared by the
requests that arrive together (:mod:`ledger.api.trust_rounds`). The append is
the :class:`~concurrent.futures.Future` the sequencer resolves once the entry is durable and
covered by a signed checkpoint, awaited with :func:`asyncio.wrap_future` (a batch's, all with one
wake-up of the loop) so the event loop never blocks. At most ``max_pending`` appends wait per process; past that :class:`Overloaded` (503).
A registry entry never rides in a batch (its refusal would fail the others): it is appended on its
own in a worker thread, re-checked against the registry under the write lock.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from typing import Any

from starlette.concurrency import run_in_threadpool

from ledger.admission import Admitted, Trust
from ledger.api.metrics import Metrics
from ledger.api.trust_rounds import TrustRounds
from ledger.bodies import MAX_BODY_BYTES, Submission
from ledger.errors import Error, Overloaded
from ledger.log import Ledger
from ledger.sequencer import AppendResult, Chunk

__all__ = ["WriteService", "admission_threads"]

BUNDLE_MARK = b"application/vnd.dev.sigstore.bundle"


class WriteService:
    def __init__(
        self,
        ledger: Ledger,
        metrics: Metrics,
        *,
        max_pending: int,
        retry_after: float,
        max_body_bytes: int = MAX_BODY_BYTES,
        rounds: TrustRounds | None = None,
    ) -> None:
        self._ledger, self._metrics = ledger, metrics
        self._max_body_bytes = max_body_bytes  # every body, single or in a batch
        self._max_pending, self._retry_after = max_pending, retry_after
        self._pending = 0
        self._admitting = asyncio.Semaphore(admission_threads(os.cpu_count()))
        self._rounds = rounds  # None: DSSE admissions read the trust state on the loop

    async def close(self) -> None:
        if self._rounds is not None:
            await self._rounds.close()

    async def append(self, body: bytes) -> AppendResult:
        """Admit one body and wait for its acknowledged proof."""
        if BUNDLE_MARK in body:  # a Sigstore bundle check takes milliseconds: off the loop
            admitted = await run_in_threadpool(self._admit, body)
        else:  # a DSSE envelope's key check takes tens of microseconds: a thread hop costs more
            trust = None if self._rounds is None else await self._rounds.trust()
            admitted = self._admit(body, trust)
        return await self._sequence(admitted)

    async def append_many(self, bodies: Sequence[bytes]) -> list[AppendResult | Error]:
        """Each body's own result or error; bodies refused at admission never reach the queue."""
        async with self._admitting:
            admitted = await run_in_threadpool(
                self._ledger.admit_many, bodies, max_bytes=self._max_body_bytes
            )
        out: list[AppendResult | Error | None] = [None] * len(admitted)
        alone: list[Coroutine[Any, Any, None]] = []  # registry entries: each on its own
        at: list[int] = []  # where each queued submission's result goes
        subs: list[Submission] = []
        for i, a in enumerate(admitted):  # queued in order, as single appends would be
            if isinstance(a, Error):
                out[i] = a
            elif a.registry_op is not None:
                alone.append(self._sequence_into(out, i, a))
            elif self._pending >= self._max_pending:
                out[i] = self._overloaded()
            else:
                at.append(i)
                subs.append(a.submission)
                self._pending += 1
        chunks = self._queue(subs, at, out, alone)
        queued = sum(size for size, _ in chunks)
        start = time.perf_counter()
        done_at = [0.0] * len(chunks)
        self._metrics.queue_depth.inc(queued)
        try:
            await asyncio.gather(_all_done(list(enumerate(f for _, f in chunks)), done_at), *alone)
        finally:
            self._pending -= queued
            self._metrics.queue_depth.dec(queued)
        lo = 0
        for c, (size, fut) in enumerate(chunks):
            failure = fut.exception()
            if failure is not None and not isinstance(failure, Error):
                raise failure
            results: list[AppendResult | Error] = (
                [failure] * size if isinstance(failure, Error) else list(fut.result())
            )
            for i, result in zip(at[lo : lo + size], results, strict=True):
                out[i] = result
                if isinstance(result, AppendResult):
                    self._metrics.acknowledged(
                        result.tree_size, result.duplicate, done_at[c] - start
                    )
            lo += size
        answered = [r for r in out if r is not None]
        assert len(answered) == len(out)  # every entry has its result or error
        return answered

    def _queue(
        self,
        subs: list[Submission],
        at: list[int],
        out: list[AppendResult | Error | None],
        alone: list[Coroutine[Any, Any, None]],
    ) -> list[tuple[int, Chunk]]:
        """Queue a batch's admitted attestations as one job per chunk (not per entry: one future,
        one queue slot, one wake-up each), counted in ``_pending`` already. If the writer does
        not start, nothing was queued: the count goes back and each entry ``at`` gets the error,
        as refused entries get theirs (a defect is raised, the registry entries not run)."""
        if not subs:
            return []
        try:
            return self._ledger.submit_many(subs)
        except BaseException as e:
            self._pending -= len(subs)
            if not isinstance(e, Error):
                for c in alone:
                    c.close()  # never awaited
                raise
            for i in at:
                out[i] = e
            return []

    async def _sequence_into(
        self, out: list[AppendResult | Error | None], i: int, admitted: Admitted
    ) -> None:
        try:
            out[i] = await self._sequence(admitted)
        except Error as e:
            out[i] = e

    def _overloaded(self) -> Overloaded:
        return Overloaded(f"{self._pending} appends are waiting; retry shortly", self._retry_after)

    def _admit(self, body: bytes, trust: Trust | None = None) -> Admitted:
        return self._ledger.admit(body, max_bytes=self._max_body_bytes, trust=trust)

    async def _sequence(self, admitted: Admitted) -> AppendResult:
        if admitted.registry_op is not None:  # rare: on its own, re-checked under the write lock
            start = time.perf_counter()
            result = await run_in_threadpool(self._ledger.append_registry, admitted)
            self._metrics.acknowledged(
                result.tree_size, result.duplicate, time.perf_counter() - start
            )
            return result
        if self._pending >= self._max_pending:
            raise self._overloaded()
        start = time.perf_counter()
        fut: Future[AppendResult] = self._ledger.submit(admitted)
        self._pending += 1
        self._metrics.queue_depth.inc()
        try:
            result = await asyncio.wrap_future(fut)
        finally:
            self._pending -= 1
            self._metrics.queue_depth.dec()
        self._metrics.acknowledged(result.tree_size, result.duplicate, time.perf_counter() - start)
        return result


def admission_threads(cores: int | None) -> int:
    """Batches admitted at once: one per core but the one the event loop and the sequencer
    share, and at least one. Forty (the thread pool) only fight over the GIL — in-process 32
    threads cost 640 µs of CPU per entry against 2 threads' 386 µs — and on 2 cores a second
    admitting thread, preempted by the loop and the writer, cost more than it verified:
    ``serve_bench batch100_sqlite`` with 1 against 2, alternately, 0.81-0.96x server CPU per
    entry and 1.01-1.83x entries/s (docs/benchmarks.md, 2026-11-30 12:28)."""
    return max(1, (cores or 1) - 1)


async def _all_done(queued: Sequence[tuple[int, Future[Any]]], done_at: list[float]) -> None:
    """Wait for every queued chunk of a batch with one wake-up of the event loop (the last one
    to resolve), not one ``asyncio.wrap_future`` and task per chunk; ``done_at[i]``: when chunk
    ``i`` resolved. Cancelled (the client went away): the appends still queued are cancelled, as
    ``wrap_future`` would."""
    if not queued:
        return
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    left, lock = [len(queued)], threading.Lock()

    def wake() -> None:
        if not waiter.done():
            waiter.set_result(None)

    def one_done(i: int) -> Callable[[Future[Any]], None]:
        def done(_: Future[Any]) -> None:
            done_at[i] = time.perf_counter()
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                loop.call_soon_threadsafe(wake)

        return done

    for i, fut in queued:
        fut.add_done_callback(one_done(i))
    try:
        await waiter
    except asyncio.CancelledError:
        for _, fut in queued:
            fut.cancel()
        raise
