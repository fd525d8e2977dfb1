"""Write files all-or-nothing: a temporary file in the same directory, fsync, rename."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from attest.errors import InvalidInput


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
