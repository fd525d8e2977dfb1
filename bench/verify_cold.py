"""Issue 11 §6: what a deploy gate pays per run.

- cold: a fresh ``verify ARTIFACT --policy P --evidence FILE`` process (the console script, as a
  deploy job runs it), key-signed attestations, against a bare interpreter — from this editable
  install and from a regular wheel installed in a throwaway venv (what a deploy installs);
- Sigstore, side by side in the same rounds: ``verify sigstore-bundle`` and ``sigstore verify
  identity --offline`` on the same conformance bundle, ``verify attestations`` with that bundle
  against a keyless policy, and ``in-toto-verify`` / ``verify layout`` on the in-toto demo;
- warm: in-process verification of one artifact with 5 attestations (checkpoint, inclusion
  proofs, bodies, 5 DSSE signatures, rules), policy and keys already loaded.

Every command of a group runs once per round, in turn, so load drifts hit them alike; each gets
its median and minimum wall time and its median CPU time (user + sys of the child), which load
changes much less than wall time. The project's bytecode is compiled first (a shell with
``PYTHONDONTWRITEBYTECODE`` would otherwise compile every module on every run, which no installed
deploy gate does). ``verify --ledger`` is ``bench/verify_ledger.py``.

Usage: ``python -m bench.verify_cold [--runs 21] [--loops 300] [--no-wheel] [--no-sigstore]``;
prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.run import machine

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
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
Command = tuple[list[str], Path, tuple[int, ...]]  # argv, cwd, the exit codes it may end with


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


def compile_bytecode() -> None:
    """Write the project's ``__pycache__`` (as an installer does) even when the environment
    says ``PYTHONDONTWRITEBYTECODE``: a cold start reads bytecode, it does not compile."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    dirs = [str(ROOT / d) for d in ("ledger", "attest", "verify")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *dirs], env=env, check=True)


def measure(commands: dict[str, Command], runs: int) -> dict[str, dict[str, float]]:
    """Each command ``runs`` times, in turns: median and minimum wall ms, median CPU ms."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (argv, cwd, codes) in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            p = subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
            walls[name].append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if p.returncode not in codes:
                raise SystemExit(f"{name}: exit {p.returncode}\n{p.stdout!r}\n{p.stderr!r}")
    return {
        name: {
            "wall_ms_median": round(statistics.median(walls[name]) * 1e3, 1),
            "wall_ms_min": round(min(walls[name]) * 1e3, 1),
            "cpu_ms_median": round(statistics.median(cpus[name]) * 1e3, 1),
        }
        for name in commands
    }


def wheel_venv(work: Path) -> Path:
    """A throwaway venv with the project installed from a regular wheel (bytecode compiled by
    pip, no editable finder); its dependencies are this venv's (a ``.pth`` line, which adds the
    directory without running its ``.pth`` files). Returns its ``bin``."""
    wheels = work / "wheels"
    subprocess.run(
        [str(BIN / "pip"), "wheel", str(ROOT), "--no-deps", "-q", "-w", str(wheels)], check=True
    )
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    deps = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    (site / "deps.pth").write_text(deps + "\n")
    wheel = next(wheels.glob("provenance_ledger-*.whl"))
    pip = [str(BIN / "pip"), "--python", str(venv / "bin" / "python")]
    subprocess.run([*pip, "install", "--no-deps", "-q", str(wheel)], check=True)
    return venv / "bin"


def key_signed(work: Path, args: list[str], wheel: Path | None) -> dict[str, Command]:
    ok = (0,)
    out: dict[str, Command] = {
        "bare_python": ([sys.executable, "-c", "pass"], work, ok),
        "editable_text": ([str(BIN / "verify"), *args], work, ok),
        "editable_json": ([str(BIN / "verify"), *args, "--format", "json"], work, ok),
    }
    if wheel is not None:
        out["wheel_bare_python"] = ([str(wheel / "python"), "-c", "pass"], work, ok)
        out["wheel_text"] = ([str(wheel / "verify"), *args], work, ok)
        out["wheel_json"] = ([str(wheel / "verify"), *args, "--format", "json"], work, ok)
    return out


SIGSTORE_IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
SIGSTORE_ISSUER = "https://token.actions.githubusercontent.com"
KEYLESS_POLICY = f"""apiVersion: provenance-ledger.dev/v1
kind: VerifyPolicy
signers:
  gha:
    sigstore:
      issuer: {SIGSTORE_ISSUER}
      identity: {SIGSTORE_IDENTITY}
steps:
  - name: build
    predicateType: https://slsa.dev/provenance/v1
    signers: [gha]
