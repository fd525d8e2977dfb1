"""The sequencer's group commit: callers the last batch answered are waited for, briefly."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from ledger.bodies import Submission, parse_submission
from ledger.log import utc_now
from ledger.sequencer import Sequencer
from ledger.storage import SequencedBatch
from tests.conftest import envelope


class RecordingStore:
    """Stands in for :class:`~ledger.storage.LedgerStore`: sequences a batch in ``cost`` seconds
    and records each batch's size."""

    def __init__(self, cost: float) -> None:
        self.cost, self.sizes, self.size = cost, list[int](), 0

    def lock_wait(self) -> None:
        """Where the real store waits for the write lock (another process's batch)."""

    def sequence(self, batch: Any, *_: Any) -> SequencedBatch:
        self.lock_wait()
        subs: Sequence[Submission] = batch(None) if callable(batch) else batch  # under the lock
        time.sleep(self.cost)
        self.sizes.append(len(subs))
        first, self.size = self.size, self.size + len(subs)
        n = len(subs)
        idx = list(range(first, self.size))
        return SequencedBatch(idx, [True] * n, self.size, "note", [b""] * n, [[]] * n)


def _sequencer(store: RecordingStore, linger: float) -> Sequencer:
    return Sequencer(store, "o", None, utc_now, linger=linger)  # type: ignore[arg-type]


def _closed_loop(seq: Sequencer, callers: int, each: int) -> None:
    def work(k: int) -> None:
        for i in range(each):
            seq.submit(parse_submission(envelope(k * 1000 + i))).result(timeout=30)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_callers_answered_together_are_batched_together_again() -> None:
    """Eight callers, each appending one at a time: after the first batches, each batch waits
    for the callers it answered, so batches hold all eight (without the wait they split, as the
    callers come back one by one while the next batch has already started)."""
    store = RecordingStore(cost=0.003)
    seq = _sequencer(store, linger=0.5)
    try:
        _closed_loop(seq, callers=8, each=25)
    finally:
        seq.close()
    assert sum(store.sizes) == 200
    later = store.sizes[3:-3]
    assert later and sum(later) / len(later) >= 7.5, store.sizes


def test_a_lone_caller_never_waits_for_the_linger() -> None:
    """One caller appending in a loop: its batch has everyone the last batch answered, so the
    worker starts at once — a long linger costs it nothing."""
    store = RecordingStore(cost=0.0)
    seq = _sequencer(store, linger=2.0)
    try:
        start = time.perf_counter()
        _closed_loop(seq, callers=1, each=20)
        took = time.perf_counter() - start
    finally:
        seq.close()
    assert store.sizes == [1] * 20
    assert took < 2.0, took  # one linger would be 2 s


def test_a_caller_that_does_not_come_back_costs_at_most_the_linger_and_close_ends_it() -> None:
    """Two callers answered together, one comes back: it waits at most ``linger`` for the other,
    then is sequenced alone; close() during a linger stops the worker after that batch."""
    store = RecordingStore(cost=0.0)
    seq = _sequencer(store, linger=0.3)
    try:
        a, b = (seq.submit(parse_submission(envelope(i))) for i in (1, 2))
        a.result(timeout=10), b.result(timeout=10)
        start = time.perf_counter()
        c = seq.submit(parse_submission(envelope(3)))
        c.result(timeout=10)
        waited = time.perf_counter() - start
        assert 0.2 <= waited < 2.0, waited
        seq.submit(parse_submission(envelope(4)))  # expected: 1 — no wait
        d = seq.submit(parse_submission(envelope(5)))
        seq.close()  # queued behind: still sequenced before the worker stops
        assert d.done() and d.result().index == 4
    finally:
        if seq.alive():
            seq.close()


