"""Defects a hostile test of the PostgreSQL write path found (2026-11-30), held on both backends:
a duplicate answered from a record whose indexed digest was rewritten, and a caller that gives
up (its future cancelled) ending the writer's thread."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.bodies import parse_submission
from ledger.errors import IntegrityError
from ledger.log import Ledger
from tests.conftest import envelope
from tests.ledger.test_fsck import _tamper


def _point_record_at(ledger: Ledger, index: int, x: bytes, leaf_too: bool) -> None:
    """Rewrite record ``index``'s indexed digest to body ``x``'s, and with ``leaf_too`` its leaf
    bytes as well (so the leaf names ``x``; the tiles keep the genuine leaf hash)."""
    dx = hashlib.sha256(x).digest()
    with ledger.store.engine.connect() as c:
        q = text("SELECT leaf, body_digest FROM records WHERE idx = :i")
        leaf, digest = c.execute(q, {"i": index}).one()
    new_leaf = bytes(leaf).replace(bytes(digest).hex().encode(), dx.hex().encode())
    assert new_leaf != bytes(leaf)
    sql = "UPDATE records SET body_digest = :d, leaf = :l WHERE idx = :i"
    _tamper(ledger, "records", sql, d=dx, l=new_leaf if leaf_too else bytes(leaf), i=index)


@pytest.mark.parametrize("leaf_too", [False, True], ids=["digest", "digest-and-leaf"])
def test_a_duplicate_is_never_answered_with_another_bodys_record(
    ledger: Ledger, leaf_too: bool
) -> None:
    """Someone with write access points record 0's indexed digest (and, second, its leaf
    bytes) at body X. An append of X must not be acknowledged as record 0, whose tree leaf is
    another body's, with a proof that verifies: the writer refuses, and nothing is written."""
    first = ledger.append(envelope(1))
    ledger.append(envelope(2))
    x = envelope(777)
    _point_record_at(ledger, first.index, x, leaf_too)
    size = ledger.store.size()
    # the writer (or, when PostgreSQL's submitter finds the body logged, the waiter) refuses
    with pytest.raises(IntegrityError, match=r"record 0.*(does not hold|not the tree's)"):
        ledger.append(x)
    assert ledger.store.size() == size


def test_a_cancelled_caller_does_not_stop_the_writer(ledger: Ledger) -> None:
    """A caller that gives up (an HTTP request whose task is cancelled cancels the future it
    waits on) while its body is being integrated: the outcome has nobody to go to, and the
    writer's threads go on acknowledging everyone else."""
    seq = ledger._seq()
    ledger.append(envelope(1))  # the writer's threads run (on PostgreSQL: this process leads)
    futures = [seq.submit(parse_submission(envelope(100 + i))) for i in range(20)]
    cancelled = sum(f.cancel() for f in futures)
    assert cancelled  # at least one was still waiting when it was given up
    done: dict[str, object] = {}
    t = threading.Thread(target=lambda: done.setdefault("r", ledger.append(envelope(3))))
    t0 = time.monotonic()
    t.start()
    t.join(20)
    assert "r" in done, "the next append was not acknowledged: the writer stopped"
    assert time.monotonic() - t0 < 20
    assert seq.alive()
    # the given-up bodies were still logged once each (a retry gets the same record)
    again = ledger.append(envelope(100))
    assert (
        ledger.store.record(again.index).body
        == "sha256:" + hashlib.sha256(envelope(100)).hexdigest()
    )


