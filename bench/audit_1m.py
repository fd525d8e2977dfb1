"""Issue 10's benchmark: the audit API over HTTP at 1,000,000 records, load from ``wrk``.

``python -m bench.audit_1m [--size N] [--runs 3] [--seconds 10] [SCENARIO…]``. The ledger is
built once by :mod:`bench.audit_build` (signed bodies from :mod:`bench.audit_corpus` through the
import path, indexes derived in the same transaction) under ``/tmp/audit-bench`` and reused. Each
run starts a real ``ledger serve`` on it and has Debian's ``wrk`` (installed when missing) GET a
fixed list of questions through ``bench/wrk_get.lua``, at a low concurrency (latency) and a high
one (throughput). Before the runs, one answer of every scenario is checked end to end with
:func:`ledger.client.verify_evidence` (checkpoint signature, every inclusion proof). Storage per
record comes from SQLite's ``dbstat``. Results: ``bench/results/audit.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

from bench import audit_corpus
from bench.audit_build import ORIGIN, SEED, cached
from bench.run import machine
from bench.serve_bench import ensure_wrk, server
from ledger.client import verify_evidence
from ledger.storage import LedgerStore

LUA = Path(__file__).with_name("wrk_get.lua")
RESULTS = Path(__file__).with_name("results") / "audit.json"
QUESTIONS = 4000
_LAT = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _evidence(rng: random.Random, subjects: list[str]) -> list[str]:
    picks = rng.sample(subjects, min(QUESTIONS, len(subjects)))
    return [f"/api/v1/evidence?subject=sha256:{s}" for s in picks]


def _purl_ranges(rng: random.Random) -> list[str]:
    """A package among the 300 most used, and a range below one of its middle versions."""
    w = audit_corpus.world(SEED)
    out = []
    for _ in range(QUESTIONS):
        pkg = w.packages[min(int(rng.paretovariate(0.6)) - 1, 299)]
        eco = pkg.purl[4:].split("/", 1)[0]
        vs = pkg.versions
        lo, hi = vs[len(vs) // 4], vs[len(vs) // 2]
        versions = f"vers:{eco}/>={lo}|<{hi}"
        out.append("/api/v1/search?" + urlencode({"purl": pkg.purl, "versions": versions}))
    return out


def _vulns(rng: random.Random) -> list[str]:
    w = audit_corpus.world(SEED)
    out = []
    for _ in range(QUESTIONS):
        cve = rng.choices(w.cves, cum_weights=w.cve_weights)[0]
        status = rng.choice(("affected", "affected", "fixed", "not_affected"))
        out.append("/api/v1/search?" + urlencode({"vuln": cve, "status": status}))
    return out


def questions(directory: Path) -> dict[str, Path]:
    """One file of request paths per scenario (the same every run)."""
    subjects = json.loads((directory / "subjects.json").read_text())
    sets = {
        "evidence": _evidence(random.Random(1), subjects),
        "purl_range": _purl_ranges(random.Random(2)),
        "vuln_status": _vulns(random.Random(3)),
    }
    out = {}
    for name, paths in sets.items():
        out[name] = directory / f"q-{name}.txt"
        out[name].write_text("\n".join(paths) + "\n")
    return out


def storage(db: Path, size: int) -> dict[str, float]:
    """Bytes per record: everything, the audit index tables (with their B-tree indexes), the rest."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master").fetchall())
    by_table: dict[str, int] = {}
    for name, pages in rows:
        table = owner.get(name, name)
        by_table[table] = by_table.get(table, 0) + int(pages)
    total = sum(by_table.values())
    index = sum(v for k, v in by_table.items() if k.startswith("ix_"))
    out = {f"{k}_bytes_per_record": v / size for k, v in sorted(by_table.items())}
    out.update(
        total_bytes_per_record=total / size,
        audit_index_bytes_per_record=index / size,
        without_index_bytes_per_record=(total - index) / size,
        index_rows_per_record=_count_rows(db) / size,
    )
    return out


