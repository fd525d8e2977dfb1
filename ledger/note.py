"""C2SP signed notes (https://c2sp.org/signed-note), as golang.org/x/mod/sumdb/note speaks them.

A note is UTF-8 text ending in a newline, a blank line, then signature lines
``— <name> <base64(keyhash[4] ‖ signature)>``. :func:`open_note` checks the rules every verifier
must (size limits, encoding, line shapes, ambiguous keys) before it looks at any signature, and
raises :class:`~ledger.errors.NoteError` unless at least one known key signed the text.

Verifier keys use the Go text form ``name+hash+base64(alg ‖ key)``. Supported algorithms:
``0x01`` Ed25519 (sign and verify), ``0x02`` ECDSA over a DER SubjectPublicKeyInfo (verify, as
transparency-dev/formats and Rekor use it), ``0x05`` RFC 6962 signed tree heads (verify, as static
CT logs publish them). Signing keys use ``PRIVATE+KEY+name+hash+base64(0x01 ‖ seed)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import threading
from collections import OrderedDict
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15

from attest._internal.frozen import Frozen, set_field
from ledger.errors import NoteError

__all__ = [
    "Note",
    "NoteSigner",
    "NoteVerifier",
    "Signature",
    "generate_key",
    "open_note",
    "parse_signer",
    "parse_verifier",
    "sign_note",
    "unverified_signatures",
]

ALG_ED25519 = 0x01
ALG_ECDSA = 0x02
ALG_RFC6962_STH = 0x05
MAX_SIGNATURES = 100
SIG_PREFIX = "\u2014 "  # EM DASH, space


class Signature(Frozen):
    """One signature line: the signer's name, its 32-bit key hash and the raw signature bytes."""

    _fields = ("name", "key_hash", "signature")
    name: str
    key_hash: int
    signature: bytes

    def __init__(self, name: str, key_hash: int, signature: bytes) -> None:
        set_field(self, "name", name)
        set_field(self, "key_hash", key_hash)
        set_field(self, "signature", signature)

    def line(self) -> str:
        blob = self.key_hash.to_bytes(4, "big") + self.signature
        return f"{SIG_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"


class Note(Frozen):
    """A note whose text was signed by at least one of the caller's keys."""

    _fields = ("text", "signatures", "unverified")
    text: str
    signatures: tuple[Signature, ...]
    unverified: tuple[Signature, ...]

    def __init__(
        self, text: str, signatures: tuple[Signature, ...], unverified: tuple[Signature, ...]
    ) -> None:
        set_field(self, "text", text)
        set_field(self, "signatures", signatures)
        set_field(self, "unverified", unverified)


class NoteVerifier(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def key_hash(self) -> int: ...

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise :class:`NoteError` unless ``signature`` is valid for ``message``."""


def _utf8(text: str, what: str) -> bytes:
    """``text`` as UTF-8; a lone surrogate (from JSON ``"\\ud800"`` or undecodable argv) is a
    :class:`NoteError`, never a ``UnicodeEncodeError``."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise NoteError(f"malformed {what}: not encodable as UTF-8") from e


def _valid_name(name: str) -> bool:
    if not name or "+" in name or any(c.isspace() for c in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _key_hash(name: str, alg: int, key: bytes) -> int:
    return int.from_bytes(
        hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + key).digest()[:4], "big"
    )


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise NoteError("malformed base64") from e


_VERIFIED_CAPACITY = 256
_verified: OrderedDict[bytes, None] = OrderedDict()  # SHA-256 over key, signature and message
_verified_lock = threading.Lock()


class _Ed25519Verifier(Frozen):
    _fields = ("name", "key_hash", "key", "raw")
    name: str
    key_hash: int
    key: ed25519.Ed25519PublicKey
    raw: bytes  # the public key's 32 bytes: names it in the remembered checks

    def __init__(self, name: str, key_hash: int, key: ed25519.Ed25519PublicKey, raw: bytes) -> None:
        set_field(self, "name", name)
        set_field(self, "key_hash", key_hash)
        set_field(self, "key", key)
        set_field(self, "raw", raw)

    def verify(self, message: bytes, signature: bytes) -> None:
        """Verify, remembering successes keyed by a hash of key, signature and message: the same
        note is verified again by the writer's next batch and by every waiter of its process,
        and an Ed25519 check over the same bytes has the same answer (failures are not kept)."""
        seen = hashlib.sha256(
            b"%d:%b%d:%b%b" % (len(self.raw), self.raw, len(signature), signature, message)
        ).digest()
        with _verified_lock:
            if seen in _verified:
                _verified.move_to_end(seen)
                return
        try:
            self.key.verify(signature, message)
        except InvalidSignature as e:
            raise NoteError(f"invalid signature for key {self.name}+{self.key_hash:08x}") from e
        with _verified_lock:
            _verified[seen] = None
            if len(_verified) > _VERIFIED_CAPACITY:
                _verified.popitem(last=False)


class _ECDSAVerifier(Frozen):
    _fields = ("name", "key_hash", "key")
    name: str
    key_hash: int
    key: ec.EllipticCurvePublicKey

    def __init__(self, name: str, key_hash: int, key: ec.EllipticCurvePublicKey) -> None:
        set_field(self, "name", name)
        set_field(self, "key_hash", key_hash)
        set_field(self, "key", key)

    def verify(self, message: bytes, signature: bytes) -> None:
        try:
            self.key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError) as e:
            raise NoteError(f"invalid signature for key {self.name}+{self.key_hash:08x}") from e


