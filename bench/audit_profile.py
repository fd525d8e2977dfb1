"""Where an audit answer's time goes: the whole app in-process (no sockets), CPU per request.

``python -m bench.audit_profile SCENARIO [--size N] [--root DIR] [--count 300] [--top 25]
[--profile]`` sends the first ``count`` questions of one :mod:`bench.audit_1m` scenario through
the ASGI app that ``ledger serve`` runs (middleware, routing, the handler, the response), on the
built benchmark ledger, after a warm-up pass; it prints the process CPU per request (p50, p90,
p99, max, mean: the process clock, so a handler's worker thread counts) and the garbage
collector's pauses. ``--profile`` adds cProfile's top functions, with the search routes' worker
thread run inline so that their work is seen.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import statistics
import time
from pathlib import Path
from typing import Any

from bench.audit_1m import questions
from bench.audit_build import cached


async def _inline(f: Any, *args: Any, **kw: Any) -> Any:
    return f(*args, **kw)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--root", type=Path, default=Path("/tmp/audit-bench"))
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    directory = cached(args.size, args.root)
    paths = questions(directory)[args.scenario].read_text().splitlines()[: args.count]
    os.environ["LEDGER_DATABASE_URL"] = f"sqlite:///{directory / 'audit.db'}"
    os.environ["LEDGER_KEY_FILE"] = str(directory / "audit.key")
    from ledger.api.app import create_app

    app = create_app()
    pauses: list[tuple[int, float]] = []
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.process_time()
        else:
            pauses.append((info["generation"], time.process_time() - started[0]))

    async def call(path: str) -> None:
        route, _, query = path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": route,
            "raw_path": route.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"{path}: HTTP {sent[0]['status']} {sent[1:]}")

    async def run() -> None:
        async with app.router.lifespan_context(app):
            for p in paths:  # warm: page cache, tile cache, compiled statements
                await call(p)
            gc.callbacks.append(on_gc)
            cpu = []
            for p in paths:
                t = time.process_time()
                await call(p)
                cpu.append(time.process_time() - t)
            gc.callbacks.remove(on_gc)
            cpu.sort()

            def q(f: float) -> float:
                return cpu[min(len(cpu) - 1, int(f * len(cpu)))] * 1000

            print(
                f"{args.scenario}: CPU ms per request p50 {q(0.5):.2f} p90 {q(0.9):.2f} "
                f"p99 {q(0.99):.2f} max {cpu[-1] * 1000:.2f} mean "
                f"{statistics.mean(cpu) * 1000:.2f} ({len(cpu)})"
            )
            for g in (0, 1, 2):
                ts = [t for gen, t in pauses if gen == g]
                if ts:
                    print(f"  gc generation {g}: {len(ts)}, max {max(ts) * 1000:.1f} ms")
            if args.profile:
                from ledger.api import audit_raw

                audit_raw.run_in_threadpool = _inline  # type: ignore[assignment]
                prof = cProfile.Profile()
                prof.enable()
                for p in paths:
                    await call(p)
                prof.disable()
                stats = pstats.Stats(prof)
                stats.sort_stats("cumulative").print_stats(args.top)
                stats.sort_stats("tottime").print_stats(args.top)

    asyncio.run(run())


if __name__ == "__main__":
    main()
