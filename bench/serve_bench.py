"""HTTP benchmark of `ledger serve` with Debian's `wrk` (installed here when missing).

``python -m bench.serve_bench [--runs 3] [--seconds 8] [--rate R] [SCENARIO…]``. Each run: a fresh
ledger, a real `ledger serve` (access log off), distinct Ed25519-signed bodies written one per
line, and `wrk -t2 -c64 --latency` POSTing them through ``bench/wrk_post.lua``. Reports the median
over runs of requests/s, entries/s and the p99 write→ack latency, and how many records reached the
database. Results go to ``bench/results/serve.json``; docs/benchmarks.md quotes them.

By default the 64 clients send as fast as they are answered (a closed loop: the server is
saturated, and its latency is 64 / its rate). ``--rate R`` sends R requests/s instead, on a fixed
schedule (``bench/wrk_post_rate.lua``), from the same 64 connections: the latency *at* that load.
Such results are stored as ``SCENARIO@R``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import create_engine, text

from bench.run import PG, machine
from ledger._internal.sample import sample_envelopes

BIN = Path(sys.executable).parent
LUA = Path(__file__).with_name("wrk_post.lua")
RATE_LUA = Path(__file__).with_name("wrk_post_rate.lua")
RESULTS = Path(__file__).with_name("results") / "serve.json"
CONNECTIONS, THREADS = 64, 2


@dataclass(frozen=True)
class Scenario:
    name: str
    backend: str  # sqlite | postgresql
    workers: int
    batch: int  # entries per request (1: POST /api/v1/entries)
    refused: bool = False  # bodies with a broken signature
    pinned: bool = False  # `ledger serve --pin-workers`


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("single_sqlite", "sqlite", 1, 1),
        Scenario("single_sqlite_2proc", "sqlite", 2, 1),
        Scenario("single_sqlite_3proc", "sqlite", 3, 1),
        Scenario("single_sqlite_2proc_pinned", "sqlite", 2, 1, pinned=True),
        Scenario("single_pg_2proc", "postgresql", 2, 1),
        Scenario("single_pg_2proc_pinned", "postgresql", 2, 1, pinned=True),
        Scenario("batch100_sqlite", "sqlite", 1, 100),
        Scenario("batch100_sqlite_2proc", "sqlite", 2, 100),
        Scenario("batch100_sqlite_2proc_pinned", "sqlite", 2, 100, pinned=True),
        Scenario("batch100_pg_2proc", "postgresql", 2, 100),
        Scenario("refused_sqlite", "sqlite", 1, 1, refused=True),
    )
}


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


def ledger(*args: str) -> str:
    p = subprocess.run([str(BIN / "ledger"), *args], capture_output=True, text=True, check=True)
    return p.stdout.strip()


@contextmanager
def database(backend: str, work: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{work / 'ledger.db'}"
        return
    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = create_engine(PG)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def prepare(db: str, work: Path, signer: ed25519.Ed25519PrivateKey) -> tuple[str, str]:
    """A new ledger at ``db`` with ``signer``'s key in its trust registry: its checkpoint key
    file (in ``work``) and an append token."""
    key = str(work / "checkpoint.key")
    ledger("init", "--origin", "bench.example/ledger", "--db", db, "--key-file", key)
    token = ledger("tokens", "create", "--name", "bench", "--scope", "append", "--db", db)
    pub = work / "bench.pub"
    pub.write_bytes(
        signer.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    ledger("signers", "add", "--name", "bench", "--key", str(pub), "--db", db, "--key-file", key)
    return key, token


def write_bodies(
    path: Path, key: ed25519.Ed25519PrivateKey, count: int, batch: int, refused: bool
) -> None:
    bodies = sample_envelopes(count * batch, key)
    if refused:  # flip the signature: well formed, wrong signature
        bodies = [b.replace(b'"sig": "', b'"sig": "AAAA', 1) for b in bodies]
    with path.open("w") as f:
        if batch == 1:
            f.writelines(b.decode() + "\n" for b in bodies)
            return
        for i in range(0, len(bodies), batch):
            chunk = [base64.b64encode(b).decode() for b in bodies[i : i + batch]]
            f.write(json.dumps({"entries": chunk}) + "\n")


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU of the server process and its direct children (uvicorn's workers), from
    ``/proc``: what the server spent, whatever else shares the cores."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(p: int) -> list[str] | None:
        try:
            raw = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            return None
        return raw[raw.rindex(")") + 2 :].split()  # fields from 3 (state) on

    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        f = stat(int(entry.name))
        if f is not None and (int(entry.name) == pid or int(f[1]) == pid):
            total += (int(f[11]) + int(f[12])) / tick  # utime, stime
    return total


@contextmanager
def server(
    db: str, key: str, workers: int, port: int, pinned: bool = False
) -> Iterator[tuple[str, int]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_MAX_PENDING"] = "100000"
    proc = subprocess.Popen(
        [
            str(BIN / "ledger"),
            "serve",
            "--db",
            db,
            "--key-file",
            key,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            *(["--pin-workers"] if pinned else []),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"ledger serve on {db} did not become healthy")
            time.sleep(0.2)
        time.sleep(1.0 * workers)  # every worker past its lifespan start
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=60)


_LAT = re.compile(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_wrk(out: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {m.group(1): float(m.group(2)) * _UNIT[m.group(3)] for m in _LAT.finditer(out)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": rps,
        "p99_ms": lat.get("99", float("nan")),
        "p50_ms": lat.get("50", float("nan")),
        "p90_ms": lat.get("90", float("nan")),
        "non_2xx": float(non2xx.group(1)) if non2xx else 0.0,
    }


def _stored(url: str) -> int:
    return int(httpx.get(url + "/api/v1/checkpoint").text.split("\n")[1])


def one_run(
    s: Scenario, seconds: int, wrk: str, port: int, rate: int | None = None
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with database(s.backend, work) as db:
            signer = ed25519.Ed25519PrivateKey.generate()
            key, token = prepare(db, work, signer)
            budget = (3000 if s.batch == 1 else 120) * seconds  # more than the server can take
            bodies = work / "bodies.txt"
            write_bodies(bodies, signer, budget, s.batch, s.refused)
            path = "/api/v1/entries" if s.batch == 1 else "/api/v1/entries:batch"
            with server(db, key, s.workers, port, s.pinned) as (url, pid):
                stored0 = _stored(url)
                cpu0 = server_cpu_seconds(pid)
                p = subprocess.run(
                    [
                        wrk,
                        f"-t{THREADS}",
                        f"-c{CONNECTIONS}",
                        f"-d{seconds}s",
                        "--latency",
                        "-s",
                        str(RATE_LUA if rate else LUA),
                        url,
                        "--",
                        path,
                        token,
                        str(bodies),
                        str(THREADS),
                        *([str(rate)] if rate else []),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                cpu = server_cpu_seconds(pid) - cpu0
                stored = _stored(url)
            res = parse_wrk(p.stdout)
            done = res["requests_per_s"] * seconds * s.batch
            res["server_cpu_ms_per_entry"] = round(cpu / done * 1e3, 3) if done else float("nan")
            res["entries_per_s"] = res["requests_per_s"] * s.batch
            res["records_stored"] = float(stored)
            # what the server spent per record it stored in the window: with 64 clients each
            # holding 100 entries, many requests are still in flight when wrk stops, so CPU per
            # acknowledged entry overstates the cost (their work is counted, they are not)
            grown = stored - stored0
            res["server_cpu_ms_per_record"] = round(cpu / grown * 1e3, 3) if grown else float("nan")
            return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--port", type=int, default=18555)
    ap.add_argument("--rate", type=int, help="requests/s on a fixed schedule (default: flat out)")
    args = ap.parse_args(argv)
    wrk = ensure_wrk()
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    report: dict[str, object] = {**old, "machine": machine(), "load_before": os.getloadavg()}
    for name in args.scenarios:
        s = SCENARIOS[name]
        runs = [one_run(s, args.seconds, wrk, args.port, args.rate) for _ in range(args.runs)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        key = f"{name}@{args.rate}" if args.rate else name
        report[key] = {"median": med, "runs": runs}
        print(key, json.dumps(med), flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
