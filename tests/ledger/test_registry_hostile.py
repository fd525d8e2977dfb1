"""A hostile tester's attacks on the trust registry and admission, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from attest.signers import KeySigner
from ledger._internal import schema
from ledger.admission import MAX_SIGNATURES
from ledger.errors import IntegrityError, InvalidInput, NotTrusted
from ledger.fsck import check_ledger
from ledger.log import Ledger
from ledger.registry import add_signer, list_signers, make_spec
from ledger.registry.model import RegistryOp
from tests.conftest import needs_fixtures
from tests.ledger.test_cli import run
from tests.ledger.test_trust import (
    IDENTITY,
    ISSUER,
    _bundle,
    _pem,
    _root,
    admin,
    ci,
    pg_or_sqlite,
    refused,
    rows,
    signed,
    statement,
)

__all__ = ["admin", "ci", "pg_or_sqlite"]  # fixtures


def _forge_row(ledger: Ledger, idx: int, key: ed25519.Ed25519PrivateKey) -> None:
    """What the tester did: a plain INSERT of an ``add`` row for an unregistered key."""
    spec = make_spec("evil", now=ledger.now(), key=_pem(key))
    op = RegistryOp.add(ledger.origin, spec, ledger.now())
    with ledger.store.engine.begin() as conn:
        conn.execute(
            schema.registry_entries.insert(),
            {"idx": idx, "time": op.time, "name": "evil", "op": "add", "entry": op.to_bytes()},
        )


@pytest.mark.parametrize("where", ["covered", "uncovered"])
def test_a_registry_row_inserted_by_hand_is_not_trusted(
    db_url: str, key_path: Path, ci: Ledger, signed_samples: list[bytes], where: str
) -> None:
    ci.append_admitted([ci.admit(signed_samples[0])])  # record 1: an attestation, not a registry op
    evil = ed25519.Ed25519PrivateKey.generate()
    _forge_row(ci, 1 if where == "covered" else ci.store.size(), evil)
    body = signed(statement(), evil)
    with Ledger.open(db_url, key_path) as fresh:
        before = (fresh.store.size(), rows(fresh))
        why = "not an admin-signed registry entry" if where == "covered" else "not covered"
        with pytest.raises(IntegrityError, match=why):
            fresh.admit(body)
        with pytest.raises(IntegrityError):
            fresh.admit(signed_samples[1])  # nothing is admitted while the registry is tampered
        assert (fresh.store.size(), rows(fresh)) == before


def test_ledger_append_refuses_with_exit_1_after_a_forged_registry_row(
    tmp_path: Path, sample_pub_pem: bytes
) -> None:
    evil = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "evil.json").write_bytes(signed(statement(), evil))
    (tmp_path / "sample.pub").write_bytes(sample_pub_pem)
    run(tmp_path, "init", "--origin", "cli.example/log")
    run(tmp_path, "signers", "add", "--name", "ci", "--key", "sample.pub")
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}") as lg:
        _forge_row(lg, 1, evil)
    p = run(tmp_path, "append", "evil.json", ok=False)
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
    assert "registry row for record 1" in p.stderr
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}") as lg:
        assert lg.store.size() == 1  # the add; nothing more


def test_a_registry_entry_of_another_log_is_refused_even_with_the_same_admin_key(
    ci: Ledger, admin: KeySigner, pg_or_sqlite: str, tmp_path: Path
) -> None:
    rec = ci.store.record(0)
    digest = bytes.fromhex(rec.body.removeprefix("sha256:"))
    body = ci.store.bodies([digest])[digest][1]
    with Ledger.create(
        pg_or_sqlite, "other.example/log", tmp_path / "l2.key", admin_key=admin
    ) as l2:
        refused(l2, body, NotTrusted, "registry entry is for log 'test.example/ledger'")
        l2.append(body)  # the raw path stores it, but it applies to nothing and check agrees
        assert list_signers(l2) == []
        check_ledger(l2.store)


def test_an_envelope_with_too_many_signatures_is_refused_before_verification(
    ci: Ledger, signed_samples: list[bytes]
) -> None:
    doc = json.loads(signed_samples[0])
    doc["signatures"] = doc["signatures"] * (MAX_SIGNATURES + 1)
    refused(ci, json.dumps(doc).encode(), InvalidInput, f"at most {MAX_SIGNATURES}")
    doc["signatures"] = doc["signatures"][:MAX_SIGNATURES]
    assert ci.admit(json.dumps(doc).encode()).signers == ("ci",)


CASE = "happy-path-intoto-in-dsse-v3"


@needs_fixtures("conformance", "assets", "bundle-verify", CASE)
@pytest.mark.parametrize("field", ["payload", "sig"])
def test_a_sigstore_bundle_must_use_standard_base64(
    ledger: Ledger, admin: KeySigner, field: str
) -> None:
    spec = make_spec(
        "beacon", now=ledger.now(), issuer=ISSUER, identity=IDENTITY, trusted_root=_root(CASE)
    )
    add_signer(ledger, spec, admin)
    assert ledger.admit(_bundle(CASE)).signers == ("beacon",)
    doc = json.loads(_bundle(CASE))
    env = doc["dsseEnvelope"]
    target = env if field == "payload" else env["signatures"][0]
    target[field] = target[field][:20] + "-_-_" + target[field][20:]
    refused(ledger, json.dumps(doc).encode(), InvalidInput, "standard base64")
