"""Issue 11 §6: what a deploy gate pays per run.

- cold: wall time of a fresh ``verify ARTIFACT --policy P --evidence FILE`` process (the console
  script, as a deploy job runs it), key-signed attestations, against a bare interpreter;
- warm: in-process verification of one artifact with 5 attestations (checkpoint, inclusion
  proofs, bodies, 5 DSSE signatures, rules), policy and keys already loaded.

Usage: ``python -m bench.verify_cold [--runs 21] [--loops 300]``; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.run import machine

BIN = Path(sys.executable).parent
BUILDER = "https://ci.example/builder@v1"
POLICY = """apiVersion: provenance-ledger.dev/v1
kind: VerifyPolicy
ledger:
  keys: ["{vkey}"]
signers:
  ci:
    key: ci-key.pub
steps:
  - name: build
    predicateType: https://slsa.dev/provenance/v1
    signers: [ci]
    builderId: {builder}
  - name: unit-tests
    predicateType: https://in-toto.io/attestation/test-result/v0.1
    signers: [ci]
    result: PASSED
deny:
  dependencies:
    - purl: pkg:maven/org.apache.logging.log4j/log4j-core
      versions: "vers:maven/<2.17.1"
  vulnerabilities:
    severityAtLeast: high
maxAge: 30d
"""


def _statements(digest: str) -> list[dict[str, object]]:
    subject = [{"name": "app.zip", "digest": {"sha256": digest}}]
    prov = {
        "buildDefinition": {
            "buildType": "https://example.com/build/v1",
            "externalParameters": {"source": {"uri": "git+https://github.com/example/app@a"}},
            "resolvedDependencies": [
                {"uri": f"pkg:pypi/dep{i}@1.{i}.0", "digest": {"sha256": f"{i:064x}"}}
                for i in range(10)
            ],
        },
        "runDetails": {"builder": {"id": BUILDER}},
    }
    scan = {"scanner": {"uri": "https://github.com/anchore/grype", "result": []}}
    out: list[dict[str, object]] = [
        {"predicateType": "https://slsa.dev/provenance/v1", "predicate": prov},
        {
            "predicateType": "https://in-toto.io/attestation/test-result/v0.1",
            "predicate": {"result": "PASSED", "passedTests": ["t1"]},
        },
        {"predicateType": "https://in-toto.io/attestation/vulns/v0.2", "predicate": scan},
        {"predicateType": "https://slsa.dev/provenance/v1", "predicate": prov | {"n": 2}},
        {
            "predicateType": "https://in-toto.io/attestation/test-result/v0.1",
            "predicate": {"result": "PASSED", "passedTests": ["t2"]},
        },
    ]
    return [{"_type": "https://in-toto.io/Statement/v1", "subject": subject, **s} for s in out]


def setup(work: Path) -> tuple[Path, Path, Path]:
    """A ledger with 5 attestations about one artifact; (artifact, policy, evidence file)."""
    import hashlib

    from attest.dsse import sign_envelope
    from attest.signers import read_signer, write_keypair
    from ledger.log import Ledger
    from verify.sources import from_db

    db = f"sqlite:///{work / 'ledger.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}

    def ledger(*args: str) -> str:
        p = subprocess.run(
            [str(BIN / "ledger"), *args, "--db", db],
            cwd=work,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        return p.stdout.strip()

    vkey = ledger("init", "--origin", "bench.example/ledger")
    write_keypair(work / "ci-key", "ed25519", None)
    ledger("signers", "add", "--name", "ci", "--key", "ci-key.pub")
    artifact = work / "app.zip"
    artifact.write_bytes(os.urandom(4096))
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    signer = read_signer(work / "ci-key")
    with Ledger.open(db, work / "ledger.db.key") as lg:
        for st in _statements(digest):
            lg.append(sign_envelope(json.dumps(st).encode(), [signer]).to_json())
    (work / "policy.yaml").write_text(POLICY.format(vkey=vkey, builder=BUILDER))
    (work / "evidence.json").write_text(json.dumps(from_db(db, [f"sha256:{digest}"], since=None)))
    return artifact, work / "policy.yaml", work / "evidence.json"


def cold(work: Path, args: list[str], runs: int) -> dict[str, float]:
    def median_ms(cmd: list[str]) -> float:
        samples = []
        for _ in range(runs):
            t = time.perf_counter()
            p = subprocess.run(cmd, cwd=work, capture_output=True, check=False)
            samples.append(time.perf_counter() - t)
            assert p.returncode == 0, p.stdout + p.stderr
        return round(statistics.median(samples) * 1e3, 1)

    return {
        "verify_evidence_text_ms": median_ms([str(BIN / "verify"), *args]),
        "verify_evidence_json_ms": median_ms([str(BIN / "verify"), *args, "--format", "json"]),
        "bare_python_ms": median_ms([sys.executable, "-c", "pass"]),
    }


def warm(artifact: Path, policy_file: Path, evidence: Path, loops: int) -> dict[str, float]:
    from verify.artifact import resolve_artifacts
    from verify.pipeline import verify_evidence
    from verify.policy import load_policy
    from verify.trust import Trust

    policy = load_policy(policy_file)
    trust = Trust.load(policy)
    arts = resolve_artifacts(str(artifact))
    doc = json.loads(evidence.read_text())
    now = datetime.now(UTC)
    out = verify_evidence(policy, trust, arts, doc, at=now)
    assert out.passed and len(out.attestations) == 5, out.rules
    samples = []
    for _ in range(loops):
        t = time.perf_counter()
        verify_evidence(policy, trust, arts, doc, at=now)
        samples.append(time.perf_counter() - t)
    return {
        "one_artifact_5_attestations_ms_median": round(statistics.median(samples) * 1e3, 3),
        "p99_ms": round(sorted(samples)[int(len(samples) * 0.99) - 1] * 1e3, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--loops", type=int, default=300)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        artifact, policy, evidence = setup(work)
        args = [str(artifact), "--policy", str(policy), "--evidence", str(evidence)]
        result = {
            "machine": machine(),
            "load_before": os.getloadavg(),
            "cold": cold(work, args, a.runs),
            "warm": warm(artifact, policy, evidence, a.loops),
            "load_after": os.getloadavg(),
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
