"""Public keys that verify DSSE signatures: Ed25519, ECDSA P-256/P-384 and RSA-PSS.

A :class:`PublicKey` holds a loaded ``cryptography`` key, its securesystemslib scheme and keyid
(so what we sign verifies with securesystemslib and the in-toto reference), and verifies one
signature over bytes. ECDSA signatures are accepted both DER-encoded (securesystemslib, cosign)
and as raw ``r‖s`` (the DSSE spec vector, Google's VSAs).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from nacl.bindings import crypto_core_ed25519_is_valid_point
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from attest._internal import jsontext
from attest._internal.frozen import Frozen, set_field
from attest.errors import InvalidInput, KeyFileError, SignatureError

__all__ = [
    "PublicKey",
    "default_keyid",
    "load_public_key",
    "public_key_from_crypto",
    "read_public_key",
    "scheme_for",
    "verified_signatures",
    "verified_signers",
]

CryptoPublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey

_ECDSA_SCHEMES = {"secp256r1": "ecdsa-sha2-nistp256", "secp384r1": "ecdsa-sha2-nistp384"}
_ECDSA_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
}


def scheme_for(key: CryptoPublicKey) -> str:
    """The securesystemslib signature scheme name for a key."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePublicKey):
        scheme = _ECDSA_SCHEMES.get(key.curve.name)
        if scheme is None:
            raise KeyFileError(f"unsupported ECDSA curve {key.curve.name} (use P-256 or P-384)")
        return scheme
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise KeyFileError(f"RSA key of {key.key_size} bits is too small (need ≥ 2048)")
        return "rsassa-pss-sha256"
    raise KeyFileError(f"unsupported key type {type(key).__name__}")


class _Verified:
    """A bounded, thread-safe memory of signature checks that succeeded."""

    def __init__(self, size: int) -> None:
        self._size, self._seen, self._lock = size, OrderedDict[bytes, None](), threading.Lock()

    @staticmethod
    def key(identity: bytes, signature: bytes, data: bytes) -> bytes:
        h = hashlib.sha256()
        for part in (identity, signature, data):
            h.update(len(part).to_bytes(8, "big"))
            h.update(part)
        return h.digest()

    def holds(self, key: bytes) -> bool:
        return key in self._seen

    def add(self, key: bytes) -> None:
        with self._lock:
            self._seen[key] = None
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)


_VERIFIED = _Verified(4096)


class PublicKey(Frozen):
    """A verification key. ``keyid`` is securesystemslib's default keyid: only a hint in DSSE."""

    _fields = ("key", "scheme", "keyid")
    key: CryptoPublicKey
    scheme: str
    keyid: str

    def __init__(self, key: CryptoPublicKey, scheme: str, keyid: str) -> None:
        set_field(self, "key", key)
        set_field(self, "scheme", scheme)
        set_field(self, "keyid", keyid)

    def spki_pem(self) -> bytes:
        return self._pem

    @cached_property
    def _pem(self) -> bytes:  # asked for every admitted body (which registered key signed it)
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @cached_property
    def _identity(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raise :class:`SignatureError` unless ``signature`` is this key's over ``data``.

        A success is remembered (this process only, the last few thousand): the ledger checks a
        body's signature at admission and again when it indexes the record, and the second check
        of the same key, signature and bytes is a lookup."""
        seen = _VERIFIED.key(self._identity, signature, data)
        if _VERIFIED.holds(seen):
            return
        self._verify(signature, data)
        _VERIFIED.add(seen)

    @cached_property
    def _sodium(self) -> VerifyKey:
        """An Ed25519 key as libsodium's: it verifies in about half OpenSSL's time (74 against
        140 µs here, docs/design.md), and refuses what RFC 8032 signers never make — a
        small-order key or ``R``, a non-canonical encoding — where OpenSSL verifies any message
        for a small-order key with the signature ``R`` = identity, ``S`` = 0."""
        raw = self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return VerifyKey(raw)

    def usable(self) -> bool:
        """False for an Ed25519 key no signature can verify with: a point of small order or off
        the curve's prime-order group, which libsodium refuses (and under which OpenSSL would
        verify a forgery). Other kinds of keys: True (their loading already checks them)."""
        if not isinstance(self.key, ed25519.Ed25519PublicKey):
            return True
        raw = self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return bool(crypto_core_ed25519_is_valid_point(raw))

    def _verify(self, signature: bytes, data: bytes) -> None:
        try:
            if isinstance(self.key, ed25519.Ed25519PublicKey):
                try:
                    self._sodium.verify(data, signature)
                except (BadSignatureError, ValueError, TypeError) as e:  # wrong length: ValueError
                    raise InvalidSignature from e
            elif isinstance(self.key, ec.EllipticCurvePublicKey):
                self._verify_ecdsa(self.key, signature, data)
            else:
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
                self.key.verify(signature, data, pss, hashes.SHA256())
        except InvalidSignature as e:
            raise SignatureError(f"signature does not verify with key {self.keyid[:16]}") from e

    @staticmethod
    def _verify_ecdsa(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> None:
        """DER first; a signature of exactly ``2 * width`` bytes is also tried as raw ``r‖s``
        (a raw signature may begin with 0x30 and look like DER: about 1 in 256 do)."""
        algorithm = ec.ECDSA(_ECDSA_HASHES[key.curve.name]())
        width = (key.curve.key_size + 7) // 8
        try:
            key.verify(signature, data, algorithm)
        except InvalidSignature:
            if len(signature) != 2 * width:
                raise
            r = int.from_bytes(signature[:width], "big")
            s = int.from_bytes(signature[width:], "big")
            key.verify(encode_dss_signature(r, s), data, algorithm)

    def to_sslib_dict(self) -> dict[str, Any]:
        """The key in securesystemslib's JSON form (what in-toto layouts carry)."""
        from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

        return dict(SSlibKey.from_crypto(self.key, scheme=self.scheme).to_dict())


