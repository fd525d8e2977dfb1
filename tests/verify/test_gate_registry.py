"""`registry: true` signers: whoever the ledger's own trust registry allowed at each record's time,
proved from the log with the pinned admin key; a key both in the policy and the registry counts once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.verify.conftest import (
    SLSA,
    TEST_RESULT,
    DemoLedger,
    provenance,
    result_predicate,
    statement,
)
from tests.verify.gate import export, fresh, report, sha


def _registry_policy(
    demo: DemoLedger, tmp_path: Path, admin_pub: Path, file: str = "reg.yaml", **signer: Any
) -> Path:
    steps = [
        {"name": "build", "predicateType": SLSA, "signers": ["reg"], "threshold": 1},
        {
            "name": "unit-tests",
            "predicateType": TEST_RESULT,
            "signers": ["reg"],
            "result": "PASSED",
        },
    ]
    return demo.policy(
        tmp_path / file,
        ledger={"keys": [demo.vkey], "adminKeys": [str(admin_pub)]},
        signers={"reg": {"registry": True, **signer}},
        steps=steps,
    )


def _admin_pub(demo: DemoLedger, where: Path) -> Path:
    from ledger.registry.admin import admin_key_path, load_admin_key

    admin = load_admin_key(admin_key_path(demo.server.key))
    (where / "admin.pub").write_bytes(admin.public_key.spki_pem())
    return where / "admin.pub"


def test_registry_signers_are_whoever_the_ledger_trusted_then(
    demo: DemoLedger, tmp_path: Path
) -> None:
    policy = _registry_policy(demo, tmp_path, _admin_pub(demo, tmp_path))
    code, doc = report(demo.app_zip, "--policy", policy, "--ledger", demo.server.url)
    assert code == 0, doc
    assert {s for a in doc["attestations"] for s in a["signers"]} == {"reg/ci"}
    assert report(demo.app_zip, "--policy", policy, "--db", demo.db)[0] == 0
    by_other = fresh("by-other")
    demo.append(statement(by_other, SLSA, provenance()), demo.other)
    demo.append(statement(by_other, TEST_RESULT, result_predicate()), demo.other)
    assert report(sha(by_other), "--policy", policy, "--db", demo.db)[0] == 0
    only_ci = _registry_policy(demo, tmp_path, _admin_pub(demo, tmp_path), "ci.yaml", names=["ci"])
    code, doc = report(sha(by_other), "--policy", only_ci, "--db", demo.db)
    assert code == 1 and any("signed by no key" in u["reason"] for u in doc["untrusted"])
    # the evidence file carries the registry too: the same verdict offline
    export(demo, sha(by_other), tmp_path / "ev.json")
    assert report(sha(by_other), "--policy", policy, "--evidence", tmp_path / "ev.json")[0] == 0


def test_registry_signers_need_the_real_admin_key(demo: DemoLedger, tmp_path: Path) -> None:
    from attest.signers import write_keypair

    write_keypair(tmp_path / "not-admin", "ed25519", None)
    policy = _registry_policy(demo, tmp_path, tmp_path / "not-admin.pub")
    code, doc = report(demo.app_zip, "--policy", policy, "--db", demo.db)
    assert code == 1 and doc["attestations"] == []  # no registry state: nobody is trusted


LINK = "https://in-toto.io/attestation/link/v0.3"


def test_one_key_as_policy_and_registry_signer_counts_once(
    demo: DemoLedger, tmp_path: Path
) -> None:
    name = fresh("same-key")
    demo.append(statement(name, SLSA, provenance()))
    steps = [{"name": "build", "predicateType": SLSA, "signers": ["ci", "reg"], "threshold": 2}]
    policy = demo.policy(
        tmp_path / "same.yaml",
        ledger={"keys": [demo.vkey], "adminKeys": [str(_admin_pub(demo, tmp_path))]},
        signers={"ci": {"key": str(demo.ci_pub)}, "reg": {"registry": True, "names": ["ci"]}},
        steps=steps,
    )
    code, doc = report(sha(name), "--policy", policy, "--db", demo.db)
    assert code == 1 and "1 of 2 required distinct" in doc["rules"][0]["reason"]
    assert set(doc["attestations"][0]["signers"]) == {"ci", "reg/ci"}  # both names, one key
