"""Defects a hostile test of the PostgreSQL write path found (2026-11-30), held on both backends:
a duplicate answered from a record whose indexed digest was rewritten, and a caller that gives
up (its future cancelled) ending the writer's thread."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from ledger.bodies import parse_submission
from ledger.errors import IntegrityError
from ledger.log import Ledger
from tests.conftest import envelope
from tests.ledger.test_fsck import _tamper


def test_a_duplicate_is_never_answered_with_another_bodys_record(ledger: Ledger) -> None:
    """Someone with write access points record 0's indexed digest at body X. An append of X
    must not be acknowledged as record 0 (whose leaf names another body, with a proof that
    verifies): the writer refuses, and nothing is written."""
    first = ledger.append(envelope(1))
    ledger.append(envelope(2))
    x = envelope(777)
    sql = "UPDATE records SET body_digest = :d WHERE idx = :i"
    _tamper(ledger, "records", sql, d=hashlib.sha256(x).digest(), i=first.index)
    size = ledger.store.size()
    # the writer (or, when PostgreSQL's submitter finds the body logged, the waiter) refuses
    with pytest.raises(IntegrityError, match=r"record 0 .*does not hold (it|this body)"):
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
def test_the_lease_holder_never_acknowledges_its_own_append_with_another_bodys_record(
    pg_url: str, key_path: Path
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
            attacker.execute(
                "UPDATE records SET body_digest = %s WHERE idx = %s", (dx, first.index)
            )
            attacker.execute("COMMIT")
            t.join(30)
        assert "r" not in out, f"acknowledged with record {out.get('r')}"
        assert isinstance(out.get("e"), IntegrityError)
        assert "record 0" in str(out["e"]) and "does not hold" in str(out["e"])
        assert lg.store.size() == 2