"""
LAYOUT_SUBJECT = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
TAR_HELPER = (
    "import sys, tarfile\nwith tarfile.open(sys.argv[2]) as t:\n    t.extractall(filter='data')\n"
)


def sigstore(work: Path, wheel: Path | None) -> dict[str, Command]:
    """The Sigstore and in-toto comparisons (the same bundle, the same demo chain)."""
    cases = FIXTURES / "conformance" / "assets" / "bundle-verify"
    bundle = cases / "happy-path-v0.3" / "bundle.sigstore.json"
    identity = ["--certificate-identity", SIGSTORE_IDENTITY]
    issuer = ["--certificate-oidc-issuer", SIGSTORE_ISSUER]
    art = str(cases / "a.txt")
    (work / "keyless.yaml").write_text(KEYLESS_POLICY)
    dsse = cases / "happy-path-intoto-in-dsse-v3" / "bundle.sigstore.json"
    verify = str((wheel or BIN) / "verify")
    sigstore_cli = [
        str(BIN / "sigstore"),
        "verify",
        "identity",
        "--offline",
        "--bundle",
        str(bundle),
    ]
    cert_issuer = ["--cert-oidc-issuer", SIGSTORE_ISSUER]
    keyless = ["--policy", "keyless.yaml", "--bundle"]
    out: dict[str, Command] = {
        "verify_sigstore_bundle": (
            [verify, "sigstore-bundle", "--bundle", str(bundle), *identity, *issuer, art],
            work,
            (0,),
        ),
        "sigstore_verify_identity_offline": (
            [*sigstore_cli, "--cert-identity", SIGSTORE_IDENTITY, *cert_issuer, art],
            work,
            (0,),
        ),
        "verify_attestations_keyless": (
            [verify, "attestations", LAYOUT_SUBJECT, *keyless, str(dsse)],
            work,
            (0, 1),  # the policy's rules may fail; the signature and identity must verify
        ),
    }
    policy, evidence = _sigstore_evidence(work)
    out["verify_evidence_sigstore"] = (
        [verify, LAYOUT_SUBJECT, "--policy", str(policy), "--evidence", str(evidence)],
        work,
        (0,),
    )
    demo = _intoto_demo(work)
    keys = ["--verification-keys", "alice.pub"]
    layout_keys = ["--layout-key", "alice.pub"]
    out["in_toto_verify"] = (
        [str(BIN / "in-toto-verify"), "--layout", "root.layout", *keys],
        demo,
        (0,),
    )
    out["verify_layout"] = (
        [verify, "layout", "--layout", "root.layout", *layout_keys, "--link-dir", "."],
        demo,
        (0,),
    )
    return out


def _sigstore_evidence(work: Path) -> tuple[Path, Path]:
    """A ledger holding the conformance DSSE bundle, its evidence file, and a keyless policy
    that pins the ledger: ``verify --evidence`` with a Sigstore bundle (policy, evidence)."""
    from ledger.log import Ledger
    from verify.sources import from_db

    sg = work / "sigstore-ledger"
    sg.mkdir()
    db = f"sqlite:///{sg / 'ledger.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    vkey = subprocess.run(
        [str(BIN / "ledger"), "init", "--origin", "bench.example/sigstore", "--db", db],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    cases = FIXTURES / "conformance" / "assets" / "bundle-verify"
    bundle = (cases / "happy-path-intoto-in-dsse-v3" / "bundle.sigstore.json").read_bytes()
    with Ledger.open(db, sg / "ledger.db.key") as lg:
        lg.append(bundle)
    evidence = sg / "evidence.json"
    evidence.write_text(json.dumps(from_db(db, [LAYOUT_SUBJECT], since=None)))
    keyless = KEYLESS_POLICY.replace("signers:", f'ledger:\n  keys: ["{vkey}"]\nsigners:', 1)
    (sg / "policy.yaml").write_text(keyless)
    return sg / "policy.yaml", evidence


def _intoto_demo(work: Path) -> Path:
    """The in-toto demo supply chain with a freshly alice-signed layout (as tests/verify do)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from in_toto.models.metadata import Metadata
    from securesystemslib.signer import CryptoSigner

    src = FIXTURES / "in-toto-demo" / "demo_files"
    demo = work / "demo"
    shutil.copytree(src, demo)
    (demo / "scripts").mkdir()
    (demo / "scripts" / "tar").write_text(TAR_HELPER)
    metadata = Metadata.from_dict(json.loads((src / "demo.layout.template").read_bytes()))
    private = load_pem_private_key((src / "alice").read_bytes(), None)
    metadata.create_signature(CryptoSigner(private))  # type: ignore[arg-type]
    metadata.dump(str(demo / "root.layout"))
    return demo


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
    samples, cpu = [], []
    for _ in range(loops):
        t, c = time.perf_counter(), time.process_time()
        verify_evidence(policy, trust, arts, doc, at=now)
        samples.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {
        "one_artifact_5_attestations_ms_median": round(statistics.median(samples) * 1e3, 3),
        "cpu_ms_median": round(statistics.median(cpu) * 1e3, 3),
        "p99_ms": round(sorted(samples)[int(len(samples) * 0.99) - 1] * 1e3, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--loops", type=int, default=300)
    ap.add_argument("--no-wheel", action="store_true", help="skip the wheel-installed runs")
    ap.add_argument("--no-sigstore", action="store_true", help="skip the Sigstore comparisons")
    a = ap.parse_args()
    compile_bytecode()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        artifact, policy, evidence = setup(work)
        wheel = None if a.no_wheel else wheel_venv(work)
        args = [str(artifact), "--policy", str(policy), "--evidence", str(evidence)]
        result: dict[str, object] = {
            "machine": machine(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "load_before": os.getloadavg(),
            "key_signed_evidence": measure(key_signed(work, args, wheel), a.runs),
        }
        if not a.no_sigstore:
            result["sigstore_and_in_toto"] = measure(sigstore(work, wheel), max(5, a.runs // 2))
        result["warm"] = warm(artifact, policy, evidence, a.loops)
        result["load_after"] = os.getloadavg()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
