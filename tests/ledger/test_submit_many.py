"""``Ledger.submit_many``: an HTTP batch's bodies queued as chunks, on either writer."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ledger import merkle
from ledger.bodies import Submission, parse_submission
from ledger.checkpoint import parse_checkpoint
from ledger.errors import Overloaded
from ledger.log import Ledger
from tests.conftest import envelope


def test_every_body_is_answered_in_order_and_proved(ledger: Ledger) -> None:
    subs = [parse_submission(envelope(i)) for i in range(5)] + [parse_submission(envelope(1))]
    chunks = ledger.submit_many(subs)
    results = [r for _, fut in chunks for r in fut.result(timeout=60)]
    assert sum(size for size, _ in chunks) == len(subs)
    assert [r.index for r in results] == [0, 1, 2, 3, 4, 1]
    assert [r.duplicate for r in results] == [False] * 5 + [True]
    for r in results:  # each receipt's proof reproduces its checkpoint's root
        root = parse_checkpoint(r.checkpoint.split("\n\n")[0] + "\n").root_hash
        merkle.verify_inclusion(r.leaf_hash, r.index, r.tree_size, r.inclusion_proof, root)


class _OneAtATime:
    """A writer without ``submit_many`` (the shared PostgreSQL sequencer's interface): the second
    submission is refused at once, the others resolve or fail later."""

    def __init__(self) -> None:
        self.futures: list[Future[Any]] = []

    def submit(self, sub: Submission) -> Future[Any]:
        if len(self.futures) == 1 and not hasattr(self, "refused"):
            self.refused = True
            raise Overloaded("too many appends are waiting", 1.0)
        fut: Future[Any] = Future()
        self.futures.append(fut)
        return fut


def test_a_writer_without_chunks_gets_one_chunk_per_body(tmp_path: Path) -> None:
    ledger = Ledger.create(f"sqlite:///{tmp_path / 'l.db'}", "test.example/ledger", tmp_path / "k")
    writer = _OneAtATime()
    ledger._sequencer = writer  # type: ignore[assignment]
    try:
        chunks = ledger.submit_many([parse_submission(envelope(i)) for i in range(4)])
        assert [size for size, _ in chunks] == [1, 1, 1, 1]
        assert isinstance(chunks[1][1].exception(timeout=1), Overloaded)  # refused at once
        writer.futures[0].set_result("first")
        writer.futures[1].set_exception(Overloaded("later", 1.0))
        assert chunks[0][1].result(timeout=1) == ["first"]  # type: ignore[comparison-overlap]
        assert isinstance(chunks[2][1].exception(timeout=1), Overloaded)
        chunks[3][1].cancel()  # the client went away: the body's own future is cancelled too
        assert writer.futures[2].cancelled()
    finally:
        ledger._sequencer = None
        ledger.close()
