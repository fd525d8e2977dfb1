"""The bounds of one answer read from a ledger's audit API, shared by ``verify --ledger``
(:mod:`verify.sources`) and :mod:`ledger.client`: a server that keeps returning ``next`` pages,
repeats a cursor, sends a huge body or drips it byte by byte is refused with a clear error
before memory or patience runs out. Pure (the standard library only: ``verify`` imports it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["MAX_ANSWER_BYTES", "MAX_ENTRIES", "MAX_PAGES", "AnswerBudget"]

MAX_ANSWER_BYTES = 256 << 20  # every page of one answer together
MAX_PAGES = 2000  # pages of one answer
MAX_ENTRIES = 1_000_000  # entries of one answer


class AnswerBudget:
    """What one answer (all its pages) may still take. ``error`` builds the exception each
    caller raises (``verify`` exits 3; the client raises its ``ClientError``); ``deadline``:
    seconds for the whole answer, every page and every byte of it (``None``: no deadline)."""

    def __init__(
        self,
        error: Callable[[str], Exception],
        *,
        max_bytes: int = MAX_ANSWER_BYTES,
        max_pages: int = MAX_PAGES,
        max_entries: int = MAX_ENTRIES,
        deadline: float | None = None,
    ) -> None:
        self.error, self.max_bytes = error, max_bytes
        self.max_pages, self.max_entries = max_pages, max_entries
        self.pages = self.entries = self.bytes = 0
        self.cursors: set[str] = set()
        self.deadline = deadline
        self.ends = None if deadline is None else time.monotonic() + deadline

    def take(self, size: int) -> None:
        """``size`` more bytes of the answer arrived."""
        self.bytes += size
        if self.bytes > self.max_bytes:
            raise self.error(f"the ledger's answer is larger than {self.max_bytes} bytes: refused")
        self.left()

    def left(self) -> float | None:
        """Seconds left before the deadline (``None``: no deadline); past it, the error."""
        if self.ends is None:
            return None
        left = self.ends - time.monotonic()
        if left <= 0:
            raise self.error(
                f"the ledger's answer did not arrive within {self.deadline:g} s: refused"
            )
        return left

    def follow(self, cursor: str, entries: int) -> None:
        """A page of ``entries`` entries named ``cursor`` as its next page."""
        self.pages += 1
        self.entries += entries
        if cursor in self.cursors:
            raise self.error("the ledger returned the same next cursor twice: refused")
        self.cursors.add(cursor)
        if self.pages >= self.max_pages or self.entries > self.max_entries:
            raise self.error(
                f"the ledger's answer has more than {self.max_pages} pages or "
                f"{self.max_entries} entries: refused (a hostile or broken server keeps "
                "returning next pages)"
            )
