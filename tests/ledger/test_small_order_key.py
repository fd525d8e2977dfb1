"""A small-order Ed25519 key in the trust registry: OpenSSL would verify a forgery of any statement
under it (R = identity, S = 0). Registering one is refused; a registry that logged one anyway (an
entry signed with the admin key by other means) still derives, and the forgery is refused at
admission (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.errors import InvalidInput, NotTrusted
from ledger.fsck import check_ledger
from ledger.log import Ledger
from ledger.record import format_time
from ledger.registry import add_signer, list_signers, make_spec
from ledger.registry.admin import admin_key_path, load_admin_key
from ledger.registry.model import SignerSpec

IDENTITY = b"\x01" + b"\x00" * 31
WEAK_PEM = Ed25519PublicKey.from_public_bytes(IDENTITY).public_bytes(
    Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
)


def forged(statement: dict[str, object]) -> bytes:
    payload = json.dumps(statement).encode()
    return json.dumps(
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(IDENTITY + bytes(32)).decode()}],
        }
    ).encode()


def test_registering_a_small_order_key_is_refused(ledger: Ledger) -> None:
    with pytest.raises(InvalidInput, match="small-order"):
        make_spec("weak", now=datetime.now(UTC), key=WEAK_PEM)


def test_a_logged_small_order_key_verifies_no_forgery(ledger: Ledger, key_path: Path) -> None:
    admin = load_admin_key(admin_key_path(key_path))
    spec = SignerSpec("weak", WEAK_PEM.decode(), None, format_time(ledger.now()))
    add_signer(ledger, spec, admin)  # past make_spec, as an older version let it be
    assert [s["name"] for s in list_signers(ledger)] == ["weak"]
    size = ledger.store.size()
    body = forged(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "app", "digest": {"sha256": "ab" * 32}}],
            "predicateType": "https://example.com/anything/v1",
            "predicate": {},
        }
    )
    with pytest.raises(NotTrusted):
        ledger.admit(body)
    assert ledger.store.size() == size
    check_ledger(ledger.store)
