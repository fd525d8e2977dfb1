"""What PostgreSQL's pending rows say, read straight from the table (tests only)."""

from __future__ import annotations

from sqlalchemy import text

from ledger.log import Ledger


def pending_error(lg: Ledger, digest: bytes) -> str | None:
    """The error a failed pending row of ``digest`` records, or None."""
    with lg.store.engine.connect() as conn:
        return conn.execute(
            text("SELECT error FROM pending WHERE digest = :d AND error IS NOT NULL"), {"d": digest}
        ).scalar_one_or_none()
