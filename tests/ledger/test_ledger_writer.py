"""One writer per :class:`Ledger`, none after :meth:`Ledger.close` (the hostile test of
2026-12-01 08:50: concurrent first appends each started a writer, close() stopped only the last,
and an append after close() started a new one that nothing closed — on PostgreSQL 48 writer
threads and their connections outlived the ledger, and ~4,800 appends after close() succeeded)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ledger.errors import StorageError
from ledger.log import Ledger
from tests.conftest import envelope


def _writer_threads() -> list[threading.Thread]:
    names = ("ledger-sequencer", "ledger-submitter", "ledger-integrator", "ledger-waiter")
    return [t for t in threading.enumerate() if t.name in names and t.is_alive()]


def test_concurrent_first_appends_share_one_writer_and_close_ends_it(
    db_url: str, key_path: Path
) -> None:
    before = set(_writer_threads())
    with Ledger.create(db_url, "test.example/ledger", key_path):
        pass
    lg = Ledger.open(db_url, key_path)
    start = threading.Barrier(8)

    def first(i: int) -> int:
        start.wait()
        return lg.append(envelope(i)).index

    with ThreadPoolExecutor(8) as pool:
        indices = sorted(pool.map(first, range(8)))
    assert indices == list(range(8))
    mine = [t for t in _writer_threads() if t not in before]
    per_writer = 3 if db_url.startswith("postgresql") else 1
    assert len(mine) == per_writer, [t.name for t in mine]
    lg.close()
    for t in mine:
        t.join(10)
    assert not [t for t in mine if t.is_alive()]
    with pytest.raises(StorageError, match="closed"):
        lg.append(envelope(99))
    with pytest.raises(StorageError, match="closed"):
        lg.append_many([envelope(100), envelope(101)])
    assert [t for t in _writer_threads() if t not in before] == []
    with Ledger.open(db_url, key_path) as again:
        assert again.store.size() == 8  # nothing of the refused appends went in
