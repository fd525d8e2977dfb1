"""What the bulk path changes around it: the collector's pause, and SQLite's connection settings."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger._internal.collector import collector_paused
from ledger._internal.db import SQLITE_CACHE_KIB, SQLITE_CHECKPOINT_PAGES
from ledger.errors import AppendsFailed
from ledger.log import Ledger
from tests.conftest import envelope
from tests.ledger.conftest import failing_commits


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_is_paused_inside_and_resumes_after(collector_on: None) -> None:
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause is still open
    assert gc.isenabled()


def test_a_collector_the_application_disabled_stays_disabled(collector_on: None) -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_overlapping_pauses_in_two_threads_resume_once_both_end(collector_on: None) -> None:
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with collector_paused():
            entered.set()
            release.wait(10)

    t = threading.Thread(target=other)
    t.start()
    assert entered.wait(10)
    with collector_paused():
        pass
    assert not gc.isenabled()  # the other thread's pause is still open
    release.set()
    t.join()
    assert gc.isenabled()


def test_append_many_resumes_the_collector_after_success_and_failure(
    ledger: Ledger, collector_on: None
) -> None:
    assert [r.index for r in ledger.append_many([envelope(1), envelope(2)])] == [0, 1]
    assert gc.isenabled()

    collecting: list[bool] = []

    def refuse_commit() -> None:
        collecting.append(gc.isenabled())
        raise RuntimeError("injected: the commit fails")

    with failing_commits(ledger.store.engine, refuse_commit), pytest.raises(AppendsFailed):
        ledger.append_many([envelope(3)])
    assert collecting and not any(collecting)  # paused while the batch was written
    assert gc.isenabled()


def test_sqlite_writers_cache_more_and_checkpoint_less_often(
    tmp_path: Path, key_path: Path
) -> None:
    """The writer's connection caches 64 MiB; a reader's keeps SQLite's default (2 MiB, -2000)."""
    from ledger._internal.db import write_transaction

    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Ledger.create(url, "test.example/log", key_path) as lg:
        engine = lg.store.engine
        with write_transaction(engine) as w:
            assert w.execute(text("PRAGMA cache_size")).scalar() == -SQLITE_CACHE_KIB
            with engine.connect() as reader:  # another pooled connection, never a writer
                assert reader.execute(text("PRAGMA cache_size")).scalar() == -2000
                assert (
                    reader.execute(text("PRAGMA wal_autocheckpoint")).scalar()
                    == SQLITE_CHECKPOINT_PAGES
                )
