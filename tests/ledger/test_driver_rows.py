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


def test_a_driver_connection_of_ones_own_gets_the_engines_bounds(pg_url: str) -> None:
    """Connections made beside the pool (the integrator's lease, LISTEN, the event loop's registry
    probe) get the engine's connect timeout and its lock timeout, and reach the same schema."""
    import psycopg

    from ledger._internal.db import (
        PG_CONNECT_TIMEOUT,
        _lock_timeout_ms,
        driver_connect_args,
        make_engine,
    )

    engine = make_engine(pg_url)
    try:
        kw = driver_connect_args(engine)
        assert kw["connect_timeout"] == PG_CONNECT_TIMEOUT
        with psycopg.connect(**kw) as conn:
            row = conn.execute(
                "SELECT setting, current_schema() FROM pg_settings WHERE name = 'lock_timeout'"
            ).fetchone()
        with engine.connect() as pooled:
            schema_name = pooled.exec_driver_sql("SELECT current_schema()").scalar()
        assert row is not None and row == (str(_lock_timeout_ms()), schema_name)
        own = make_engine(pg_url + ("&" if "?" in pg_url else "?") + "connect_timeout=3")
        assert driver_connect_args(own)["connect_timeout"] == "3"  # the URL's own wins
        own.dispose()
    finally:
        engine.dispose()
