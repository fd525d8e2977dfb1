"""The floor of issue 8's PostgreSQL design on this machine: the same shape with no ledger work.

Issue 8's targets for single appends from 8 and 32 appenders are absolute rates (2,000 and
3,000 /s). What a 2-core machine can give any implementation of the design is set by its
database round trips, commits and wake-ups, so this runs that design bare, with raw psycopg and
nothing else, beside :mod:`bench.pg_appenders` in the same run, for the ratio:

* ``PROCESSES`` appender processes of ``THREADS`` threads, each thread with its own connection
  (``synchronous_commit = off``, as the ledger's submitter), inserting one ~1 KB row per append
  into ``pending`` and waking the integrator in the same statement (``pg_notify``), then
  waiting for its row's digest in an integration notification (one ``LISTEN`` connection per
  process);
* one integrator process: in one durable transaction, take the oldest pending rows (up to 1,000),
  write them as records with their RFC 6962 leaf hashes (one ``INSERT … unnest``), commit; then
  notify the digests, after the commit, on a connection of its own (as the ledger does).

What it leaves out is everything the ledger does on top: no Merkle tiles, no signed checkpoint,
no proofs, no index rows, no MACs, no verification by the waiters. So its rate bounds what the
ledger can reach here from above. ``--poll`` makes the integrator poll every 0.5 ms instead of
being woken (no notification per append). ``python -m bench.pg_floor [--rounds N] [--poll]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import statistics
import threading
import time
import uuid
from typing import Any

import psycopg

from bench.pg_appenders import RAW, _backend_cpu, _server_pids, rates
from bench.pg_appenders import run as ledger_run
from bench.run import RESULTS, machine

_CHANNEL_PENDING, _CHANNEL_DONE = "floor_pending", "floor_done"
_PREFIX = 16  # hex characters of a digest a notification names


def _connect(schema: str, sync: bool = True) -> psycopg.Connection[Any]:
    conn = psycopg.connect(RAW, autocommit=True, options=f"-csearch_path={schema}")
    if not sync:
        conn.execute("SET synchronous_commit = off")
    return conn


def _integrator(schema: str, poll: bool, stop_at: float, out: Any) -> None:
    conn = psycopg.connect(RAW, options=f"-csearch_path={schema}")
    notifier = _connect(schema, sync=False)
    woken = _connect(schema)
    woken.execute(f"LISTEN {_CHANNEL_PENDING}")
    size = batches = 0
    cpu = time.process_time()
    while time.time() < stop_at + 1.0:
        with conn.transaction():
            rows = conn.execute(
                "DELETE FROM pending WHERE seq IN (SELECT seq FROM pending ORDER BY seq LIMIT 1000)"
                " RETURNING seq, digest, body"
            ).fetchall()
            if rows:
                rows.sort()
                conn.execute(
                    "INSERT INTO records SELECT * FROM unnest("
                    "%s::bigint[], %b::bytea[], %b::bytea[], %b::bytea[])",
                    (
                        list(range(size, size + len(rows))),
                        [r[1] for r in rows],
                        [r[2] for r in rows],
                        [hashlib.sha256(b"\0" + r[2]).digest() for r in rows],
                    ),
                    prepare=False,
                )
        if rows:
            payload = ",".join(bytes(r[1]).hex()[:_PREFIX] for r in rows)
            notifier.execute("SELECT pg_notify(%s, %s)", (_CHANNEL_DONE, payload))
            size, batches = size + len(rows), batches + 1
        elif poll:
            time.sleep(0.0005)
        else:
            for _ in woken.notifies(timeout=0.2, stop_after=1):
                pass
    out.put(("integrator", size, batches, time.process_time() - cpu))


def _appender(
    schema: str, threads: int, poll: bool, start_at: float, stop_at: float, out: Any
) -> None:
    waiting: dict[str, threading.Event] = {}
    lock = threading.Lock()
    listener = _connect(schema)
    listener.execute(f"LISTEN {_CHANNEL_DONE}")

    def listen() -> None:
        for note in listener.notifies():
            for name in note.payload.split(","):
                with lock:
                    event = waiting.pop(name, None)
                if event is not None:
                    event.set()

    threading.Thread(target=listen, daemon=True).start()
    lat: list[float] = []
    sql = (
        "INSERT INTO pending (digest, body) VALUES (%s, %s)"
        if poll
        else "WITH ins AS (INSERT INTO pending (digest, body) VALUES (%s, %s) RETURNING seq)"
        f" SELECT pg_notify('{_CHANNEL_PENDING}', '') FROM ins"
    )

    def work() -> None:
        conn = _connect(schema, sync=False)
        mine: list[float] = []
        while time.time() < start_at:
            time.sleep(0.001)
        while time.time() < stop_at:
            body = os.urandom(16) + b"x" * 1008
            digest = hashlib.sha256(body).digest()
            event = threading.Event()
            with lock:
                waiting[digest.hex()[:_PREFIX]] = event
            t = time.perf_counter()
            conn.execute(sql, (digest, body))
            event.wait()
            mine.append(time.perf_counter() - t)
        with lock:
            lat.extend(mine)

    cpu = time.process_time()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put(("appender", lat, time.process_time() - cpu))


def floor(
    processes: int, threads: int = 1, seconds: float = 8.0, poll: bool = False
) -> dict[str, object]:
    """One run of the bare design; appends/s, latency and CPU per append."""
    schema = "floor_" + uuid.uuid4().hex[:8]
    with psycopg.connect(RAW, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
        c.execute(
            f"CREATE TABLE {schema}.pending (seq bigserial PRIMARY KEY,"
            " digest bytea UNIQUE NOT NULL, body bytea NOT NULL)"
        )
        c.execute(
            f"CREATE TABLE {schema}.records (idx bigint PRIMARY KEY,"
            " digest bytea UNIQUE NOT NULL, body bytea NOT NULL, leaf bytea NOT NULL)"
        )
    try:
        ctx = mp.get_context("spawn")
        out: Any = ctx.Queue()
        start_at = time.time() + 3.0  # every process connected and listening before the clock
        stop_at = start_at + seconds
        procs = [ctx.Process(target=_integrator, args=(schema, poll, stop_at, out))] + [
            ctx.Process(target=_appender, args=(schema, threads, poll, start_at, stop_at, out))
            for _ in range(processes)
        ]
        for p in procs:
            p.start()
        while time.time() < start_at:
            time.sleep(0.001)
        backends, _ = _server_pids()
        backend_cpu = _backend_cpu(backends)
        time.sleep(seconds)
        backend_cpu = _backend_cpu(backends) - backend_cpu
        got = [out.get() for _ in procs]
        for p in procs:
            p.join()
    finally:
        with psycopg.connect(RAW, autocommit=True) as c:
            c.execute(f"DROP SCHEMA {schema} CASCADE")
    lat = sorted(x for g in got if g[0] == "appender" for x in g[1])
    (_, size, batches, integrator_cpu) = next(g for g in got if g[0] == "integrator")
    appenders_cpu = sum(g[2] for g in got if g[0] == "appender")
    n = max(len(lat), 1)
    return {
        "mode": "poll" if poll else "notify",
        **rates(processes, threads, lat, seconds),
        "mean_batch": size / max(batches, 1),
        "cpu_ms_per_append": {
            "appender processes": appenders_cpu / n * 1e3,
            "integrator": integrator_cpu / n * 1e3,
            "postgres backends": backend_cpu / n * 1e3,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--poll", action="store_true", help="the integrator polls; no wake-ups")
    parser.add_argument("--no-ledger", action="store_true", help="skip bench.pg_appenders")
    args = parser.parse_args()
    results: dict[str, object] = {"machine": machine(), "load_before": os.getloadavg()}
    for appenders in (8, 32):
        rounds = []
        for _ in range(args.rounds):  # alternated: the VM's speed drifts within minutes
            bare = floor(8, appenders // 8, args.seconds, args.poll)
            print(json.dumps(bare), flush=True)
            row: dict[str, object] = {"floor": bare}
            if not args.no_ledger:
                ledger = ledger_run(8, appenders // 8, args.seconds)
                print(json.dumps(ledger), flush=True)
                row["ledger"] = ledger
                row["ratio"] = float(ledger["appends_per_s"]) / float(bare["appends_per_s"])  # type: ignore[arg-type]
            rounds.append(row)
        summary: dict[str, object] = {
            "rounds": rounds,
            "floor_per_s_median": statistics.median(
                float(r["floor"]["appends_per_s"])  # type: ignore[index]
                for r in rounds
            ),
        }
        if not args.no_ledger:
            summary["ratio_median"] = statistics.median(float(r["ratio"]) for r in rounds)  # type: ignore[arg-type]
        results[f"appenders_{appenders}"] = summary
    results["load_after"] = os.getloadavg()
    path = RESULTS.with_name("pg_floor_poll.json" if args.poll else "pg_floor.json")
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
