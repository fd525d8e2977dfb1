"""Concurrent appenders — threads, processes, and separate engines — never fork the chain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ledger.fsck import check_ledger
from ledger.log import Ledger
from tests.conftest import envelope
from tests.ledger.conftest import failing_commits

ROOT = Path(__file__).resolve().parents[2]


def _appender(url: str, key: Path, start: int, count: int, batch: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.ledger.appender",
            url,
            str(key),
            str(start),
            str(count),
            str(batch),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def _assert_one_history(ledger: Ledger, expected: int) -> None:
    report = check_ledger(ledger.store)  # gapless indices, every prev, tree, checkpoints
    assert report.records == expected
    records = ledger.store.records(0, expected)
    assert [r.index for r in records] == list(range(expected))
    assert len({r.body for r in records}) == expected


def test_threads(ledger: Ledger) -> None:
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(40):
                ledger.append(envelope(t * 1000 + i))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    _assert_one_history(ledger, 320)


def test_processes(ledger: Ledger, db_url: str, key_path: Path) -> None:
    procs = [_appender(db_url, key_path, p * 10_000, 150, 1 + p * 10) for p in range(4)]
    acked: dict[int, str] = {}
    for p in procs:
        out, _ = p.communicate(timeout=240)
        assert p.returncode == 0
        for line in out.splitlines():
            idx, h = line.split()
            assert acked.setdefault(int(idx), h) == h  # no index handed to two bodies
    assert len(acked) == 600
    _assert_one_history(ledger, 600)


def test_two_engines_as_two_replicas(db_url: str, key_path: Path, ledger: Ledger) -> None:
    other = Ledger.open(db_url, key_path)
    try:

        def work(lg: Ledger, base: int) -> None:
            for i in range(60):
                lg.append(envelope(base + i))

        ts = [threading.Thread(target=work, args=(lg, b)) for lg, b in ((ledger, 0), (other, 5000))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        other.close()
    _assert_one_history(ledger, 120)


@pytest.mark.slow
def test_kill_9_mid_bulk_append_loses_no_acknowledged_append(
    ledger: Ledger, db_url: str, key_path: Path
) -> None:
    proc = _appender(db_url, key_path, 0, 200_000, 50)
    assert proc.stdout is not None
    acked: list[tuple[int, str]] = []
    deadline = time.monotonic() + 120
    while len(acked) < 1500 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        idx, h = line.split()
        acked.append((int(idx), h))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(acked) >= 1500, "the appender did not get far enough before the deadline"
    with Ledger.open(db_url) as reopened:
        report = check_ledger(reopened.store)
        assert report.records >= len(acked)
        stored = {r.index: r.leaf_hash.hex() for r in reopened.store.records(0, report.records)}
    for idx, h in acked:
        assert stored[idx] == h


def test_full_queue_is_refused_at_once_and_loses_nothing(tmp_path: Path) -> None:
    """While the writer is stuck behind another writer's lock, a full queue says Overloaded."""
    import sqlite3

    from ledger.bodies import parse_submission
    from ledger.errors import Overloaded
    from ledger.log import utc_now
    from ledger.sequencer import Sequencer

    db = tmp_path / "l.db"
    with Ledger.create(f"sqlite:///{db}", "q.example/log", tmp_path / "k") as lg:
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # holds the write lock
        seq = Sequencer(lg.store, lg.origin, lg.require_signer(), utc_now, max_pending=1)
        try:
            first = seq.submit(parse_submission(envelope(1)))
            deadline = time.monotonic() + 10
            while not seq._queue.empty() and time.monotonic() < deadline:
                time.sleep(0.01)  # wait until the worker holds `first` and blocks on the lock
            second = seq.submit(parse_submission(envelope(2)))  # fills the queue
            with pytest.raises(Overloaded) as e:
                seq.submit(parse_submission(envelope(3)))
            assert e.value.retry_after > 0
            assert not first.done()
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert {first.result(timeout=60).index, second.result(timeout=60).index} == {0, 1}
        seq.close()
        assert lg.store.size() == 2


def test_append_many_whose_first_batch_fails_waits_for_every_submission_and_reports_each(
    db_url: str, key_path: Path, ledger: Ledger
) -> None:
    """The first batch's commit fails, later ones succeed: `append_many` raises only after every
    submission has finished, with each outcome; nothing commits behind the caller's back.
    (SQLite: the sequencer's commit. PostgreSQL: the commit that makes a batch durable as
    pending rows, which the submitter makes on its own connection.)"""
    from ledger.errors import AppendsFailed
    from ledger.sequencer import AppendResult

    failed_once = threading.Event()

    def fail_first_commit() -> None:
        if not failed_once.is_set():
            failed_once.set()
            raise RuntimeError("injected: the first commit fails")

    with (
        Ledger.open(db_url, key_path, max_batch=10) as lg,
        failing_commits(lg.store.engine, fail_first_commit),
    ):
        with pytest.raises(AppendsFailed) as e:
            lg.append_many([envelope(i) for i in range(60)])
        committed = ledger.store.size()  # read at once: nothing may still be on its way
        outcomes = e.value.outcomes
        assert len(outcomes) == 60
        results = [o for o in outcomes if isinstance(o, AppendResult)]
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert errors and results, "one batch failed and later ones committed"
        assert all("injected" in str(x) for x in errors)
        assert isinstance(e.value.__cause__, RuntimeError)
        assert committed == len(results)
        assert sorted(r.index for r in results) == list(range(committed))
        time.sleep(0.5)
        assert ledger.store.size() == committed
    _assert_one_history(ledger, committed)