def test_a_batch_of_bodies_is_one_job_per_chunk_answered_in_order() -> None:
    """``submit_many``: the bodies of an HTTP batch enter the queue as jobs of at most
    ``max_batch`` (one future each), in order, each answered with its bodies' results in order."""
    store = RecordingStore(cost=0.0)
    seq = Sequencer(store, "o", None, utc_now, max_batch=3, linger=0.0)  # type: ignore[arg-type]
    try:
        chunks = seq.submit_many([parse_submission(envelope(i)) for i in range(7)])
        assert [size for size, _ in chunks] == [3, 3, 1]
        results = [r for _, fut in chunks for r in fut.result(timeout=10)]
    finally:
        seq.close()
    assert [r.index for r in results] == list(range(7))
    assert sum(store.sizes) == 7 and max(store.sizes) <= 3


def test_a_chunk_that_does_not_fit_the_queue_fails_alone_with_overloaded() -> None:
    from ledger.errors import Overloaded

    gate = threading.Event()

    class Held(RecordingStore):
        def lock_wait(self) -> None:
            gate.wait(10)

    store = Held(cost=0.0)
    seq = Sequencer(store, "o", None, utc_now, max_batch=2, max_pending=1, linger=0.0)  # type: ignore[arg-type]
    try:
        first = seq.submit(parse_submission(envelope(0)))  # the worker takes it and waits
        deadline = time.monotonic() + 5
        while seq._queue.qsize() and time.monotonic() < deadline:
            time.sleep(0.01)
        chunks = seq.submit_many([parse_submission(envelope(i)) for i in range(1, 5)])
        assert isinstance(chunks[1][1].exception(timeout=1), Overloaded)  # the queue holds one
        gate.set()
        assert [r.index for r in chunks[0][1].result(timeout=10)] == [1, 2]
        first.result(timeout=10)
    finally:
        gate.set()
        seq.close()


def test_the_default_linger_waits_for_callers_a_few_milliseconds_away() -> None:
    """The default linger (20 ms) covers callers that come back a few milliseconds after their
    answer, as an HTTP server's clients do (the event loop reads and admits each request in turn):
    they are batched together again. A 1 ms linger split them."""
    store = RecordingStore(cost=0.002)
    seq = Sequencer(store, "o", None, utc_now)  # type: ignore[arg-type]

    def work(k: int) -> None:
        for i in range(15):
            seq.submit(parse_submission(envelope(k * 1000 + i))).result(timeout=30)
            time.sleep(0.0005 * k)  # the last of 8 callers comes back 3.5 ms after its answer

    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        seq.close()
    later = store.sizes[3:-3]
    assert later and sum(later) / len(later) >= 6.5, store.sizes


def _answered_together(seq: Sequencer, n: int) -> None:
    """``n`` callers answered by one batch: the worker will linger for ``n`` jobs next."""
    futures = [seq.submit(parse_submission(envelope(900_000 + i))) for i in range(n)]
    for f in futures:
        f.result(timeout=10)


def test_the_lingering_worker_starts_as_soon_as_the_last_expected_job_arrives() -> None:
    """The lingering worker sleeps until as many jobs as it expects are queued, woken by the
    submission that completes them — by ``submit``, ``submit_many`` and ``append_many`` alike;
    it never sleeps out its linger once they are there, and takes those that came earlier."""
    store = RecordingStore(cost=0.0)
    seq = _sequencer(store, linger=3.0)
    try:
        for k, via in enumerate(("submit", "submit_many", "append_many")):
            _answered_together(seq, 4)
            store.sizes.clear()
            start = time.perf_counter()
            futures = []
            for i in range(3):  # three come back one by one, 20 ms apart
                futures.append(seq.submit(parse_submission(envelope(960_000 + 10 * k + i))))
                time.sleep(0.02)
            last = parse_submission(envelope(960_000 + 10 * k + 9))
            if via == "submit":
                seq.submit(last).result(timeout=10)
            elif via == "submit_many":
                [(_, f)] = seq.submit_many([last])
                f.result(timeout=10)
            else:
                seq.append_many([last])
            took = time.perf_counter() - start
            assert all(f.done() for f in futures)
            assert store.sizes == [4], (via, store.sizes)  # all four in one batch
            assert took < 1.5, (via, took)  # a missed wake-up would sleep out the 3 s linger
    finally:
        seq.close()


