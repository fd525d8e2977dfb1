"""The one error tree of ``verify``; every class carries the exit code the CLI returns for it.

====  ==========================================================================
code  meaning
====  ==========================================================================
0     the artifact passes the policy
1     :class:`PolicyNotMet` — the evidence is sound but the policy is not met
2     :class:`UsageError` / :class:`PolicyFileError` — bad arguments or bad input
3     :class:`EvidenceUnavailable` — ledger unreachable, nothing recorded
4     :class:`ProofFailure` — a signature, proof, checkpoint or consistency check failed
====  ==========================================================================
"""

from __future__ import annotations

__all__ = [
    "BodyDigestError",
    "CheckpointFailure",
    "ConsistencyFailure",
    "Error",
    "EvidenceUnavailable",
    "InclusionFailure",
    "PolicyFileError",
    "PolicyNotMet",
    "ProofFailure",
    "RuleFailed",
    "SignatureFailure",
    "UsageError",
]


class Error(Exception):
    """Root of every error :mod:`verify` raises."""

    exit_code = 2


class UsageError(Error):
    """Bad arguments or bad input (an unreadable artifact, a malformed evidence file)."""

    exit_code = 2


class PolicyFileError(UsageError):
    """The policy file is missing, not YAML, or breaks the policy schema."""


class EvidenceUnavailable(Error):
    """No evidence to judge: the ledger cannot be reached, or it recorded nothing about this."""

    exit_code = 3


class ProofFailure(Error):
    """The evidence does not prove what it claims."""

    exit_code = 4


class CheckpointFailure(ProofFailure):
    """The checkpoint is not signed by a pinned ledger key, or is malformed or for another log."""


class ConsistencyFailure(ProofFailure):
    """The checkpoint is not an extension of the last one this verifier trusted (a fork)."""


class InclusionFailure(ProofFailure):
    """An entry's inclusion proof does not lead to the checkpoint's root."""


class BodyDigestError(ProofFailure):
    """An entry's body does not hash to the digest its leaf names, or its leaf is malformed."""


class SignatureFailure(ProofFailure):
    """An envelope or bundle claims a trusted signer but its signature does not verify."""


class PolicyNotMet(Error):
    """The evidence is sound but does not satisfy the policy."""

    exit_code = 1


class RuleFailed(Error):
    """One policy rule is not met (collected into the report; the verdict is then 1)."""

    exit_code = 1
