"""Build a large, valid ledger fast, for ``ledger check`` benchmarks and its big tamper tests.

``append_many`` runs at a few thousand records a second; a million records would take minutes
per test session. This writes the same records through the store's own import path
(:meth:`ledger.storage.LedgerStore.import_records`: bodies, records, tiles and the registry's
derived rows in one transaction, a checkpoint signed wherever the time steps up), so the result
is exactly what a ledger that sequenced batches of ``batch`` records would hold.

Usage: ``python -m bench.big_ledger DIR [SIZE]`` builds ``DIR/big.db`` (and its key
``DIR/big.key``) once; later calls reuse it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger.bodies import Submission, parse_submission
from ledger.log import Ledger, utc_now
from ledger.merkle import CompactRange
from ledger.record import GENESIS_PREV, Record, format_time

ORIGIN = "bench.example/log"
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def body(i: int) -> bytes:
    """A distinct, well-formed ~1 KB DSSE envelope (signatures are not checked on this path)."""
    return (
        '{"payloadType":"application/vnd.in-toto+json","payload":"'
        f'{i:016d}{"A" * 900}","signatures":[{{"keyid":"bench","sig":"c2lnbmF0dXJl"}}]}}'
    ).encode()


def _records(origin: str, size: int, batch: int) -> Iterator[tuple[Record, Submission]]:
    prev = GENESIS_PREV
    for i in range(size):
        sub = parse_submission(body(i))
        when = format_time(_EPOCH + timedelta(milliseconds=i // batch))  # one time per batch
        rec = Record(origin, i, prev, when, sub.body_type, "sha256:" + sub.digest.hex())
        prev = rec.leaf_hash.hex()
        yield rec, sub


def build(url: str, key_path: Path, size: int, batch: int = 1000) -> None:
    """Create a ledger at ``url`` holding ``size`` records in batches of ``batch``."""
    compact = CompactRange()
    for rec, _ in _records(ORIGIN, size, batch):
        compact.append(rec.leaf_hash)
    with Ledger.create(url, ORIGIN, key_path) as lg:
        lg.store.import_records(
            _records(ORIGIN, size, batch),
            ORIGIN,
            lg.require_signer(),
            utc_now,
            root=compact.root(),
        )


def cached(directory: Path, size: int) -> Path:
    """``directory/big.db`` holding ``size`` records, built on first use."""
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "big.db"
    if not db.exists():
        t = time.perf_counter()
        tmp = directory / "big.db.partial"
        tmp.unlink(missing_ok=True)
        (directory / "big.key").unlink(missing_ok=True)
        (directory / "big.admin.key").unlink(missing_ok=True)
        build(f"sqlite:///{tmp}", directory / "big.key", size)
        tmp.rename(db)
        print(f"built {size} records in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    return db


if __name__ == "__main__":
    cached(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000)
