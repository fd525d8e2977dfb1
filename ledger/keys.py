"""The checkpoint signing key: kept in a file (mode 0600) outside the database."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sqlalchemy import URL

from ledger._internal.db import parse_url, sqlite_file
from ledger.errors import InvalidInput, NotFound
from ledger.note import NoteSigner, parse_signer

__all__ = ["default_key_path", "load_signer", "write_signer"]


def default_key_path(db_url: str) -> Path:
    """``ledger.db`` → ``ledger.db.key``; other databases → ``ledger-<hash of URL>.key`` here.

    The hash covers the URL without its driver and password, so ``postgresql://`` and
    ``postgresql+psycopg://`` spellings of one database find the same key.
    """
    url = parse_url(db_url)
    path = sqlite_file(db_url)
    if path is not None:
        return Path(f"{path}.key")
    plain = URL.create(
        url.get_backend_name(), url.username, None, url.host, url.port, url.database, url.query
    )
    tag = hashlib.sha256(plain.render_as_string().encode()).hexdigest()[:12]
    return Path(f"ledger-{tag}.key")


def write_signer(path: Path, signer: NoteSigner) -> None:
    """Write the private key text to a new file readable by its owner only; never overwrite."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise InvalidInput(f"key file {path} already exists; refusing to overwrite it") from e
    except OSError as e:
        raise InvalidInput(f"cannot create key file {path}: {e.strerror}") from e
    with os.fdopen(fd, "w") as f:
        f.write(signer.private_key_text() + "\n")


def load_signer(path: Path) -> NoteSigner:
    """Read a key file; refuse one that others can read, as ssh does."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError as e:
        raise NotFound(f"key file {path} not found (set --key-file or LEDGER_KEY_FILE)") from e
    except OSError as e:
        raise InvalidInput(f"cannot read key file {path}: {e.strerror}") from e
    if mode & 0o077:
        raise InvalidInput(
            f"key file {path} is accessible by others (mode {mode & 0o777:o}); chmod 600 it"
        )
    return parse_signer(text)
