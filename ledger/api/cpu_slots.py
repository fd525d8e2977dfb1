"""``ledger serve --pin-workers``: each worker process on a CPU of its own, round robin.

Two workers on two cores left free to move share both with their writer threads and the rest
of the host; each batch then crossed cores and caches, and the writer of one worker waited on
a core the other worker's event loop was using. Pinned, a worker's event loop and writer stay
on one core: 1.08x the single appends per second on the 2-core benchmark VM, 1.11x on
PostgreSQL (docs/benchmarks.md).

``ledger serve`` makes a private directory and names it in
:data:`SLOTS_ENV`; each worker takes the first free slot file there with an exclusive ``flock``
and pins itself to ``cpus[slot % len(cpus)]`` (``cpus``: the CPUs it may run on, in order). The
lock lives as long as the worker, so a worker that dies frees its slot and its replacement
takes that CPU. Off by default: on a host that runs other busy programs a pinned worker cannot
move away from a loaded core.
"""

from __future__ import annotations

import fcntl
import logging
import os
from contextlib import suppress
from pathlib import Path

__all__ = ["SLOTS_ENV", "Pinned", "pin_this_worker"]

SLOTS_ENV = "LEDGER_INTERNAL_CPU_SLOTS"
_MAX_SLOTS = 1024

log = logging.getLogger("uvicorn.error")  # the server log, in its format


class Pinned:
    """A worker's slot: its CPU, held until :meth:`release` (or the process's end)."""

    def __init__(self, fd: int, slot: int, cpu: int) -> None:
        self._fd, self.slot, self.cpu = fd, slot, cpu

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def pin_this_worker(directory: str | None = None) -> Pinned | None:
    """Take a slot in ``directory`` (default: :data:`SLOTS_ENV`) and pin every thread of this
    process to its CPU; ``None`` (nothing changed) without a directory or a free slot."""
    directory = directory or os.environ.get(SLOTS_ENV)
    if not directory:
        return None
    try:
        pinned = _pin(Path(directory), sorted(os.sched_getaffinity(0)))
    except OSError as e:  # no slot directory any more, no /proc, not allowed: run unpinned
        log.warning("worker not pinned to a CPU: %s", e)
        return None
    if pinned is None:
        log.warning("worker not pinned to a CPU: no free slot in %s", directory)
    else:
        log.info("worker [%d] pinned to CPU %d (slot %d)", os.getpid(), pinned.cpu, pinned.slot)
    return pinned


def _pin(directory: Path, cpus: list[int]) -> Pinned | None:
    for slot in range(_MAX_SLOTS):
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        fd = os.open(directory / f"slot-{slot}", flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            cpu = cpus[slot % len(cpus)]
            for task in os.listdir("/proc/self/task"):  # threads started before this one too
                with suppress(ProcessLookupError):  # a thread that ended meanwhile
                    os.sched_setaffinity(int(task), {cpu})
        except BlockingIOError:
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            raise
        return Pinned(fd, slot, cpu)
    return None
