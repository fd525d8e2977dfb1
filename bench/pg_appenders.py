"""Single durable appends to one PostgreSQL ledger from N appender *processes* (issue 8).

Each process opens its own :class:`~ledger.log.Ledger` (as a ``ledger serve`` worker does) and runs
``threads`` appenders, each appending one body at a time and waiting for its acknowledgement
(durable, integrated, proved, checkpointed). Reported: appends/s, write → acknowledged proof
latency p50/p99, and, measured in the same run, a raw serialised psycopg append (advisory lock,
insert, commit) for the ratio. ``python -m bench.pg_appenders [PROCESSES…]``.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, text

from bench.run import PG, RESULTS, bodies, machine

RAW = PG.replace("postgresql+psycopg://", "postgresql://")


def _appender(
    url: str,
    key: Path,
    proc: int,
    threads: int,
    ready: Any,
    start_at: Any,
    seconds: float,
    out: mp.Queue,
) -> None:
    from ledger.log import Ledger

    lat: list[float] = []
    callers = [0.0]  # CPU seconds of the appending threads
    lock = threading.Lock()
    with Ledger.open(url, key) as lg:
        lg.append(bodies(proc * 100 * 10_000_000 + 9_999_999, 1)[0])  # warm: threads, pools
        ready.release()
        while start_at.value == 0.0:
            time.sleep(0.001)
        stop = start_at.value + seconds

        def work(k: int) -> None:
            mine: list[float] = []
            i = 0
            while time.time() < start_at.value:
                time.sleep(0.001)
            cpu = time.thread_time()
            while time.time() < stop:
                body = bodies((proc * 100 + k) * 10_000_000 + i, 1)[0]
                t = time.perf_counter()
                lg.append(body)
                mine.append(time.perf_counter() - t)
                i += 1
            cpu = time.thread_time() - cpu
            with lock:
                lat.extend(mine)
                callers[0] += cpu

        ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for t in ts:
            t.start()
        while time.time() < start_at.value:
            time.sleep(0.001)
        cpu0 = _thread_cpu()
        for t in ts:
            t.join()
        cpu1 = _thread_cpu()
    used: dict[str, float] = {}
    for name, secs in cpu1.items():
        if name.startswith("ledger-"):
            used[name] = used.get(name, 0.0) + secs - cpu0.get(name, 0.0)
    used["appending threads"] = callers[0]
    out.put((lat, used))


def _thread_cpu() -> dict[str, float]:
    """CPU seconds (user+sys) of each live thread of this process, by thread name."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for t in threading.enumerate():
        with contextlib.suppress(OSError, TypeError):
            fields = Path(f"/proc/self/task/{t.native_id}/stat").read_text().rsplit(")", 1)[1]
            utime, stime = fields.split()[11:13]
            out[t.name] = out.get(t.name, 0.0) + (int(utime) + int(stime)) / tick
    return out


