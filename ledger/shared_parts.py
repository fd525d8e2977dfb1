"""What the halves of PostgreSQL's shared write path share.

:class:`ledger.integrator.SharedSequencer` is assembled from :class:`ledger.waiter.Waiting` (the
waiter thread), :class:`ledger.lease.LeaseHolder` (the integrator thread) and
:class:`ledger.quarantine.Quarantine` (a failed batch). :class:`SharedParts` declares the state
and the methods each of them uses but the sequencer itself (or another half) defines.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ledger.errors import Error
from ledger.sequencer import AppendResult
from ledger.storage import LedgerStore

__all__ = ["SharedParts"]


class SharedParts:
    """Declarations only: see the module docstring."""

    _store: LedgerStore
    _stop: threading.Event
    _schema: str

    def _session(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        raise NotImplementedError

    def _notified(
        self, conn: psycopg.Connection[Any], timeout: float, *, collect: bool = False
    ) -> bool:
        raise NotImplementedError

    def _notify(self, channel: str, payload: str) -> None:
        raise NotImplementedError

    def _oldest_wait(self) -> float:
        raise NotImplementedError

    def _fail_all(self, error: BaseException, *, pending_only: bool = False) -> None:
        raise NotImplementedError

    def _settle(
        self, digest: bytes, result: AppendResult | None = None, error: Error | None = None
    ) -> None:
        raise NotImplementedError
