"""A registry signer revoked with an effective time before a record — `ledger signers revoke
--at T`, dated to a key leak, logged after the attacker's record — does not count for that
record: the gate applies every revocation the proved registry holds (as of the checkpoint
verified) whose time is at or before the record's ledger time. Additions stay as of just before
the record: a signer added later never validates an older one.

Regression (h33 r03): the leaked key's record, logged at T + 1 s and revoked `--at T` after it,
passed `verify` with a `registry: true` signer (`signed by reg/ci`)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from attest.dsse import sign_envelope
from attest.signers import read_signer, write_keypair
from tests.ledger.api.server import add_signer, init_ledger, ledger_cli
from tests.verify.conftest import BUILDER, SLSA, provenance, statement
from tests.verify.gate import fresh, report, sha


class _Ledger:
    """A ledger of its own (its registry is revoked here), driven like an operator would."""

    def __init__(self, work: Path) -> None:
        from ledger.registry.admin import admin_key_path, load_admin_key
        from ledger.storage import LedgerStore

        self.work, self.db = work, f"sqlite:///{work / 'ledger.db'}"
        self.key = init_ledger(self.db, work, register_samples=False)
        store = LedgerStore.open(self.db)
        self.vkey = store.meta()["vkey"]
        store.close()
        admin = load_admin_key(admin_key_path(self.key))
        (work / "admin.pub").write_bytes(admin.public_key.spki_pem())

    def cli(self, *args: str) -> str:
        return ledger_cli(self.work, *args, "--db", self.db, "--key-file", str(self.key))

    def signer(self, name: str, register: bool = True) -> Path:
        write_keypair(self.work / name, "ed25519", None)
        if register:
            add_signer(self.db, self.key, name, key=(self.work / f"{name}.pub").read_bytes())
        return self.work / name

    def append(self, key: Path, admitted: bool = True) -> str:
        """An artifact's build provenance signed with ``key``, through `ledger append` (the
        registry admits it), or with ``admitted=False`` the library's unchecked append."""
        from ledger.log import Ledger

        name = fresh()
        st = statement(name, SLSA, provenance())
        body = sign_envelope(json.dumps(st).encode(), [read_signer(key)]).to_json()
        if admitted:
            (self.work / "att.json").write_bytes(body)
            self.cli("append", str(self.work / "att.json"))
        else:
            with Ledger.open(self.db, self.key) as lg:
                lg.append(body)
        return name

    def verify(self, name: str) -> tuple[int, dict[str, Any]]:
        doc = {
            "apiVersion": "provenance-ledger.dev/v1",
            "kind": "VerifyPolicy",
            "ledger": {"keys": [self.vkey], "adminKeys": [str(self.work / "admin.pub")]},
            "signers": {"reg": {"registry": True}},
            "steps": [
                {"name": "build", "predicateType": SLSA, "signers": ["reg"], "builderId": BUILDER}
            ],
        }
        (self.work / "policy.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        return report(sha(name), "--policy", self.work / "policy.yaml", "--db", self.db)


def _now() -> str:
    time.sleep(0.05)  # record times are the ledger's clock, in microseconds: keep them apart
    at = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    time.sleep(0.05)
    return at


def test_a_revocation_dated_before_a_record_refuses_it(tmp_path: Path) -> None:
    lg = _Ledger(tmp_path)
    ci = lg.signer("ci")
    leak = _now()  # the key leaks here
    evil = lg.append(ci)  # the attacker's record, admitted: ci is not revoked yet
    code, doc = lg.verify(evil)
    assert code == 0, doc["rules"]  # as the ledger knew it then
    lg.cli("signers", "revoke", "ci", "--at", leak)
    code, doc = lg.verify(evil)
    assert code == 1, doc["rules"]
    [att] = doc["attestations"]
    assert att["signers"] == [] and "was revoked at" in att["refused"][0], att
    assert "logged after this one" in att["refused"][0]


def test_a_revocation_dated_after_a_record_keeps_it(tmp_path: Path) -> None:
    """Records before the revocation's effective time keep verifying; and a signer added after a
    record never validates it (the registry as it stood just before the record)."""
    lg = _Ledger(tmp_path)
    ci = lg.signer("ci")
    good = lg.append(ci)
    lg.cli("signers", "revoke", "ci", "--at", _now())
    code, doc = lg.verify(good)
    assert code == 0, doc["rules"]
    late = lg.signer("late", register=False)
    early = lg.append(late, admitted=False)  # before `late` is a signer
    add_signer(lg.db, lg.key, "late", key=(tmp_path / "late.pub").read_bytes())
    code, doc = lg.verify(early)
    assert code == 1, doc["rules"]


def test_a_revocation_refuses_every_name_of_the_same_key(tmp_path: Path) -> None:
    """Regression (h35 a04): the same public key registered as `ci` and `ci-alias`; `ci` is
    revoked `--at` the leak. The attacker's record logged after the leak must not pass as
    `reg/ci-alias`: a revocation is of the key (compared by SPKI), and the reason names the
    revoked name. A record logged before the leak keeps verifying under either name."""
    lg = _Ledger(tmp_path)
    ci = lg.signer("ci")
    add_signer(lg.db, lg.key, "ci-alias", key=(tmp_path / "ci.pub").read_bytes())
    good = lg.append(ci)
    leak = _now()
    evil = lg.append(ci)
    lg.cli("signers", "revoke", "ci", "--at", leak)
    code, doc = lg.verify(evil)
    assert code == 1, doc["rules"]
    [att] = doc["attestations"]
    assert att["signers"] == [], att
    alias = next(r for r in att["refused"] if r.startswith("reg/ci-alias"))
    assert "'ci-alias' has the key of 'ci', which was revoked at" in alias, alias
    assert "logged after this one" in alias
    code, doc = lg.verify(good)
    assert code == 0, doc["rules"]
    assert doc["attestations"][0]["signers"] == ["reg/ci", "reg/ci-alias"]
    # a record logged after the revocation too: refused under the alias (revoked before it)
    late = lg.append(ci, admitted=False)
    code, doc = lg.verify(late)
    assert code == 1 and any(
        r.startswith("reg/ci-alias") and "logged before this one" in r
        for r in doc["attestations"][0]["refused"]
    ), doc["attestations"]
