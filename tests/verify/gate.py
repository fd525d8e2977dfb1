"""Run the `verify` CLI in-process, and the artifacts and policies the gate tests share."""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.verify.conftest import (
    SLSA,
    TEST_RESULT,
    DemoLedger,
    digest_of,
    provenance,
    result_predicate,
    statement,
)
from tests.verify.test_policy import doc_policy_text
from verify.cli import app


def verify(*args: str | Path, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def report(*args: str | Path) -> tuple[int, dict[str, Any]]:
    r = verify(*args, "--format", "json")
    return r.exit_code, json.loads(r.stdout)


def issue_policy(demo: DemoLedger, where: Path) -> Path:
    """docs/deploy.md's example as written, but with this ledger's key and the CI key file."""
    (where / "keys").mkdir(parents=True, exist_ok=True)
    shutil.copy(demo.ci_pub, where / "keys" / "ci.pub")
    text = doc_policy_text().replace('"example.com/ledger+1a2b3c4d+AXYZ…"', json.dumps(demo.vkey))
    assert demo.vkey in text
    (where / "policy.yaml").write_text(text)
    return where / "policy.yaml"


def fresh(name: str = "app") -> str:
    """A new artifact name (its bytes are the name, its digest :func:`digest_of`)."""
    return f"{name}-{secrets.token_hex(6)}.tar.gz"


def sha(name: str) -> str:
    return "sha256:" + digest_of(name)


def export(demo: DemoLedger, artifact: str | Path, out: Path) -> dict[str, Any]:
    """``verify export-evidence`` from the demo's server into ``out``; the document."""
    r = verify("export-evidence", artifact, "--ledger", demo.server.url, "-o", out)
    assert r.exit_code == 0, r.stdout + r.stderr
    return json.loads(out.read_text())


def record_passing(demo: DemoLedger, name: str, deps: tuple[str, ...] = ()) -> None:
    """Append, signed by ci, what the demo policy's two steps need about ``name``: a build
    provenance (with ``deps``) and a PASSED test result."""
    demo.append(statement(name, SLSA, provenance(deps=deps)))
    demo.append(statement(name, TEST_RESULT, result_predicate()))
