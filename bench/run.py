"""Benchmarks for the ledger core (issue 2) and attest (issue 3). ``make bench`` or ``python -m bench.run [NAME…]``.

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

from sqlalchemy import create_engine, event, text

from bench.attest_bench import attest_sign_verify
from ledger.bodies import parse_submission
from ledger.fsck import check_ledger
from ledger.log import Ledger, utc_now
from ledger.merkle import CompactRange, hash_leaf
from ledger.storage import LedgerStore
from ledger.tiles import TileBuilder, TileCache, TileTree

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
    """``append_many`` of ``n`` bodies: appends/s, and the process's CPU time per record (every
    thread: the caller's shape checks and the sequencer's commits), with the load average."""
    rates, cpus, loads = [], [], []
    data = bodies(0, n)
    for _ in range(runs):
        with (
            tempfile.TemporaryDirectory() as d,
            Ledger.create(f"sqlite:///{d}/l.db", "bench.example/log", Path(d) / "k") as lg,
        ):
            loads.append(os.getloadavg()[0])
            cpu = _cpu_seconds()
            t = time.perf_counter()
            lg.append_many(data)
            rates.append(n / (time.perf_counter() - t))
            cpus.append((_cpu_seconds() - cpu) / n * 1e6)
    return {
        "appends_per_s_median": statistics.median(rates),
        "runs": rates,
        "cpu_us_per_record": cpus,
        "load_1min_before": loads,
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


def bulk_breakdown(n: int = 20_000, batch: int = 1000) -> dict[str, object]:
    """Where bulk-append time goes: body validation vs the store's sequence (with proofs)."""
    data = bodies(0, n)
    t = time.perf_counter()
    subs = [parse_submission(b) for b in data]
    validate = time.perf_counter() - t
    with (
        tempfile.TemporaryDirectory() as d,
        Ledger.create(f"sqlite:///{d}/l.db", "bench.example/log", Path(d) / "k") as lg,
    ):
        signer = lg.require_signer()
        t = time.perf_counter()
        for lo in range(0, n, batch):
            lg.store.sequence(subs[lo : lo + batch], lg.origin, signer, utc_now)
        store = time.perf_counter() - t
    return {
        "validate_us_per_body": validate / n * 1e6,
        "store_sequence_us_per_record": store / n * 1e6,
        "store_sequence_per_s": n / store,
        "batch": batch,
    }


def pg_baseline(n: int = 500, batch: int = 8) -> dict[str, object]:
    """PostgreSQL itself (raw psycopg) vs one ledger batch: latency and statements per batch."""
    import psycopg

    raw = PG.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(raw) as c:
        c.execute("CREATE TEMP TABLE bench_commit (a int)")
        c.commit()
        t = time.perf_counter()
        for i in range(n):
            c.execute("INSERT INTO bench_commit VALUES (%s)", (i,))
            c.commit()
        commit_ms = (time.perf_counter() - t) / n * 1e3
        t = time.perf_counter()
        for _ in range(n):
            c.execute("SELECT 1").fetchone()
        rtt_ms = (time.perf_counter() - t) / n * 1e3
    admin = create_engine(PG)
    schema = "bench_" + uuid.uuid4().hex[:8]
    with admin.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    statements = [0]
    try:
        url = f"{PG}?options=-csearch_path%3D{schema}"
        with (
            tempfile.TemporaryDirectory() as d,
            Ledger.create(url, "bench.example/log", Path(d) / "k") as lg,
        ):
            event.listen(
                lg.store.engine,
                "before_cursor_execute",
                lambda *_a: statements.__setitem__(0, statements[0] + 1),
            )
            subs = [parse_submission(b) for b in bodies(0, n)]
            signer = lg.require_signer()
            t = time.perf_counter()
            for lo in range(0, n, batch):
                lg.store.sequence(subs[lo : lo + batch], lg.origin, signer, utc_now)
            batch_ms = (time.perf_counter() - t) / (n / batch) * 1e3
            per_batch = statements[0] / (n / batch)  # counted before the query timings below
            queries = _store_query_ms(lg, [s.digest for s in subs[:batch]])
    finally:
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return {
        "raw_insert_commit_ms": commit_ms,
        "raw_round_trip_ms": rtt_ms,
        "ledger_batch_ms": batch_ms,
        "ledger_statements_per_batch": per_batch,
        "batch": batch,
        "store_query_ms_median": queries,
    }


def _store_query_ms(lg: Ledger, digests: list[bytes], reps: int = 200) -> dict[str, float]:
    """Median latency of the append path's reads, as issued through SQLAlchemy."""
    store = lg.store
    with store.engine.connect() as conn:
        cases: dict[str, Callable[[], object]] = {
            "select_1": lambda: conn.execute(text("SELECT 1")).all(),
            "head": lambda: store._head(conn),
            "digest_lookup": lambda: store._indices_by_digest(conn, digests),
            "edge_tiles": lambda: store._fetch_tiles(conn, [(0, 0), (1, 0)]),
        }
        out = {}
        for name, fn in cases.items():
            samples = []
            for _ in range(reps):
                t = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - t)
            out[name] = statistics.median(samples) * 1e3
    return out


