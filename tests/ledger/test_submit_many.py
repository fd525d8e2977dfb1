"""``Ledger.submit_many``: an HTTP batch's bodies queued as chunks, on either writer."""

from __future__ import annotations

from pathlib import Path

from ledger import merkle
from ledger.bodies import parse_submission
from ledger.checkpoint import parse_checkpoint
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


def test_a_chunk_holds_at_most_max_batch_bodies_on_either_writer(
    db_url: str, key_path: Path
) -> None:
    """Both writers queue an HTTP batch as chunks of ``max_batch`` (PostgreSQL's shared writer
    took the bodies one by one, a job and two futures each, until 2026-12-01)."""
    Ledger.create(db_url, "test.example/ledger", key_path).close()
    with Ledger.open(db_url, key_path, max_batch=2) as ledger:
        subs = [parse_submission(envelope(i)) for i in range(5)]
        chunks = ledger.submit_many(subs)
        assert [size for size, _ in chunks] == [2, 2, 1]
        results = [r for _, fut in chunks for r in fut.result(timeout=60)]
        assert [(r.index, r.duplicate) for r in results] == [(i, False) for i in range(5)]
