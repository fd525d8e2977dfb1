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
  checkpoint must be a prefix of the trusted one, so the proof from its size to the trusted size
  is asked for (``/api/v1/proof/consistency``) and checked against both roots — a server that
  answers from another history is exit 4 — and the state is left as it was.

A C2SP checkpoint carries no signed time, so which checkpoint the server calls "as of TIME" is
its word; what the answer proves is that those records were in the ledger this verifier trusts,
in a tree no later than they say.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ledger.checkpoint import SignedCheckpoint
from verify.errors import ConsistencyFailure, EvidenceUnavailable
from verify.policy import Policy
from verify.proofs import open_signed_checkpoint
from verify.sources import TOKEN_ENV, from_ledger

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


def _prefix_proof(url: str, token: str | None, old: int, new: int) -> list[bytes]:
    """The server's consistency proof from tree size ``old`` to ``new``."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        r = httpx.get(
            url.rstrip("/") + "/api/v1/proof/consistency",
            params={"from": str(old), "to": str(new)},
            headers=headers,
            timeout=30,
        )
    except httpx.HTTPError as e:
        raise EvidenceUnavailable(f"cannot reach the ledger at {url}: {e}") from e
    if r.status_code == 404:
        raise ConsistencyFailure(
            f"the ledger has no tree of the trusted size {new}: its history is older than the "
            f"checkpoint this verifier trusts ({r.text[:200]})"
        )
    if r.status_code in (401, 403):
        raise EvidenceUnavailable(
            f"the ledger refused a consistency proof (HTTP {r.status_code}): set {TOKEN_ENV}"
        )
    if r.status_code != 200:
        raise EvidenceUnavailable(f"the ledger answered HTTP {r.status_code}: {r.text[:300]}")
    try:
        doc = r.json()
        return [base64.b64decode(h, validate=True) for h in doc["proof"]]
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise ConsistencyFailure(f"the ledger's consistency proof is malformed: {e}") from e


def check_prefix(old: SignedCheckpoint, new: SignedCheckpoint, proof: Sequence[bytes]) -> None:
    """``old`` (the as-of checkpoint) is a prefix of ``new`` (the trusted one), or exit 4."""
    from ledger import merkle
    from ledger.errors import Error as LedgerError

    a, b = old.checkpoint, new.checkpoint
    if a.size == 0:
        return
    try:
        merkle.verify_consistency(a.size, b.size, list(proof), a.root_hash, b.root_hash)
    except LedgerError as e:
        raise ConsistencyFailure(
            f"the as-of checkpoint (size {a.size}) is not a prefix of the checkpoint this "
            f"verifier trusts (size {b.size}): the ledger answered from another history ({e})"
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
    proof = _prefix_proof(url, token, cp.checkpoint.size, trusted.checkpoint.size)
    check_prefix(cp, trusted, proof)
    return doc, None, None
