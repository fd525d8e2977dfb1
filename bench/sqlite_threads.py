"""Single durable appends from N threads of one process into SQLite (issue 8).

Each thread appends one ~1 KB envelope at a time and waits for its acknowledgement (durable,
integrated, proved, checkpointed). Reported: appends/s and write → acknowledgement latency
p50/p99, CPU per append
(user + system of the whole process over the run), three runs, medians. ``python -m bench.sqlite_threads [THREADS]``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.run import RESULTS, bodies, machine
from ledger.log import Ledger


def run(threads: int = 8, seconds: float = 6.0) -> dict[str, float]:
    lat: list[float] = []
    lock = threading.Lock()
    with (
        tempfile.TemporaryDirectory() as d,
        Ledger.create(f"sqlite:///{d}/l.db", "bench.example/log", Path(d) / "k") as lg,
    ):
        lg.append(bodies(99_999_999, 1)[0])  # warm: the sequencer thread and the pool
        cpu0 = time.process_time()
        stop = time.perf_counter() + seconds

        def work(k: int) -> None:
            mine, i = [], 0
            while time.perf_counter() < stop:
                body = bodies(k * 10_000_000 + i, 1)[0]
                t = time.perf_counter()
                lg.append(body)
                mine.append(time.perf_counter() - t)
                i += 1
            with lock:
                lat.extend(mine)

        ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        cpu = time.process_time() - cpu0  # every thread of the process: callers and sequencer
    lat.sort()
    return {
        "appends_per_s": len(lat) / seconds,
        "p50_ms": lat[len(lat) // 2] * 1e3,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1e3,
        "cpu_us_per_append": cpu / len(lat) * 1e6,
        "load1": os.getloadavg()[0],
    }


def main() -> None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    load = os.getloadavg()
    rounds = [run(threads) for _ in range(3)]
    for r in rounds:
        print(json.dumps(r), flush=True)
    out = {
        "machine": machine(),
        "load_before": load,
        "load_after": os.getloadavg(),
        "threads": threads,
        "rounds": rounds,
        "appends_per_s_median": statistics.median(r["appends_per_s"] for r in rounds),
        "p99_ms_median": statistics.median(r["p99_ms"] for r in rounds),
        "target": {"appends_per_s": 3000, "p99_ms": 50},
    }
    RESULTS.with_name("sqlite_threads.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