class _RFC6962Verifier(Frozen):
    """Checks a checkpoint signed as an RFC 6962 TreeHeadSignature (static CT logs)."""

    _fields = ("name", "key_hash", "key")
    name: str
    key_hash: int
    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey

    def __init__(
        self, name: str, key_hash: int, key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    ) -> None:
        set_field(self, "name", name)
        set_field(self, "key_hash", key_hash)
        set_field(self, "key", key)

    def verify(self, message: bytes, signature: bytes) -> None:
        from ledger.checkpoint import parse_checkpoint  # the body format lives there

        bad = NoteError(f"invalid signature for key {self.name}+{self.key_hash:08x}")
        try:
            cp = parse_checkpoint(message.decode())
        except Exception as e:
            raise bad from e
        if cp.origin != self.name or cp.extensions or len(signature) < 12:
            raise bad
        timestamp = signature[:8]
        hash_alg, sig_alg, length = struct.unpack(">BBH", signature[8:12])
        der = signature[12:]
        if hash_alg != 4 or len(der) != length:  # 4 = sha256 (RFC 5246 §7.4.1.4.1)
            raise bad
        tbs = b"\x00\x01" + timestamp + cp.size.to_bytes(8, "big") + cp.root_hash
        try:
            if sig_alg == 3 and isinstance(self.key, ec.EllipticCurvePublicKey):
                self.key.verify(der, tbs, ec.ECDSA(hashes.SHA256()))
            elif sig_alg == 1 and isinstance(self.key, rsa.RSAPublicKey):
                self.key.verify(der, tbs, PKCS1v15(), hashes.SHA256())
            else:
                raise bad
        except InvalidSignature as e:
            raise bad from e


def _verifier_parts(vkey: str) -> tuple[str, str, bytes]:
    """Name, hash (8 hex digits) and key blob of ``name+hash+base64(alg ‖ key)``.

    No message repeats the value: a signing key handed in by mistake must not reach a log.
    """
    if not isinstance(vkey, str):
        raise NoteError("malformed verifier key: not text")
    if vkey.strip().startswith("PRIVATE+KEY+"):
        raise NoteError(
            "this is a private signing key (PRIVATE+KEY+…), not a verifier key: pass the "
            "verifier key `ledger init` printed (name+hash+base64), and keep the signing key secret"
        )
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3 or not _valid_name(parts[0]) or len(parts[1]) != 8:
        raise NoteError("malformed verifier key: not name+hash+base64")
    blob = _b64(parts[2])
    if not blob:
        raise NoteError("empty verifier key")
    return parts[0], parts[1], blob


def parse_verifier(vkey: str) -> NoteVerifier:
    """Parse a verifier key ``name+hash+base64(alg ‖ key)``; the hash must match the key."""
    name, hash_hex, blob = _verifier_parts(vkey)
    try:
        key_hash = int(hash_hex, 16)
    except ValueError as e:
        raise NoteError("malformed verifier key: the hash is not 8 hex digits") from e
    alg, key = blob[0], blob[1:]
    try:
        if alg == ALG_ED25519 and len(key) == 32:
            expected = _key_hash(name, alg, key)
            verifier: NoteVerifier = _Ed25519Verifier(
                name, key_hash, ed25519.Ed25519PublicKey.from_public_bytes(key), bytes(key)
            )
        elif alg == ALG_ECDSA:
            expected = int.from_bytes(hashlib.sha256(key).digest()[:4], "big")
            pub = serialization.load_der_public_key(key)
            if not isinstance(pub, ec.EllipticCurvePublicKey):
                raise NoteError("ECDSA verifier key is not an elliptic-curve key")
            verifier = _ECDSAVerifier(name, key_hash, pub)
        elif alg == ALG_RFC6962_STH:
            expected = _key_hash(name, alg, hashlib.sha256(key).digest())
            sth_key = serialization.load_der_public_key(key)
            if not isinstance(sth_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
                raise NoteError("RFC 6962 verifier key is neither ECDSA nor RSA")
            verifier = _RFC6962Verifier(name, key_hash, sth_key)
        else:
            raise NoteError(f"unsupported verifier key algorithm {alg:#04x}")
    except ValueError as e:
        raise NoteError("malformed verifier key: not a valid public key") from e
    if expected != key_hash:
        raise NoteError(f"verifier key hash {hash_hex} does not match the key")
    return verifier


class NoteSigner(Frozen):
    """An Ed25519 note signer (the only algorithm this ledger signs with)."""

    _fields = ("name", "key_hash", "key")
    name: str
    key_hash: int
    key: ed25519.Ed25519PrivateKey

    def __init__(self, name: str, key_hash: int, key: ed25519.Ed25519PrivateKey) -> None:
        set_field(self, "name", name)
        set_field(self, "key_hash", key_hash)
        set_field(self, "key", key)

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)

    def verifier_key(self) -> str:
        raw = self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        blob = base64.b64encode(bytes([ALG_ED25519]) + raw).decode()
        return f"{self.name}+{self.key_hash:08x}+{blob}"

    def private_key_text(self) -> str:
        seed = self.key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        blob = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_hash:08x}+{blob}"


