"""Worker processes for ``ledger check``: fresh interpreters that check ranges, in order.

Not :mod:`multiprocessing`: its ``spawn`` re-runs the caller's main script in every worker (a
script without an ``if __name__ == "__main__"`` guard would start a check in each), and ``fork``
copies a process that may hold threads mid-lock (a sequencer, a server). Each worker here is
``python -m ledger.fsck_pool``, reads :class:`~ledger.fsck_range.RangeJob` s from its stdin and
writes each :class:`~ledger.fsck_range.RangeResult` to its stdout, both pickled: the pipes are
private to this process and the child it started. Jobs are dealt round-robin and results read
back in job order, so the caller sees ranges in index order; closing the pool kills the workers
(their remaining ranges can no longer change the answer).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import IO, Any

from ledger import errors
from ledger.errors import Error, StorageError
from ledger.fsck_range import RangeJob, RangeResult, check_range

__all__ = ["ranges_in_workers"]

_AHEAD = 2  # jobs queued per worker beyond the one it is checking


class _Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ledger.fsck_pool"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout

    def send(self, job: RangeJob) -> None:
        pickle.dump(job, self.stdin)
        self.stdin.flush()

    def receive(self) -> RangeResult:
        try:
            kind, payload = pickle.load(self.stdout)  # noqa: S301 -- our own child, our own pipe
        except (EOFError, pickle.UnpicklingError) as e:
            raise StorageError(f"a `ledger check` worker process died ({e or 'no output'})") from e
        if kind == "ok":
            assert isinstance(payload, RangeResult)
            return payload
        name, message = payload
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, Error) and name != "IntegrityError":
            raise cls(message)
        raise StorageError(message)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.stdin.close()
        self.stdout.close()


def ranges_in_workers(jobs: Sequence[RangeJob], n: int) -> Iterator[RangeResult]:
    """Each job's result in job order, from ``n`` worker processes."""
    workers: list[_Worker] = []
    try:
        workers = [_Worker() for _ in range(min(n, len(jobs)))]
        sent = 0
        for k in range(len(jobs)):
            while sent < len(jobs) and sent <= k + len(workers) * _AHEAD:
                workers[sent % len(workers)].send(jobs[sent])
                sent += 1
            yield workers[k % len(workers)].receive()
    finally:
        for w in workers:
            w.kill()


def _serve(inp: IO[bytes], out: IO[bytes]) -> None:
    while True:
        try:
            job = pickle.load(inp)  # noqa: S301 -- the parent that started us
        except EOFError:
            return
        reply: tuple[str, Any]
        try:
            reply = ("ok", check_range(job))
        except Error as e:
            reply = ("error", (type(e).__name__, str(e)))
        except Exception as e:  # a bug: say what, in one line, in the caller's process
            reply = ("error", ("StorageError", f"`ledger check` worker failed: {e!r}"))
        pickle.dump(reply, out)
        out.flush()


if __name__ == "__main__":
    # Results go to the pipe; anything printed by accident goes to stderr, not into it.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _serve(sys.stdin.buffer, channel)
