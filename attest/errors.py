"""The one error tree of :mod:`attest`.

Every failure the package raises is an :class:`Error`; foreign exceptions (cryptography, json,
sigstore, tomllib) are converted at the boundary with ``raise … from``. Verification raises, it
never returns ``False``.
"""

from __future__ import annotations

__all__ = [
    "CollectorError",
    "Error",
    "InvalidInput",
    "InvalidStatement",
    "KeyFileError",
    "SignatureError",
    "SubmitError",
]


class Error(Exception):
    """Root of every error raised by :mod:`attest`."""


class InvalidInput(Error):
    """Malformed input: an envelope, a statement, a report, a key file. Nothing was written."""


class InvalidStatement(InvalidInput):
    """An in-toto Statement, resource descriptor or predicate breaks its schema.

    ``code`` is the name the in-toto attestation Go reference gives the same failure
    (``ErrSubjectRequired``, ``ErrIncorrectDigestLength``, …), so results compare across tools.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code


class SignatureError(Error):
    """A signature, certificate chain or identity policy does not verify."""


class KeyFileError(Error):
    """A key file is missing, unreadable, of an unsupported type, or its passphrase is wrong."""


class CollectorError(Error):
    """A collector could not read what it was pointed at (missing file, bad lock file, git)."""


class SubmitError(Error):
    """The ledger refused a submission or could not be reached."""
