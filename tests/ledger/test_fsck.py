"""``ledger check`` recomputes everything and names the exact index where stored data was altered."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.bodies import parse_submission
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.errors import AppendsFailed, IntegrityError
from ledger.fsck import check_ledger
from ledger.log import Ledger
from ledger.note import generate_key
from ledger.record import Record
from tests.conftest import envelope

N = 300
_CHECKS = {"records": ["idx"], "tiles": ["level", "idx"], "checkpoints": ["size"]}


def _tamper(ledger: Ledger, table: str, sql: str, **params: object) -> None:
    """Run ``sql`` with the table's protecting triggers and CHECK constraints lifted, as an
    attacker with DB access (or a ledger made before those constraints) could."""
    with ledger.store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            for what in ("update", "delete"):
                conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{what}"))
            conn.execute(text("DROP TRIGGER IF EXISTS tiles_extend_only"))
            conn.execute(text("PRAGMA ignore_check_constraints = ON"))
        else:
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            for col in _CHECKS.get(table, []):
                conn.execute(
                    text(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_{col}_nonnegative")
                )
        try:
            conn.execute(text(sql), params)
        finally:
            if conn.dialect.name == "sqlite":  # the connection goes back to the pool
                conn.execute(text("PRAGMA ignore_check_constraints = OFF"))


def _plant_record(ledger: Ledger, index: int, body: bytes, prev: str) -> Record:
    """Insert a well-formed record and its body (no checkpoint: the attacker has no key)."""
    sub = parse_submission(body)
    last = ledger.store.record(ledger.store.size() - 1)
    rec = Record(ledger.origin, index, prev, last.time, sub.body_type, "sha256:" + sub.digest.hex())
    _tamper(
        ledger,
        "bodies",
        "INSERT INTO bodies (digest, body_type, content) VALUES (:d, :t, :c)",
        d=sub.digest,
        t=sub.body_type,
        c=sub.content,
    )
    _tamper(
        ledger,
        "records",
        "INSERT INTO records (idx, leaf, leaf_hash, body_digest, time) VALUES (:i, :l, :h, :d, :t)",
        i=index,
        l=rec.leaf,
        h=rec.leaf_hash,
        d=sub.digest,
        t=rec.time,
    )
    return rec


def _tile(ledger: Ledger, level: int, idx: int) -> bytes:
    with ledger.store.engine.begin() as conn:
        q = text("SELECT hashes FROM tiles WHERE level = :l AND idx = :i")
        return bytes(conn.execute(q, {"l": level, "i": idx}).scalar_one())


def _counts(ledger: Ledger) -> tuple[int, int]:
    return ledger.store.size(), sum(1 for _ in ledger.store.iter_checkpoints())


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


def _allow_null_index(ledger: Ledger) -> None:
    """Remove what keeps an index from being NULL (the primary key, NOT NULL)."""
    with ledger.store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(text("PRAGMA writable_schema = ON"))
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'records'"))
            loose = sql.scalar_one().replace("idx BIGINT NOT NULL", "idx BIGINT")
            conn.execute(
                text("UPDATE sqlite_master SET sql = :s WHERE name = 'records'"), {"s": loose}
            )
        else:
            conn.execute(text("ALTER TABLE records DROP CONSTRAINT records_pkey"))
            conn.execute(text("ALTER TABLE records ALTER COLUMN idx DROP NOT NULL"))
    ledger.store.engine.dispose()  # SQLite reads the edited schema on a new connection


@pytest.mark.parametrize("where", [5, N - 1])
def test_a_record_with_no_index_is_named(filled: Ledger, where: int) -> None:
    """A row whose index is NULL is not an empty ledger: the gap it leaves is named, or, at the
    end, the row itself."""
    _allow_null_index(filled)
    _tamper(filled, "records", f"UPDATE records SET idx = NULL WHERE idx = {where}")
    with pytest.raises(IntegrityError) as e:
        check_ledger(filled.store)
    assert e.value.index == where
    if where == N - 1:
        assert f"record {where}: a record is stored with no index (NULL)" in str(e.value)
    else:
        assert f"record {where} is missing" in str(e.value)


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


def test_record_past_the_latest_checkpoint_is_named_and_the_writer_refuses_to_sign_it(
    filled: Ledger,
) -> None:
    """One record with its tile extended, no checkpoint: `check` names it, `append` refuses."""
    planted = _plant_record(filled, N, envelope(77_777), filled.store.record(N - 1).leaf_hash.hex())
    edge = _tile(filled, 0, N // 256) + planted.leaf_hash
    _tamper(
        filled,
        "tiles",
        f"UPDATE tiles SET hashes = :h WHERE level = 0 AND idx = {N // 256}",
        h=edge,
    )
    with pytest.raises(IntegrityError, match="not covered") as e:
        check_ledger(filled.store)
    assert e.value.index == N
    before = _counts(filled)
    with pytest.raises(AppendsFailed) as failed:
        filled.append_many([envelope(88_888)])
    assert isinstance(failed.value.__cause__, IntegrityError)
    assert "refusing to extend" in str(failed.value.__cause__)
    assert _counts(filled) == before  # nothing written, nothing signed


def test_a_writer_that_verified_the_latest_note_still_refuses_it_once_tampered(
    filled: Ledger,
) -> None:
    """The writer remembers the notes it signed and verified (by their full text), so the next
    batch's head check does not verify its own last note twice; a stored note changed after
    that is other text and is verified, and refused."""
    filled.append(envelope(66_666))  # the writer has signed, verified and remembered size N+1
    filled.append(envelope(66_667))  # ... and reused it: the head check of size N+1 passed
    size = N + 2
    _tamper(
        filled,
        "checkpoints",
        f"UPDATE checkpoints SET note = replace(note, '\n{size}\n', '\n{size + 1}\n') "
        f"WHERE size = {size}",
    )
    before = _counts(filled)
    with pytest.raises(IntegrityError, match="does not verify with this ledger's key"):
        filled.append(envelope(66_668))
    assert _counts(filled) == before


def test_flipped_tile_byte_makes_the_writer_refuse_to_sign_a_fork(
    filled: Ledger, db_url: str
) -> None:
    """A flipped byte in the right-edge tile: no checkpoint over it, no proof that fails to verify."""
    blob = bytearray(_tile(filled, 0, 1))  # leaves 256..299
    blob[10 * 32] ^= 1  # leaf 266
    _tamper(
        filled, "tiles", "UPDATE tiles SET hashes = :h WHERE level = 0 AND idx = 1", h=bytes(blob)
    )
    before = _counts(filled)
    with Ledger.open(db_url) as fresh:  # as a new `ledger proof` process would: a cold cache
        for i in (5, 266):
            with pytest.raises(IntegrityError, match="does not verify"):
                fresh.inclusion(i)
        with pytest.raises(IntegrityError, match="does not verify"):
            fresh.consistency(100, N)
    with pytest.raises(AppendsFailed) as failed:
        filled.append_many([envelope(99_999)])
    cause = failed.value.__cause__
    assert isinstance(cause, IntegrityError) and "reproduce the latest checkpoint" in str(cause)
    with pytest.raises(IntegrityError, match="reproduce"):
        filled.append(envelope(99_998))
    assert _counts(filled) == before


@pytest.mark.parametrize("deleted", ["size 0", "the latest", "all but size 0 and the latest"])
def test_deleted_checkpoint_is_noticed(filled: Ledger, deleted: str) -> None:
    sizes = [size for size, _, _ in filled.store.iter_checkpoints()]
    where, expected = {
        "size 0": ("size = 0", 0),
        "the latest": (f"size = {N}", sizes[-2]),
        "all but size 0 and the latest": (f"size > 0 AND size < {N}", 0),
    }[deleted]
    _tamper(filled, "checkpoints", f"DELETE FROM checkpoints WHERE {where}")
    with pytest.raises(IntegrityError, match="checkpoint") as e:
        check_ledger(filled.store)
    assert e.value.index == expected


@pytest.mark.parametrize(
    ("table", "sql", "message", "index"),
    [
        (
            "records",
            "INSERT INTO records SELECT -1, leaf, leaf_hash, :d, time FROM records WHERE idx = 0",
            "a record is stored at index -1, below 0",
            -1,
        ),
        (
            "tiles",
            "INSERT INTO tiles SELECT level, -1, hashes FROM tiles WHERE level = 0 AND idx = 0",
            r"tile \(0, -1\) is stored but no record needs it",
            0,
        ),
        (
            "checkpoints",
            "INSERT INTO checkpoints SELECT -1, root, note, time FROM checkpoints WHERE size = 0",
            "a checkpoint is stored at size -1, below 0",
            0,
        ),
    ],
)
def test_negative_index_rows_are_named_by_check(
    filled: Ledger, table: str, sql: str, message: str, index: int
) -> None:
    _tamper(filled, table, sql, d=hashlib.sha256(b"x").digest())
    with pytest.raises(IntegrityError, match=message) as e:
        check_ledger(filled.store)
    assert e.value.index == index


def test_negative_index_record_holding_a_body_is_named_and_the_body_is_refused_clearly(
    filled: Ledger,
) -> None:
    body = envelope(55_555)
    sub = parse_submission(body)
    _tamper(
        filled,
        "records",
        "INSERT INTO records SELECT -1, leaf, leaf_hash, :d, time FROM records WHERE idx = 0",
        d=sub.digest,
    )
    with pytest.raises(IntegrityError, match="below 0") as e:
        check_ledger(filled.store)
    assert e.value.index == -1
    before = _counts(filled)
    with pytest.raises(IntegrityError, match="stored below index 0"):
        filled.append(body)
    assert _counts(filled) == before


def test_the_writer_refuses_to_extend_a_log_with_a_negative_index_row(filled: Ledger) -> None:
    _tamper(
        filled,
        "records",
        "INSERT INTO records SELECT -1, leaf, leaf_hash, :d, time FROM records WHERE idx = 1",
        d=b"\0",
    )
    before = _counts(filled)
    with pytest.raises(IntegrityError, match="below index 0"):
        filled.append(envelope(77_777))
    assert _counts(filled) == before


def test_missing_vkey_row_is_an_integrity_error(filled: Ledger) -> None:
    _tamper(filled, "ledger_meta", "DELETE FROM ledger_meta WHERE key = 'vkey'")
    with pytest.raises(IntegrityError, match="no vkey row"):
        check_ledger(filled.store)


def test_rekeyed_rewritten_history_passes_unpinned_and_fails_with_the_pinned_vkey(
    filled: Ledger,
) -> None:
    """Every checkpoint re-signed by a new key and the vkey row replaced: only a pin tells."""
    old_vkey = filled.store.meta()["vkey"]
    forger = generate_key(filled.origin)
    for size, root, _ in list(filled.store.iter_checkpoints()):
        note = sign_checkpoint(Checkpoint(filled.origin, size, root), forger)
        _tamper(
            filled, "checkpoints", f"UPDATE checkpoints SET note = :n WHERE size = {size}", n=note
        )
    _tamper(
        filled,
        "ledger_meta",
        "UPDATE ledger_meta SET value = :v WHERE key = 'vkey'",
        v=forger.verifier_key(),
    )
    assert check_ledger(filled.store).pinned is False  # unpinned, the forgery passes
    with pytest.raises(IntegrityError, match="not the one --vkey pins"):
        check_ledger(filled.store, pins={"--vkey": old_vkey})
    assert check_ledger(filled.store, pins={"--vkey": forger.verifier_key()}).pinned


@pytest.mark.parametrize(
    ("table", "column", "where", "index"),
    [
        ("records", "leaf", "idx = 42", 42),
        ("records", "leaf_hash", "idx = 42", 42),
        ("records", "body_digest", "idx = 42", 42),
        ("bodies", "content", "digest = (SELECT body_digest FROM records WHERE idx = 42)", 42),
        ("tiles", "hashes", "level = 0 AND idx = 1", 256),
        ("checkpoints", "root", "size = 100", 99),
    ],
)
def test_text_where_bytes_belong_is_named_at_its_index(
    tmp_path: object, table: str, column: str, where: str, index: int
) -> None:
    """SQLite keeps TEXT in a BLOB column; `check` must name the index, not crash (exit 4)."""
    from pathlib import Path

    d = Path(str(tmp_path))
    with Ledger.create(f"sqlite:///{d / 'l.db'}", "t.example/log", d / "k") as lg:
        for start in range(0, N, 100):
            lg.append_many([envelope(i) for i in range(start, start + 100)])
        _tamper(lg, table, f"UPDATE {table} SET {column} = CAST({column} AS TEXT) WHERE {where}")
        with pytest.raises(IntegrityError, match="stored as text") as e:
            check_ledger(lg.store)
        assert e.value.index == index


def test_imported_multi_batch_log_keeps_a_checkpoint_at_every_batch_and_passes_check(
    filled: Ledger, tmp_path: Path
) -> None:
    """Import signs a checkpoint wherever the source's time steps up (where the source signed
    one), so the imported log meets the rule `check` holds every log to."""
    from ledger.log import utc_now
    from ledger.transfer import import_jsonl
    from tests.ledger.exports import export_to

    path = export_to(filled, tmp_path / "out.jsonl")
    source_sizes = [size for size, _, _ in filled.store.iter_checkpoints()]
    url = f"sqlite:///{tmp_path / 'copy.db'}"
    with Ledger.create(url, filled.origin, tmp_path / "copy.key") as copy:
        with path.open("rb") as src:
            # unsigned bodies: this tests the checkpoints import signs, not trust
            assert import_jsonl(copy, src, filled.verifier, utc_now, allow_untrusted=True) == N
        assert [size for size, _, _ in copy.store.iter_checkpoints()] == source_sizes
        assert check_ledger(copy.store).root == filled.checkpoint().checkpoint.root_hash
