"""What PostgreSQL's pending rows say, read straight from the table (tests only)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from ledger.lease import LeaseHolder
from ledger.log import Ledger


def pending_error(lg: Ledger, digest: bytes) -> str | None:
    """The error a failed pending row of ``digest`` records, or None."""
    with lg.store.engine.connect() as conn:
        return conn.execute(
            text("SELECT error FROM pending WHERE digest = :d AND error IS NOT NULL"), {"d": digest}
        ).scalar_one_or_none()


def hold_up_integration(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """From now on every integration batch waits (up to 30 s) until the returned event is set."""
    real_once = LeaseHolder._integrate_once
    gate = threading.Event()

    def held_up(self: LeaseHolder) -> int:
        gate.wait(30)
        return real_once(self)

    monkeypatch.setattr(LeaseHolder, "_integrate_once", held_up)
    return gate
