"""Acknowledgement rows (ledger.pending_acks): the integrator leaves each logged row's record and
proof behind; a waiter acknowledges from a row only what it verifies itself."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from ledger import pending_acks
from ledger.log import Ledger
from ledger.merkle import verify_inclusion
from ledger.note import parse_verifier
from ledger.pending import MAX_PENDING_AGE_SECONDS, pending_mac_key, row_mac
from ledger.pending_acks import AckReader
from tests.conftest import envelope
from tests.ledger.pending_rows import pending_error


@pytest.fixture
def pg_ledger(pg_url: str, key_path: Path) -> Iterator[Ledger]:
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        yield lg


def _driver(lg: Ledger) -> psycopg.Connection[Any]:
    engine = lg.store.engine
    args, kw = engine.dialect.create_connect_args(engine.url)
    if args:
        kw["conninfo"] = args[0]
    return psycopg.connect(**kw, autocommit=True)


def _reader(lg: Ledger) -> AckReader:
    return AckReader(parse_verifier(lg.store.meta()["vkey"]), lg.origin)


def _tamper(lg: Ledger, digest: bytes, sql: str, **params: object) -> None:
    with lg.store.engine.begin() as conn:
        conn.execute(text(f"UPDATE pending SET {sql} WHERE digest = :d"), {"d": digest, **params})


def test_a_logged_row_acknowledges_its_body_with_a_proof_that_verifies(pg_ledger: Ledger) -> None:
    body = envelope(1)
    digest = hashlib.sha256(body).digest()
    first = pg_ledger.append(body)
    with _driver(pg_ledger) as conn:
        got = _reader(pg_ledger).states(conn, [digest, hashlib.sha256(b"never sent").digest()]).acks
    assert list(got) == [digest]
    ack = got[digest]
    assert (ack.index, ack.leaf_hash) == (first.index, first.leaf_hash)
    cp_root = pg_ledger.store.tree(ack.tree_size).root()
    verify_inclusion(ack.leaf_hash, ack.index, ack.tree_size, ack.inclusion_proof, cp_root)


@pytest.mark.parametrize(
    ("what", "sql", "params"),
    [
        ("a proof hash flipped", "proof = overlay(proof placing '\\x00'::bytea from 1)", {}),
        ("a proof cut short", "proof = substring(proof from 1 for 31)", {}),
        ("another index", "idx = idx + 1", {}),
        ("a checkpoint the proof is not against", "cp_size = 0", {}),
        ("another record's bytes", "leaf = :leaf", {"leaf": b"not a record"}),
    ],
)
def test_a_tampered_row_is_ignored_and_the_body_still_acknowledged_from_the_log(
    pg_ledger: Ledger, what: str, sql: str, params: dict[str, object]
) -> None:
    pg_ledger.append(envelope(1))
    body = envelope(2)
    digest = hashlib.sha256(body).digest()
    first = pg_ledger.append(body)
    _tamper(pg_ledger, digest, sql, **params)
    with _driver(pg_ledger) as conn:
        assert _reader(pg_ledger).states(conn, [digest]).acks == {}, what
    again = pg_ledger.append(body)  # the waiter falls back to the log itself
    assert (again.index, again.leaf_hash, again.duplicate) == (first.index, first.leaf_hash, True)


def test_a_row_naming_another_body_is_not_an_acknowledgement(pg_ledger: Ledger) -> None:
    a, b = envelope(1), envelope(2)
    pg_ledger.append(a)
    pg_ledger.append(b)
    da, db = hashlib.sha256(a).digest(), hashlib.sha256(b).digest()
    with pg_ledger.store.engine.begin() as conn:  # b's row made to carry a's record and proof
        conn.execute(
            text(
                "UPDATE pending SET idx = s.idx, leaf = s.leaf, proof = s.proof, "
                "cp_size = s.cp_size FROM pending s WHERE pending.digest = :b AND s.digest = :a"
            ),
            {"a": da, "b": db},
        )
    with _driver(pg_ledger) as conn:
        assert list(_reader(pg_ledger).states(conn, [da, db]).acks) == [da]


def test_acknowledged_rows_are_dropped_by_a_later_batch(
    pg_ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_ledger.append(envelope(1))
    with pg_ledger.store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pending")).scalar_one() == 1
    monkeypatch.setattr(pending_acks, "ACK_KEEP_SECONDS", 0)
    monkeypatch.setattr(pending_acks, "PURGE_SECONDS", 3600)
    pg_ledger.append(envelope(2))  # within PURGE_SECONDS of the first batch's purge: kept
    with pg_ledger.store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pending")).scalar_one() == 2
    monkeypatch.setattr(pending_acks, "PURGE_SECONDS", 0)
    pg_ledger.append(envelope(3))
    with pg_ledger.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT idx FROM pending")).scalars().all()
    assert rows == [2]  # the first two went with the third batch; the third stays a while


def _plant_row(lg: Ledger, body: bytes, **columns: object) -> bytes:
    """A pending row written straight into the database (by default without a valid MAC)."""
    digest = hashlib.sha256(body).digest()
    row: dict[str, object] = {"digest": digest, "body_type": "dsse", "content": body}
    row |= {"mac": b"\0" * 32, "submitted": None} | columns
    names = ", ".join(row)
    with lg.store.engine.begin() as conn:
        conn.execute(
            text(f"INSERT INTO pending ({names}) VALUES ({', '.join(':' + n for n in row)})"), row
        )
    return digest


@pytest.mark.parametrize(
    "planted",
    [
        {"idx": 0, "leaf": b"x", "proof": b"", "cp_size": 1},  # "acknowledged", never logged
        {"idx": 0, "leaf": b"x", "proof": b"", "cp_size": 1, "done_at": None},
        {"done_at": datetime.now(UTC)},
    ],
)
def test_a_planted_acknowledgement_does_not_keep_the_real_body_out(
    pg_ledger: Ledger, planted: dict[str, object]
) -> None:
    pg_ledger.append(envelope(1))
    body = envelope(2)
    _plant_row(pg_ledger, body, **planted)
    start = time.monotonic()
    got = pg_ledger.append(body)  # the real submission replaces the row
    assert time.monotonic() - start < 10
    assert pg_ledger.store.record(got.index).body == "sha256:" + hashlib.sha256(body).hexdigest()


def test_a_row_signed_by_an_appender_but_held_back_is_never_signed_into_the_log(
    pg_ledger: Ledger,
) -> None:
    """A valid row revived minutes later (after its signer was revoked, say) is stale."""
    key = pending_mac_key(pg_ledger.require_signer())
    body = envelope(7)
    digest = hashlib.sha256(body).digest()
    old = int(time.time()) - MAX_PENDING_AGE_SECONDS - 60
    _plant_row(pg_ledger, body, mac=row_mac(key, digest, "dsse", old), submitted=old)
    pg_ledger.append(envelope(8))  # a batch runs; the stale row is not in it
    deadline = time.monotonic() + 10
    while (error := pending_error(pg_ledger, digest)) is None:
        assert time.monotonic() < deadline, "the stale row was neither logged nor refused"
        time.sleep(0.05)
    assert "stale" in error
    assert pg_ledger.store.indices_by_digest([digest]) == {}


def test_a_fresh_submission_time_put_on_an_old_row_breaks_its_mac(pg_ledger: Ledger) -> None:
    key = pending_mac_key(pg_ledger.require_signer())
    body = envelope(9)
    digest = hashlib.sha256(body).digest()
    old = int(time.time()) - MAX_PENDING_AGE_SECONDS - 60
    _plant_row(pg_ledger, body, mac=row_mac(key, digest, "dsse", old), submitted=int(time.time()))
    pg_ledger.append(envelope(10))
    deadline = time.monotonic() + 10
    while (error := pending_error(pg_ledger, digest)) is None:
        assert time.monotonic() < deadline, "the altered row was neither logged nor refused"
        time.sleep(0.05)
    assert "not written by a ledger appender" in error
    assert pg_ledger.store.indices_by_digest([digest]) == {}
