"""The writer's statements on the DBAPI cursor (``_internal.db.driver_rows``) keep a reader's
transaction: statements run either way share one snapshot."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from ledger._internal import schema
from ledger.log import Ledger
from tests.conftest import envelope


def test_a_read_begun_on_the_driver_cursor_keeps_its_snapshot(tmp_path: Path) -> None:
    with Ledger.create(f"sqlite:///{tmp_path / 'l.db'}", "s.example/log", tmp_path / "k") as lg:
        lg.append(envelope(1))
        with lg.store._conn() as conn:
            size, _ = lg.store._latest_checkpoint(conn)  # driver_rows: the read's first statement
            assert size == 1
            lg.append(envelope(2))  # the sequencer commits on its own connection meanwhile
            count = select(func.count()).select_from(schema.records)
            assert conn.execute(count).scalar_one() == 1  # the same snapshot: not 2
            assert lg.store._head(conn).size == 1
        assert lg.store.size() == 2
