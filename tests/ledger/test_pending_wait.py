"""One job's wait on PostgreSQL's shared path (``ledger.pending.Wait``): a chunk of bodies
waits as one job, and each body is settled on its own — acknowledged, failed alone, or past the
job's deadline — without taking the others' outcomes with it."""

from __future__ import annotations

import time

from ledger.bodies import parse_submission
from ledger.errors import RefusedValue, StorageError
from ledger.pending import Wait
from ledger.sequencer import AppendResult, Job, Outcome
from tests.conftest import envelope


def _ack(index: int) -> AppendResult:
    return AppendResult(index, b"l" * 32, [], index + 1, "note", False)


def _wait(n: int, told: list[list[Outcome] | BaseException]) -> Wait:
    subs = [parse_submission(envelope(i)) for i in range(n)]
    return Wait(Job(subs, told.append), time.monotonic() + 60, [None] * n, [False] * n, n)


def test_a_chunk_completes_once_every_body_is_settled_each_with_its_own_outcome() -> None:
    told: list[list[Outcome] | BaseException] = []
    w = _wait(3, told)
    w.ready = True
    w.resolve(2, _ack(7))
    w.resolve(0, RefusedValue("a NUL in a purl"))
    assert told == []  # one body still open
    w.resolve(0, _ack(9))  # a second settlement of a body changes nothing
    w.resolve(1, _ack(8))
    ((first, second, third),) = told
    assert isinstance(first, RefusedValue)
    assert (second, third) == (_ack(8), _ack(7))


def test_duplicates_are_marked_per_body() -> None:
    told: list[list[Outcome] | BaseException] = []
    w = _wait(2, told)
    w.duplicate = [False, True]
    w.ready = True
    w.resolve(0, _ack(1))
    w.resolve(1, _ack(0))
    ((a, b),) = told
    assert isinstance(a, AppendResult) and isinstance(b, AppendResult)
    assert (a.duplicate, b.duplicate) == (False, True)


def test_past_its_deadline_only_the_open_bodies_get_the_error() -> None:
    told: list[list[Outcome] | BaseException] = []
    w = _wait(2, told)
    w.ready = True
    w.resolve(1, _ack(4))
    w.fail(StorageError("not acknowledged within 60 s"))
    w.resolve(0, _ack(5))  # too late: the job was answered
    ((open_, acked),) = told
    assert isinstance(open_, StorageError) and acked == _ack(4)


def test_past_its_deadline_before_its_insert_committed_the_whole_job_fails() -> None:
    told: list[list[Outcome] | BaseException] = []
    w = _wait(2, told)
    w.resolve(1, _ack(4))
    w.fail(StorageError("not acknowledged within 60 s"))
    assert len(told) == 1 and isinstance(told[0], StorageError)


def test_a_failure_of_a_partly_answered_chunk_keeps_what_was_answered() -> None:
    """Closing the ledger, a failed batch or a defect in the waiter fails what is left of a
    chunk, not the bodies already acknowledged (found by the hostile test of 2026-12-01: a
    300-body chunk with 100 acknowledged was told "300 of 300 failed" on close)."""
    told: list[list[Outcome] | BaseException] = []
    w = _wait(3, told)
    w.ready = True
    w.resolve(0, _ack(1))
    defect = TypeError("int() argument must be a string")
    w.fail(defect)
    ((acked, second, third),) = told
    assert acked == _ack(1)
    assert isinstance(second, StorageError) and second is third
    assert "TypeError" in str(second) and second.__cause__ is defect


def test_a_failure_before_any_body_is_answered_fails_the_job_with_it() -> None:
    told: list[list[Outcome] | BaseException] = []
    w = _wait(2, told)
    w.ready = True
    defect = TypeError("a defect")
    w.fail(defect)
    assert told == [defect]  # raised to the caller as it was: a defect is not a storage error
