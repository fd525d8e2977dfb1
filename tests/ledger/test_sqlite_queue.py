"""SQLite writers queue on ``<file>-writer.lock`` (ledger/_internal/sqlite_queue.py): held for
exactly a write transaction, readable only by who may write, one lock timeout for both waits, and
a failed ``init`` that lost the race to create the file leaves the winner's ledger alone."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import ledger._internal.db as dbmod
from ledger._internal.db import write_transaction
from ledger._internal.sqlite_queue import WRITER_LOCK_SUFFIX
from ledger.errors import Overloaded
from ledger.log import Ledger
from ledger.storage import LedgerStore
from tests.conftest import envelope

ORIGIN = "example.org/q"


def _held(lock_file: Path) -> bool:
    fd = os.open(lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_sqlite_writers_queue_on_a_file_lock_held_for_exactly_their_transaction(
    tmp_path: Path, key_path: Path
) -> None:
    """Writers on one SQLite file, in any process, take turns on ``<file>-writer.lock`` (their
    queue, woken within a millisecond) before SQLite's own lock (which sleeps up to 100 ms a
    try): held for the whole write transaction, free the moment it ends."""
    db = tmp_path / "q.db"
    lock_file = Path(f"{db}{WRITER_LOCK_SUFFIX}")

    with Ledger.create(f"sqlite:///{db}", ORIGIN, key_path) as lg:
        assert lock_file.exists() and not _held(lock_file)
        db_mode = db.stat().st_mode & 0o777
        assert lock_file.stat().st_mode & 0o444 == (db_mode & 0o222) << 1, (
            "the lock file is readable by someone who may not write the ledger"
        )
        got: list[int] = []
        with write_transaction(lg.store.engine):
            assert _held(lock_file)
            t = threading.Thread(target=lambda: got.append(lg.append(envelope(1)).index))
            t.start()
            t.join(0.5)
            assert got == [], "an append went ahead while another writer held the lock"
        t.join(30)
        assert got == [0] and not _held(lock_file)
        lg.append(envelope(2))
        assert not _held(lock_file)


def test_a_lock_file_left_readable_by_everyone_is_narrowed_to_the_ledgers_writers(
    tmp_path: Path, key_path: Path
) -> None:
    db = tmp_path / "w.db"
    lock_file = Path(f"{db}{WRITER_LOCK_SUFFIX}")
    with Ledger.create(f"sqlite:///{db}", ORIGIN, key_path) as lg:
        db.chmod(0o644)
        lock_file.chmod(0o644)  # as an earlier build, or anyone, left it
        lg.append(envelope(1))
        assert lock_file.stat().st_mode & 0o777 == 0o600
        db.chmod(0o664)  # the group may write the ledger: it may queue too
        lg.append(envelope(2))
        assert lock_file.stat().st_mode & 0o777 == 0o660
        assert lock_file.stat().st_gid == db.stat().st_gid


def test_a_lock_file_that_is_not_a_regular_file_is_not_used(
    tmp_path: Path, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dbmod, "LOCK_TIMEOUT_SECONDS", 1.0)
    db = tmp_path / "d.db"
    with Ledger.create(f"sqlite:///{db}", ORIGIN, key_path) as lg:
        lock_file = Path(f"{db}{WRITER_LOCK_SUFFIX}")
        lock_file.unlink()
        os.mkfifo(lock_file)  # it opens and takes a flock like a file, but it is no queue
        fd = os.open(lock_file, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # so someone holding it must not stop the writers
            assert lg.append(envelope(1)).index == 0  # SQLite's lock alone
        finally:
            os.close(fd)
        assert lock_file.is_fifo()


def test_queueing_and_sqlites_own_lock_share_one_timeout(
    tmp_path: Path, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dbmod, "LOCK_TIMEOUT_SECONDS", 2.0)
    db = tmp_path / "t.db"
    Ledger.create(f"sqlite:///{db}", ORIGIN, key_path).close()
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # a writer that does not queue holds SQLite's lock
    fd = os.open(f"{db}{WRITER_LOCK_SUFFIX}", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # and a queued writer holds the file for 1.2 s
    release = threading.Timer(1.2, os.close, (fd,))
    try:
        with Ledger.open(f"sqlite:///{db}", key_path) as lg:
            release.start()
            started = time.monotonic()
            with pytest.raises(Overloaded, match="the ledger is busy"):
                lg.append(envelope(1))
            waited = time.monotonic() - started
        assert 1.9 < waited < 2.7, f"waited {waited:.2f} s for a 2 s lock timeout"
    finally:
        release.join()
        blocker.execute("ROLLBACK")
        blocker.close()


def test_an_init_that_lost_the_race_for_a_new_file_leaves_the_winners_ledger(
    tmp_path: Path, key_path: Path
) -> None:
    db = tmp_path / "race.db"
    url = f"sqlite:///{db}"
    loser = LedgerStore.open(url, create=True)  # saw no file: it would remove what it made
    with Ledger.create(url, ORIGIN, key_path) as winner:  # another `init` creates it first
        winner.append(envelope(1))
    loser.close()  # the loser's `init` failed ("a ledger already exists") and cleans up
    assert db.exists()
    with Ledger.open(url, key_path) as lg:
        assert lg.store.size() == 1
    lonely = LedgerStore.open(f"sqlite:///{tmp_path / 'lonely.db'}", create=True)
    with write_transaction(lonely.engine):
        pass  # SQLite made the file; no ledger was created in it
    lonely.close()
    assert not list(tmp_path.glob("lonely.db*"))
