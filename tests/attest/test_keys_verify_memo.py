"""attest.keys remembers signature checks that succeeded (the ledger checks a body at admission
and again when it indexes it); a remembered success never stands in for another key, signature
or message, and a failure is never remembered."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from attest.errors import SignatureError
from attest.keys import public_key_from_crypto


def test_a_remembered_success_answers_only_for_the_same_key_signature_and_bytes() -> None:
    sk, other = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    key, other_key = (
        public_key_from_crypto(sk.public_key()),
        public_key_from_crypto(other.public_key()),
    )
    sig = sk.sign(b"message")
    key.verify(sig, b"message")
    key.verify(sig, b"message")  # remembered
    with pytest.raises(SignatureError):
        key.verify(sig, b"messagf")
    with pytest.raises(SignatureError):
        other_key.verify(sig, b"message")
    with pytest.raises(SignatureError):
        key.verify(sig[:-1] + bytes([sig[-1] ^ 1]), b"message")


def test_a_failure_is_not_remembered() -> None:
    sk = ed25519.Ed25519PrivateKey.generate()
    key = public_key_from_crypto(sk.public_key())
    for _ in range(2):
        with pytest.raises(SignatureError):
            key.verify(b"\0" * 64, b"message")
