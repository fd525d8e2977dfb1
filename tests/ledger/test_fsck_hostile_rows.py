"""Hostile-tester findings of 2026-11-30 against `ledger check`, one regression test each: a
second body row under a record's digest (the primary key dropped), index rows for no record
(NULL), for text or fractional indices, and registry rows of the wrong types — each must fail the
check naming the right record, never pass and never crash. SQLite and PostgreSQL, with worker
ranges of 4 records so several ranges run."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.errors import IntegrityError
from ledger.fsck import check_ledger
from ledger.log import Ledger
from tests.ledger.test_index import audited

__all__ = ["audited"]  # the fixture: record 0 registers a signer, records 1-8 a pipeline


def _fails(lg: Ledger) -> IntegrityError:
    for workers in (2, 1):
        with pytest.raises(IntegrityError) as e:
            check_ledger(lg.store, workers=workers)
    return e.value


def _sql(lg: Ledger, *statements: str) -> None:
    with lg.store.engine.begin() as conn:
        for s in statements:
            conn.execute(text(s))


def test_a_second_body_row_under_a_records_digest_is_named(audited: Ledger) -> None:
    check_ledger(audited.store, workers=2)
    if audited.store.engine.dialect.name == "sqlite":
        _sql(
            audited,
            "DROP TRIGGER IF EXISTS bodies_no_update",
            "DROP TRIGGER IF EXISTS bodies_no_delete",
            "CREATE TABLE bodies2 AS SELECT * FROM bodies",
            "DROP TABLE bodies",
            "ALTER TABLE bodies2 RENAME TO bodies",
            "CREATE INDEX bodies_digest ON bodies (digest)",
        )
    else:
        _sql(audited, "ALTER TABLE bodies DROP CONSTRAINT bodies_pkey")
    _sql(
        audited,
        "INSERT INTO bodies SELECT digest, body_type, content FROM bodies "
        "WHERE digest = (SELECT body_digest FROM records WHERE idx = 5)",
    )
    err = _fails(audited)
    assert err.index == 5, err


@pytest.mark.parametrize(
    ("value", "index"), [("NULL", None), ("'abc'", None), ("-1", -1), ("5.5", 5)]
)
def test_an_index_row_for_no_record_or_an_odd_one_fails_the_check(
    audited: Ledger, value: str, index: int | None
) -> None:
    sqlite = audited.store.engine.dialect.name == "sqlite"
    if not sqlite:
        if value in ("'abc'", "5.5"):
            pytest.skip("PostgreSQL's bigint column cannot hold it")
        _sql(
            audited,
            "ALTER TABLE ix_terms DROP CONSTRAINT ix_terms_pkey",
            "ALTER TABLE ix_terms ALTER COLUMN idx DROP NOT NULL",
        )
    elif value == "NULL":
        _sql(
            audited,
            "CREATE TABLE t2 AS SELECT * FROM ix_terms",
            "DROP TABLE ix_terms",
            "ALTER TABLE t2 RENAME TO ix_terms",
        )
    _sql(audited, f"INSERT INTO ix_terms (kind, value, idx) VALUES ('signer', 'mallory', {value})")
    err = _fails(audited)
    assert err.index == index, err


def test_a_registry_row_stored_as_text_is_named_not_a_crash(
    audited: Ledger, tmp_path: Path
) -> None:
    if audited.store.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's bytea column cannot hold text")
    _sql(
        audited,
        "DROP TRIGGER registry_entries_no_update",
        "UPDATE registry_entries SET entry = CAST(entry AS TEXT) WHERE idx = 0",
    )
    err = _fails(audited)
    assert err.index == 0 and "registry row" in str(err), err


def test_an_index_value_that_is_not_utf8_names_its_record(audited: Ledger) -> None:
    """SQLite keeps any bytes in a TEXT column: the range re-reads them as stored and names the
    record, where the read used to fail as a database error (exit 4) naming nothing."""
    if audited.store.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL refuses text that is not UTF-8")
    _sql(
        audited,
        "UPDATE ix_terms SET value = CAST(x'ff41' AS TEXT) "
        "WHERE idx = 3 AND kind = 'predicateType'",
    )
    err = _fails(audited)
    assert err.index == 3, err


def test_a_body_no_record_names_fails_the_check(audited: Ledger) -> None:
    """A planted body row under the digest of a body not yet appended passed the check, and
    then made that body's append fail for good (hostile round 2)."""
    import hashlib

    future = b'{"payloadType": "x", "payload": "", "signatures": []}'
    digest = hashlib.sha256(future).hexdigest()
    with audited.store.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO bodies (digest, body_type, content) VALUES (:d, 'dsse', :c)"),
            {"d": bytes.fromhex(digest), "c": b"garbage"},
        )
    err = _fails(audited)
    assert f"sha256:{digest}" in str(err), err


