"""`verify --ledger URL --at TIME` against a real `ledger serve`: the server's as-of answer (the
newest checkpoint it had signed by then, proofs against it), tied to the checkpoint this
verifier trusts by a consistency proof in whichever direction — a server answering from another
history is exit 4, and an as-of answer never moves the trusted state back."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from attest.dsse import sign_envelope
from tests.verify.conftest import (
    SLSA,
    TEST_RESULT,
    DemoLedger,
    provenance,
    result_predicate,
    statement,
)
from tests.verify.gate import fresh, report, sha, verify


def _history(demo: DemoLedger) -> tuple[str, int, str, int]:
    """An artifact built (record ``built``), then the time ``at``, then tested (``tested``)."""
    name = fresh("asof")
    built = demo.append(statement(name, SLSA, provenance()))
    time.sleep(0.05)
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    time.sleep(0.05)
    tested = demo.append(statement(name, TEST_RESULT, result_predicate()))
    return name, built, at, tested


def _stateful(demo: DemoLedger, tmp_path: Path) -> Path:
    policy = demo.policy(tmp_path / "policy.yaml")
    text = policy.read_text().replace("ledger:\n", "ledger:\n  stateDir: state\n", 1)
    policy.write_text(text)
    return policy


def test_at_asks_the_ledger_for_its_answer_as_of_then(demo: DemoLedger, tmp_path: Path) -> None:
    name, built, at, tested = _history(demo)
    policy = demo.policy(tmp_path / "policy.yaml")
    url = demo.server.url
    code, now = report(sha(name), "--policy", policy, "--ledger", url)
    assert code == 0, now["rules"]
    code, then = report(sha(name), "--policy", policy, "--ledger", url, "--at", at)
    assert code == 1 and then["verdict"] == "FAILED"
    # the server's checkpoint as of then: it holds the build, not the test record
    assert built < then["checkpoint"]["size"] <= tested < now["checkpoint"]["size"]
    assert [a["index"] for a in then["attestations"]] == [built]
    unit = next(r for r in then["rules"] if "unit-tests" in r["rule"])
    assert not unit["passed"]


def test_before_the_first_checkpoint_nothing_is_recorded(demo: DemoLedger, tmp_path: Path) -> None:
    policy = demo.policy(tmp_path / "policy.yaml")
    r = verify(
        demo.app_zip,
        "--policy",
        policy,
        "--ledger",
        demo.server.url,
        "--at",
        "2001-01-01T00:00:00Z",
    )
    assert r.exit_code == 3 and "no checkpoint by then" in r.stderr, r.stderr


def test_an_older_answer_is_proved_a_prefix_and_keeps_the_state(
    demo: DemoLedger, tmp_path: Path
) -> None:
    name, built, at, _ = _history(demo)
    policy = _stateful(demo, tmp_path)
    url = demo.server.url
    assert verify(sha(name), "--policy", policy, "--ledger", url).exit_code == 0
    state = next((tmp_path / "state").glob("*.checkpoint"))
    trusted = state.read_text()
    code, then = report(sha(name), "--policy", policy, "--ledger", url, "--at", at)
    assert code == 1, then  # the rules judged (not exit 4): the older tree is a proved prefix
    assert then["checkpoint"]["size"] < int(trusted.split("\n")[1])
    assert [a["index"] for a in then["attestations"]] == [built]
    assert state.read_text() == trusted  # an as-of answer never moves the state back


def test_an_answer_from_another_history_is_exit_4(demo: DemoLedger, tmp_path: Path) -> None:
    """The verifier trusts a fork's checkpoint (same key, other records); the real server's
    as-of tree is then not a prefix of it: ConsistencyFailure, the state kept."""
    from ledger.log import Ledger

    name, _, at, _ = _history(demo)
    fork_path = tmp_path / "fork.db"
    src, dst = sqlite3.connect(demo.db.removeprefix("sqlite:///")), sqlite3.connect(fork_path)
    src.backup(dst)
    src.close()
    dst.close()
    fork = f"sqlite:///{fork_path}"
    with Ledger.open(fork, demo.server.key) as lg:
        for _ in range(2):
            body = json.dumps(statement(fresh("fork"), SLSA, provenance())).encode()
            lg.append(sign_envelope(body, [demo.ci]).to_json())
    policy = _stateful(demo, tmp_path)
    assert verify(sha(name), "--policy", policy, "--db", fork).exit_code == 0
    state = next((tmp_path / "state").glob("*.checkpoint"))
    trusted = state.read_text()
    # the real ledger is smaller than the fork: it has no checkpoint of the trusted size
    r = verify(sha(name), "--policy", policy, "--ledger", demo.server.url, "--at", at)
    assert r.exit_code == 4 and "no checkpoint of the trusted size" in r.stderr, r.stderr
    for _ in range(3):  # the real ledger grows past the fork's size, differently
        demo.append(statement(fresh("real"), SLSA, provenance()))
    r = verify(sha(name), "--policy", policy, "--ledger", demo.server.url, "--at", at)
    assert r.exit_code == 4 and "ConsistencyFailure" in r.stderr, r.stderr
    assert "another root" in r.stderr and "another history" in r.stderr
    assert state.read_text() == trusted
