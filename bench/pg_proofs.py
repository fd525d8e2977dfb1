"""Inclusion proofs at 1,000,000 records on PostgreSQL (issue 8: "now measured on PostgreSQL too").

The ledger is built once through the store's own import path (records chained, tiles written,
one checkpoint signed over the root) in the schema ``bench_proofs_1m`` and reused by later runs
(its key lives in ``/tmp/bench-pg-1m.key``). Measured as ``bench.run.proofs_and_check`` measures
SQLite, so the two compare: a warm tile cache (every full tile seen once, as a server reaches),
three series of random indices, medians of their p50/p99; and the whole ``Ledger.inclusion``
(latest checkpoint read and verified, proof computed and verified) the same way.
``python -m bench.pg_proofs [SIZE]``.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.run import PG, RESULTS, _percentiles, bodies, machine
from ledger.bodies import Submission
from ledger.log import Ledger, utc_now
from ledger.merkle import CompactRange
from ledger.record import GENESIS_PREV, Record, format_time
from ledger.registry.admin import admin_key_path
from ledger.tiles import TileCache

SCHEMA = "bench_proofs_1m"
KEY = Path("/tmp/bench-pg-1m.key")
ORIGIN = "bench.example/log"


def _url() -> str:
    return f"{PG}?options=-csearch_path%3D{SCHEMA}"


def _items(n: int, root: CompactRange, now: str) -> Iterator[tuple[Record, Submission]]:
    prev = GENESIS_PREV
    for lo in range(0, n, 10_000):
        for content in bodies(lo, min(10_000, n - lo)):
            sub = Submission.of(content, "dsse")
            rec = Record(ORIGIN, root.size, prev, now, "dsse", "sha256:" + sub.digest.hex())
            root.append(rec.leaf_hash)
            prev = rec.leaf_hash.hex()
            yield rec, sub


def build(n: int) -> None:
    admin = create_engine(PG)
    with admin.begin() as c:
        c.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        c.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    admin.dispose()
    KEY.unlink(missing_ok=True)
    admin_key_path(KEY).unlink(missing_ok=True)
    with Ledger.create(_url(), ORIGIN, KEY) as lg:
        # The root is needed up front: one pass computes it, the import pass checks it.
        pre, now = CompactRange(), format_time(utc_now())
        for _ in _items(n, pre, now):
            pass
        lg.store.import_records(
            _items(n, CompactRange(), now), ORIGIN, lg.require_signer(), utc_now, root=pre.root()
        )


def _size() -> int:
    try:
        with Ledger.open(_url()) as lg:
            return lg.checkpoint().checkpoint.size
    except Exception:
        return -1


def measure(n: int, queries: int = 20_000) -> dict[str, object]:
    rnd = random.Random(7)
    out: dict[str, object] = {}
    with Ledger.open(_url()) as lg:
        series, full = [], []
        for _ in range(3):
            cache = TileCache()
            warm = lg.store.tree(n)
            warm.cache = cache
            for i in range(0, n, 256):
                warm.inclusion_proof(i)
            lg.store.cache = cache
            samples, whole = [], []
            for _ in range(queries // 3):
                i = rnd.randrange(n)
                t = time.perf_counter()
                tree = lg.store.tree(n)
                tree.inclusion_proof(i)
                samples.append(time.perf_counter() - t)
                t = time.perf_counter()
                lg.inclusion(i)
                whole.append(time.perf_counter() - t)
            series.append(_percentiles(samples))
            full.append(_percentiles(whole))
        for label, ser in (("tree_proof", series), ("ledger_inclusion", full)):
            out[label] = {
                "p50_ms": statistics.median(x["p50_ms"] for x in ser),
                "p99_ms": statistics.median(x["p99_ms"] for x in ser),
                "p99_ms_runs": [x["p99_ms"] for x in ser],
                "target_p99_ms": 2.0,
            }
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    if _size() != n or not KEY.exists():
        t = time.perf_counter()
        build(n)
        print(f"built {n} records in {time.perf_counter() - t:.0f} s", flush=True)
    load = os.getloadavg()
    result = {"machine": machine(), "records": n, "load_before": load, **measure(n)}
    result["load_after"] = os.getloadavg()
    RESULTS.with_name("pg_proofs.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
