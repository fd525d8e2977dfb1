"""Registry changes that race: the loser is refused under the write lock and writes nothing, so
the log the ledger wrote always re-imports (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import func, select

from attest.signers import KeySigner
from ledger._internal import schema
from ledger.admission import Admitted
from ledger.errors import AppendsFailed, InvalidInput
from ledger.fsck import check_ledger
from ledger.log import Ledger
from ledger.note import parse_verifier
from ledger.registry import list_signers, make_spec
from ledger.registry.admin import admin_key_path, load_admin_key
from ledger.registry.entries import sign_op
from ledger.registry.model import RegistryOp
from ledger.transfer import export_jsonl, import_jsonl
from tests.conftest import fresh_pg_schema


@pytest.fixture
def admin(key_path: Path, ledger: Ledger) -> KeySigner:
    return load_admin_key(admin_key_path(key_path))


def _pem() -> bytes:
    return (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _add(ledger: Ledger, admin: KeySigner, name: str) -> Admitted:
    """An ``add`` of ``name`` with a new key, admitted against the registry as it is now."""
    now = ledger.now()
    spec = make_spec(name, now=now, key=_pem())
    return ledger.admit(sign_op(RegistryOp.add(ledger.origin, spec, now), admin))


def _counts(ledger: Ledger) -> tuple[int, int]:
    with ledger.store.engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(schema.registry_entries)).scalar_one()
    return ledger.store.size(), int(n)


@contextmanager
def _empty_like(db_url: str, tmp_path: Path) -> Iterator[str]:
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'copy.db'}"
        return
    with fresh_pg_schema() as url:
        yield url


def _reimports(src: Ledger, db_url: str, tmp_path: Path, admin: KeySigner) -> None:
    """The ledger's own export imports into an empty ledger (exit 0 in the CLI)."""
    buf = io.StringIO()
    export_jsonl(src, buf)
    pinned = parse_verifier(src.store.meta()["vkey"])
    with (
        _empty_like(db_url, tmp_path) as url,
        Ledger.create(url, src.origin, tmp_path / "copy.key", admin_key=admin) as dst,
    ):
        import_jsonl(dst, io.BytesIO(buf.getvalue().encode()), pinned, lambda: datetime.now(UTC))
        assert dst.store.size() == src.store.size()
        assert [s["name"] for s in list_signers(dst)] == [s["name"] for s in list_signers(src)]


def test_two_adds_of_one_name_admitted_together_one_applies_the_other_writes_nothing(
    ledger: Ledger, admin: KeySigner, db_url: str, tmp_path: Path
) -> None:
    first, second = _add(ledger, admin, "dup"), _add(ledger, admin, "dup")  # both pass admission
    assert ledger.append_admitted([first])[0].index == 0
    before = _counts(ledger)
    with pytest.raises(AppendsFailed) as failed:
        ledger.append_admitted([second])
    assert isinstance(failed.value.__cause__, InvalidInput)
    assert "signer 'dup' already exists" in str(failed.value.__cause__)
    assert _counts(ledger) == before  # refused under the write lock: no record, no row
    third = _add(ledger, admin, "dup2"), _add(ledger, admin, "dup2")
    ledger.submit(third[0]).result()
    with pytest.raises(InvalidInput, match="'dup2' already exists"):
        ledger.submit(third[1]).result()  # the future path refuses the same way
    assert _counts(ledger) == (2, 2)
    check_ledger(ledger.store)
    _reimports(ledger, db_url, tmp_path, admin)


def test_the_same_registry_body_twice_returns_the_first_record(
    ledger: Ledger, admin: KeySigner
) -> None:
    admitted = _add(ledger, admin, "once")
    first = ledger.append_registry(admitted)
    again = ledger.append_registry(admitted)  # already logged: a replay, not a second add
    assert (again.index, again.duplicate, first.duplicate) == (first.index, True, False)
    assert _counts(ledger) == (1, 1)


def test_a_registry_entry_in_a_list_is_appended_on_its_own_and_its_refusal_fails_only_it(
    ledger: Ledger, admin: KeySigner, sample_pub_pem: bytes, signed_samples: list[bytes]
) -> None:
    now = ledger.now()
    ci = sign_op(
        RegistryOp.add(ledger.origin, make_spec("ci", now=now, key=sample_pub_pem), now), admin
    )
    ledger.append_registry(ledger.admit(ci))
    loser = _add(ledger, admin, "late")
    ledger.append_registry(_add(ledger, admin, "late"))  # overtakes `loser`
    batch = [ledger.admit(signed_samples[0]), loser, ledger.admit(signed_samples[1])]
    with pytest.raises(AppendsFailed) as failed:
        ledger.append_admitted(batch)
    outcomes = failed.value.outcomes
    assert isinstance(outcomes[1], InvalidInput)
    assert [getattr(o, "index", None) for o in outcomes] == [2, None, 3]  # the others landed
    assert _counts(ledger) == (4, 2)
