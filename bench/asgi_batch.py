"""CPU per entry of ``POST /api/v1/entries:batch`` through ``ledger serve``'s ASGI app, in process.

``python -m bench.asgi_batch [--rounds 5] [--requests 60] [--batch 100]``. One SQLite ledger, one
app (as a worker builds it), 8 requests in flight, each ``--batch`` distinct Ed25519-signed
envelopes. No sockets, no HTTP parsing and no load generator: what is left is the app's own
cost, split by the thread that spends it — admission (AnyIO's worker threads: the strict parse,
the Statement, the signature), the sequencer thread (records, tiles, audit index rows, the
signed checkpoint, the commit) and the event loop (the request's JSON, the receipts). It is the
ceiling issue 9's ``:batch`` target meets on this machine before any HTTP: two cores give at
most ``2 / cpu per entry`` entries a second. Results go to ``bench/results/asgi_batch.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import uvloop

from bench.asgi_append import _post, _started, fresh_app
from bench.run import machine
from ledger._internal.sample import sample_envelopes

RESULTS = Path(__file__).with_name("results") / "asgi_batch.json"
IN_FLIGHT = 8
TICK = os.sysconf("SC_CLK_TCK")
# a Python thread's name -> the stage it runs
STAGES = {"AnyIO worker thread": "admission", "ledger-sequencer": "sequencer"}


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of this process's threads, by stage (``loop``: every other thread)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = defaultdict(float)
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        stage = STAGES.get(names.get(int(task.name), ""), "loop")
        out[stage] += (int(fields[11]) + int(fields[12])) / TICK
    return out


def requests(bodies: list[bytes], batch: int) -> list[bytes]:
    return [
        json.dumps(
            {"entries": [base64.b64encode(b).decode() for b in bodies[i : i + batch]]}
        ).encode()
        for i in range(0, len(bodies), batch)
    ]


async def _rounds(app: Any, reqs: list[bytes], token: str, rounds: int, batch: int) -> Any:
    headers = [
        (b"host", b"bench"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", b"application/json"),
    ]
    sem = asyncio.Semaphore(IN_FLIGHT)

    async def one(body: bytes) -> None:
        async with sem:
            status = await _post(app, body, headers, "/api/v1/entries:batch")
            if status != 200:
                raise SystemExit(f"a batch was answered {status}")

    lifespan = await _started(app)
    await one(reqs.pop())  # builds the middleware stack, warms the registry
    per_round = len(reqs) // rounds
    out = []
    for r in range(rounds):
        chunk = reqs[r * per_round : (r + 1) * per_round]
        entries = len(chunk) * batch
        before, cpu0, wall0 = thread_cpu(), time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(body) for body in chunk))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        spent = {k: v - before.get(k, 0.0) for k, v in thread_cpu().items()}
        out.append(
            {
                "entries": entries,
                "entries_per_s": round(entries / wall),
                "cpu_us_per_entry": round(cpu / entries * 1e6, 1),
                "by_stage_us": {k: round(v / entries * 1e6, 1) for k, v in sorted(spent.items())},
            }
        )
        print(json.dumps(out[-1]), flush=True)
    lifespan.cancel()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=60, help="requests per round")
    ap.add_argument("--batch", type=int, default=100, help="entries per request")
    args = ap.parse_args(argv)
    with fresh_app() as (app, key, token):
        count = (args.rounds * args.requests + 1) * args.batch
        reqs = requests(sample_envelopes(count, key), args.batch)
        rounds = uvloop.run(_rounds(app, reqs, token, args.rounds, args.batch))
    cpu = [r["cpu_us_per_entry"] for r in rounds]
    median = statistics.median(cpu)
    report = {
        "machine": machine(),
        "batch": args.batch,
        "rounds": rounds,
        "cpu_us_per_entry_median": median,
        "by_stage_us_median": {
            stage: statistics.median(r["by_stage_us"].get(stage, 0.0) for r in rounds)
            for stage in ("admission", "sequencer", "loop")
        },
        "two_core_ceiling_per_s": round(2 / (median / 1e6)),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