def distinct(keys: Sequence[PublicKey]) -> list[PublicKey]:
    """``keys`` without repeats of the same public key, so a threshold counts signers, not
    list entries."""
    if len(keys) < 2:
        return list(keys)
    seen: dict[bytes, PublicKey] = {}
    for k in keys:
        seen.setdefault(k.spki_pem(), k)
    return list(seen.values())


def verified_signers(
    message: bytes,
    signatures: Sequence[tuple[bytes, str | None]],
    keys: Sequence[PublicKey],
    *,
    threshold: int,
    what: str,
) -> tuple[PublicKey, ...]:
    """The distinct trusted keys whose signature over ``message`` is among ``signatures``
    (``(sig, keyid hint)`` pairs); raise :class:`SignatureError` if fewer than ``threshold``.
    Each signature counts for at most one key; a keyid only decides which key is tried first."""
    pairs = verified_signatures(message, signatures, keys, threshold=threshold, what=what)
    return tuple(k for k, _ in pairs)


def verified_signatures(
    message: bytes,
    signatures: Sequence[tuple[bytes, str | None]],
    keys: Sequence[PublicKey],
    *,
    threshold: int,
    what: str,
) -> tuple[tuple[PublicKey, bytes], ...]:
    """:func:`verified_signers`, each key with the signature that verified with it."""
    if threshold < 1:
        raise InvalidInput("threshold must be at least 1")
    keys = distinct(keys)
    found: dict[int, tuple[PublicKey, bytes]] = {}
    for sig, keyid in signatures:
        for i in sorted(range(len(keys)), key=lambda i: keys[i].keyid != keyid):
            if i in found:
                continue
            try:
                keys[i].verify(sig, message)
            except SignatureError:
                continue
            found[i] = (keys[i], sig)
            break
    if len(found) < threshold:
        raise SignatureError(
            f"{len(found)} of {len(signatures)} {what} signatures verify with the trusted keys; "
            f"{threshold} needed"
        )
    return tuple(found[i] for i in sorted(found))


_KEYTYPES = {"ed25519": "ed25519", "ecdsa-sha2-nistp256": "ecdsa", "ecdsa-sha2-nistp384": "ecdsa"}


def default_keyid(key: CryptoPublicKey, scheme: str) -> str:
    """securesystemslib's default keyid (``SSlibKey.from_crypto(key, scheme=scheme).keyid``):
    the SHA-256 of the canonical JSON (OLPC: sorted keys, no spaces, only ``"`` and ``\\``
    escaped) of ``{"keytype", "keyval": {"public"}, "scheme"}``, where ``public`` is the raw key
    in hex (Ed25519) or the SubjectPublicKeyInfo PEM. Computed here because importing
    securesystemslib's signer package costs a deploy gate ~20 ms per start;
    ``tests/attest/test_signers.py`` holds it equal to securesystemslib's for every key type."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        public = raw.hex()
    else:
        public = key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    keytype = _KEYTYPES.get(scheme, "rsa")

    def text(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    canonical = (
        f'{{"keytype":{text(keytype)},"keyval":{{"public":{text(public)}}},'
        f'"scheme":{text(scheme)}}}'
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def public_key_from_crypto(key: object, keyid: str | None = None) -> PublicKey:
    """Wrap a ``cryptography`` public key; ``keyid`` defaults to securesystemslib's."""
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise KeyFileError(f"unsupported key type {type(key).__name__}")
    scheme = scheme_for(key)
    return PublicKey(key=key, scheme=scheme, keyid=keyid or default_keyid(key, scheme))


def load_public_key(data: bytes, *, source: str = "key") -> PublicKey:
    """Parse a SubjectPublicKeyInfo PEM, or a securesystemslib/in-toto JSON key (with keyid)."""
    text = data.lstrip()
    if text.startswith(b"{"):
        return _from_sslib_json(text, source)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise KeyFileError(f"{source}: not a PEM public key ({e})") from e
    return public_key_from_crypto(key)


def _from_sslib_json(data: bytes, source: str) -> PublicKey:
    doc = jsontext.loads(data, source, error=KeyFileError)
    try:
        keyval = doc["keyval"]["public"]
        keytype = doc["keytype"]
    except (KeyError, TypeError) as e:
        raise KeyFileError(f"{source}: not a securesystemslib key") from e
    keyid = doc.get("keyid")
    if not isinstance(keyval, str) or not isinstance(keytype, str):
        raise KeyFileError(f"{source}: keyval.public and keytype must be strings")
    if keyid is not None and not isinstance(keyid, str):
        raise KeyFileError(f"{source}: keyid must be a string")
    if keytype == "ed25519":
        try:
            key: object = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(keyval))
        except ValueError as e:
            raise KeyFileError(f"{source}: bad Ed25519 public key") from e
    else:
        try:
            key = serialization.load_pem_public_key(keyval.encode())
        except (ValueError, UnsupportedAlgorithm) as e:
            raise KeyFileError(f"{source}: bad {keytype} public key") from e
    return public_key_from_crypto(key, keyid=keyid)


def read_public_key(path: Path) -> PublicKey:
    """Load a public key file, with a one-line error naming it."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"cannot read key {path}: {e.strerror}") from e
    return load_public_key(data, source=str(path))