class LockedOut(RecordingStore):
    """The write lock is held elsewhere until ``release`` is set; ``waiting`` says we wait."""

    def __init__(self) -> None:
        super().__init__(cost=0.0)
        self.waiting, self.release = threading.Event(), threading.Event()

    def lock_wait(self) -> None:
        if not self.release.is_set():
            self.waiting.set()
            self.release.wait(10)


def test_jobs_queued_while_the_write_lock_is_held_elsewhere_join_the_batch() -> None:
    """A batch gathered, then kept waiting for the write lock: what is queued meanwhile rides
    along once the lock is held, instead of waiting a whole batch more."""
    store = LockedOut()
    seq = Sequencer(store, "o", None, utc_now, linger=0.0)  # type: ignore[arg-type]
    try:
        first = seq.submit(parse_submission(envelope(0)))
        assert store.waiting.wait(10)
        later = [seq.submit(parse_submission(envelope(i))) for i in range(1, 4)]
        store.release.set()
        results = [f.result(timeout=10) for f in [first, *later]]
    finally:
        seq.close()
    assert store.sizes == [4]
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert len({r.checkpoint for r in results}) == 1


def test_a_held_over_job_is_never_passed_by_a_later_one() -> None:
    """A chunk that does not fit the batch under the lock is held over, and nothing queued
    after it joins that batch: an ``append_many``'s chunks keep their order in the log."""
    store = LockedOut()
    seq = Sequencer(store, "o", None, utc_now, max_batch=2, linger=0.0)  # type: ignore[arg-type]
    try:
        first = seq.submit(parse_submission(envelope(0)))
        assert store.waiting.wait(10)
        [(_, chunk)] = seq.submit_many([parse_submission(envelope(i)) for i in (1, 2)])
        last = seq.submit(parse_submission(envelope(3)))  # would fit beside the first
        store.release.set()
        got = (first.result(timeout=10), chunk.result(timeout=10), last.result(timeout=10))
    finally:
        seq.close()
    assert store.sizes == [1, 2, 1]
    assert [got[0].index, *(r.index for r in got[1]), got[2].index] == [0, 1, 2, 3]


def test_close_while_a_batch_waits_for_the_lock_answers_everything_queued() -> None:
    store = LockedOut()
    seq = Sequencer(store, "o", None, utc_now, linger=0.0)  # type: ignore[arg-type]
    first = seq.submit(parse_submission(envelope(0)))
    assert store.waiting.wait(10)
    second = seq.submit(parse_submission(envelope(1)))
    closing = threading.Thread(target=seq.close)
    closing.start()
    time.sleep(0.05)  # close() has queued its stop behind the second job
    store.release.set()
    closing.join(10)
    assert not closing.is_alive() and not seq.alive()
    assert [first.result(timeout=1).index, second.result(timeout=1).index] == [0, 1]


