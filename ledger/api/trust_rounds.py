"""The trust state for admissions on the event loop, read in shared rounds without blocking it.

Every admission is judged against the trust registry as committed when its request arrived
(:meth:`ledger.log.Ledger.trust`: one query for the registry's version, the state re-read only when
it moved). A DSSE envelope is admitted on the event loop, where that query blocked the loop: on
PostgreSQL a round trip per request, after which the loop waited for the interpreter lock again
behind the sequencer's threads.

So on PostgreSQL the loop awaits a *round*, shared by every request that arrived while the round
before it ran: the version query on an async connection of its own
(:class:`~ledger.registry.probe.AsyncRegistryVersionProbe`), and the state this process holds if
it is that version's; only when the registry moved (or the query failed) is the state read again,
by :meth:`Ledger.trust` in a worker thread. A request is answered only by a round that started
after it arrived, so it sees every registry change committed before it, exactly as before. On
SQLite the query is a local read of about 10 µs: it stays on the loop.
"""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool

from ledger.admission import Trust
from ledger.errors import StorageError
from ledger.log import Ledger
from ledger.registry.probe import AsyncRegistryVersionProbe

__all__ = ["TrustRounds", "trust_rounds"]


def trust_rounds(ledger: Ledger) -> TrustRounds | None:
    """The rounds a server's DSSE admissions await: on PostgreSQL, where the version query is a
    round trip; None on SQLite (a local read of microseconds, cheaper on the loop)."""
    engine = ledger.store.engine
    if engine.dialect.name != "postgresql":
        return None
    return TrustRounds(ledger, AsyncRegistryVersionProbe(engine))


class TrustRounds:
    """``await trust()``: the trust state as committed at some moment after the call."""

    def __init__(self, ledger: Ledger, probe: AsyncRegistryVersionProbe | None = None) -> None:
        self._ledger, self._probe = ledger, probe
        self._running: asyncio.Future[Trust] | None = None
        self._next: asyncio.Future[Trust] | None = None  # for callers that came during it

    async def trust(self) -> Trust:
        if self._running is None:  # nothing running: a round starts now, after this call
            self._running = asyncio.ensure_future(self._round())
            return await asyncio.shield(self._running)
        if self._next is None:  # the running round began before this call: the next one
            self._next = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self._next)

    async def close(self) -> None:
        if self._probe is not None:
            await self._probe.close()

    async def _round(self) -> Trust:
        try:
            if self._probe is not None:
                try:
                    held = self._ledger.trust_at(await self._probe.version())
                except StorageError:  # Ledger.trust says why (or reads it after all)
                    held = None
                if held is not None:
                    return held
            return await run_in_threadpool(self._ledger.trust)
        finally:
            self._running = None
            waiting, self._next = self._next, None
            if waiting is not None:
                self._running = asyncio.ensure_future(self._round())
                self._running.add_done_callback(lambda done: _settle(waiting, done))


def _settle(target: asyncio.Future[Trust], done: asyncio.Future[Trust]) -> None:
    """Give ``target`` the outcome of the round ``done``."""
    if done.cancelled():
        target.cancel()
    elif (error := done.exception()) is not None:
        target.set_exception(error)
    else:
        target.set_result(done.result())
    if target.done() and not target.cancelled():
        target.exception()  # retrieved: no "never retrieved" warning if every caller left
