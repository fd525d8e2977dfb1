"""`verify` refuses evidence whose proofs fail (exit 4): a tampered body, a bad proof or
checkpoint, a forked ledger (the trusted state kept), and reads that need a token."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.verify.conftest import (
    SLSA,
    DemoLedger,
    provenance,
    statement,
)
from tests.verify.gate import export, fresh, issue_policy, report, verify


def test_a_tampered_body_is_exit_4(demo: DemoLedger, tmp_path: Path) -> None:
    policy = issue_policy(demo, tmp_path)
    doc = export(demo, demo.app_zip, tmp_path / "evidence.json")
    assert (
        verify(demo.app_zip, "--policy", policy, "--evidence", tmp_path / "evidence.json").exit_code
        == 0
    )
    body = json.loads(base64.b64decode(doc["entries"][0]["body"]))
    body["payload"] = base64.b64encode(b'{"forged": true}').decode()
    doc["entries"][0]["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    (tmp_path / "tampered.json").write_text(json.dumps(doc))
    code, out = report(demo.app_zip, "--policy", policy, "--evidence", tmp_path / "tampered.json")
    assert code == 4 and out["verdict"] == "ERROR" and "altered" in out["error"]


def test_a_bad_proof_or_checkpoint_is_exit_4(demo: DemoLedger, tmp_path: Path) -> None:
    policy = issue_policy(demo, tmp_path)
    doc = export(demo, demo.app_zip, tmp_path / "evidence.json")
    proof = dict(doc, entries=[dict(doc["entries"][0], inclusionProof=[]), *doc["entries"][1:]])
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    assert (
        verify(demo.app_zip, "--policy", policy, "--evidence", tmp_path / "proof.json").exit_code
        == 4
    )
    forged = dict(doc, checkpoint=doc["checkpoint"].replace("\n\n", "\nextra\n\n", 1))
    (tmp_path / "note.json").write_text(json.dumps(forged))
    r = verify(demo.app_zip, "--policy", policy, "--evidence", tmp_path / "note.json")
    assert r.exit_code == 4 and "CheckpointFailure" in r.stderr


def test_a_forked_ledger_is_exit_4_and_the_state_is_kept(demo: DemoLedger, tmp_path: Path) -> None:
    import sqlite3

    from ledger.log import Ledger

    fork_path = tmp_path / "fork.db"
    src = sqlite3.connect(demo.db.removeprefix("sqlite:///"))
    dst = sqlite3.connect(fork_path)
    src.backup(dst)
    src.close()
    dst.close()
    fork = f"sqlite:///{fork_path}"
    from attest.dsse import sign_envelope

    other = fresh("fork")
    body = sign_envelope(
        json.dumps(statement(other, SLSA, provenance())).encode(), [demo.ci]
    ).to_json()
    with Ledger.open(fork, demo.server.key) as lg:
        lg.append(body)  # the same key signs a history the real ledger never had
    demo.append(statement(fresh("real"), SLSA, provenance()))  # the real one grows differently
    policy = issue_policy(demo, tmp_path)
    text = policy.read_text().replace("ledger:\n", "ledger:\n  stateDir: state\n", 1)
    policy.write_text(text)
    assert verify(demo.app_zip, "--policy", policy, "--ledger", demo.server.url).exit_code == 0
    state = next((tmp_path / "state").glob("*.checkpoint"))
    trusted = state.read_text()
    r = verify(demo.app_zip, "--policy", policy, "--db", fork)
    assert r.exit_code == 4 and "ConsistencyFailure" in r.stderr, r.stderr
    assert state.read_text() == trusted  # a failed run does not move the state
    with Ledger.open(fork, demo.server.key) as lg:  # a larger fork: the proof itself fails
        lg.append(
            sign_envelope(
                json.dumps(statement(fresh(), SLSA, provenance())).encode(), [demo.ci]
            ).to_json()
        )
        lg.append(
            sign_envelope(
                json.dumps(statement(fresh(), SLSA, provenance())).encode(), [demo.ci]
            ).to_json()
        )
    r = verify(demo.app_zip, "--policy", policy, "--db", fork)
    assert r.exit_code == 4 and "forked" in r.stderr
    assert state.read_text() == trusted
    demo.append(statement(fresh("real2"), SLSA, provenance()))
    assert verify(demo.app_zip, "--policy", policy, "--ledger", demo.server.url).exit_code == 0
    assert state.read_text() != trusted  # the honest ledger's newer checkpoint is now trusted


def test_gated_reads_need_the_read_token(demo: DemoLedger, tmp_path: Path) -> None:
    from tests.ledger.api.server import serve, token

    read = token(demo.db, demo.work, "verify-read", "read")
    policy = issue_policy(demo, tmp_path)
    with serve(demo.db, demo.work, demo.server.key, LEDGER_PUBLIC_READS="false") as gated:
        r = verify(
            demo.app_zip, "--policy", policy, "--ledger", gated.url, env={"LEDGER_TOKEN": ""}
        )
        assert r.exit_code == 3 and "LEDGER_TOKEN" in r.stderr
        r = verify(
            demo.app_zip, "--policy", policy, "--ledger", gated.url, env={"LEDGER_TOKEN": read}
        )
        assert r.exit_code == 0, r.stderr