@pytest.mark.postgres
@pytest.mark.parametrize("leaf_too", [False, True], ids=["digest", "digest-and-leaf"])
def test_the_lease_holder_never_acknowledges_its_own_append_with_another_bodys_record(
    pg_url: str, key_path: Path, leaf_too: bool
) -> None:
    """PostgreSQL: the body's pending row is in (the attacker holds the write lock meanwhile),
    then record 0's indexed digest is pointed at it. The batch meets the body as one already
    logged at 0; the lease holder, which acknowledges its own process's appends from the batch
    in hand, must refuse rather than hand out record 0 (another body's) with a valid proof."""
    import psycopg

    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        first = lg.append(envelope(1))  # this process leads
        lg.append(envelope(2))
        x = envelope(777)
        dx = hashlib.sha256(x).digest()
        schema = lg.store.engine.url.query["options"].split("search_path=")[1]  # type: ignore[union-attr]
        raw = lg.store.engine.url.set(drivername="postgresql", query={})
        dsn = raw.render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True, options=f"-csearch_path={schema}") as attacker:
            attacker.execute("BEGIN")
            attacker.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('provenance-ledger:' || "
                "current_schema(), 0))"
            )
            out: dict[str, object] = {}

            def go() -> None:
                try:
                    out["r"] = lg.append(x)
                except Exception as e:  # the refusal expected
                    out["e"] = e

            t = threading.Thread(target=go)
            t.start()
            deadline = time.monotonic() + 10
            with psycopg.connect(dsn, autocommit=True, options=f"-csearch_path={schema}") as look:
                q = "SELECT count(*) FROM pending WHERE digest = %s"
                while not look.execute(q, (dx,)).fetchone()[0]:  # type: ignore[index]
                    assert time.monotonic() < deadline, "the pending row never appeared"
                    time.sleep(0.02)
            attacker.execute("ALTER TABLE records DISABLE TRIGGER USER")
            q = "SELECT leaf, body_digest FROM records WHERE idx = %s"
            leaf, d0 = attacker.execute(q, (first.index,)).fetchone()  # type: ignore[misc]
            new_leaf = bytes(leaf).replace(bytes(d0).hex().encode(), dx.hex().encode())
            assert new_leaf != bytes(leaf)
            attacker.execute(
                "UPDATE records SET body_digest = %s, leaf = %s WHERE idx = %s",
                (dx, new_leaf if leaf_too else bytes(leaf), first.index),
            )
            attacker.execute("COMMIT")
            t.join(30)
        assert "r" not in out, f"acknowledged with record {out.get('r')}"
        assert isinstance(out.get("e"), IntegrityError)
        assert re.search(r"record 0.*(does not hold|not the tree's)", str(out["e"]))
        assert lg.store.size() == 2


def test_a_key_registered_again_under_a_new_name_is_credited_to_it(tmp_path: Path) -> None:
    """The same key registered as ``ci`` (then revoked) and as ``ci2``: a body it signs is
    admitted through ``ci2`` and must be indexed as ``ci2``'s — not as nobody's because the
    first name found for the key was the revoked one. ``ledger check`` agrees."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from ledger.index.maintain import check_indexes
    from ledger.index.rows import stored_rows
    from ledger.registry import add_signer, make_spec
    from ledger.registry.admin import admin_key_path, load_admin_key
    from ledger.registry.service import revoke_signer
    from tests.ledger import audit_samples

    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kp = tmp_path / "cp.key"
    with Ledger.create(f"sqlite:///{tmp_path / 'l.db'}", "test.example/ledger", kp) as lg:
        admin = load_admin_key(admin_key_path(kp))
        add_signer(lg, make_spec("ci", now=lg.now(), key=pem), admin)
        revoke_signer(lg, "ci", None, admin)
        add_signer(lg, make_spec("ci2", now=lg.now(), key=pem), admin)
        r = lg.append_admitted(lg.admit_many([audit_samples.pipeline(key)[1]]))[0]
        with lg.store._conn() as conn:
            terms = stored_rows(conn, 0, 1 << 40).terms
        signers = sorted(t[1] for t in terms if t[0] == "signer" and t[2] == r.index)
        assert signers == ["ci2"]
        check_indexes(lg.store)


def test_the_writer_does_not_take_its_time_from_a_rewritten_time_column(ledger: Ledger) -> None:
    """The last record's ``time`` column moved to 2099 (its signed leaf says otherwise): the
    next records would all carry 2099 (time never decreases along the log). The writer takes
    no time from the column that its leaf does not record: it refuses, and writes nothing."""
    ledger.append(envelope(1))
    last = ledger.append(envelope(2))
    sql = "UPDATE records SET time = '2099-01-01T00:00:00Z' WHERE idx = :i"
    _tamper(ledger, "records", sql, i=last.index)
    with pytest.raises(IntegrityError, match="stored time '2099-01-01T00:00:00Z' is not the time"):
        ledger.append(envelope(3))
    assert ledger.store.size() == 2
