"""CPU per verified single append through `ledger serve`'s ASGI app, in process, no sockets.

``python -m bench.asgi_append [--rounds 6] [--per-round 3000]``. One SQLite ledger, one app (as
a worker builds it), 64 appends in flight at a time, each a distinct Ed25519-signed envelope
POSTed to ``/api/v1/entries`` as an ASGI call. Rounds alternate the plain routes' fast path
(``ledger.api.fast_path``) with FastAPI's full middleware stack, and report the process CPU
per acknowledged append for each: the app's own cost (admission, sequencing, the writer thread,
SQLite) without HTTP parsing or a load generator sharing the cores, so far less noisy than
``serve_bench`` on a busy machine. Results go to ``bench/results/asgi_append.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvloop
from cryptography.hazmat.primitives.asymmetric import ed25519

from bench.run import machine
from bench.serve_bench import prepare
from ledger._internal.sample import sample_envelopes

RESULTS = Path(__file__).with_name("results") / "asgi_append.json"
IN_FLIGHT = 64


async def _post(
    app: Any, body: bytes, headers: list[tuple[bytes, bytes]], path: str = "/api/v1/entries"
) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # no disconnect while the answer is pending
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


async def _started(app: Any) -> asyncio.Task[None]:
    up = asyncio.Event()
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "lifespan.startup"}
        await asyncio.Event().wait()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            up.set()
        elif message["type"] == "lifespan.startup.failed":
            raise SystemExit(message.get("message", "the app did not start"))

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    await up.wait()
    return task


@contextmanager
def fresh_app() -> Iterator[tuple[Any, ed25519.Ed25519PrivateKey, str]]:
    """The app a worker builds, on a new SQLite ledger whose registry trusts a new Ed25519 key:
    the app, that key, and an append token."""
    from ledger.api.app import create_app
    from ledger.api.settings import Settings

    key = ed25519.Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        key_file, token = prepare(db, Path(tmp), key)
        yield create_app(Settings(database_url=db, key_file=Path(key_file))), key, token


async def _rounds(app: Any, bodies: Iterator[bytes], token: str, rounds: int, per: int) -> Any:
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]
    sem = asyncio.Semaphore(IN_FLIGHT)

    async def one(body: bytes) -> None:
        async with sem:
            status = await _post(app, body, headers)
            if status != 201:
                raise SystemExit(f"an append was answered {status}")

    lifespan = await _started(app)
    await one(next(bodies))  # builds the middleware stack
    stack = app.middleware_stack
    fast = stack._routes
    cpu: dict[str, list[float]] = {"fast_path": [], "full_stack": []}
    for _ in range(rounds):
        for mode, spent in cpu.items():
            stack._routes = fast if mode == "fast_path" else {}
            start = time.process_time()
            await asyncio.gather(*(one(next(bodies)) for _ in range(per)))
            spent.append((time.process_time() - start) / per * 1e6)
    lifespan.cancel()
    return cpu


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--per-round", type=int, default=3000)
    args = ap.parse_args(argv)
    with fresh_app() as (app, key, token):
        bodies = iter(sample_envelopes(2 * args.rounds * args.per_round + 1, key))
        cpu = uvloop.run(_rounds(app, bodies, token, args.rounds, args.per_round))
    pairs = [f / s for f, s in zip(cpu["fast_path"], cpu["full_stack"], strict=True)]
    report = {
        "machine": machine(),
        "cpu_us_per_append": {k: [round(v, 1) for v in vs] for k, vs in cpu.items()},
        "median_us": {k: round(statistics.median(vs), 1) for k, vs in cpu.items()},
        "fast_over_full_median": round(statistics.median(pairs), 3),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
