"""``duplicate`` across processes on PostgreSQL: of every submission of one new body, exactly
one — the one that created the record — is told ``duplicate: false``, whichever process made it
and however the others' submissions interleave with the integrator's batches."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from ledger.bodies import Submission
from ledger.log import Ledger
from ledger.pending import insert_pending
from tests.conftest import envelope

_PROCESSES = 4
_ROUNDS = 40
_BODIES = 6  # per round: the same bodies from every process, half of them in reverse order


def _round_bodies(r: int) -> list[bytes]:
    return [envelope(1000 + r * _BODIES + i) for i in range(_BODIES)]


def _appender(url: str, key: str, me: int, barrier: Barrier, out: Any) -> None:
    """One process with its own Ledger (submitter, waiter, maybe the lease) appending each
    round's bodies the moment every process is ready."""
    told: list[tuple[int, int, bool]] = []
    try:
        with Ledger.open(url, Path(key)) as lg:
            for r in range(_ROUNDS):
                bodies = _round_bodies(r)
                order = list(range(_BODIES))
                if me % 2:
                    order.reverse()
                barrier.wait(30)
                results = lg.append_many([bodies[i] for i in order])
                told += [
                    (r * _BODIES + i, x.index, x.duplicate)
                    for i, x in zip(order, results, strict=True)
                ]
        out.put((me, told, None))
    except BaseException as e:  # reported, not lost with the child
        out.put((me, told, repr(e)))


def test_one_new_body_appended_by_several_processes_at_once_is_new_for_exactly_one(
    pg_url: str, key_path: Path
) -> None:
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(_PROCESSES), ctx.Queue()
    procs = [
        ctx.Process(target=_appender, args=(pg_url, str(key_path), me, barrier, out))
        for me in range(_PROCESSES)
    ]
    for p in procs:
        p.start()
    try:
        reports = [out.get(timeout=240) for _ in procs]
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
    assert not [e for _, _, e in reports if e], reports
    by_body: dict[int, list[tuple[int, bool]]] = {}
    for _, told, _ in reports:
        for body, index, duplicate in told:
            by_body.setdefault(body, []).append((index, duplicate))
    assert len(by_body) == _ROUNDS * _BODIES
    twice = {b: t for b, t in by_body.items() if sum(not d for _, d in t) != 1}
    assert not twice, f"{len(twice)} bodies not new exactly once: {sorted(twice.items())[:5]}"
    assert all(len({i for i, _ in t}) == 1 for t in by_body.values())  # one record per body
    with Ledger.open(pg_url, key_path) as lg:
        assert lg.store.size() == 1 + _ROUNDS * _BODIES


def _submit(conn: psycopg.Connection[Any], body: bytes) -> set[bytes]:
    sub = Submission(body, "dsse", hashlib.sha256(body).digest())
    return insert_pending(conn.cursor(), [sub], b"k" * 32, int(time.time()), "test").digests


def test_a_row_acknowledged_after_the_submitters_snapshot_is_not_made_pending_again(
    pg_url: str, key_path: Path
) -> None:
    """The interleaving behind two "new"s, made to happen: submitter B's statement takes its
    snapshot while A's row is pending, then waits for the row lock of the batch that logs it and
    writes its acknowledgement; once that commits, B must find the row taken, not replace it
    (before: the snapshot did not see the body logged, the row's latest version looked like a
    planted acknowledgement, and B was told new too)."""
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))  # the schema and its tables; closed: no integrator runs below
    conninfo = make_url(pg_url).set(drivername="postgresql").render_as_string(False)
    body = envelope(1)
    digest = hashlib.sha256(body).digest()
    with (
        psycopg.connect(conninfo, autocommit=True) as a,
        psycopg.connect(conninfo, autocommit=True) as b,
        psycopg.connect(conninfo) as batch,
    ):
        assert _submit(a, body) == {digest}  # A made it pending: A is new
        batch.execute(  # the integrator's batch acknowledges A's row, not yet committed
            "UPDATE pending SET idx = 1, leaf = 'x', proof = '', cp_size = 2, done_at = now()"
            " WHERE digest = %s",
            (digest,),
        )
        told: list[set[bytes]] = []
        t = threading.Thread(target=lambda: told.append(_submit(b, body)))
        t.start()
        b_pid = b.info.backend_pid
        for _ in range(500):  # until B's statement (its snapshot taken) waits for the row
            row = a.execute(  # autocommit: a fresh look each time
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (b_pid,)
            ).fetchone()
            if row and row[0] == "Lock":
                break
            time.sleep(0.01)
        else:
            raise AssertionError("the second submission never waited for the batch's row lock")
        batch.commit()
        t.join(10)
        assert told == [set()], "a second submitter of the body was told it is new"
        idx = a.execute("SELECT idx FROM pending WHERE digest = %s", (digest,)).fetchone()
        assert idx == (1,)  # the acknowledgement stands; the row was not made pending again
