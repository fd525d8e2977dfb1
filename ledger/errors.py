"""The one error tree of the ledger.

Every failure the package raises is an :class:`Error`. Foreign exceptions (SQLAlchemy, cryptography,
``json``) are converted at the boundary with ``raise … from`` so callers catch one root.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AppendsFailed",
    "BadQuery",
    "CheckpointError",
    "ClientGone",
    "ConflictError",
    "Error",
    "IntegrityError",
    "InvalidInput",
    "NotFound",
    "NotTrusted",
    "NoteError",
    "Overloaded",
    "ProofError",
    "RefusedValue",
    "SlowBody",
    "StorageError",
    "TooLarge",
    "Unauthenticated",
    "Unauthorized",
]


class Error(Exception):
    """Root of every error raised by :mod:`ledger`."""


class InvalidInput(Error):
    """A caller handed in something malformed; nothing was changed."""


class BadQuery(InvalidInput):
    """A query parameter (a digest, a range, a cursor, a time) is malformed or out of bounds
    (HTTP 400); the message names the parameter and why."""


class TooLarge(InvalidInput):
    """A body is larger than the configured limit (HTTP 413); nothing was read further."""


class SlowBody(InvalidInput):
    """A request body did not fully arrive within the configured time (HTTP 408)."""


class ClientGone(InvalidInput):
    """The client disconnected before its request body was complete (nobody reads the answer)."""


class NotTrusted(Error):
    """A body's signature is not one the trust registry allows for that time and predicate type
    (HTTP 403). The message is the reason, written for the person who has to fix it: unknown
    signer, bad signature, revoked at T, expired at T, not valid until T, not allowed for P."""


class NotFound(Error):
    """The record, body, checkpoint or tree size asked for does not exist."""


class ProofError(Error):
    """A Merkle inclusion or consistency proof does not verify."""


class NoteError(Error):
    """A signed note is malformed or carries no valid signature by a known key."""


class CheckpointError(Error):
    """A checkpoint body is malformed or does not match what the caller expects."""


class StorageError(Error):
    """The database refused or failed an operation."""


class RefusedValue(StorageError):
    """The database refused a value the write held (PostgreSQL's data exceptions, SQLSTATE class
    22: a NUL in text, a value too long for its column): the same write fails the same way."""


class ConflictError(StorageError):
    """The stored log is not what this operation expected (e.g. init over an existing ledger)."""


class IntegrityError(Error):
    """Stored data disagrees with itself; ``index`` names the first record where it does."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class AppendsFailed(Error):
    """Some of several appends failed; raised only once every one of them has finished.

    ``outcomes[i]`` is the i-th submission's acknowledgement, or the exception it failed with;
    ``__cause__`` is the first failure (the CLI exits with that failure's code).
    """

    def __init__(self, message: str, outcomes: Sequence[object]) -> None:
        super().__init__(message)
        self.outcomes = list(outcomes)

    @classmethod
    def check(cls, outcomes: Sequence[object]) -> None:
        """Raise one naming how many of ``outcomes`` failed (each an acknowledgement or the
        exception its append failed with), the first failure as its cause, if any did."""
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            raise cls(
                f"{len(failed)} of {len(outcomes)} appends failed "
                f"({len(outcomes) - len(failed)} committed): {failed[0]}",
                outcomes,
            ) from failed[0]


class Overloaded(Error):
    """The ledger cannot take more work now; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unauthenticated(Error):
    """A request carries no bearer token, or one that is unknown, revoked or expired."""


class Unauthorized(Error):
    """A valid token lacks the scope this operation needs."""
