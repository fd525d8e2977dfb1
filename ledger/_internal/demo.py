"""``make run``: a ledger server on ``demo/ledger.db``, seeded once through the real HTTP path.

First run: a CI key, a ledger, an append and a read token (kept in ``demo/tokens.json``, mode
0600), then a sample pipeline whose every step is ``attest … --ledger URL``: a build link
(``attest run``), SLSA provenance, a test result, a Grype-shaped scan with two CVEs, a second
build of the same artifact with changed dependency versions, and an OpenVEX ``fixed`` record for
the CVE that build no longer has. Later runs reuse all of it. Serves until Ctrl-C.

Usage: ``python -m ledger._internal.demo [--dir demo] [--port 8080]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ORIGIN = "demo.example/ledger"
_REQUESTS = ("requests", "pkg:pypi/requests@2.31.0", "2.31.0", "2.32.0", "CVE-2024-35195")
_URLLIB3 = ("urllib3", "pkg:pypi/urllib3@2.2.1", "2.2.1", "2.2.2", "CVE-2024-37891")


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _grype(findings: Sequence[tuple[str, str, str, str, str]]) -> str:
    """A Grype JSON report (the fields ``attest scan`` reads) with one match per finding."""
    matches = [
        {
            "vulnerability": {
                "id": cve,
                "severity": "Medium",
                "fix": {"versions": [fixed], "state": "fixed"},
            },
            "relatedVulnerabilities": [],
            "artifact": {"name": name, "version": version, "type": "python", "purl": purl},
        }
        for name, purl, version, fixed, cve in findings
    ]
    return json.dumps(
        {
            "matches": matches,
            "source": {"type": "directory", "target": "dist"},
            "descriptor": {
                "name": "grype",
                "version": "0.79.3",
                "timestamp": "2026-11-01T10:00:00Z",
            },
        },
        indent=1,
    )


def _attest(work: Path, url: str, token: str, *args: str) -> dict[str, object]:
    """One ``attest`` step submitted to the ledger; returns the ledger's receipt."""
    env = {**os.environ, "LEDGER_TOKEN": token}
    p = subprocess.run(
        [_bin("attest"), args[0], "--ledger", url, *args[1:]],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if p.returncode != 0:
        raise SystemExit(f"demo: attest {args[0]} failed: {p.stderr.strip()}")
    receipt: dict[str, object] = json.loads(p.stdout.strip().splitlines()[-1])
    return receipt


def seed(work: Path, url: str, token: str) -> list[dict[str, object]]:
    """Run the sample pipeline in ``work`` (which holds ``ci-key``); every step goes to ``url``."""
    (work / "src").mkdir(parents=True, exist_ok=True)
    (work / "dist").mkdir(exist_ok=True)
    (work / "attestations").mkdir(exist_ok=True)
    (work / "src" / "app.py").write_text('print("hello from the demo app")\n')
    deps = work / "requirements.txt"
    deps.write_text("requests==2.31.0\nurllib3==2.2.1\n")
    (work / "scan-1.json").write_text(_grype([_REQUESTS, _URLLIB3]))
    (work / "scan-2.json").write_text(_grype([_URLLIB3]))
    key = ("--key", "ci-key")
    sub = ("--subject", "dist/app.zip")
    steps: list[tuple[str, ...]] = [
        (
            "run",
            "--step",
            "build",
            *key,
            "-m",
            "src/*",
            "-p",
            "dist/*",
            "-o",
            "attestations/1-build.link.json",
            "--",
            sys.executable,
            "-m",
            "zipfile",
            "-c",
            "dist/app.zip",
            "src/app.py",
        ),
        (
            "provenance",
            *sub,
            "--deps",
            "requirements.txt",
            *key,
            "-o",
            "attestations/2-provenance.json",
        ),
        (
            "test-result",
            "--step",
            "unit",
            "--result",
            "PASSED",
            *sub,
            "--passed",
            "test_hello",
            *key,
            "-o",
            "attestations/3-test.json",
        ),
        ("scan", *sub, "--report", "scan-1.json", *key, "-o", "attestations/4-scan.json"),
    ]
    receipts = [_attest(work, url, token, *s) for s in steps]
    deps.write_text("requests==2.32.3\nurllib3==2.2.1\n")  # the second build upgrades requests
    receipts.append(
        _attest(
            work,
            url,
            token,
            "provenance",
            *sub,
            "--deps",
            "requirements.txt",
            "--param",
            "build=2",
            *key,
            "-o",
            "attestations/5-provenance.json",
        )
    )
    receipts.append(
        _attest(
            work,
            url,
            token,
            "vex",
            *sub,
            "--previous",
            "scan-1.json",
            "--report",
            "scan-2.json",
            "--note",
            "requests upgraded to 2.32.3",
            *key,
            "-o",
            "attestations/6-vex.json",
        )
    )
    return receipts


def _ledger(*args: str) -> str:
    p = subprocess.run([_bin("ledger"), *args], capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise SystemExit(f"demo: ledger {args[0]} failed: {p.stderr.strip()}")
    return p.stdout.strip()


def _setup(work: Path, db: str) -> dict[str, str]:
    """Key, ledger, signer registration and tokens — once; later runs read tokens.json."""
    tokens_file = work / "tokens.json"
    if tokens_file.exists():
        tokens: dict[str, str] = json.loads(tokens_file.read_text())
        return tokens
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "ci-key").exists():
        subprocess.run(
            [_bin("attest"), "keygen", "--type", "ed25519", "-o", str(work / "ci-key")],
            check=True,
            capture_output=True,
        )
    if not (work / "ledger.db").exists():
        _ledger("init", "--origin", ORIGIN, "--db", db)
    _register_ci_signer(work, db)
    tokens = {
        "append": _ledger(
            "tokens", "create", "--name", "demo-append", "--scope", "append", "--db", db
        ),
        "read": _ledger("tokens", "create", "--name", "demo-read", "--scope", "read", "--db", db),
    }
    fd = os.open(tokens_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(tokens, f)
    return tokens


def _register_ci_signer(work: Path, db: str) -> None:
    """The CI key goes into the trust registry (a logged entry) before anything is sent."""
    _ledger("signers", "add", "--name", "ci", "--key", str(work / "ci-key.pub"), "--db", db)


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit("demo: ledger serve exited; see its output above")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("demo: ledger serve did not start")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--dir", type=Path, default=Path("demo"))
    ap.add_argument("--port", type=int, default=8080)
    args = ap.parse_args(argv)
    work: Path = args.dir.resolve()
    db = f"sqlite:///{work / 'ledger.db'}"
    tokens = _setup(work, db)
    url = f"http://127.0.0.1:{args.port}"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the server on SIGTERM too
    proc = subprocess.Popen(
        [_bin("ledger"), "serve", "--db", db, "--port", str(args.port), "--no-access-log"]
    )
    try:
        _wait(url, proc)
        if not (work / ".seeded").exists():
            for r in seed(work, url, tokens["append"]):
                print(f"demo: appended index {r['index']} (tree size {r['treeSize']})")
            (work / ".seeded").touch()
            subprocess.run(
                [
                    _bin("attest"),
                    "verify",
                    "attestations/2-provenance.json",
                    "--key",
                    "ci-key.pub",
                    "--subject",
                    "dist/app.zip",
                ],
                cwd=work,
                check=True,
            )
        print(f"\nledger: serving {url}  (API docs: {url}/docs)")
        print(f"  read token:   {tokens['read']}")
        print(f"  append token: {tokens['append']}")
        print(f"  try: curl {url}/api/v1/checkpoint   — Ctrl-C stops\n", flush=True)
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