def import_cost(runs: int = 21) -> dict[str, object]:
    """Fresh-interpreter time to import the pure core a deploy gate uses, vs a bare interpreter."""
    import subprocess

    def median_ms(code: str) -> float:
        samples = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, cwd=tempfile.gettempdir())
            samples.append(time.perf_counter() - t)
        return statistics.median(samples) * 1e3

    return {
        "pure_core_ms": median_ms("import ledger.merkle, ledger.checkpoint, ledger.record"),
        "bare_python_ms": median_ms("pass"),
        "runs": runs,
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
            series = []
            for _ in range(3):  # three series; the median of their percentiles is reported
                cache = TileCache()
                if not fresh_cache:  # steady state of a server: every full tile seen once
                    warm = lg.store.tree(n)
                    warm.cache = cache
                    for i in range(0, n, 256):
                        warm.inclusion_proof(i)
                samples = []
                for _ in range(queries // 3 if not fresh_cache else queries // 12):
                    i = rnd.randrange(n)
                    t = time.perf_counter()
                    tree = lg.store.tree(n)
                    tree.cache = TileCache() if fresh_cache else cache
                    tree.inclusion_proof(i)
                    samples.append(time.perf_counter() - t)
                series.append(_percentiles(samples))
            out[f"inclusion_{label}"] = {
                "p50_ms": statistics.median(x["p50_ms"] for x in series),
                "p99_ms": statistics.median(x["p99_ms"] for x in series),
                "p99_ms_runs": [x["p99_ms"] for x in series],
                "target_p99_ms": 2.0,
            }
        t = time.perf_counter()
        report = check_ledger(lg.store)
        el = time.perf_counter() - t
        out["check"] = {"records_per_s": report.records / el, "seconds": el, "target": 100_000}
    hashes = [hash_leaf(i.to_bytes(8, "big")) for i in range(size)]
    t = time.perf_counter()
    compact, built = CompactRange(), TileBuilder()
    for lo in range(0, size, 65536):
        chunk = hashes[lo : lo + 65536]
        for h in chunk:
            compact.append(h)
        built.extend(chunk)
    root = compact.root()
    el = time.perf_counter() - t
    assert TileTree(size, lambda ks: {k: built.tiles[k] for k in ks}, TileCache()).root() == root
    out["tree_rehash"] = {"leaves_per_s": size / el, "seconds": el}
    return out


def _cpu_seconds() -> float:
    """CPU time of this process and of its children that have exited (check's workers)."""
    import resource

    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def check_1m(runs: int = 3, size: int = 1_000_000) -> dict[str, object]:
    """``ledger check`` of a 1,000,000-record SQLite ledger (built once, cached under
    ``$BENCH_1M_DIR``, default /tmp/bench-1m): records/s, median of ``runs``, with one worker
    process per core; then once in one process. The load average is noted with each run, as
    other work on the machine slows the workers down."""
    from bench.big_ledger import cached

    db = cached(Path(os.environ.get("BENCH_1M_DIR", "/tmp/bench-1m")), size)
    store = LedgerStore.open(f"sqlite:///{db}")
    try:
        runs_out = []
        for _ in range(runs):
            load = os.getloadavg()[0]
            cpu = _cpu_seconds()
            t = time.perf_counter()
            report = check_ledger(store)
            el = time.perf_counter() - t
            runs_out.append(
                {
                    "records_per_s": report.records / el,
                    "seconds": el,
                    "cpu_us_per_record": (_cpu_seconds() - cpu) / report.records * 1e6,
                    "load_1min_before": load,
                }
            )
        load = os.getloadavg()[0]
        t = time.perf_counter()
        check_ledger(store, workers=1)
        one = {"records_per_s": size / (time.perf_counter() - t), "load_1min_before": load}
    finally:
        store.close()
    return {
        "records": report.records,
        "records_per_s_median": statistics.median(r["records_per_s"] for r in runs_out),
        "cpu_us_per_record_median": statistics.median(r["cpu_us_per_record"] for r in runs_out),
        "runs": runs_out,
        "workers": os.cpu_count(),
        "one_process": one,
        "target": 100_000,
    }


def check_audit(runs: int = 3, size: int = 100_000) -> dict[str, object]:
    """``ledger check`` of a ledger of real in-toto statements (``bench.audit_corpus``: SLSA
    provenance with 20-200 dependencies, links, test results, Vulns and OpenVEX, each DSSE
    signed by a registered key, so the index derivation verifies every signature), built once
    under ``$BENCH_AUDIT_DIR`` (default /tmp/audit-bench): CPU time per record, median of
    ``runs``, with one worker process per core (``check_1m``'s bodies are not JSON statements,
    which makes the index comparison cheap there)."""
    from bench.audit_build import cached

    directory = cached(size, Path(os.environ.get("BENCH_AUDIT_DIR", "/tmp/audit-bench")))
    store = LedgerStore.open(f"sqlite:///{directory / 'audit.db'}")
    try:
        runs_out = []
        for _ in range(runs):
            load = os.getloadavg()[0]
            cpu = _cpu_seconds()
            t = time.perf_counter()
            report = check_ledger(store)
            el = time.perf_counter() - t
            runs_out.append(
                {
                    "records_per_s": report.records / el,
                    "cpu_us_per_record": (_cpu_seconds() - cpu) / report.records * 1e6,
                    "load_1min_before": load,
                }
            )
    finally:
        store.close()
    return {
        "records": report.records,
        "records_per_s_median": statistics.median(r["records_per_s"] for r in runs_out),
        "cpu_us_per_record_median": statistics.median(r["cpu_us_per_record"] for r in runs_out),
        "runs": runs_out,
        "workers": os.cpu_count(),
    }


BENCHES: dict[str, Callable[[], dict[str, object]]] = {
    "bulk_sqlite": bulk_sqlite,
    "pg_concurrent": pg_concurrent,
    "bulk_breakdown": bulk_breakdown,
    "pg_baseline": pg_baseline,
    "import_cost": import_cost,
    "proofs_and_check": proofs_and_check,
    "check_1m": check_1m,
    "check_audit": check_audit,
    "attest_sign_verify": attest_sign_verify,
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
