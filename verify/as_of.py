"""``verify --ledger URL --at TIME``: the ledger's own as-of answer, proved like any other.

The evidence is asked for with ``asOf=TIME``: the server answers from the newest checkpoint it
had signed by then, and every inclusion proof is against that checkpoint. Steps 2 to 10 then
run unchanged on that document (records written after ``TIME`` are still dropped by their
signed leaf time, whatever checkpoint the server picked). Step 3 runs in whichever direction the
history goes:

- the as-of checkpoint is at least as large as the one this verifier trusts: the answer carries
  a consistency proof from the trusted size (``since``), checked as always, and the state may
  move forward to it;
- it is older (the usual case: the verifier has already seen later checkpoints): the as-of
  checkpoint must be a prefix of the trusted one, so the evidence route is asked again as of the
  trusted size with ``since`` the as-of size: it must answer from the trusted checkpoint (same
  size and root) with a consistency proof from the as-of one, checked against both roots — a
  server that answers from another history is exit 4 — and the state is left as it was.

A C2SP checkpoint carries no signed time, so which checkpoint the server calls "as of TIME" is
its word; what the answer proves is that those records were in the ledger this verifier trusts,
in a tree no later than they say.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ledger.checkpoint import SignedCheckpoint
from verify.errors import ConsistencyFailure
from verify.policy import Policy
from verify.proofs import check_consistency, open_signed_checkpoint
from verify.sources import from_ledger

__all__ = ["as_of_evidence", "rfc3339"]


def rfc3339(at: datetime) -> str:
    """``at`` as the ``asOf`` query value (UTC, ``Z``)."""
    from ledger.errors import Error as LedgerError
    from ledger.record import format_time
    from verify.errors import UsageError

    try:
        return format_time(at)
    except LedgerError as e:
        raise UsageError(f"--at: {e}") from e


def check_prefix(
    url: str,
    policy: Policy,
    digests: Sequence[str],
    old: SignedCheckpoint,
    trusted: SignedCheckpoint,
    token: str | None,
) -> None:
    """``old`` (the as-of checkpoint) is a prefix of ``trusted``, or exit 4. The proof is the
    evidence route's own: as of the trusted size, ``since`` the as-of size (the same request as
    any other, so the same client); the checkpoint it answers from must be the trusted one."""
    assert policy.ledger is not None
    size = trusted.checkpoint.size
    doc = from_ledger(url, digests, since=old.checkpoint.size, token=token, as_of=str(size))
    cp = open_signed_checkpoint(doc.get("checkpoint"), policy.ledger.keys, policy.ledger.origin)
    if cp.checkpoint.size != size:
        raise ConsistencyFailure(
            f"the ledger has no checkpoint of the trusted size {size} (it answered size "
            f"{cp.checkpoint.size}): it answered from another history than the one trusted"
        )
    if cp.checkpoint.root_hash != trusted.checkpoint.root_hash:
        raise ConsistencyFailure(
            f"the ledger's tree of the trusted size {size} has another root: it answered from "
            "another history (a fork)"
        )
    try:
        check_consistency(old, cp, doc.get("consistency"))
    except ConsistencyFailure as e:
        raise ConsistencyFailure(
            f"the as-of checkpoint (size {old.checkpoint.size}) is not a prefix of the one this "
            f"verifier trusts (size {size}): the ledger answered from another history ({e})"
        ) from e


def as_of_evidence(
    url: str,
    policy: Policy,
    digests: Sequence[str],
    at: datetime,
    trusted: SignedCheckpoint | None,
    token: str | None,
    registry: bool,
) -> tuple[dict[str, Any], SignedCheckpoint | None, Callable[[SignedCheckpoint], bool] | None]:
    """(the as-of evidence, the checkpoint step 3 is to check it against, whether the state may
    be saved): for an older answer, step 3 is done here and the pipeline gets no ``trusted``."""
    since = trusted.checkpoint.size if trusted is not None else None
    doc = from_ledger(url, digests, since=since, token=token, as_of=rfc3339(at), registry=registry)
    if trusted is None:
        return doc, None, None
    assert policy.ledger is not None
    cp = open_signed_checkpoint(doc.get("checkpoint"), policy.ledger.keys, policy.ledger.origin)
    if cp.checkpoint.size >= trusted.checkpoint.size:
        from verify.state import save_trusted

        state = policy.path(policy.ledger.state_dir) if policy.ledger.state_dir else None
        saver = (lambda c: save_trusted(state, c, trusted)) if state is not None else None
        return doc, trusted, saver
    check_prefix(url, policy, digests, cp, trusted, token)
    return doc, None, None
