"""Ed25519 signatures are verified with libsodium (attest.keys): every honest RFC 8032 signature
verifies as before, and what no honest signer makes is refused — among it the universal forgery
OpenSSL accepts for a small-order key."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from attest.errors import SignatureError
from attest.keys import public_key_from_crypto

# the group order of edwards25519 (RFC 8032 §5.1: L)
L = 2**252 + 27742317777372353535851937790883648493
IDENTITY = b"\x01" + b"\x00" * 31  # the neutral point's encoding: a key of order 1


def test_honest_signatures_verify_and_any_change_is_refused() -> None:
    sk = ed25519.Ed25519PrivateKey.generate()
    key = public_key_from_crypto(sk.public_key())
    for message in (b"", b"m", b"x" * 5000):
        sig = sk.sign(message)
        key.verify(sig, message)
        with pytest.raises(SignatureError):
            key.verify(sig, message + b"!")
        with pytest.raises(SignatureError):
            key.verify(bytes([sig[0] ^ 1]) + sig[1:], message)


def test_a_small_order_key_verifies_nothing() -> None:
    weak = ed25519.Ed25519PublicKey.from_public_bytes(IDENTITY)
    forged = IDENTITY + b"\x00" * 32  # R = identity, S = 0: [S]B = R + [k]A for every message
    weak.verify(forged, b"any message at all")  # OpenSSL: the forgery verifies
    key = public_key_from_crypto(weak)
    with pytest.raises(SignatureError):
        key.verify(forged, b"any message at all")


def test_a_signature_with_an_unreduced_s_is_refused() -> None:
    sk = ed25519.Ed25519PrivateKey.generate()
    sig = sk.sign(b"message")
    s = int.from_bytes(sig[32:], "little") + L  # the same point equation, S not below L
    malleated = sig[:32] + s.to_bytes(32, "little")
    with pytest.raises(InvalidSignature):
        sk.public_key().verify(malleated, b"message")  # OpenSSL refuses it too
    with pytest.raises(SignatureError):
        public_key_from_crypto(sk.public_key()).verify(malleated, b"message")


@pytest.mark.parametrize("size", [0, 63, 65, 128])
def test_a_signature_of_the_wrong_length_is_a_signature_error(size: int) -> None:
    key = public_key_from_crypto(ed25519.Ed25519PrivateKey.generate().public_key())
    with pytest.raises(SignatureError):
        key.verify(b"\x01" * size, b"message")


def test_usable_tells_a_small_order_key_from_a_real_one() -> None:
    assert public_key_from_crypto(ed25519.Ed25519PrivateKey.generate().public_key()).usable()
    weak = ed25519.Ed25519PublicKey.from_public_bytes(IDENTITY)
    assert not public_key_from_crypto(weak).usable()