def _drop_keys(lg: Ledger, table: str, *pg_constraints: str) -> None:
    """Take away ``table``'s primary key (and unique constraints), as a hand-edited database
    could: SQLite rebuilds the table without them, PostgreSQL drops the named constraints."""
    if lg.store.engine.dialect.name == "sqlite":
        _sql(
            lg,
            f"CREATE TABLE {table}_copy AS SELECT * FROM {table}",
            f"DROP TABLE {table}",
            f"ALTER TABLE {table}_copy RENAME TO {table}",
        )
    else:
        _sql(lg, *(f"ALTER TABLE {table} DROP CONSTRAINT {c}" for c in pg_constraints))


def test_a_record_stored_twice_is_named_at_its_own_index(audited: Ledger) -> None:
    """It was named one index later ("record 6 is missing (next stored index is 5)")."""
    _drop_keys(audited, "records", "records_pkey", "records_body_digest_key")
    _sql(audited, "INSERT INTO records SELECT * FROM records WHERE idx = 5")
    err = _fails(audited)
    assert (str(err), err.index) == ("record 5 is stored more than once", 5)


def test_the_last_record_stored_twice_is_named(audited: Ledger) -> None:
    _drop_keys(audited, "records", "records_pkey", "records_body_digest_key")
    _sql(audited, "INSERT INTO records SELECT * FROM records WHERE idx = 8")
    err = _fails(audited)
    assert (str(err), err.index) == ("record 8 is stored more than once", 8)


def test_a_tile_stored_twice_fails_the_check(audited: Ledger) -> None:
    _drop_keys(audited, "tiles", "tiles_pkey")
    _sql(audited, "INSERT INTO tiles SELECT * FROM tiles WHERE level = 0 AND idx = 0")
    err = _fails(audited)
    assert (str(err), err.index) == ("tile (0, 0) is stored more than once", 0)


@pytest.mark.parametrize("size", [0, 1, 9])
def test_a_checkpoint_stored_twice_fails_the_check(audited: Ledger, size: int) -> None:
    _drop_keys(audited, "checkpoints", "checkpoints_pkey")
    _sql(audited, f"INSERT INTO checkpoints SELECT * FROM checkpoints WHERE size = {size}")
    err = _fails(audited)
    assert str(err) == f"checkpoint at size {size} is stored more than once", err
    assert err.index == max(size - 1, 0)


def test_a_metadata_row_stored_twice_fails_the_check(audited: Ledger) -> None:
    _drop_keys(audited, "ledger_meta", "ledger_meta_pkey")
    _sql(audited, "INSERT INTO ledger_meta SELECT * FROM ledger_meta WHERE key = 'vkey'")
    err = _fails(audited)
    assert str(err) == "the ledger's metadata holds more than one 'vkey' row", err


@pytest.mark.parametrize(
    ("at", "value", "message"),
    [
        (8, "'eight'", "record 8: a record index is stored as str 'eight', not an integer"),
        (6, "5.5", "record 6: a record index is stored as float 5.5, not an integer"),
        (5, "'five'", "record 5 is missing (next stored index is 6)"),
    ],
)
def test_a_record_index_stored_as_text_or_a_fraction_is_named(
    audited: Ledger, at: int, value: str, message: str
) -> None:
    """SQLite keeps text in an integer column: the last record's index as text was reported
    naming no record. The single pass meets such a row where it expects record ``at``."""
    if audited.store.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's bigint column cannot hold it")
    _sql(
        audited,
        "DROP TRIGGER records_no_update",
        f"UPDATE records SET idx = {value} WHERE idx = {at}",
    )
    err = _fails(audited)
    assert (str(err), err.index) == (message, at)
