"""``ledger check`` recomputes everything and names the exact index where stored data was altered."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ledger.errors import IntegrityError
from ledger.fsck import check_ledger
from ledger.log import Ledger
from tests.conftest import envelope

N = 300


def _tamper(ledger: Ledger, table: str, sql: str, **params: object) -> None:
    """Run ``sql`` with the table's protecting triggers dropped, as an attacker with DB access could."""
    with ledger.store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            for what in ("update", "delete"):
                conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{what}"))
            conn.execute(text("DROP TRIGGER IF EXISTS tiles_extend_only"))
        else:
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        conn.execute(text(sql), params)


@pytest.fixture
def filled(ledger: Ledger) -> Ledger:
    for start in range(0, N, 100):
        ledger.append_many([envelope(i) for i in range(start, start + 100)])
    return ledger


def test_clean_ledger_passes(filled: Ledger) -> None:
    report = check_ledger(filled.store)
    assert report.records == N
    # the empty tree and one per sequencer batch; append_many of 100 may be cut into more than one
    # batch when the sequencer thread wakes between puts, so the count is at least 1 + 3
    stored = sum(1 for _ in filled.store.iter_checkpoints())
    assert report.checkpoints == stored >= 4
    assert report.root == filled.checkpoint().checkpoint.root_hash


def test_changed_body_is_named(filled: Ledger) -> None:
    digest = filled.store.record(123).body_digest
    _tamper(
        filled,
        "bodies",
        "UPDATE bodies SET content = :c WHERE digest = :d",
        c=envelope(99999),
        d=digest,
    )
    with pytest.raises(IntegrityError, match="body bytes") as e:
        check_ledger(filled.store)
    assert e.value.index == 123


def test_changed_record_is_named(filled: Ledger) -> None:
    leaf = filled.store.record(77).leaf.replace(b'"time":"2', b'"time":"1')
    _tamper(filled, "records", "UPDATE records SET leaf = :l WHERE idx = 77", l=leaf)
    with pytest.raises(IntegrityError) as e:
        check_ledger(filled.store)
    assert e.value.index == 77


def test_rewritten_chain_link_is_named(filled: Ledger) -> None:
    """A consistent-looking forgery (leaf and its hash both replaced) still breaks record 201's prev."""
    from ledger.record import Record

    old = filled.store.record(200)
    forged = Record(old.log, 200, old.prev, old.time, old.body_type, "sha256:" + "f" * 64)
    _tamper(
        filled,
        "records",
        "UPDATE records SET leaf = :l, leaf_hash = :h, body_digest = :d WHERE idx = 200",
        l=forged.leaf,
        h=forged.leaf_hash,
        d=forged.body_digest,
    )
    with pytest.raises(IntegrityError) as e:
        check_ledger(filled.store)
    assert e.value.index == 200  # its body is missing; were it planted too, 201's prev would fail


def test_deleted_record_is_named(filled: Ledger) -> None:
    _tamper(filled, "records", "DELETE FROM records WHERE idx = 5")
    with pytest.raises(IntegrityError, match="missing") as e:
        check_ledger(filled.store)
    assert e.value.index == 5


def test_deleted_last_record_is_caught_by_the_checkpoint(filled: Ledger) -> None:
    _tamper(filled, "records", f"DELETE FROM records WHERE idx = {N - 1}")
    with pytest.raises(IntegrityError, match="checkpoint") as e:
        check_ledger(filled.store)
    assert e.value.index == N - 1


def test_corrupted_tile_is_named(filled: Ledger) -> None:
    # overwrite entry 40 of the level-0 tile 0
    with filled.store.engine.begin() as conn:
        blob = bytes(
            conn.execute(text("SELECT hashes FROM tiles WHERE level = 0 AND idx = 0")).scalar_one()
        )
    bad = blob[: 40 * 32] + bytes(32) + blob[41 * 32 :]
    _tamper(filled, "tiles", "UPDATE tiles SET hashes = :h WHERE level = 0 AND idx = 0", h=bad)
    with pytest.raises(IntegrityError, match="tile") as e:
        check_ledger(filled.store)
    assert e.value.index == 40


def test_forged_checkpoint_is_caught(filled: Ledger) -> None:
    _tamper(
        filled,
        "checkpoints",
        "UPDATE checkpoints SET note = replace(note, '\n100\n', '\n101\n') WHERE size = 100",
    )
    with pytest.raises(IntegrityError, match="checkpoint at size 100") as e:
        check_ledger(filled.store)
    assert e.value.index == 99
