"""Acknowledgements carried by the integrator's notification (ledger.pending_acks.encode_acks),
the submitter's connection and PostgreSQL's one-round-trip write transaction.

A notified acknowledgement is a claim like an acknowledgement row: a waiter takes it only if its
HMAC (a key only a holder of the key file can derive) verifies, the record names the body at its
index and the proof verifies against the note's checkpoint."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger._internal.db import write_transaction
from ledger.log import Ledger
from ledger.note import generate_key, parse_verifier
from ledger.pending import submit_connection
from ledger.pending_acks import ACK_PREFIX, AckReader, ack_mac_key, encode_acks
from ledger.sequencer import AppendResult
from tests.conftest import envelope
from tests.ledger.test_pending_acks import _driver


@pytest.fixture
def pg_ledger(pg_url: str, key_path: Path) -> Iterator[Ledger]:
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        yield lg


def _schema(lg: Ledger) -> str:
    with lg.store.engine.connect() as conn:
        return str(conn.execute(text("SELECT current_schema()")).scalar_one())


def _reader(lg: Ledger) -> AckReader:
    key = ack_mac_key(lg.require_signer())
    return AckReader(parse_verifier(lg.store.meta()["vkey"]), lg.origin, key)


def _appended(lg: Ledger, n: int) -> list[tuple[bytes, bytes, AppendResult]]:
    """``n`` bodies appended, each as (digest, record bytes, acknowledgement)."""
    out = []
    for i in range(n):
        body = envelope(100 + i)
        digest = hashlib.sha256(body).digest()
        ack = lg.append(body)
        out.append((digest, lg.store.leaves_by_digest([digest])[digest][1], ack))
    return out


def test_a_notified_acknowledgement_verifies_and_is_the_appends_own(pg_ledger: Ledger) -> None:
    (d1, leaf1, _), (d2, leaf2, _) = _appended(pg_ledger, 2)
    cp = pg_ledger.checkpoint()
    proofs = {d: pg_ledger.inclusion(i).proof for d, i in ((d1, 0), (d2, 1))}
    key, schema = ack_mac_key(pg_ledger.require_signer()), _schema(pg_ledger)
    entries = [(d1, leaf1, proofs[d1]), (d2, leaf2, proofs[d2])]
    element = encode_acks(key, schema, cp.note, entries, 7000)
    assert element is not None and element.startswith(ACK_PREFIX)
    got = _reader(pg_ledger).from_notification(element, schema, {d2})  # only what it waits for
    assert list(got) == [d2]
    assert (got[d2].index, got[d2].tree_size, got[d2].checkpoint) == (1, 2, cp.note)
    assert got[d2].leaf_hash == hashlib.sha256(b"\0" + leaf2).digest()
    assert got[d2].inclusion_proof == proofs[d2]


def _tampered_element(lg: Ledger, what: str) -> str:
    ((digest, leaf, _), (_, other_leaf, _)) = _appended(lg, 2)
    cp = lg.checkpoint()
    proof = lg.inclusion(0).proof
    key, schema = ack_mac_key(lg.require_signer()), _schema(lg)
    if what == "made without the key":
        key = ack_mac_key(generate_key("test.example/ledger"))
    if what == "a flipped proof hash (made with the key)":
        proof = [bytes([proof[0][0] ^ 1]) + proof[0][1:]]
    if what == "another body's record (made with the key)":
        leaf = other_leaf
    if what == "for another ledger's schema":
        schema = "elsewhere"
    element = encode_acks(key, schema, cp.note, [(digest, leaf, proof)], 7000)
    assert element is not None
    if what == "a flipped byte":
        raw = bytearray(base64.b64decode(element[len(ACK_PREFIX) :]))
        raw[-1] ^= 1
        element = ACK_PREFIX + base64.b64encode(bytes(raw)).decode()
    return element


@pytest.mark.parametrize(
    "what",
    [
        "made without the key",
        "a flipped byte",
        "for another ledger's schema",
        "a flipped proof hash (made with the key)",
        "another body's record (made with the key)",
    ],
)
def test_a_notified_acknowledgement_that_does_not_verify_acknowledges_nothing(
    pg_ledger: Ledger, what: str
) -> None:
    element = _tampered_element(pg_ledger, what)
    digest = hashlib.sha256(envelope(100)).digest()
    assert _reader(pg_ledger).from_notification(element, _schema(pg_ledger), {digest}) == {}, what


def test_a_notification_carries_only_the_leading_acknowledgements_that_fit(
    pg_ledger: Ledger,
) -> None:
    appended = _appended(pg_ledger, 4)
    cp = pg_ledger.checkpoint()
    entries = [(d, leaf, pg_ledger.inclusion(i).proof) for i, (d, leaf, _) in enumerate(appended)]
    key, schema = ack_mac_key(pg_ledger.require_signer()), _schema(pg_ledger)
    whole = encode_acks(key, schema, cp.note, entries, 7000)
    assert whole is not None
    cut = encode_acks(key, schema, cp.note, entries, len(whole) - 1)
    assert cut is not None and len(cut) < len(whole)
    digests = {d for d, _, _ in entries}
    got = _reader(pg_ledger).from_notification(cut, schema, digests)
    assert set(got) == {d for d, _, _ in entries[:2]}  # half of them, from the front
    assert encode_acks(key, schema, cp.note, entries, 100) is None


def test_another_process_is_acknowledged_from_the_notification_without_a_query(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lease holder is the first ledger; the second's waiter never reads a row."""
    with Ledger.create(pg_url, "test.example/ledger", key_path) as holder:
        holder.append(envelope(1))  # its integrator holds the lease from now on

        def no_query(*_args: object) -> object:
            raise AssertionError("the waiter queried")

        monkeypatch.setattr(AckReader, "states", no_query)
        with Ledger.open(pg_url, key_path) as other:
            for i in range(5):
                ack = other.append(envelope(10 + i))
                assert not ack.duplicate
                assert other.store.record(ack.index).body == (
                    "sha256:" + hashlib.sha256(envelope(10 + i)).hexdigest()
                )


