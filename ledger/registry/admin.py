"""The ledger's admin key: signs registry entries. Private key in a file, public key in the meta.

``ledger init`` writes it beside the checkpoint key (``<checkpoint key stem>.admin.key``, PKCS#8
PEM, mode 0600) and records its SubjectPublicKeyInfo PEM as ``ledger_meta.admin_key`` in the
same transaction; a ledger made before the registry existed gets one with
``ledger signers init-admin``. The key never enters the database.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from sqlalchemy.exc import SQLAlchemyError

from attest._internal.files import write_atomic
from attest.errors import Error as AttestError
from attest.signers import KeySigner, generate_private_key, read_signer
from ledger._internal import schema
from ledger._internal.db import migrate, write_transaction
from ledger.errors import ConflictError, InvalidInput, NotFound, StorageError
from ledger.registry.entries import ADMIN_META_KEY, admin_pem
from ledger.storage import LedgerStore

__all__ = [
    "admin_key_path",
    "check_admin_key",
    "create_admin_key",
    "init_admin",
    "load_admin_key",
]


def admin_key_path(checkpoint_key: Path) -> Path:
    """``ledger.db.key`` → ``ledger.db.admin.key``."""
    return checkpoint_key.with_name(f"{checkpoint_key.stem}.admin{checkpoint_key.suffix or '.key'}")


def create_admin_key(path: Path) -> KeySigner:
    """A new Ed25519 admin key in ``path`` (never overwrites an existing file)."""
    key = generate_private_key("ed25519")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        write_atomic(path, pem, mode=0o600, exclusive=True)
    except AttestError as e:
        raise InvalidInput(f"cannot write the admin key: {e}") from e
    return KeySigner(key)


def load_admin_key(path: Path) -> KeySigner:
    """Read the admin key (passphrase, if any, from ``$ATTEST_KEY_PASSPHRASE``); refuse a file
    others can read, as ssh does."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as e:
        raise NotFound(f"admin key {path} not found (set --admin-key-file)") from e
    except OSError as e:
        raise InvalidInput(f"cannot read admin key {path}: {e.strerror}") from e
    if mode & 0o077:
        raise InvalidInput(f"admin key {path} is accessible by others; chmod 600 it")
    try:
        return read_signer(path)
    except AttestError as e:
        raise InvalidInput(str(e)) from e


def public_pem(signer: KeySigner) -> str:
    return signer.public_key.spki_pem().decode()


def init_admin(store: LedgerStore, path: Path) -> KeySigner:
    """Give an existing ledger an admin key (file + meta) and bring its schema up to date (the
    registry's table). Refuses if it already has one; a failure leaves no key file."""
    with store._conn() as conn:
        if admin_pem(conn) is not None:
            raise ConflictError("this ledger already has an admin key")
    signer = create_admin_key(path)
    try:
        with write_transaction(store.engine) as conn:
            migrate(conn)  # a ledger this old also lacks the registry's table
            if admin_pem(conn) is not None:
                raise ConflictError("this ledger already has an admin key")
            conn.execute(schema.meta.insert(), {"key": ADMIN_META_KEY, "value": public_pem(signer)})
    except BaseException as e:
        path.unlink(missing_ok=True)
        if isinstance(e, SQLAlchemyError):
            raise StorageError(f"cannot record the admin key: {e}") from e
        raise
    return signer


def check_admin_key(store: LedgerStore, signer: KeySigner) -> None:
    """Refuse an admin key file that is not this ledger's."""
    if store.meta().get(ADMIN_META_KEY) != public_pem(signer):
        raise InvalidInput("the admin key file does not hold this ledger's admin key")