def test_a_job_held_over_while_gathering_is_not_passed_under_the_lock() -> None:
    """The gathered batch held a job over (it did not fit); a job queued later that would fit is
    not added under the lock ahead of it."""

    class Staged(RecordingStore):
        def __init__(self) -> None:
            super().__init__(cost=0.0)
            self.calls, self.busy, self.release = 0, threading.Event(), threading.Event()

        def lock_wait(self) -> None:
            self.calls += 1
            if self.calls == 2:
                self.release.wait(10)

        def sequence(self, batch: Any, *rest: Any) -> SequencedBatch:
            out = super().sequence(batch, *rest)
            if self.calls == 1:  # the first batch takes a while: the next jobs queue meanwhile
                self.busy.set()
                self.release.wait(10)
            return out

    store = Staged()
    seq = Sequencer(store, "o", None, utc_now, max_batch=3, linger=0.0)  # type: ignore[arg-type]
    try:
        first = seq.submit(parse_submission(envelope(0)))
        assert store.busy.wait(10)
        [(_, c)] = seq.submit_many([parse_submission(envelope(i)) for i in (1, 2)])
        [(_, d)] = seq.submit_many([parse_submission(envelope(i)) for i in (3, 4)])
        e = seq.submit(parse_submission(envelope(5)))  # would fit beside c, not beside c and d
        store.release.set()
        got = [first.result(timeout=10), *c.result(timeout=10), *d.result(timeout=10)]
        got.append(e.result(timeout=10))
    finally:
        store.release.set()
        seq.close()
    assert store.sizes == [1, 2, 3]  # c alone (d held over, e behind it), then d and e
    assert [r.index for r in got] == [0, 1, 2, 3, 4, 5]


def _primed(max_batch: int, linger: float) -> tuple[RecordingStore, Sequencer]:
    """A sequencer whose last batches answered 8 singles, at most ``max_batch`` a batch: it
    will linger for as many jobs as its last batch answered (8, or ``max_batch`` if smaller)."""
    store = RecordingStore(cost=0.2)
    seq = Sequencer(store, "o", None, utc_now, max_batch=max_batch, linger=linger)  # type: ignore[arg-type]
    first = seq.submit(parse_submission(envelope(800_000)))
    time.sleep(0.05)  # the worker is busy with it: the next 8 queue and form one batch
    rest = [seq.submit(parse_submission(envelope(800_001 + i))) for i in range(8)]
    for f in [first, *rest]:
        f.result(timeout=10)
    store.cost = 0.0
    return store, seq


@pytest.mark.parametrize(("chunk", "sizes"), [(3, [4]), (4, [1, 4]), (1000, [1, 1000])])
def test_a_chunk_that_fills_or_overflows_the_batch_ends_the_linger(
    chunk: int, sizes: list[int]
) -> None:
    """Lingering for 8 callers, the worker counts entries too: a chunk that fills the batch's
    room, or would overflow it, starts the batch at once (found by a hostile test: the batch
    slept out the linger, 0.5 s here, for jobs that could no longer join it)."""
    max_batch = 4 if chunk < 1000 else 1000
    store, seq = _primed(max_batch, linger=2.0)
    try:
        store.sizes.clear()
        start = time.perf_counter()
        single = seq.submit(parse_submission(envelope(810_000)))
        time.sleep(0.01)  # the worker is lingering for the rest
        chunks = seq.submit_many([parse_submission(envelope(820_000 + i)) for i in range(chunk)])
        single.result(timeout=10)
        for _, f in chunks:
            f.result(timeout=10)
        took = time.perf_counter() - start
    finally:
        seq.close()
    assert store.sizes == sizes
    assert took < 1.0, took  # one linger is 2 s


def test_singles_that_fill_the_batch_end_the_linger() -> None:
    """The worker never waits for more jobs than its batch has room for: lingering for 4 jobs
    behind a first job of 2 entries (max_batch 4), two singles fill the batch and start it."""
    store, seq = _primed(max_batch=4, linger=2.0)
    try:
        store.sizes.clear()
        start = time.perf_counter()
        [(_, pair)] = seq.submit_many([parse_submission(envelope(830_000 + i)) for i in (0, 1)])
        futures = []
        for i in (2, 3):
            time.sleep(0.01)  # the worker is lingering
            futures.append(seq.submit(parse_submission(envelope(830_000 + i))))
        pair.result(timeout=10)
        for f in futures:
            f.result(timeout=10)
        took = time.perf_counter() - start
    finally:
        seq.close()
    assert store.sizes == [4]
    assert took < 1.0, took  # one linger is 2 s