def test_the_submitters_commits_do_not_wait_for_their_flush(pg_ledger: Ledger) -> None:
    """(docs/design.md: the batch's durable commit flushes the pending row's WAL first.)"""
    engine = pg_ledger.store.engine
    args, kw = engine.dialect.create_connect_args(engine.url)
    if args:
        kw["conninfo"] = args[0]
    conn = submit_connection(dict(kw))
    try:
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
        assert conn.autocommit
    finally:
        conn.close()
    with _driver(pg_ledger) as other:  # everyone else's commits still wait for the disk
        assert other.execute("SHOW synchronous_commit").fetchone() == ("on",)


def test_a_postgresql_write_transaction_holds_the_lock_and_rolls_back(pg_ledger: Ledger) -> None:
    """BEGIN, lock timeout and lock go in one round trip; the rest is an ordinary transaction."""
    engine = pg_ledger.store.engine
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE probe (v text)"))
    lock = "hashtextextended('provenance-ledger:' || current_schema(), 0)"
    with pytest.raises(RuntimeError), write_transaction(engine) as conn:
        conn.execute(text("INSERT INTO probe VALUES ('x')"))
        with _driver(pg_ledger) as other:
            row = other.execute(f"SELECT pg_try_advisory_xact_lock({lock})").fetchone()
            assert row is not None and row[0] is False  # held by the write transaction
            assert other.execute("SELECT count(*) FROM probe").fetchone() == (0,)  # not yet
        raise RuntimeError("roll back")
    with write_transaction(engine) as conn:
        conn.execute(text("INSERT INTO probe VALUES ('y')"))
        timeout = conn.execute(text("SHOW lock_timeout")).scalar()
        assert timeout == "1min"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT array_agg(v) FROM probe")).scalar() == ["y"]
        # the session's own bound (make_engine: every statement), the same as the transaction's
        assert conn.execute(text("SHOW lock_timeout")).scalar() == "1min"
