"""``registry: true`` signers: whoever the ledger's trust registry allowed at a record's time.

The registry is in the log: each change is a DSSE envelope of the registry's payload type, signed
with the ledger's admin key. The evidence carries those records (``registry``, proved like every
entry); this module replays them, in index order, with the admin key(s) the policy pins, into the
state before any record — the same pure fold the ledger admits with
(:class:`ledger.registry.model.RegistryState`). A record that is not admin-signed for this log, or
does not apply, changes nothing (as in the ledger).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from attest.dsse import Envelope, verify_envelope
from attest.errors import Error as AttestError
from attest.keys import PublicKey
from ledger.errors import Error as LedgerError
from ledger.registry.model import REGISTRY_PAYLOAD_TYPE, RegistryOp, RegistryState, parse_op
from verify.proofs import ProvedEntry

__all__ = ["RegistryHistory", "replay_registry"]


@dataclass
class RegistryHistory:
    """The registry's states along the log: ``state_before(i)`` is what admission used for i;
    the last state is the registry as of the checkpoint verified."""

    indices: list[int] = field(default_factory=list)
    states: list[RegistryState] = field(default_factory=list)

    def state_before(self, index: int) -> RegistryState:
        at = bisect.bisect_left(self.indices, index)
        return self.states[at - 1] if at else RegistryState()

    def revocation(self, name: str) -> tuple[str, int] | None:
        """``name``'s revocation as of the checkpoint — its effective time ``at`` and the index
        of the record that logged it — wherever in the log it was logged, or ``None``. (A name is
        never reused and revoked at most once, so the first state that has it revoked says.)"""
        for index, state in zip(self.indices, self.states, strict=True):
            signer = state.signers.get(name)
            if signer is not None and signer.revoked_at is not None:
                return signer.revoked_at, index
        return None

    def key_revocation(self, name: str, key: PublicKey | None) -> tuple[str, str, int] | None:
        """The earliest revocation as of the checkpoint of ``name`` or of any registry name
        registered with the same ``key`` (compared by its SPKI bytes, never by keyid): the name
        revoked, its effective time ``at`` and the index of the record that logged it; or
        ``None``. A revocation is of the key: the same key added under another name is revoked
        with it."""
        last = self.states[-1] if self.states else RegistryState()
        spki = key.spki_pem() if key is not None else None
        names = [
            n
            for n, s in last.signers.items()
            if s.revoked_at is not None
            and (n == name or (spki is not None and s.key is not None and s.key.spki_pem() == spki))
        ]
        found = [(n, *r) for n in names if (r := self.revocation(n)) is not None]
        return min(found, key=lambda r: (r[1], r[2]), default=None)


def _op(entry: ProvedEntry, admin_keys: Sequence[PublicKey], origin: str) -> RegistryOp | None:
    try:
        env = Envelope.from_dict(json.loads(entry.body))
        verified = verify_envelope(env, admin_keys, payload_type=REGISTRY_PAYLOAD_TYPE)
        op = parse_op(json.loads(verified.payload))
    except (AttestError, LedgerError, ValueError):
        return None
    return op if op.log == origin else None


def replay_registry(
    entries: Sequence[ProvedEntry], admin_keys: Sequence[PublicKey], origin: str
) -> RegistryHistory:
    """Fold the registry records (any order given) into the history of states."""
    history = RegistryHistory()
    state = RegistryState()
    for entry in sorted(entries, key=lambda e: e.index):
        op = _op(entry, admin_keys, origin)
        if op is None:
            continue
        try:
            state = state.apply(op, entry.index)
        except LedgerError:
            continue
        history.indices.append(entry.index)
        history.states.append(state)
    return history
