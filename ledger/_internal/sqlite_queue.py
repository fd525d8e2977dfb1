"""SQLite writers' queue: an exclusive ``flock`` of a file beside the ledger, taken before
``BEGIN IMMEDIATE``.

SQLite's own write lock does not queue: a writer that finds it held sleeps in its busy handler
(1, 2, 5 … 100 ms a try), so two server processes appending at once waited tens of milliseconds
for each other every batch. Writers here first take turns on ``<file>-writer.lock`` (a held lock
is tried again every 0.1 to 0.5 ms), and only then on the database's lock, which still decides:
the file orders the writers, it protects nothing. A writer that cannot use the file (it cannot
be opened, is not a regular file, or could be locked by someone who may not write the ledger)
goes straight to SQLite's lock.

The file's first byte says what the writer at the head of the queue is doing: ``Q`` from the
moment it has its turn, ``H`` once it holds SQLite's lock (:meth:`Turn.holding`), ``-`` when the
turn ends (a writer killed mid-turn leaves its mark, until the next takes its turn). A writer that
gives up waiting for its turn while the head still says ``Q`` was not held up by another ledger
writer's transaction but by whatever holds SQLite's lock outside the queue (another program's
``BEGIN IMMEDIATE``), which the head is waiting for too — and its message says so.

``flock`` needs only a descriptor opened for reading, so the file is made readable only by the
classes (owner, group, others) that may write the ledger file, in the ledger file's group. A
process forked (without exec) inside a write transaction keeps the lock until it exits: the
ledger itself never forks so.
"""

from __future__ import annotations

import fcntl
import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["WRITER_LOCK_SUFFIX", "Turn", "lock_path", "writers_queue"]

WRITER_LOCK_SUFFIX = "-writer.lock"
_POLL_FIRST, _POLL_MAX = 0.0001, 0.0005  # seconds between tries of a held lock file
_QUEUED, _HOLDING, _DONE = b"Q", b"H", b"-"  # the head's state: the file's first byte


def lock_path(db: Path) -> Path:
    """The queue file of the ledger file ``db`` (absolute: a later ``chdir`` keeps the queue)."""
    return Path(f"{db.absolute()}{WRITER_LOCK_SUFFIX}")


class Turn:
    """A writer's turn at the head of the queue: ``left``, the seconds of the timeout left for
    the database's own lock; :meth:`holding` once that lock is taken."""

    def __init__(self, fd: int, left: float) -> None:
        self._fd, self.left = fd, left

    def holding(self) -> None:
        _mark(self._fd, _HOLDING)


@contextmanager
def writers_queue(
    lock_file: Path | None, timeout: float, busy: Callable[..., Exception]
) -> Iterator[Turn]:
    """Hold the queue (when the file can be used) for the body; yield the :class:`Turn`.
    Raises ``busy()`` after ``timeout`` seconds of waiting, or ``busy(holder)`` naming SQLite's
    lock taken outside the queue when that is what held the head up."""
    started = time.monotonic()
    fd = _open(lock_file) if lock_file is not None else -1
    mine = False
    try:
        if fd >= 0 and not _take(fd, started + timeout):
            raise busy(_FOREIGN) if _state(fd) == _QUEUED else busy()  # the head's mark, kept
        mine = True
        _mark(fd, _QUEUED)
        yield Turn(fd, max(0.0, timeout - (time.monotonic() - started)))
    finally:
        if mine:
            _mark(fd, _DONE)  # a turn that failed says so too: no later waiter reads its "Q"
        if fd >= 0:
            os.close(fd)  # releases the flock


_FOREIGN = (
    "another connection has held the SQLite file's write lock, outside the ledger's writers' "
    "queue (the writer ahead of this one waits for it too)"
)


def _mark(fd: int, state: bytes) -> None:
    if fd >= 0:
        with suppress(OSError):  # a read-only queue file still orders; it only cannot tell
            os.pwrite(fd, state, 0)


def _state(fd: int) -> bytes:
    try:
        return os.pread(fd, 1, 0)
    except OSError:
        return b""


def _take(fd: int, deadline: float) -> bool:
    """Lock ``fd`` (or find that this file system cannot); False if it stayed held."""
    pause = _POLL_FIRST
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX)
        except OSError:  # a file system without flock: SQLite's lock alone
            return True


def _open(lock_file: Path) -> int:
    """A descriptor of the queue file, or -1 when it must not be used (see the module)."""
    try:
        db: os.stat_result | None = os.stat(str(lock_file)[: -len(WRITER_LOCK_SUFFIX)])
    except OSError:
        db = None  # `ledger init` before SQLite made the file: only the owner writes it yet
    writable = db.st_mode & 0o222 if db is not None else 0o200
    mode = writable | (writable << 1)
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    except OSError:
        return -1
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError("not a regular file")
        if db is not None and mode & 0o040 and st.st_gid != db.st_gid:
            with suppress(OSError):  # only a member of the ledger's group may
                os.fchown(fd, -1, db.st_gid)
        if stat.S_IMODE(st.st_mode) != mode:  # the umask, or a file made before this rule
            with suppress(OSError):  # only its owner may
                os.fchmod(fd, mode)
        st = os.fstat(fd)
        readers = stat.S_IMODE(st.st_mode) & 0o444
        if readers & ~mode or (
            readers & 0o040 and db is not None and st.st_gid != db.st_gid
        ):  # someone who may not write the ledger could hold it
            raise OSError("readable by someone who may not write the ledger")
    except OSError:
        os.close(fd)
        return -1
    return fd
