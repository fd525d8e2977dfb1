"""The cyclic garbage collector, paused while a bulk append holds many young objects.

A bulk append keeps every parsed body alive until its last batch commits (about three tracked
objects a body) and makes a result and a proof list per record. CPython runs a full collection
each time the objects that survived since the last one grow by a quarter, so 50,000 bodies
cost five or six full collections of a growing heap: 7-9 us of CPU per record, 15 % of the
bulk path (docs/benchmarks.md, "Bulk, issue 8"). Reference counting still frees everything
that is not in a cycle; cycles made meanwhile wait for the next collection after the pause.

The collector is the process's, so the pause is too: nested or concurrent pauses are counted,
the collector resumes when the last ends, and only if it was enabled when the first began. So it
suits calls that end (the CLI's bulk append, a benchmark), not a server's requests:
pauses that kept overlapping would keep cycles uncollected. ``ledger serve`` takes no pause.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


class _Pauses:
    """How many pauses are open, and whether the collector runs again when none is."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.resume = False


_PAUSES = _Pauses()


@contextmanager
def collector_paused() -> Iterator[None]:
    with _PAUSES.lock:
        if _PAUSES.open == 0:
            _PAUSES.resume = gc.isenabled()
            gc.disable()
        _PAUSES.open += 1
    try:
        yield
    finally:
        with _PAUSES.lock:
            _PAUSES.open -= 1
            if _PAUSES.open == 0 and _PAUSES.resume:
                gc.enable()
