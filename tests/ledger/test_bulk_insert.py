"""The writer's bulk inserts (``_internal.db.BulkInsert``): on PostgreSQL from
``ARRAY_INSERT_ROWS`` rows one statement of binary column arrays, else ``executemany``. Either way
the rows stored are the rows given, byte for byte, and a failing insert stores none."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ledger._internal.db import ARRAY_INSERT_ROWS, BulkInsert
from ledger.errors import Error
from ledger.log import Ledger

_PROBE = BulkInsert("bulk_probe", (("k", "bigint"), ("b", "bytea"), ("t", "text"), ("n", "text")))
_AWKWARD = [b"", b"\x00\\'\"{},NULL", bytes(range(256)) * 5]
_TEXTS = ["", "NULL", 'a "quoted", {braced} \\ value', "ünïcødé ✓ 𝄞", "x" * 600]


def _rows(n: int) -> list[tuple[object, ...]]:
    return [
        (
            2**62 - i if i % 3 == 0 else i,
            _AWKWARD[i % len(_AWKWARD)],
            _TEXTS[i % len(_TEXTS)],
            None if i % 2 else f"n{i}",
        )
        for i in range(n)
    ]


@pytest.fixture
def probe(ledger: Ledger) -> Ledger:
    with ledger.store.engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE bulk_probe (k bigint PRIMARY KEY, b bytea, t text, n text)")
            if ledger.store.engine.dialect.name == "postgresql"
            else text("CREATE TABLE bulk_probe (k INTEGER PRIMARY KEY, b BLOB, t TEXT, n TEXT)")
        )
    return ledger


def _stored(lg: Ledger) -> list[tuple[object, ...]]:
    with lg.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT k, b, t, n FROM bulk_probe ORDER BY k")).all()
    return [(k, bytes(b), t, n) for k, b, t, n in rows]


@pytest.mark.parametrize("n", [1, ARRAY_INSERT_ROWS - 1, ARRAY_INSERT_ROWS, 257])
def test_the_rows_stored_are_the_rows_given(probe: Ledger, n: int) -> None:
    rows = _rows(n)
    with probe.store.engine.begin() as conn:
        _PROBE.run(conn, rows)
    assert _stored(probe) == sorted(rows, key=lambda r: r[0])


@pytest.mark.parametrize("n", [1, ARRAY_INSERT_ROWS, 40])
def test_a_failing_insert_stores_none_of_its_rows(probe: Ledger, n: int) -> None:
    kept = (-1, b"kept", "kept", None)
    with probe.store.engine.begin() as conn:
        _PROBE.run(conn, [kept])
    rows = _rows(n)
    rows[-1] = (-1, *rows[-1][1:])  # the last row's key is the stored row's
    with (
        pytest.raises(Error, match=r"bulk_probe|UNIQUE|unique|duplicate"),
        probe.store.engine.begin() as conn,
    ):
        _PROBE.run(conn, rows)
    assert _stored(probe) == [kept]
