"""Bounded reads of the files a policy names (and the policy and evidence themselves): regular
files only, at most a size cap, so ``/dev/zero`` or a FIFO is exit 2, never a hang or an OOM."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from verify.errors import UsageError

__all__ = ["MAX_FILE_BYTES", "read_limited"]

MAX_FILE_BYTES = 16 << 20  # a policy, key, trusted root, layout or state file


def read_limited(
    path: Path, what: str, limit: int = MAX_FILE_BYTES, error: type[UsageError] = UsageError
) -> bytes:
    """The bytes of the regular file ``path`` (``what`` names it), or ``error`` if it is not a
    regular file, cannot be read, or is larger than ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from e
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(f"{what} {path} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from e
    finally:
        os.close(fd)
    if len(data) > limit:
        raise error(f"{what} {path} is larger than {limit} bytes: refused")
    return data