def _signer_from_key(name: str, key: ed25519.Ed25519PrivateKey) -> NoteSigner:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return NoteSigner(name, _key_hash(name, ALG_ED25519, raw), key)


def generate_key(name: str) -> NoteSigner:
    """A fresh Ed25519 note signer for ``name`` (a log origin such as ``example.com/ledger``)."""
    if not _valid_name(name):
        raise NoteError(f"invalid key name {name!r}: no spaces, no '+', not empty")
    return _signer_from_key(name, ed25519.Ed25519PrivateKey.generate())


def parse_signer(skey: str) -> NoteSigner:
    """Parse ``PRIVATE+KEY+name+hash+base64(0x01 ‖ seed)``; the hash must match the key."""
    parts = skey.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _valid_name(parts[2]):
        raise NoteError("malformed signer key")
    blob = _b64(parts[4])
    if len(blob) != 33 or blob[0] != ALG_ED25519:
        raise NoteError("signer key is not an Ed25519 key")
    signer = _signer_from_key(parts[2], ed25519.Ed25519PrivateKey.from_private_bytes(blob[1:]))
    if f"{signer.key_hash:08x}" != parts[3].lower():
        raise NoteError("signer key hash does not match the key")
    return signer


def sign_note(text: str, *signers: NoteSigner) -> str:
    """Sign ``text`` (which must end in a newline) and return the whole note."""
    if not text.endswith("\n") or "\n\n" in text:
        raise NoteError("note text must end in a newline and contain no blank line")
    msg = _utf8(text, "note text")
    _check_encoding(msg)
    lines = [Signature(s.name, s.key_hash, s.sign(msg)).line() for s in signers]
    return text + "\n" + "".join(lines)


_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")  # every control character but newline


def _check_encoding(msg: bytes) -> str:
    try:
        text = msg.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NoteError("malformed note: not UTF-8") from e
    if _CONTROL.search(text):
        raise NoteError("malformed note: control character")
    return text


def unverified_signatures(note: bytes | str) -> tuple[str, list[Signature]]:
    """Split a note into text and signature lines, checking the shape but **no** signature."""
    msg = _utf8(note, "note") if isinstance(note, str) else note
    whole = _check_encoding(msg)
    split = whole.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no signature block")
    text, block = whole[: split + 1], whole[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteError("malformed note: signature block must be non-empty and end in a newline")
    sigs: list[Signature] = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise NoteError("malformed note: line after the blank line is not a signature")
        name, _, b64 = line[len(SIG_PREFIX) :].partition(" ")
        if not _valid_name(name) or not b64:
            raise NoteError("malformed note: bad signature line")
        blob = _b64(b64)
        if len(blob) < 5:
            raise NoteError("malformed note: signature too short")
        sigs.append(Signature(name, int.from_bytes(blob[:4], "big"), blob[4:]))
        if len(sigs) > MAX_SIGNATURES:
            raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    return text, sigs


def open_note(note: bytes | str, verifiers: list[NoteVerifier]) -> Note:
    """Parse ``note`` and verify its signatures by the known ``verifiers``.

    Signatures by unknown keys are returned as ``unverified``; a signature by a known key that
    does not verify, or by a key listed twice, is an error; at least one must verify.
    """
    text, sigs = unverified_signatures(note)
    verified: list[Signature] = []
    unknown: list[Signature] = []
    seen: set[tuple[str, int]] = set()
    for sig in sigs:
        matches = [v for v in verifiers if v.name == sig.name and v.key_hash == sig.key_hash]
        if not matches:
            if sig not in unknown:
                unknown.append(sig)
            continue
        if len(matches) > 1:
            raise NoteError(f"ambiguous key {sig.name}+{sig.key_hash:08x}")
        if (sig.name, sig.key_hash) in seen:
            continue
        seen.add((sig.name, sig.key_hash))
        matches[0].verify(text.encode(), sig.signature)
        verified.append(sig)
    if not verified:
        raise NoteError("note has no verifiable signatures")
    return Note(text, tuple(verified), tuple(unknown))
