"""Issue 11 §6: ``verify ARTIFACT --policy P --ledger URL`` cold, end to end, against ledgers of
several sizes behind a real ``ledger serve``.

The issue's target names a 1,000,000-record ledger. Building one takes hours on this machine, so
this measures the two parts that add up to the end-to-end time, and shows which depends on size:

- the server's answer: the evidence ``POST`` a verifier makes (a subject's records, each with its
  inclusion proof, and the signed checkpoint), timed warm from this process, on every ledger;
- the cold ``verify --ledger`` process: its start-up, the request, and the verification.

Ledgers are the issue 10 audit corpus (``bench/audit_build.py``: realistic, signed, 3-6
attestations per artifact), built in ``--root`` (default ``/tmp/verify-ledger-bench``) once and
reused; ``--corpus DIR`` adds an already built one (such as ``/tmp/audit-bench/audit-v1-200000``,
read only). The policy pins the ledger's key and the corpus signer's key and requires the SLSA
build step, as a deploy gate would.

Usage: ``python -m bench.verify_ledger [--sizes 2000 20000] [--corpus DIR] [--runs 15]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import urllib.request
from pathlib import Path

from bench.audit_build import ORIGIN, cached
from bench.audit_corpus import BUILDER
from bench.run import machine
from bench.serve_bench import server
from bench.verify_cold import BIN, compile_bytecode, measure

POLICY = """apiVersion: provenance-ledger.dev/v1
kind: VerifyPolicy
ledger:
  keys: ["{vkey}"]
signers:
  corpus:
    key: signer.pub
steps:
  - name: build
    predicateType: https://slsa.dev/provenance/v1
    signers: [corpus]
    builderId: {builder}
"""


def _prepare(directory: Path, work: Path) -> tuple[Path, list[str]]:
    """The policy for ``directory``'s ledger (in ``work``) and a few of its subjects."""
    from cryptography.hazmat.primitives import serialization

    from ledger.storage import LedgerStore

    store = LedgerStore.open(f"sqlite:///{directory / 'audit.db'}")
    vkey = store.meta()["vkey"]
    store.close()
    private = serialization.load_pem_private_key((directory / "signer.pem").read_bytes(), None)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    work.mkdir(parents=True, exist_ok=True)
    (work / "signer.pub").write_bytes(public)
    (work / "policy.yaml").write_text(POLICY.format(vkey=vkey, builder=BUILDER))
    subjects = json.loads((directory / "subjects.json").read_text())
    step = max(1, len(subjects) // 7)
    return work / "policy.yaml", [f"sha256:{s}" for s in subjects[1::step][:5]]


def answer_ms(url: str, subjects: list[str], rounds: int) -> dict[str, float]:
    """The evidence answer for each subject, ``rounds`` times over: median ms and entries."""
    times, entries = [], []
    for _ in range(rounds):
        for subject in subjects:
            request = urllib.request.Request(
                f"{url}/api/v1/evidence?limit=1000",
                data=json.dumps({"subjects": [subject]}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            t = time.perf_counter()
            with urllib.request.urlopen(request, timeout=60) as r:
                doc = json.loads(r.read())
            times.append(time.perf_counter() - t)
            entries.append(len(doc["entries"]))
    return {
        "answer_ms_median": round(statistics.median(times) * 1e3, 2),
        "entries_per_answer": statistics.mean(entries),
    }


def one_ledger(directory: Path, work: Path, port: int, runs: int) -> dict[str, object]:
    policy, subjects = _prepare(directory, work)
    records = json.loads((directory / "done.json").read_text())["records"]
    key = str(directory / "audit.key")
    with server(f"sqlite:///{directory / 'audit.db'}", key, 1, port) as (url, _pid):
        answers = answer_ms(url, subjects, 5)
        argv = [str(BIN / "verify"), subjects[0], "--policy", str(policy), "--ledger", url]
        cold = measure({"verify_ledger_cold": (argv, work, (0, 1))}, runs)
    return {"records": records, "origin": ORIGIN, **answers, **cold["verify_ledger_cold"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", type=int, nargs="*", default=[2000, 20000])
    ap.add_argument("--corpus", type=Path, action="append", default=[])
    ap.add_argument("--root", type=Path, default=Path("/tmp/verify-ledger-bench"))
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--port", type=int, default=18630)
    a = ap.parse_args()
    compile_bytecode()
    dirs = [cached(n, a.root) for n in a.sizes] + list(a.corpus)
    result: dict[str, object] = {"machine": machine(), "load_before": os.getloadavg()}
    for i, directory in enumerate(dirs):
        work = a.root / f"work-{directory.name}"
        result[directory.name] = one_ledger(directory, work, a.port + i, a.runs)
        print(json.dumps({directory.name: result[directory.name]}), flush=True)
    result["load_after"] = os.getloadavg()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
