"""`verify --evidence` in a fresh process: zero network calls (every connect and name lookup
fails the run), and none of SQLAlchemy, FastAPI or sigstore imported when the evidence holds only
key-signed attestations (a deploy gate pays for every import at start-up). Issue 11 §6 pins the
rest of the cold-start diet: no dataclass or NamedTuple of ours, no pydantic (the policy is read by ``verify/_internal/reader.py``),
typer, argparse, securesystemslib, httpx, X.509 or the trust registry on that path — rich only
for the text report, never for ``--format json`` — and no httpx for ``--ledger`` either."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.verify.conftest import DemoLedger
from tests.verify.gate import issue_policy, verify

FORBIDDEN = ("sqlalchemy", "fastapi", "starlette", "sigstore", "uvicorn", "alembic", "psycopg")
# what the key-signed --evidence path once imported and no longer needs (issue 11 §6)
SLIMMED = (
    "pydantic",
    "pydantic_core",
    "typer",
    "click",
    "argparse",
    "securesystemslib",
    "httpx",
    "cryptography.x509",
    "ledger.registry.model",
    "attest.sigstore_bundle",
)

GUARDED = """
import json, socket, sys
def refuse(*args, **kw):
    raise AssertionError(f"network call during verify --evidence: {args[1:] or kw}")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.socket.sendto = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
out, args = sys.argv[1], sys.argv[2:]
sys.argv = ["verify", *args]
from verify.cli import main
try:
    main()
    code = 0
except SystemExit as e:
    code = e.code
except AssertionError as e:
    code = f"crashed: {e}"
ours = [m for n, m in list(sys.modules.items()) if n.split(".")[0] in ("ledger", "attest", "verify")]
generated = sorted(
    f"{c.__module__}.{c.__qualname__}"
    for m in ours
    for c in vars(m).values()
    if isinstance(c, type) and c.__module__ == m.__name__
    and ("__dataclass_fields__" in vars(c) or (issubclass(c, tuple) and "_fields" in vars(c)))
)
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules), "generated": generated}, f)
"""


def _run_guarded(tmp_path: Path, *args: str | Path) -> dict[str, Any]:
    out = tmp_path / "result.json"
    p = subprocess.run(
        [sys.executable, "-c", GUARDED, str(out), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.exists(), p.stderr
    result: dict[str, Any] = json.loads(out.read_text())
    result["stdout"], result["stderr"] = p.stdout, p.stderr
    return result


def test_evidence_makes_no_network_call_and_imports_no_server_code(
    demo: DemoLedger, tmp_path: Path
) -> None:
    policy = issue_policy(demo, tmp_path)
    evidence = tmp_path / "evidence.json"
    r = verify("export-evidence", demo.app_zip, "--ledger", demo.server.url, "-o", evidence)
    assert r.exit_code == 0
    got = _run_guarded(tmp_path, demo.app_zip, "--policy", policy, "--evidence", evidence)
    assert got["code"] == 0, got["stdout"] + got["stderr"]
    assert "PASSED" in got["stdout"]
    loaded = [m for m in got["modules"] if m.split(".")[0] in FORBIDDEN]
    assert loaded == [], f"verify --evidence imported {loaded}"
    assert "httpx" not in got["modules"]  # nothing of the network stack either
    slimmed = [m for m in SLIMMED if m in got["modules"]]
    assert slimmed == [], f"verify --evidence imported {slimmed} again (issue 11 §6)"
    assert "rich" in got["modules"]  # the text report is rich's table
    args = (demo.app_zip, "--policy", policy, "--evidence", evidence, "--format", "json")
    machine = _run_guarded(tmp_path, *args)
    assert machine["code"] == 0 and json.loads(machine["stdout"])["verdict"] == "PASSED"
    assert "rich" not in machine["modules"]  # JSON for machines pays nothing for the table
    # no class of ours on this path is a dataclass or NamedTuple: defining one compiles its
    # methods at import, ~1.5-3 M instructions each (attest/_internal/frozen.py)
    assert machine["generated"] == [], machine["generated"]


def test_the_guard_would_catch_a_network_call(demo: DemoLedger, tmp_path: Path) -> None:
    """The same harness with --ledger: the guard stops it (so the test above can fail)."""
    policy = issue_policy(demo, tmp_path)
    got = _run_guarded(tmp_path, demo.app_zip, "--policy", policy, "--ledger", demo.server.url)
    assert "network call" in str(got["code"])
    assert "httpx" not in got["modules"]  # the evidence API is read with the standard library
