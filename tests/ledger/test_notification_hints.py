"""How an integration notification names its bodies, and what a waiter of another process looks
up when it hears one (``ledger.pending.hint``, ``ledger.waiter.Waiting._look``).

A waiter reads the pending rows of the bodies a notification names, in one query: a verified
acknowledgement answers, a row still queued waits for its own integration, a failed row's error
answers; only what the rows leave open is looked up in the log."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pytest

import ledger.index.rows as rows_module
from ledger import waiter
from ledger.errors import AppendsFailed, RefusedValue
from ledger.lease import LeaseHolder
from ledger.log import Ledger
from ledger.pending import HINT_MARK, MAX_HINT, PREFIX, hint, hinted
from ledger.sequencer import AppendResult
from tests.conftest import envelope
from tests.ledger.test_index_unstorable import _CASES, _env, _slsa


def _digests(n: int) -> list[bytes]:
    return [hashlib.sha256(str(i).encode()).digest() for i in range(n)]


def test_a_batch_of_a_thousand_bodies_is_named_body_by_body() -> None:
    digests = _digests(1000)  # the integrator's default batch: named "*" before 2026-12-01
    suffix = hint(digests)
    assert suffix.startswith("\t" + HINT_MARK) and len(suffix) <= MAX_HINT
    assert hinted(suffix[1:].split(",")) == {d[:PREFIX] for d in digests}


def test_a_batch_too_large_to_name_names_everything() -> None:
    assert hint(_digests(1400)) == "\t*"
    assert hint([]) == "\t"


def test_the_earlier_form_is_read_and_anything_else_names_nothing() -> None:
    d = _digests(2)
    assert hinted([d[0].hex()[:8], d[1].hex()[:8]]) == {d[0][:PREFIX], d[1][:PREFIX]}
    assert hinted([HINT_MARK + "not base64!", "xyz", "", "*", "0a1b2c3"]) == set()


def test_another_processs_large_batch_is_answered_by_its_rows_not_the_log(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """900 appends from a process that does not hold the lease are integrated in batches of up
    to 1,000: each batch names its bodies, and the waiter answers them from their rows without
    one lookup in the log; the same bodies again are answered as duplicates."""
    looked_up: list[bytes] = []
    real = waiter._logged

    def logged(conn: Any, digests: list[bytes]) -> dict[bytes, tuple[int, bytes]]:
        looked_up.extend(digests)
        return real(conn, digests)

    monkeypatch.setattr(waiter, "_logged", logged)
    bodies = [envelope(10_000 + i) for i in range(900)]
    with Ledger.create(pg_url, "test.example/ledger", key_path) as holder:
        holder.append(envelope(1))  # its integrator holds the lease from now on
        with Ledger.open(pg_url, key_path) as other:
            first = other.append_many(bodies)
            assert not any(r.duplicate for r in first)
            assert sorted(r.index for r in first) == list(range(1, 901))
            assert looked_up == []  # every body answered by its acknowledgement
            again = other.append_many(bodies)
            assert [(r.index, r.duplicate) for r in again] == [(r.index, True) for r in first]


def test_a_look_at_bodies_still_queued_reads_only_their_rows(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the holder's integrator is held up, the other process's waiter looks at its
    bodies every second (they have waited over a second): their rows say they are still
    queued, so none is looked up in the log; once integrated they are answered."""
    looked_up: list[bytes] = []
    real_logged, real_once = waiter._logged, LeaseHolder._integrate_once
    gate = threading.Event()

    def logged(conn: Any, digests: list[bytes]) -> dict[bytes, tuple[int, bytes]]:
        looked_up.extend(digests)
        return real_logged(conn, digests)

    def held_up(self: LeaseHolder) -> int:
        gate.wait(30)
        return real_once(self)

    monkeypatch.setattr(waiter, "_logged", logged)
    bodies = [envelope(20_000 + i) for i in range(20)]
    with Ledger.create(pg_url, "test.example/ledger", key_path) as holder:
        holder.append(envelope(1))
        monkeypatch.setattr(LeaseHolder, "_integrate_once", held_up)
        with Ledger.open(pg_url, key_path) as other, ThreadPoolExecutor(1) as pool:
            pending = pool.submit(other.append_many, bodies)
            time.sleep(3.0)  # two full looks or more, every body queued all along
            assert not pending.done()
            gate.set()
            results = pending.result(timeout=60)
        assert sorted(r.index for r in results) == list(range(1, 21))
        assert looked_up == []


def test_another_processs_failed_row_answers_its_waiter_with_the_rows_error(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holder's integration fails one body of the other process's batch (a value
    PostgreSQL refuses, the filter that keeps such values out switched off): the other's waiter
    gets that row's error for that body only, from the same query that reads the rows."""
    monkeypatch.setattr(rows_module, "storable", lambda value, limit=512: True)
    good = [_env(_slsa([{"uri": f"pkg:npm/good{i}@1.0.{i}"}], 100 + i)) for i in range(3)]
    bad = _env(_CASES["NUL in a purl"][0])
    with Ledger.create(pg_url, "test.example/ledger", key_path) as holder:
        holder.append(envelope(1))
        with Ledger.open(pg_url, key_path) as other:
            with pytest.raises(AppendsFailed, match="1 of 4") as e:
                other.append_many([*good, bad])
            *logged, refused = e.value.outcomes
            assert isinstance(refused, RefusedValue)
            assert sorted(cast(AppendResult, r).index for r in logged) == [1, 2, 3]
            assert holder.store.size() == 4
