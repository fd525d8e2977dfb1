"""`ledger reindex` gives identical index rows (issue 10, §3): on a 100,000-record SQLite ledger
and on a 10,000-record PostgreSQL one (the same bodies; PostgreSQL's smaller size keeps the build
near a minute on two cores — its SQL for the index rows is the same at any size).

The ledger is built once per session through the real write path (``Ledger.append_many``: index
rows derived in each batch's transaction) from small, varied bodies: SLSA v1 and v0.2 provenance
with purls of several ecosystems, links, test results, Vulns scans and OpenVEX statements, signed
by a registered key, an unregistered one, or not parseable at all; the trust registry changes
halfway (a second signer added, the first revoked), so signer attribution depends on where in the
log a record lies. Then ``ledger reindex`` (the command) must write back exactly the rows the
append path wrote, table by table and row by row, and ``ledger check`` must pass; with one index
row tampered, ``ledger check`` must fail naming that row's record.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import update

from ledger._internal import schema
from ledger.index.rows import IndexRows, stored_rows
from ledger.log import Ledger
from ledger.registry import add_signer, make_spec, revoke_signer
from ledger.registry.admin import admin_key_path, load_admin_key
from tests.ledger import audit_samples as s
from tests.ledger.test_index import _pem

N = 100_000  # SQLite
N_PG = 10_000
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow
CI = ed25519.Ed25519PrivateKey.generate()
RELEASE = ed25519.Ed25519PrivateKey.generate()
STRANGER = ed25519.Ed25519PrivateKey.generate()
_ECOSYSTEMS = ("pypi/requests", "npm/lodash", "maven/org.apache.logging.log4j/log4j-core")


def _payload(i: int) -> bytes:
    """One of eight small statement shapes, varied by ``i``."""
    app = s.sha(f"app-{i // 5}")
    kind = i % 8
    if kind == 0:
        deps = [(f"pkg{i % 13}", f"1.{i % 7}.{i % 3}"), ("requests", f"2.{i % 33}.0")]
        return s.provenance_v1(app, deps)
    if kind == 1:
        return s.provenance_v02(app)
    if kind == 2:
        return s.link(f"step-{i % 4}", {f"src/{i % 9}.py": s.sha(str(i))}, [("out.bin", app)])
    if kind == 3:
        return s.test_result(app, "PASSED" if i % 5 else "FAILED")
    if kind == 4:
        return s.vulns(app, [f"CVE-2024-{1000 + i % 50}", f"CVE-2023-{2000 + i % 17}"])
    if kind == 5:
        status = ("fixed", "not_affected", "affected", "under_investigation")[i % 4]
        return s.vex(app, f"CVE-2024-{1000 + i % 50}", status)
    if kind == 6:
        eco = _ECOSYSTEMS[i % 3]
        return s.statement(
            [("lib.tgz", app)],
            "https://slsa.dev/provenance/v1",
            {
                "buildDefinition": {
                    "resolvedDependencies": [
                        {"uri": f"pkg:{eco}@{i % 5}.{i % 11}.{i % 2}"},
                        {"name": f"dep{i % 6}", "annotations": {"purl": f"pkg:npm/d{i % 6}@1"}},
                    ]
                },
                "runDetails": {"builder": {"id": f"https://ci.example.com/b{i % 3}"}},
            },
        )
    return json.dumps(
        {"_type": "https://in-toto.io/Statement/v1", "subject": "odd", "n": i}
    ).encode()


def _bodies(start: int, end: int) -> list[bytes]:
    out = []
    for i in range(start, end):
        if i % 97 == 0:  # an envelope whose payload is not a statement, and a bad signature
            payload = base64.b64encode(f"not json {i}".encode()).decode()
            env = {"payloadType": s.PAYLOAD, "payload": payload, "signatures": [{"sig": "c2ln"}]}
            out.append(json.dumps(env).encode())
            continue
        key = (CI, RELEASE, STRANGER)[i % 3]
        out.append(s.sign(_payload(i), key))
    return out


def _build(url: str, key: Path, n: int) -> None:
    with Ledger.create(url, "test.example/ledger", key) as lg:
        admin = load_admin_key(admin_key_path(key))
        add_signer(lg, make_spec("ci", now=lg.now(), key=_pem(CI)), admin)
        half = n // 2
        for start in range(1, half, 10_000):
            lg.append_many(_bodies(start, min(start + 10_000, half)))
        when = lg.now() - timedelta(seconds=1)
        add_signer(lg, make_spec("release", now=when, key=_pem(RELEASE)), admin)
        revoke_signer(lg, "ci", None, admin)
        for start in range(half + 2, n, 10_000):
            lg.append_many(_bodies(start, min(start + 10_000, n)))
        assert lg.store.size() == n


@pytest.fixture(scope="session")
def large_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("reindex")
    _build(f"sqlite:///{d / 'l.db'}", d / "l.key", N)
    return d


@pytest.fixture(params=["sqlite", "postgresql"])
def large(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """(URL, size) of a ledger of its own: a copy of the session's SQLite file, or a PostgreSQL
    ledger built in a fresh schema."""
    if request.param == "postgresql":
        url = str(request.getfixturevalue("pg_url"))
        _build(url, tmp_path / "l.key", N_PG)
        yield url, N_PG
        return
    source: Path = request.getfixturevalue("large_source")
    for f in source.iterdir():
        shutil.copy(f, tmp_path / f.name)
    yield f"sqlite:///{tmp_path / 'l.db'}", N


def _rows(url: str) -> IndexRows:
    with Ledger.open(url) as lg, lg.store._conn() as conn:
        return stored_rows(conn, 0, 1 << 40)


def _ledger(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "ledger"), *args], check=False, capture_output=True, text=True)


def test_reindex_gives_identical_rows_and_check_names_a_tampered_row(
    large: tuple[str, int],
) -> None:
    url, n = large
    before = _rows(url)
    signers = {v for k, v, _ in before.terms if k == "signer"}
    assert signers == {"ci", "release"}
    assert len(before.terms) > 5 * n and len(before.deps) > n // 2 and len(before.vulns) > n // 8

    done = _ledger("reindex", "--db", url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ok": True, "records": n, "indexRows": len(before)}
    after = _rows(url)
    for name in ("terms", "deps", "vulns"):
        assert getattr(after, name) == getattr(before, name), f"ix_{name} differs after reindex"
    ok = _ledger("check", "--db", url)
    assert ok.returncode == 0, ok.stderr

    victim = next(d for d in before.deps if d[2] > n // 2 + 1000)
    with Ledger.open(url) as lg, lg.store.engine.begin() as conn:
        d = schema.ix_deps.c
        conn.execute(
            update(schema.ix_deps)
            .where(d.package == victim[0], d.version == victim[1], d.idx == victim[2])
            .values(version="9.9.9")
        )
    bad = _ledger("check", "--db", url)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"audit index rows of record {victim[2]} disagree" in bad.stderr