def _backend_cpu(pids: list[int]) -> float:
    """CPU seconds (user+sys) of PostgreSQL server processes ``pids`` (those still alive)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            utime, stime = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13]
            total += (int(utime) + int(stime)) / tick
    return total


def _server_pids() -> tuple[list[int], list[int]]:
    """The backends serving this run (every client of this database but us), and the server's
    shared writers (WAL writer, background writer, checkpointer: shared with every database on
    the server, so other sessions' commits count there too)."""
    with psycopg.connect(RAW) as c:
        rows = c.execute(
            "SELECT pid, backend_type = 'client backend' FROM pg_stat_activity WHERE backend_type"
            " IN ('walwriter', 'background writer', 'checkpointer') OR (datname ="
            " current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend')"
        ).fetchall()
    return [int(p) for p, client in rows if client], [int(p) for p, client in rows if not client]


def raw_serialised(seconds: float = 3.0) -> float:
    """A raw serialised append: advisory xact lock, insert ~1 KB, commit; appends/s, one client.

    Into an ordinary (WAL-logged) table: each commit waits for its flush, as a ledger append's
    does. (Until 2026-11-30 this used a TEMP table, which PostgreSQL never WAL-logs, so the
    "raw" rate had no fsync in it and the ratios quoted before then are against that.)"""
    table = "bench_raw_" + uuid.uuid4().hex[:8]
    with psycopg.connect(RAW) as c:
        c.execute(f"CREATE TABLE {table} (i bigint primary key, body bytea)")
        c.commit()
        try:
            body = b"x" * 1024
            n, stop = 0, time.perf_counter() + seconds
            t = time.perf_counter()
            while time.perf_counter() < stop:
                c.execute("SELECT pg_advisory_xact_lock(42)")
                c.execute(f"INSERT INTO {table} VALUES (%s, %s)", (n, body))
                c.commit()
                n += 1
            return n / (time.perf_counter() - t)
        finally:
            c.rollback()
            c.execute(f"DROP TABLE {table}")
            c.commit()


def rates(processes: int, threads: int, lat: list[float], seconds: float) -> dict[str, Any]:
    """The appenders, the acknowledged appends per second and the p50/p99 latency (ms) of a run
    whose sorted per-append latencies (s) are ``lat``."""
    return {
        "appenders": processes * threads,
        "processes": processes,
        "appends_per_s": len(lat) / seconds,
        "p50_ms": lat[len(lat) // 2] * 1e3 if lat else None,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1e3 if lat else None,
    }


def run(processes: int, threads: int = 1, seconds: float = 8.0) -> dict[str, object]:
    admin = create_engine(PG)
    schema = "bench_" + uuid.uuid4().hex[:8]
    with admin.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{PG}?options=-csearch_path%3D{schema}"
    try:
        with tempfile.TemporaryDirectory() as d:
            from ledger.log import Ledger

            key = Path(d) / "k"
            Ledger.create(url, "bench.example/log", key).close()
            ctx = mp.get_context("spawn")
            out: mp.Queue = ctx.Queue()
            ready = ctx.Semaphore(0)
            start_at = ctx.Value("d", 0.0)
            ps = [
                ctx.Process(
                    target=_appender,
                    args=(url, key, p, threads, ready, start_at, seconds, out),
                )
                for p in range(processes)
            ]
            for p in ps:
                p.start()
            for _ in ps:  # every process opened and warm before the clock starts
                ready.acquire()
            start_at.value = time.time() + 0.2
            while time.time() < start_at.value:
                time.sleep(0.001)
            backends, writers = _server_pids()
            server_cpu0 = _backend_cpu(backends), _backend_cpu(writers)
            time.sleep(seconds)
            server_cpu = (
                _backend_cpu(backends) - server_cpu0[0],
                _backend_cpu(writers) - server_cpu0[1],
            )
            lat, threads_cpu = [], {}
            for _ in ps:
                got, used = out.get()
                lat.extend(got)
                for name, secs in used.items():
                    threads_cpu[name] = threads_cpu.get(name, 0.0) + secs
            for p in ps:
                p.join()
            with Ledger.open(url) as lg:
                records = lg.store.size()
                batches = sum(1 for _ in lg.store.iter_checkpoints()) - 1
    finally:
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    lat.sort()
    return {
        **rates(processes, threads, lat, seconds),
        "mean_batch": records / max(batches, 1),
        # CPU per acknowledged append, ms: appender processes by thread, PostgreSQL's server
        "cpu_ms_per_append": {
            **{k: v / max(len(lat), 1) * 1e3 for k, v in sorted(threads_cpu.items())},
            "postgres backends": server_cpu[0] / max(len(lat), 1) * 1e3,
            "postgres shared writers": server_cpu[1] / max(len(lat), 1) * 1e3,
        },
    }


def main() -> None:
    counts = [int(a) for a in sys.argv[1:]] or [8, 32]
    results: dict[str, object] = {"machine": machine(), "load_before": os.getloadavg()}
    for n in counts:
        rounds = []
        for _ in range(3):
            raw = raw_serialised()
            r = run(n) if n <= 8 else run(8, threads=n // 8)
            r["raw_serialised_per_s"] = raw
            r["ratio_to_raw"] = float(r["appends_per_s"]) / raw  # type: ignore[arg-type]
            rounds.append(r)
            print(json.dumps(r), flush=True)
        results[f"appenders_{n}"] = {
            "rounds": rounds,
            "appends_per_s_median": statistics.median(float(r["appends_per_s"]) for r in rounds),  # type: ignore[arg-type]
            "ratio_median": statistics.median(float(r["ratio_to_raw"]) for r in rounds),  # type: ignore[arg-type]
        }
    results["load_after"] = os.getloadavg()
    path = RESULTS.with_name("pg_appenders.json")
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