def _count_rows(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return sum(
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("ix_terms", "ix_deps", "ix_vulns")
        )


def check_answers(url: str, directory: Path, files: dict[str, Path]) -> dict[str, float]:
    """Verify the first question of every scenario end to end; entries per answer."""
    store = LedgerStore.open(f"sqlite:///{directory / 'audit.db'}")
    vkey = store.meta()["vkey"]
    store.close()
    out = {}
    with httpx.Client(base_url=url, timeout=60) as http:
        for name, path in files.items():
            counts = []
            for line in path.read_text().splitlines()[:20]:
                r = http.get(line)
                if r.status_code != 200:
                    raise SystemExit(f"{name}: {line} -> HTTP {r.status_code} {r.text[:300]}")
                counts.append(len(verify_evidence(r.json(), vkey, ORIGIN).entries))
            out[f"{name}_mean_entries"] = statistics.mean(counts)
    return out


def _server_cpu(port: int) -> float:
    """CPU seconds (user + sys) so far of the ``ledger serve`` listening on ``port`` and of its
    worker processes (from ``/proc``)."""
    stats = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            stats[int(d.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), cmd)
    mark = f"--port\0{port}\0".encode()
    top = {pid for pid, (_, _, cmd) in stats.items() if b"serve" in cmd and mark in cmd}
    ours = top | {pid for pid, (ppid, _, _) in stats.items() if ppid in top}
    return sum(stats[pid][1] for pid in ours) / os.sysconf("SC_CLK_TCK")


def run_wrk(
    wrk: str, url: str, file: Path, connections: int, seconds: int, port: int = 0
) -> dict[str, float]:
    threads = min(2, connections)
    load = os.getloadavg()[0]
    server0 = _server_cpu(port) if port else 0.0
    child0 = os.times()
    p = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(LUA),
            url,
            "--",
            str(file),
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    child1 = os.times()
    server_cpu = (_server_cpu(port) if port else 0.0) - server0
    wrk_cpu = (child1.children_user + child1.children_system) - (
        child0.children_user + child0.children_system
    )
    lat = {m.group(1): float(m.group(2)) * _UNIT[m.group(3)] for m in _LAT.finditer(p.stdout)}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", p.stdout)
    done = re.search(r"(\d+) requests in", p.stdout)
    count = max(int(done.group(1)) if done else 0, 1)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", p.stdout)
    errors = re.search(r"Socket errors: (.*)", p.stdout)
    return {
        "requests_per_s": float(rps.group(1)) if rps else float("nan"),
        "p50_ms": lat.get("50", float("nan")),
        "p99_ms": lat.get("99", float("nan")),
        "non_2xx": float(bad.group(1)) if bad else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
        "server_cpu_ms_per_request": server_cpu * 1000 / count,
        "wrk_cpu_ms_per_request": wrk_cpu * 1000 / count,
        "load_1m_before": load,
        "load_1m": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenarios", nargs="*", default=["evidence", "purl_range", "vuln_status"])
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, nargs="*", default=[1, 16])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--port", type=int, default=18610)
    ap.add_argument("--label", default="", help="a name for this run in the results")
    ap.add_argument("--no-storage", action="store_true", help="skip the dbstat scan")
    ap.add_argument("--root", type=Path, default=Path("/tmp/audit-bench"), help="where builds live")
    args = ap.parse_args(argv)
    wrk = ensure_wrk()
    directory = cached(args.size, args.root)
    db = directory / "audit.db"
    files = questions(directory)
    report: dict[str, object] = {
        "machine": machine(),
        "size": args.size,
        "workers": args.workers,
        "load_before": os.getloadavg(),
        "storage": None if args.no_storage else storage(db, args.size),
        "build": json.loads((directory / "done.json").read_text()),
    }
    print(json.dumps(report, indent=1), flush=True)
    key = str(directory / "audit.key")
    report["commit"] = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
    ).stdout.strip()
    with server(f"sqlite:///{db}", key, args.workers, args.port) as (url, _pid):
        report["answers"] = check_answers(url, directory, files)
        print(json.dumps(report["answers"]), flush=True)
        for name in args.scenarios:
            for c in args.connections:
                run_wrk(wrk, url, files[name], c, 2)  # warm the page cache and tile caches
                runs = [
                    run_wrk(wrk, url, files[name], c, args.seconds, args.port)
                    for _ in range(args.runs)
                ]
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                report[f"{name}_c{c}"] = {"median": med, "runs": runs}
                print(f"{name} c={c}", json.dumps(med), flush=True)
    report["load_after"] = os.getloadavg()
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.parent.mkdir(exist_ok=True)
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    old[args.label or f"size_{args.size}"] = report
    RESULTS.write_text(json.dumps(old, indent=2) + "\n")


if __name__ == "__main__":
    main()
