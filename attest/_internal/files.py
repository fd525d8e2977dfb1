"""Files in and out: readers that turn every failure into one clear :class:`CollectorError`, and
all-or-nothing writes (a temporary file in the same directory, fsync, rename)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from attest._internal import jsontext
from attest.errors import CollectorError, InvalidInput


def write_atomic(
    path: Path | str, data: bytes, *, mode: int = 0o644, exclusive: bool = False
) -> None:
    """Write ``data`` to ``path`` (``-`` = stdout) so a reader never sees half of it."""
    if str(path) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if exclusive and target.exists():
        raise InvalidInput(f"{target} already exists; refusing to overwrite it")
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise InvalidInput(f"cannot write {target}: directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise InvalidInput(f"cannot write {target}: {e.strerror}") from e
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, target)  # fails if the name appeared meanwhile: never replaces a key
            os.unlink(tmp)
        else:
            os.replace(tmp, target)
    except FileExistsError as e:
        raise InvalidInput(f"{target} already exists; refusing to overwrite it") from e
    except OSError as e:
        raise InvalidInput(f"cannot write {target}: {e.strerror}") from e
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise CollectorError(f"cannot read {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise CollectorError(f"{path} is not UTF-8 text") from e


def read_json(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CollectorError(f"cannot read {path}: {e.strerror}") from e
    return jsontext.loads(data, str(path), error=CollectorError)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as e:
        raise CollectorError(f"{path} is not valid TOML: {e}") from e
