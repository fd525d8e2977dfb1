"""The verifier's memory: the last checkpoint of each ledger it trusted, one file per log
(``<stateDir>/<origin>.checkpoint``, the signed note). A later checkpoint must be consistent with
it (else the ledger forked its history); the file is replaced, atomically, only after every proof
of a run verified, and never by an older checkpoint."""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

from ledger.checkpoint import SignedCheckpoint
from verify.errors import CheckpointFailure, UsageError

__all__ = ["load_trusted", "save_trusted", "state_file"]


def state_file(state_dir: Path, origin: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in origin)
    return state_dir / f"{safe}.checkpoint"


def load_trusted(state_dir: Path, origin: str, vkeys: list[str]) -> SignedCheckpoint | None:
    """The checkpoint last trusted for ``origin`` (signature re-checked), or ``None``."""
    from verify.proofs import open_signed_checkpoint

    path = state_file(state_dir, origin)
    from verify._internal.files import read_limited

    if not path.exists():
        return None
    try:
        note = read_limited(path, "the verifier state", 1 << 20).decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"cannot read the verifier state {path}: {e}") from e
    try:
        return open_signed_checkpoint(note, vkeys, origin)
    except CheckpointFailure as e:
        raise CheckpointFailure(f"the verifier state {path} does not verify: {e}") from e


def save_trusted(state_dir: Path, cp: SignedCheckpoint, old: SignedCheckpoint | None) -> bool:
    """Remember ``cp`` unless the state already holds a larger tree; ``True`` if written."""
    if old is not None and old.checkpoint.size >= cp.checkpoint.size:
        return False
    path = state_file(state_dir, cp.checkpoint.origin)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        with (state_dir / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # runs sharing a state dir: one writer at a time
            if _stored_size(path) >= cp.checkpoint.size:  # another run got further meanwhile
                return False
            fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".checkpoint-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(cp.note)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    except OSError as e:
        raise UsageError(f"cannot write the verifier state in {state_dir}: {e}") from e
    return True


def _stored_size(path: Path) -> int:
    """The tree size the state file names now (-1: none). Only compared, never trusted: the
    next run verifies the file's signature before it relies on it."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n", 2)
        return int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else -1
    except (OSError, UnicodeDecodeError, ValueError):
        return -1
