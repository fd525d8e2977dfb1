"""The PostgreSQL lease holder's group commit (ledger.lease.LeaseHolder._gathered): after a
batch, it waits briefly for as many submitter commits as the batch was gathered from, starting
the moment they are there, and counts only its own ledger's notifications."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from ledger import lease
from ledger.lease import LeaseHolder
from ledger.pending import PENDING_CHANNEL
from tests.conftest import pg_conninfo


@pytest.fixture
def conns(pg_url: str) -> Iterator[tuple[psycopg.Connection[object], psycopg.Connection[object]]]:
    listener = psycopg.connect(pg_conninfo(pg_url), autocommit=True)
    sender = psycopg.connect(pg_conninfo(pg_url), autocommit=True)
    listener.execute(f"LISTEN {PENDING_CHANNEL}")
    try:
        yield listener, sender
    finally:
        listener.close()
        sender.close()


def _holder() -> LeaseHolder:
    holder = LeaseHolder.__new__(LeaseHolder)
    holder._schema = "ledger_a"
    return holder


def _notify(sender: psycopg.Connection[object], payload: str, after: float = 0.0) -> None:
    def send() -> None:
        time.sleep(after)
        sender.execute("SELECT pg_notify(%s, %s)", (PENDING_CHANNEL, payload))

    threading.Thread(target=send).start()


def test_the_next_batch_waits_for_as_many_commits_as_the_last_and_no_longer(
    conns: tuple[psycopg.Connection[object], psycopg.Connection[object]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listener, sender = conns
    monkeypatch.setattr(lease, "GATHER_SECONDS", 0.5)
    holder = _holder()
    _notify(sender, "ledger_a")  # one came while the last batch ran
    time.sleep(0.1)
    for i in range(3):  # and the three it answered come back, one by one
        _notify(sender, "ledger_a", after=0.02 * (i + 1))
    started = time.monotonic()
    assert holder._gathered(listener, 3) == 4
    assert time.monotonic() - started < 0.4, "it waited out the window though all were there"
    # a lone appender's commit is awaited for the window at most
    started = time.monotonic()
    assert holder._gathered(listener, 1) == 0
    assert 0.45 < time.monotonic() - started < 1.5


def test_another_ledgers_notifications_are_not_counted(
    conns: tuple[psycopg.Connection[object], psycopg.Connection[object]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listener, sender = conns
    monkeypatch.setattr(lease, "GATHER_SECONDS", 0.3)
    _notify(sender, "ledger_b")  # another schema's ledger on the same database
    _notify(sender, "ledger_a\textra", after=0.05)
    assert _holder()._gathered(listener, 2) == 1
