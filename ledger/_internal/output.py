"""Where ``ledger export`` writes: a file that appears whole or not at all, or stdout.

- Exactly ``-`` is stdout (``./-`` is a file named ``-``). A reader that goes away (``export - |
  head``) is one line, "output closed", exit 2: the export did not reach its reader whole.
- A symlink is written *through*: its target is replaced atomically, the link stays.
- A device or FIFO is written as it is (there is nothing to rename).
- Otherwise the data goes to an unnamed file in the target's directory (Linux ``O_TMPFILE``),
  which is linked in (copied in, where the system refuses ``linkat`` through ``/proc``) and
  renamed over the target only once it is complete and fsynced; killed while writing (SIGKILL
  included) it leaves nothing behind. Where ``O_TMPFILE`` is not supported, a
  named ``.NAME.<random>.partial`` beside the target stands in for it; SIGTERM is handled like
  SIGINT (the partial file is removed), and partial files of the same target that a SIGKILL left
  are removed by the next export once they are older than :data:`STALE_PARTIAL_SECONDS`.
- The file gets mode ``0666 & ~umask``, as any file a shell redirect creates (an export holds no
  secret: it is the public log).
"""

from __future__ import annotations

import errno
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import IO

from ledger.errors import InvalidInput

__all__ = ["STALE_PARTIAL_SECONDS", "atomic_output"]

STALE_PARTIAL_SECONDS = 3600  # an export writes steadily; an hour-old partial file is dead


@contextmanager
def atomic_output(target: str) -> Iterator[IO[str]]:
    """Yield a text stream for ``target``; see the module docstring for what each target gets."""
    if target == "-":
        with _stdout() as out:
            yield out
        return
    path = Path(os.path.realpath(target))  # through a symlink, to the file it names
    try:
        if path.is_dir():
            raise InvalidInput(f"cannot write {target}: it is a directory")
        if path.exists() and not path.is_file():
            with path.open("w") as out:
                yield out
            return
        remove_stale_partials(path, time.time())
        with _sigterm_as_exit(), _replacing(path) as out:
            yield out
    except OSError as e:
        raise InvalidInput(f"cannot write {target}: {e.strerror}") from e


@contextmanager
def _stdout() -> Iterator[IO[str]]:
    try:
        yield sys.stdout
        sys.stdout.flush()
    except BrokenPipeError as e:
        # Nothing more can reach the reader; point fd 1 at /dev/null so that the interpreter's
        # final flush does not print a second error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        raise InvalidInput("cannot write to standard output: output closed") from e


@contextmanager
def _replacing(path: Path) -> Iterator[IO[str]]:
    """Write an unnamed (else a ``.partial``) file and rename it over ``path`` when complete."""
    fd, partial = _open_temp(path)
    linked: Path | None = partial
    try:
        with os.fdopen(fd, "w") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
            if linked is None:  # unnamed: give it a name only now, beside the target
                linked = _name_unnamed(out.fileno(), path)
        os.replace(linked, path)
        linked = None
        _fsync_dir(path.parent)
    finally:
        if linked is not None:
            linked.unlink(missing_ok=True)


def _name_unnamed(fd: int, path: Path) -> Path:
    """Link the complete unnamed file in as a ``.partial`` beside ``path``; where the system
    refuses the link (some sandboxes answer EXDEV), copy it into one instead."""
    partial = _partial_name(path)
    try:
        os.link(f"/proc/self/fd/{fd}", partial)
        return partial
    except OSError:
        pass
    dst = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        size, offset = os.fstat(fd).st_size, 0
        while offset < size:
            offset += os.sendfile(dst, fd, offset, size - offset) or size  # 0: file shrank
        os.fsync(dst)
    except BaseException:
        os.close(dst)
        partial.unlink(missing_ok=True)
        raise
    os.close(dst)
    return partial


def _open_temp(path: Path) -> tuple[int, Path | None]:
    """An unnamed file in ``path``'s directory where the system has them, else a named one."""
    flag = getattr(os, "O_TMPFILE", 0)
    if flag and Path("/proc/self/fd").is_dir():
        try:
            return os.open(path.parent, flag | os.O_RDWR, 0o666), None  # the umask applies
        except OSError as e:
            if e.errno not in _NO_TMPFILE:
                raise
    partial = _partial_name(path)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    return fd, partial


_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL}  # no O_TMPFILE here


def _partial_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial")


def remove_stale_partials(path: Path, now: float) -> list[Path]:
    """Remove ``.NAME.*.partial`` files of this target older than :data:`STALE_PARTIAL_SECONDS`
    (left by an export that was killed); return them. Younger ones may be a running export."""
    removed = []
    for partial in path.parent.glob(f".{_glob_escape(path.name)}.*.partial"):
        with suppress(OSError):
            if now - partial.lstat().st_mtime > STALE_PARTIAL_SECONDS and partial.is_file():
                partial.unlink()
                removed.append(partial)
    return removed


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (best effort: some filesystems refuse to fsync a directory)."""
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """While writing, SIGTERM unwinds like SIGINT (so the ``finally`` clauses clean up), then the
    process exits with 128 + SIGTERM. Only the main thread can install a handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
