"""Benchmarks for the ledger core (issue 2). ``make bench`` or ``python -m bench.run [NAME…]``.

Each benchmark runs several times and reports the median; results (with the machine) go to
``bench/results/latest.json`` and are copied by hand into ``docs/benchmarks.md``.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text

from ledger.fsck import check_ledger
from ledger.log import Ledger
from ledger.merkle import CompactRange, hash_leaf
from ledger.tiles import TileCache, TileTree, edge_tile_keys, integrate

PG = os.environ.get("LEDGER_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RESULTS = Path(__file__).with_name("results") / "latest.json"


def bodies(start: int, n: int) -> list[bytes]:
    """Distinct, well-formed ~1 KB DSSE envelopes (signature checks are not part of these runs)."""
    pad = "A" * 900
    return [
        (
            '{"payloadType":"application/vnd.in-toto+json","payload":"'
            f'{i:016d}{pad}","signatures":[{{"keyid":"bench","sig":"c2lnbmF0dXJl"}}]}}'
        ).encode()
        for i in range(start, start + n)
    ]


def machine() -> dict[str, object]:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "?",
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def bulk_sqlite(runs: int = 3, n: int = 50_000) -> dict[str, object]:
    rates = []
    data = bodies(0, n)
    for _ in range(runs):
        with (
            tempfile.TemporaryDirectory() as d,
            Ledger.create(f"sqlite:///{d}/l.db", "bench.example/log", Path(d) / "k") as lg,
        ):
            t = time.perf_counter()
            lg.append_many(data)
            rates.append(n / (time.perf_counter() - t))
    return {
        "appends_per_s_median": statistics.median(rates),
        "runs": rates,
        "records": n,
        "target": 20_000,
    }


def pg_concurrent(runs: int = 3, appenders: int = 8, seconds: float = 8.0) -> dict[str, object]:
    rates = []
    admin = create_engine(PG)
    for _ in range(runs):
        schema = "bench_" + uuid.uuid4().hex[:8]
        with admin.begin() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{PG}?options=-csearch_path%3D{schema}"
        try:
            with (
                tempfile.TemporaryDirectory() as d,
                Ledger.create(url, "bench.example/log", Path(d) / "k") as lg,
            ):
                counts = [0] * appenders
                stop = time.perf_counter() + seconds

                def work(
                    k: int, lg: Ledger = lg, counts: list[int] = counts, stop: float = stop
                ) -> None:
                    i = 0
                    while time.perf_counter() < stop:
                        lg.append(bodies(k * 10_000_000 + i, 1)[0])
                        i += 1
                    counts[k] = i

                ts = [threading.Thread(target=work, args=(k,)) for k in range(appenders)]
                t0 = time.perf_counter()
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
                rates.append(sum(counts) / (time.perf_counter() - t0))
        finally:
            with admin.begin() as c:
                c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()
    return {
        "appends_per_s_median": statistics.median(rates),
        "runs": rates,
        "appenders": appenders,
        "target": 2_000,
    }


def _percentiles(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "p50_ms": s[len(s) // 2] * 1e3,
        "p99_ms": s[int(len(s) * 0.99)] * 1e3,
        "max_ms": s[-1] * 1e3,
    }


def proofs_and_check(size: int = 1_000_000, queries: int = 20_000) -> dict[str, object]:
    """Build a ledger of ``size`` records once, then time proof generation and ``ledger check``."""
    d = Path(os.environ.get("BENCH_DIR", tempfile.mkdtemp()))
    url = f"sqlite:///{d}/big.db"
    if not (d / "big.db").exists():
        t = time.perf_counter()
        with Ledger.create(url, "bench.example/log", d / "big.key") as lg:
            for start in range(0, size, 50_000):
                lg.append_many(bodies(start, 50_000))
        print(f"built {size} records in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    out: dict[str, object] = {"records": size}
    with Ledger.open(url) as lg:
        n = lg.checkpoint().checkpoint.size
        rnd = random.Random(7)
        for label, fresh_cache in (("warm_cache", False), ("cold_cache", True)):
            cache = TileCache()
            samples = []
            for _ in range(queries if not fresh_cache else queries // 4):
                i = rnd.randrange(n)
                t = time.perf_counter()
                tree = lg.store.tree(n)
                if fresh_cache:
                    tree.cache = TileCache()
                else:
                    tree.cache = cache
                tree.inclusion_proof(i)
                samples.append(time.perf_counter() - t)
            out[f"inclusion_{label}"] = {**_percentiles(samples), "target_p99_ms": 2.0}
        t = time.perf_counter()
        report = check_ledger(lg.store)
        el = time.perf_counter() - t
        out["check"] = {"records_per_s": report.records / el, "seconds": el, "target": 100_000}
    hashes = [hash_leaf(i.to_bytes(8, "big")) for i in range(size)]
    t = time.perf_counter()
    cr = CompactRange()
    tiles: dict[tuple[int, int], bytes] = {}
    edges: dict[int, bytes] = {}
    for lo in range(0, size, 65536):
        chunk = hashes[lo : lo + 65536]
        for h in chunk:
            cr.append(h)
        changed = integrate(lo, edges, chunk)
        tiles.update(changed)
        for (level, _), blob in changed.items():
            edges[level] = blob if len(blob) < 8192 else b""
    cr.root()
    el = time.perf_counter() - t
    tree = TileTree(size, lambda ks: {k: tiles[k] for k in ks}, TileCache())
    assert tree.root() == cr.root()
    assert edge_tile_keys(size)
    out["tree_rehash"] = {"leaves_per_s": size / el, "seconds": el}
    return out


BENCHES: dict[str, Callable[[], dict[str, object]]] = {
    "bulk_sqlite": bulk_sqlite,
    "pg_concurrent": pg_concurrent,
    "proofs_and_check": proofs_and_check,
}


def main() -> None:
    names = sys.argv[1:] or list(BENCHES)
    results: dict[str, object] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = machine()
    for name in names:
        print(f"running {name} …", file=sys.stderr)
        results[name] = BENCHES[name]()
        print(json.dumps({name: results[name]}, indent=2))
    results["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
