"""TEMPORARY SHIM — delete when the trust registry (helper H8: ``ledger.admission``) lands on main.

It has the exact shape of H8's interface so the service is built and tested against it:
``Admitted``, ``TooLarge``, ``NotTrusted`` and ``admit`` / ``submit`` / ``append_admitted``
(H8 puts the three functions on :class:`~ledger.log.Ledger` as methods). Admission here checks
*shape only* (``ledger.bodies.parse_submission``); the real one verifies signatures against the
registry as of ``at``. Replacing it: import ``Admitted`` from ``ledger.admission``, the two errors
from ``ledger.errors``, and call ``ledger.admit`` / ``ledger.submit`` /
``ledger.append_admitted`` in ``ledger/api/service.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from ledger.bodies import MAX_BODY_BYTES, Submission, parse_submission
from ledger.errors import Error, InvalidInput
from ledger.log import Ledger
from ledger.sequencer import AppendResult

__all__ = ["Admitted", "NotTrusted", "TooLarge", "admit", "append_admitted", "submit"]


class TooLarge(InvalidInput):
    """The body is over the size limit (HTTP 413)."""


class NotTrusted(Error):
    """No signature by a signer the registry allows at that time (HTTP 403)."""


@dataclass(frozen=True)
class Admitted:
    submission: Submission
    signers: tuple[str, ...]
    predicate_type: str | None


def admit(ledger: Ledger, content: bytes, *, at: datetime | None = None) -> Admitted:
    if len(content) > MAX_BODY_BYTES:
        raise TooLarge(f"body is {len(content)} bytes; the limit is {MAX_BODY_BYTES}")
    return Admitted(parse_submission(content), (), None)


def submit(ledger: Ledger, admitted: Admitted) -> Future[AppendResult]:
    return ledger._seq().submit(admitted.submission)


def append_admitted(ledger: Ledger, admitted: Sequence[Admitted]) -> list[AppendResult]:
    return ledger.append_submissions([a.submission for a in admitted])
