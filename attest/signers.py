"""Key-file signers: Ed25519, ECDSA P-256/P-384 and RSA-PSS, PEM, optionally encrypted.

Private keys are PKCS#8 PEM (PKCS#1 RSA and SEC1 EC are read too). An encrypted key's passphrase
comes from an environment variable, never from the command line. Signatures are what
securesystemslib produces for the same key (ECDSA in DER, RSA-PSS with a digest-length salt), so
envelopes signed here verify with securesystemslib and the in-toto reference.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from attest._internal.files import write_atomic
from attest.errors import KeyFileError
from attest.keys import PublicKey, public_key_from_crypto

__all__ = [
    "KEY_TYPES",
    "PASSPHRASE_ENV",
    "KeySigner",
    "env_passphrase",
    "generate_private_key",
    "load_signer",
    "read_signer",
    "write_keypair",
]

PASSPHRASE_ENV = "ATTEST_KEY_PASSPHRASE"  # noqa: S105 - the variable name, not a secret
KEY_TYPES = ("ed25519", "ecdsa-p256", "ecdsa-p384", "rsa")

CryptoPrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class KeySigner:
    """Signs bytes with a private key. ``deterministic`` uses RFC 6979 ECDSA nonces; ``raw_ecdsa``
    emits fixed-width ``r‖s`` instead of DER (what the DSSE spec vector uses)."""

    private_key: CryptoPrivateKey
    public_key: PublicKey = field(init=False)
    deterministic: bool = False
    raw_ecdsa: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "public_key", public_key_from_crypto(self.private_key.public_key())
        )

    @property
    def keyid(self) -> str:
        return self.public_key.keyid

    def sign(self, data: bytes) -> bytes:
        key = self.private_key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(data)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            digest = hashes.SHA256() if key.curve.key_size <= 256 else hashes.SHA384()
            der = key.sign(data, ec.ECDSA(digest, deterministic_signing=self.deterministic))
            if not self.raw_ecdsa:
                return der
            width = (key.curve.key_size + 7) // 8
            r, s = decode_dss_signature(der)
            return r.to_bytes(width, "big") + s.to_bytes(width, "big")
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
        return key.sign(data, pss, hashes.SHA256())


def env_passphrase(env: str = PASSPHRASE_ENV) -> bytes | None:
    """The key passphrase from ``$env`` (never from argv), or ``None`` when unset or empty."""
    value = os.environ.get(env)
    return value.encode() if value else None


def load_signer(data: bytes, *, passphrase: bytes | None = None, source: str = "key") -> KeySigner:
    """Parse a PEM private key. Wrong or missing passphrases give one clear error. A passphrase
    set for an unencrypted key is ignored (CI often sets it for every step)."""
    if passphrase is not None and b"ENCRYPTED" not in data:
        passphrase = None
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as e:
        if passphrase is None:
            raise KeyFileError(
                f"{source} is encrypted: set its passphrase in ${PASSPHRASE_ENV}"
            ) from e
        raise KeyFileError(f"{source} is not encrypted, but a passphrase was given") from e
    except ValueError as e:
        if passphrase is not None and b"ENCRYPTED" in data:
            raise KeyFileError(f"wrong passphrase for {source}") from e
        raise KeyFileError(f"{source} is not a PEM private key") from e
    except UnsupportedAlgorithm as e:
        raise KeyFileError(f"{source}: unsupported key algorithm") from e
    if not isinstance(
        key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    ):
        raise KeyFileError(
            f"{source}: unsupported key type {type(key).__name__} "
            "(use Ed25519, ECDSA P-256/P-384 or RSA)"
        )
    return KeySigner(key)


def _stderr_warning(message: str) -> None:
    print(f"attest: warning: {message}", file=sys.stderr)


def read_signer(
    path: Path,
    *,
    passphrase_env: str = PASSPHRASE_ENV,
    warn: Callable[[str], None] = _stderr_warning,
) -> KeySigner:
    """Load a private key file; the passphrase, if any, from ``$passphrase_env``. A key file that
    its group or others can access gets one ``warn`` line once it has loaded (a file that is no
    usable private key gets only the error)."""
    try:
        with path.open("rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            data = f.read()
    except OSError as e:
        raise KeyFileError(f"cannot read key {path}: {e.strerror}") from e
    signer = load_signer(data, passphrase=env_passphrase(passphrase_env), source=str(path))
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        warn(
            f"private key {path} is accessible to group or others "
            f"(mode {stat.S_IMODE(mode):04o}): chmod 600 it"
        )
    return signer


def generate_private_key(key_type: str) -> CryptoPrivateKey:
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise KeyFileError(f"unknown key type {key_type!r} (one of {', '.join(KEY_TYPES)})")


def write_keypair(name: Path, key_type: str, passphrase: bytes | None) -> PublicKey:
    """Write ``name`` (PKCS#8 PEM, mode 0600, encrypted when a passphrase is given) and
    ``name.pub`` (SubjectPublicKeyInfo PEM). Refuses to overwrite either."""
    pub_path = name.with_name(name.name + ".pub")
    for p in (name, pub_path):
        if p.exists():
            raise KeyFileError(f"{p} already exists; refusing to overwrite a key")
    key = generate_private_key(key_type)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public = public_key_from_crypto(key.public_key())
    write_atomic(name, private_pem, mode=0o600, exclusive=True)
    write_atomic(pub_path, public.spki_pem(), exclusive=True)
    return public
