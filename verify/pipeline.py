"""The verification pipeline, top to bottom (DESIGN.md §7; docs/deploy.md):

1. get the evidence (a file, the ledger's API, or its database) — :mod:`verify.sources`;
2. the checkpoint is signed by a pinned ledger key — :func:`verify.proofs.open_signed_checkpoint`;
3. it is consistent with the last checkpoint this verifier trusted — a fork fails;
4. every entry is included in the checkpoint's tree;
5. every body hashes to the digest its leaf names;
6. every envelope or bundle signature verifies — :class:`verify.trust.Trust`;
7. its signer was allowed at the record's time;
8. the statement's subject digest matches the artifact;
9. the policy's rules — :mod:`verify.rules`;
10. the verdict.

Steps 1-7 raise (exit 2, 3 or 4); step 9 collects every rule's result; step 10 is exit 0 or 1.
The state (the newest trusted checkpoint) is saved only once steps 2-7 passed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from attest._internal.frozen import Value
from ledger.checkpoint import SignedCheckpoint
from ledger.record import parse_time
from verify.artifact import Artifact
from verify.errors import EvidenceUnavailable, PolicyFileError, UsageError
from verify.policy import Policy
from verify.proofs import (
    MEDIA_TYPE,
    check_bodies,
    check_consistency,
    check_inclusions,
    open_signed_checkpoint,
)
from verify.rules import RuleResult, evaluate
from verify.trust import Attestation, Trust, Untrusted

__all__ = ["Outcome", "judge", "verify_attestations", "verify_evidence"]

REGISTRY_PAYLOAD_TYPE = "application/vnd.provenance-ledger.registry.v1+json"


class Outcome(Value):
    """What the pipeline found: the proved checkpoint (if any), the attestations, the rules."""

    _fields = ("artifacts", "at", "checkpoint", "attestations", "untrusted", "rules")

    def __init__(
        self,
        artifacts: list[Artifact],
        at: datetime,
        checkpoint: SignedCheckpoint | None = None,
        attestations: list[Attestation] | None = None,
        untrusted: list[Untrusted] | None = None,
        rules: list[RuleResult] | None = None,
    ) -> None:
        self.artifacts = artifacts
        self.at = at
        self.checkpoint = checkpoint
        self.attestations = [] if attestations is None else attestations
        self.untrusted = [] if untrusted is None else untrusted
        self.rules = [] if rules is None else rules

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rules)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def _ledger(policy: Policy) -> tuple[list[str], str]:
    if policy.ledger is None:
        raise PolicyFileError("the policy names no ledger (ledger.keys): cannot check evidence")
    return policy.ledger.keys, policy.ledger.origin


def verify_evidence(
    policy: Policy,
    trust: Trust,
    artifacts: Sequence[Artifact],
    doc: dict[str, Any],
    *,
    at: datetime,
    trusted: SignedCheckpoint | None = None,
    on_proved: Callable[[SignedCheckpoint], object] | None = None,
) -> Outcome:
    """Steps 2 to 10 on an evidence document already fetched (step 1)."""
    keys, origin = _ledger(policy)
    if doc.get("mediaType") != MEDIA_TYPE:
        raise UsageError(f"not an evidence document (mediaType is not {MEDIA_TYPE})")
    cp = open_signed_checkpoint(doc.get("checkpoint"), keys, origin)  # (2)
    check_consistency(trusted, cp, doc.get("consistency"))  # (3)
    entries = check_bodies(check_inclusions(doc.get("entries"), cp))  # (4), (5)
    if trust.wants_registry:
        from verify.registry import replay_registry  # the registry model: only when needed

        registry = check_bodies(check_inclusions(doc.get("registry", []), cp))  # (4), (5)
        trust.registry = replay_registry(registry, trust.admin_keys, origin)
    out = Outcome(list(artifacts), at, cp)
    for e in entries:
        if _payload_type(e.body) == REGISTRY_PAYLOAD_TYPE:
            continue  # the ledger's own trust registry entries: not attestations
        when = parse_time(e.record.time)
        if when > at:
            continue  # recorded after the time being judged
        _collect(out, trust.open(e.body, e.index, when))  # (6), (7)
    if on_proved is not None:
        on_proved(cp)
    return judge(policy, out)


def _payload_type(body: bytes) -> str | None:
    """The envelope's parsed ``payloadType`` (never a substring of the body: unsigned fields such
    as a signature's ``keyid`` could spell anything), or ``None`` for an unreadable body (which
    :meth:`Trust.open` then lists as not trusted)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    kind = doc.get("payloadType") if isinstance(doc, dict) else None
    return kind if isinstance(kind, str) else None


def verify_attestations(
    policy: Policy,
    trust: Trust,
    artifacts: Sequence[Artifact],
    bodies: Sequence[bytes],
    at: datetime,
) -> Outcome:
    """Steps 6 to 10 on third-party attestations (no ledger). Signers are judged at ``at``; an
    attestation's age is its verified signing time's (:func:`_signed_time`)."""
    out = Outcome(list(artifacts), at)
    for body in bodies:
        _collect(out, _signed_time(policy, trust.open(body, None, at)))
    return judge(policy, out)


def _signed_time(policy: Policy, got: Attestation | Untrusted) -> Attestation | Untrusted:
    """A third-party attestation's time is its bundle's verified signing time (a signed timestamp
    or the transparency log's integrated time), which ``maxAge`` then judges. With no verified
    time (a bare DSSE envelope, whose dates are the signer's word) nothing proves its age: under
    ``maxAge`` its signers do not count, and the reason says why."""
    if isinstance(got, Untrusted):
        return got
    if got.verified.signed_at is not None:
        return got.replace(time=got.verified.signed_at)
    if policy.max_age is None:
        return got
    why = "no verified signing time (a signed timestamp or log entry), so maxAge cannot be met"
    return got.replace(signers=(), refused=(*got.refused, *(f"{n}: {why}" for n in got.signers)))


def _collect(out: Outcome, got: Attestation | Untrusted) -> None:
    if isinstance(got, Untrusted):
        out.untrusted.append(got)
        return
    digests = [dict(s.digest) for s in got.statement.subjects]
    if any(a.named_by(digests) for a in out.artifacts):  # (8)
        out.attestations.append(got)


def judge(policy: Policy, out: Outcome) -> Outcome:
    """Steps 9 and 10: every rule, then the verdict (``out.passed``)."""
    if not out.attestations and not out.untrusted:
        names = ", ".join(a.name for a in out.artifacts)
        raise EvidenceUnavailable(f"nothing is recorded about {names}")
    out.rules = evaluate(policy, out.artifacts, out.attestations, out.at)
    return out
