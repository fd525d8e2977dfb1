"""The ledger on real SQLite and real PostgreSQL: appends, proofs, idempotency, append-only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger import merkle
from ledger.checkpoint import open_checkpoint
from ledger.errors import ConflictError, InvalidInput, NotFound, StorageError
from ledger.log import Ledger
from ledger.record import GENESIS_PREV, Record
from tests.conftest import envelope
from tests.ledger.conftest import failing_commits


def _verify(
    ledger: Ledger, index: int, leaf_hash: bytes, size: int, proof: list[bytes], note: str
) -> None:
    cp = open_checkpoint(note, [ledger.verifier], ledger.origin).checkpoint
    assert cp.size == size
    merkle.verify_inclusion(leaf_hash, index, size, proof, cp.root_hash)


def test_append_acknowledges_with_proof_and_checkpoint(
    ledger: Ledger, signed_samples: list[bytes]
) -> None:
    results = [ledger.append(b) for b in signed_samples]
    assert [r.index for r in results] == list(range(len(signed_samples)))
    for r in results:
        _verify(ledger, r.index, r.leaf_hash, r.tree_size, r.inclusion_proof, r.checkpoint)
        assert not r.duplicate
    rec0, rec1 = ledger.store.record(0), ledger.store.record(1)
    assert rec0.prev == GENESIS_PREV
    assert rec1.prev == rec0.leaf_hash.hex()
    assert rec0.leaf_hash == results[0].leaf_hash


def test_bodies_are_stored_verbatim(ledger: Ledger) -> None:
    odd = b'{"payloadType":"t",  "payload":"eA==","signatures":[{"sig":"eA=="}] }\n'
    r = ledger.append(odd)
    rec = ledger.store.record(r.index)
    assert ledger.store.bodies([rec.body_digest])[rec.body_digest] == ("dsse", odd)


def test_same_body_twice_returns_the_first_record(ledger: Ledger) -> None:
    first = ledger.append(envelope(1))
    ledger.append(envelope(2))
    again = ledger.append(envelope(1))
    assert again.index == first.index and again.duplicate
    assert ledger.store.size() == 2
    _verify(
        ledger,
        again.index,
        again.leaf_hash,
        again.tree_size,
        again.inclusion_proof,
        again.checkpoint,
    )
    batch = ledger.append_many([envelope(3), envelope(3), envelope(1)])
    assert [r.index for r in batch] == [2, 2, 0]
    assert ledger.store.size() == 3


def test_batches_of_many_integrate_and_prove(ledger: Ledger) -> None:
    results = ledger.append_many([envelope(i) for i in range(700)])
    assert sorted(r.index for r in results) == list(range(700))
    size = ledger.checkpoint().checkpoint.size
    assert size == 700
    for r in results[::37]:
        _verify(ledger, r.index, r.leaf_hash, r.tree_size, r.inclusion_proof, r.checkpoint)
        p = ledger.inclusion(r.index)
        _verify(ledger, p.index, p.leaf_hash, p.tree_size, p.proof, p.checkpoint)


def test_every_checkpoint_is_consistent_with_the_latest(ledger: Ledger) -> None:
    for i in range(5):
        ledger.append_many([envelope(10 * i + j) for j in range(i + 1)])
    latest = ledger.checkpoint().checkpoint
    for size, root, note in ledger.store.iter_checkpoints():
        cp = open_checkpoint(note, [ledger.verifier], ledger.origin).checkpoint
        assert (cp.size, cp.root_hash) == (size, root)
        if size:
            merkle.verify_consistency(
                size, latest.size, ledger.consistency(size, latest.size), root, latest.root_hash
            )


def test_time_never_decreases_even_if_the_clock_does(db_url: str, key_path: Path) -> None:
    times = iter([datetime(2026, 1, 2, tzinfo=UTC) - timedelta(hours=h) for h in range(10)])
    with Ledger.create(db_url, "clock.example/log", key_path, clock=lambda: next(times)) as lg:
        for i in range(4):
            lg.append(envelope(i))
        stamps = [r.time for r in lg.store.records(0, 4)]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 1  # the clock went back: every record keeps the last time


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"x": 1}',
        b'{"payloadType": "t", "payload": "!!", "signatures": [{"sig": "eA=="}]}',
        b'{"payloadType": "t", "payload": "eA==", "signatures": []}',
        b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": {}}',
    ],
)
def test_bad_bodies_are_refused_and_change_nothing(ledger: Ledger, body: bytes) -> None:
    ledger.append(envelope(0))
    before = ledger.checkpoint().note
    with pytest.raises(InvalidInput):
        ledger.append(body)
    with pytest.raises(InvalidInput):
        ledger.append_many([envelope(1), body])
    assert ledger.store.size() == 1
    assert ledger.checkpoint().note == before


def test_oversized_body_is_refused(ledger: Ledger) -> None:
    big = envelope(0).replace(b'"payload": "', b'"payload": "' + b"A" * (1 << 20))
    with pytest.raises(InvalidInput, match="limit"):
        ledger.append(big)
    assert ledger.store.size() == 0


def test_init_refuses_an_existing_ledger(ledger: Ledger, db_url: str, tmp_path: Path) -> None:
    other_key = tmp_path / "other.key"
    with pytest.raises(InvalidInput):
        Ledger.create(db_url, "x.example/log", other_key)
    assert not other_key.exists()
    with pytest.raises(ConflictError):
        ledger.store.create("x.example/log", ledger.require_signer(), datetime.now(UTC))


def test_opening_with_the_wrong_key_is_refused(ledger: Ledger, db_url: str, tmp_path: Path) -> None:
    other = tmp_path / "o.db"
    Ledger.create(f"sqlite:///{other}", "test.example/ledger", tmp_path / "o.key").close()
    with pytest.raises(InvalidInput, match="key"):
        Ledger.open(db_url, tmp_path / "o.key")


def test_missing_ledger_and_missing_record(tmp_path: Path, ledger: Ledger) -> None:
    with pytest.raises((NotFound, StorageError)):
        Ledger.open(f"sqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(NotFound):
        ledger.inclusion(0)
    with pytest.raises(InvalidInput):
        ledger.consistency(0, 0)


TABLE_ROWS = {
    "records": "UPDATE records SET time = 'x'",
    "bodies": "UPDATE bodies SET content = content",
    "checkpoints": "UPDATE checkpoints SET note = 'x'",
    "ledger_meta": "UPDATE ledger_meta SET value = 'x'",
}


@pytest.mark.parametrize("table", ["records", "bodies", "checkpoints", "ledger_meta", "tiles"])
def test_database_refuses_update_and_delete(ledger: Ledger, table: str) -> None:
    ledger.append_many([envelope(i) for i in range(3)])
    before = ledger.checkpoint().note
    statements = [f"DELETE FROM {table}"]
    if table in TABLE_ROWS:
        statements.append(TABLE_ROWS[table])
    for sql in statements:
        with pytest.raises(Exception, match="append-only"), ledger.store.engine.begin() as conn:
            conn.execute(text(sql))
    assert ledger.store.size() == 3
    assert ledger.checkpoint().note == before


def test_tiles_may_only_be_extended(ledger: Ledger) -> None:
    ledger.append_many([envelope(i) for i in range(3)])
    bad = [
        "UPDATE tiles SET hashes = substr(hashes, 1, 32)",  # shrink
        "UPDATE tiles SET idx = idx + 1",  # move
    ]
    flip = (
        "UPDATE tiles SET hashes = zeroblob(96) || hashes"
        if ledger.store.engine.dialect.name == "sqlite"
        else "UPDATE tiles SET hashes = decode(repeat('00', 96), 'hex') || hashes"
    )
    for sql in [*bad, flip]:
        with (
            pytest.raises(Exception, match="tiles may only be extended"),
            ledger.store.engine.begin() as conn,
        ):
            conn.execute(text(sql))
    if ledger.store.engine.dialect.name == "postgresql":
        with pytest.raises(Exception, match="append-only"), ledger.store.engine.begin() as conn:
            conn.execute(text("TRUNCATE records"))


def test_record_from_leaf_round_trip(ledger: Ledger) -> None:
    ledger.append(envelope(5))
    rec = ledger.store.record(0)
    assert Record.from_leaf(rec.leaf) == rec


def test_failed_init_leaves_no_tables_and_no_key(db_url: str, key_path: Path) -> None:
    """init is one transaction: when its last step fails, the schema and the key file are gone."""
    from sqlalchemy import create_engine, inspect

    engine = create_engine(db_url)
    with engine.begin() as conn:  # a stray table of the same name makes the metadata insert fail
        conn.execute(text("CREATE TABLE ledger_meta (unrelated INTEGER)"))
    with pytest.raises(StorageError):
        Ledger.create(db_url, "test.example/ledger", key_path)
    assert not key_path.exists()
    assert not inspect(engine).has_table("records")
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE ledger_meta"))
    engine.dispose()
    with Ledger.create(db_url, "test.example/ledger", key_path) as lg:  # and init works afterwards
        assert lg.append(envelope(1)).index == 0


def test_invalid_origin_is_refused_before_anything_is_made(tmp_path: Path, key_path: Path) -> None:
    from ledger.errors import Error

    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(Error, match="invalid key name"):
        Ledger.create(url, "has space", key_path)
    assert not key_path.exists()
    with Ledger.create(url, "ok.example/log", key_path) as lg:
        assert lg.origin == "ok.example/log"


def test_a_batch_whose_commit_fails_leaves_no_trace_in_later_proofs(ledger: Ledger) -> None:
    """Tiles computed inside a batch that never commits must not be reused by the next batch."""
    from ledger.errors import AppendsFailed

    def refuse_commit() -> None:
        raise RuntimeError("injected: the commit fails")

    with (
        failing_commits(ledger.store.engine, refuse_commit),
        pytest.raises(AppendsFailed, match="256 of 256 appends failed") as e,
    ):
        ledger.append_many([envelope(i) for i in range(256)])  # fills tile (0, 0), never commits
    assert isinstance(e.value.__cause__, RuntimeError)  # returned only once every batch failed
    assert ledger.store.size() == 0
    results = ledger.append_many([envelope(1000 + i) for i in range(257)])  # another tile (0, 0)
    leaves = [r.leaf_hash for r in ledger.store.records(0, 257)]
    latest = ledger.checkpoint().checkpoint
    assert (latest.size, latest.root_hash) == (257, merkle.root(leaves))
    for r in results:  # every acknowledged proof was computed from committed tiles
        _verify(ledger, r.index, r.leaf_hash, r.tree_size, r.inclusion_proof, r.checkpoint)
    for i in (0, 100, 255, 256):
        p = ledger.inclusion(i)
        _verify(ledger, p.index, p.leaf_hash, p.tree_size, p.proof, p.checkpoint)


@pytest.mark.parametrize(
    ("table", "sql"),
    [
        ("records", "INSERT INTO records SELECT -1, leaf, leaf_hash, :d, time FROM records"),
        ("tiles", "INSERT INTO tiles SELECT level, -1, hashes FROM tiles"),
        ("tiles", "INSERT INTO tiles SELECT -1, idx, hashes FROM tiles"),
        ("checkpoints", "INSERT INTO checkpoints SELECT -1, root, note, time FROM checkpoints"),
    ],
)
def test_schema_refuses_negative_index_rows(ledger: Ledger, table: str, sql: str) -> None:
    """A negative row would hide from readers that start at 0 yet take its body's digest."""
    import hashlib

    ledger.append(envelope(1))
    sql += " WHERE size = 1" if table == "checkpoints" else ""  # one row: no key collision
    before = {t: _rows(ledger, t) for t in ("records", "tiles", "checkpoints")}
    # the ledger's engine names the driver's error in one line, as the ledger's StorageError
    with pytest.raises(StorageError, match="nonnegative"), ledger.store.engine.begin() as c:
        c.execute(text(sql), {"d": hashlib.sha256(b"x").digest()})
    assert {t: _rows(ledger, t) for t in before} == before


def _rows(ledger: Ledger, table: str) -> int:
    with ledger.store.engine.begin() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
