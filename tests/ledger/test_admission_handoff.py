"""Batch admission (``Ledger.admit_many``) and what admission hands to the commit's index
derivation (:class:`~ledger.bodies.Parsed`): the same checks and the same index rows, with no
body parsed and no signature verified a second time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

import attest.keys
from attest.keys import PublicKey
from ledger.admission import Admitted
from ledger.bodies import Parsed
from ledger.errors import InvalidInput, NotTrusted, StorageError
from ledger.index.maintain import check_indexes
from ledger.index.rows import index_rows, stored_rows
from ledger.log import Ledger
from ledger.registry import add_signer, make_spec
from ledger.registry.admin import admin_key_path, load_admin_key
from ledger.registry.entries import read_rows
from tests.ledger import audit_samples as s

KEY = ed25519.Ed25519PrivateKey.generate()
OTHER = ed25519.Ed25519PrivateKey.generate()


def _pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def ci(db_url: str, key_path: Path) -> Iterator[Ledger]:
    """Record 0 registers KEY as signer ``ci``."""
    with Ledger.create(db_url, "test.example/ledger", key_path) as lg:
        add_signer(
            lg,
            make_spec("ci", now=lg.now(), key=_pem(KEY)),
            load_admin_key(admin_key_path(key_path)),
        )
        yield lg


def test_admit_many_answers_each_body_in_order_as_admit_does(ci: Ledger) -> None:
    good = s.pipeline(KEY)[:3]
    stranger = s.sign(s.test_result(s.APP2, "FAILED"), OTHER)
    bodies = [good[0], b"{", stranger, good[1], b'{"a": 1, "a": 2}', good[2]]
    out = ci.admit_many(bodies)
    assert [type(o) for o in out] == [
        Admitted,
        InvalidInput,
        NotTrusted,
        Admitted,
        InvalidInput,
        Admitted,
    ]
    for body, got in zip(bodies, out, strict=True):
        if isinstance(got, Admitted):
            assert got == ci.admit(body)
            continue
        with pytest.raises(type(got)) as e:
            ci.admit(body)
        assert str(e.value) == str(got)  # the same reason, word for word


def test_admit_many_reads_the_trust_registry_once(
    ci: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = ci.trust

    def counted() -> object:
        calls.append(1)
        return real()

    monkeypatch.setattr(ci, "trust", counted)
    out = ci.admit_many(s.pipeline(KEY))
    assert all(isinstance(o, Admitted) for o in out)
    assert len(calls) == 1


def test_admit_many_gives_every_body_the_error_of_an_unreadable_registry(
    ci: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> object:
        raise StorageError("cannot read the trust registry's version: gone")

    monkeypatch.setattr(ci, "trust", broken)
    out = ci.admit_many(s.pipeline(KEY)[:3])
    assert len(out) == 3
    assert all(isinstance(o, StorageError) and "gone" in str(o) for o in out)


def test_admission_hands_over_the_payload_statement_and_verified_signature(ci: Ledger) -> None:
    body = s.pipeline(KEY)[1]
    admitted = ci.admit(body)
    parsed = admitted.submission.doc
    assert isinstance(parsed, Parsed)
    assert parsed.statement["predicateType"] == "https://slsa.dev/provenance/v1"
    pem = PublicKey(KEY.public_key(), "ed25519", "").spki_pem()
    assert [p for p, _ in parsed.verified] == [pem]


def test_index_rows_from_admissions_hand_off_equal_a_fresh_read(ci: Ledger) -> None:
    bodies = [*s.pipeline(KEY), s.sign(s.test_result(s.APP2, "FAILED"), OTHER)]
    admitted = [a for a in ci.admit_many(bodies) if isinstance(a, Admitted)]
    assert len(admitted) == len(bodies) - 1  # OTHER is not registered
    ci.append_admitted(admitted)
    with ci.store._conn() as conn:
        stored = stored_rows(conn, 1, 1 << 40)  # record 0 is the registry entry
        registry = read_rows(conn)
    records = [ci.store.record(i) for i in range(1, len(admitted) + 1)]
    contents = [a.submission.content for a in admitted]
    fresh = index_rows(records, contents, registry).sorted()
    handed = index_rows(records, contents, registry, [a.submission.doc for a in admitted])
    assert handed.sorted() == fresh == stored
    assert {("signer", "ci")} <= {(k, v) for k, v, _ in stored.terms}
    check_indexes(ci.store)  # ledger check derives the same rows


def test_the_commit_verifies_no_signature_admission_verified(
    ci: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # on PostgreSQL the bodies go through the pending table; the lease holder (this process)
    # takes admission's parse of its own bodies back by digest
    admitted = [a for a in ci.admit_many(s.pipeline(KEY)) if isinstance(a, Admitted)]
    # forget every remembered check: only the hand-off can spare the commit a verification
    monkeypatch.setattr(attest.keys, "_VERIFIED", attest.keys._Verified(4096))
    verified: list[bytes] = []
    real = PublicKey._verify

    def counted(self: PublicKey, signature: bytes, data: bytes) -> None:
        verified.append(signature)
        real(self, signature, data)

    monkeypatch.setattr(PublicKey, "_verify", counted)
    ci.append_admitted(admitted)
    assert verified == []
    with ci.store._conn() as conn:
        signers = [t for t in stored_rows(conn, 0, 1 << 40).terms if t[0] == "signer"]
    assert len(signers) == len(admitted)


def test_a_batch_wait_wakes_once_all_resolve_and_cancels_what_is_queued() -> None:
    import asyncio
    import time
    from concurrent.futures import Future

    from ledger.api.service import _all_done

    async def scenario() -> None:
        futs: list[Future[object]] = [Future() for _ in range(3)]
        done_at = [0.0] * 3
        task = asyncio.ensure_future(_all_done(list(enumerate(futs)), done_at))  # type: ignore[arg-type]
        futs[0].set_result(1)
        futs[2].set_result(3)
        await asyncio.sleep(0.05)
        assert not task.done()  # one is still queued
        futs[1].set_result(2)
        await asyncio.wait_for(task, 5)
        assert all(0 < t <= time.perf_counter() for t in done_at)
        gone: list[Future[object]] = [Future() for _ in range(2)]
        task = asyncio.ensure_future(_all_done(list(enumerate(gone)), [0.0] * 2))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert all(f.cancelled() for f in gone)  # the client went away: nothing left queued

    asyncio.run(scenario())
