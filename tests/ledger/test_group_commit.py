"""The sequencer's group commit: callers the last batch answered are waited for, briefly."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

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

    def sequence(self, subs: Sequence[Submission], *_: Any) -> SequencedBatch:
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
