"""`verify --db` on the second backend: a PostgreSQL ledger read directly (the server's read
side), with the same verdicts as on SQLite (pass, a missing step, nothing recorded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from attest.dsse import sign_envelope
from attest.signers import read_signer, write_keypair
from tests.ledger.api.server import add_signer, init_ledger
from tests.verify.conftest import SLSA, TEST_RESULT, provenance, result_predicate, statement
from tests.verify.gate import fresh, report, sha

pytestmark = pytest.mark.postgres


def test_verify_reads_a_postgresql_ledger(pg_url: str, tmp_path: Path) -> None:
    from ledger.log import Ledger
    from ledger.storage import LedgerStore

    key = init_ledger(pg_url, tmp_path, register_samples=False)
    write_keypair(tmp_path / "ci", "ed25519", None)
    add_signer(pg_url, key, "ci", key=(tmp_path / "ci.pub").read_bytes())
    signer = read_signer(tmp_path / "ci")
    name, missing = fresh("pg"), fresh("pg-missing")
    with Ledger.open(pg_url, key) as lg:
        for n, ptype, pred in (
            (name, SLSA, provenance()),
            (name, TEST_RESULT, result_predicate()),
            (missing, SLSA, provenance()),
        ):
            lg.append(
                sign_envelope(json.dumps(statement(n, ptype, pred)).encode(), [signer]).to_json()
            )
    store = LedgerStore.open(pg_url)
    vkey = store.meta()["vkey"]
    store.close()
    policy = tmp_path / "p.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "provenance-ledger.dev/v1",
                "kind": "VerifyPolicy",
                "ledger": {"keys": [vkey], "stateDir": "state"},
                "signers": {"ci": {"key": "ci.pub"}},
                "steps": [
                    {"name": "build", "predicateType": SLSA, "signers": ["ci"]},
                    {
                        "name": "tests",
                        "predicateType": TEST_RESULT,
                        "signers": ["ci"],
                        "result": "PASSED",
                    },
                ],
            }
        )
    )
    code, doc = report(sha(name), "--policy", policy, "--db", pg_url)
    assert code == 0, doc
    assert doc["checkpoint"]["size"] == 4  # the registry entry and three attestations
    assert report(sha(missing), "--policy", policy, "--db", pg_url)[0] == 1
    assert report(sha(fresh("never")), "--policy", policy, "--db", pg_url)[0] == 3
    assert (tmp_path / "state").is_dir()
