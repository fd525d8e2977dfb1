"""The ledger as a library: open a database, append bodies, read proofs and checkpoints."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ledger.bodies import Submission, parse_submission
from ledger.checkpoint import SignedCheckpoint, open_checkpoint
from ledger.errors import IntegrityError, InvalidInput, NotFound
from ledger.keys import load_signer, write_signer
from ledger.note import NoteSigner, NoteVerifier, generate_key, parse_verifier
from ledger.sequencer import AppendResult, Sequencer
from ledger.storage import LedgerStore, check_consistency_handed_out, check_inclusion_handed_out

__all__ = ["InclusionProof", "Ledger", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class InclusionProof:
    index: int
    tree_size: int
    leaf_hash: bytes
    proof: list[bytes]
    checkpoint: str


class Ledger:
    """One ledger database plus (for writers) its checkpoint key."""

    def __init__(
        self,
        store: LedgerStore,
        signer: NoteSigner | None,
        clock: Callable[[], datetime] = utc_now,
        *,
        max_batch: int = 1000,
    ) -> None:
        meta = store.meta()
        missing = sorted({"origin", "vkey"} - meta.keys())
        if missing:
            raise IntegrityError(f"the ledger's metadata has no {' or '.join(missing)} row")
        self.store = store
        self.origin = meta["origin"]
        self.verifier: NoteVerifier = parse_verifier(meta["vkey"])
        if signer is not None and signer.verifier_key() != meta["vkey"]:
            raise InvalidInput("the key file does not hold this ledger's checkpoint key")
        self._signer = signer
        self._clock = clock
        self._max_batch = max_batch
        self._sequencer: Sequencer | None = None

    @classmethod
    def create(
        cls, url: str, origin: str, key_path: Path, clock: Callable[[], datetime] = utc_now
    ) -> Ledger:
        """Create schema and key. Refuses an existing ledger or key file; leaves neither half-made."""
        store = LedgerStore.open(url)
        try:
            if store.exists():
                raise InvalidInput(f"a ledger already exists at {url}; refusing to overwrite it")
            signer = generate_key(origin)
            write_signer(key_path, signer)
            try:
                store.create(origin, signer, clock())
            except BaseException:
                key_path.unlink(missing_ok=True)
                raise
        except BaseException:
            store.close()
            raise
        return cls(store, signer, clock)

    @classmethod
    def open(
        cls,
        url: str,
        key_path: Path | None = None,
        clock: Callable[[], datetime] = utc_now,
        **kw: int,
    ) -> Ledger:
        store = LedgerStore.open(url)
        try:
            signer = load_signer(key_path) if key_path is not None else None
            return cls(store, signer, clock, **kw)
        except BaseException:
            store.close()  # do not leak the engine's connections when opening fails
            raise

    def close(self) -> None:
        if self._sequencer is not None:
            self._sequencer.close()
            self._sequencer = None
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------------

    def require_signer(self) -> NoteSigner:
        if self._signer is None:
            raise InvalidInput("this ledger was opened without its key file; it cannot append")
        return self._signer

    def _seq(self) -> Sequencer:
        if self._sequencer is None:
            self._sequencer = Sequencer(
                self.store,
                self.origin,
                self.require_signer(),
                self._clock,
                max_batch=self._max_batch,
            )
        return self._sequencer

    def append(self, content: bytes) -> AppendResult:
        """Validate and append one body; returns once it is durable, integrated and checkpointed."""
        return self._seq().submit(parse_submission(content)).result()

    def append_many(self, contents: Sequence[bytes]) -> list[AppendResult]:
        """Validate every body first (all or none are submitted), then append them in batches."""
        subs = [parse_submission(c) for c in contents]
        return self.append_submissions(subs)

    def append_submissions(self, subs: Sequence[Submission]) -> list[AppendResult]:
        return self._seq().append_many(subs)

    # -- reading ------------------------------------------------------------------------------

    def checkpoint(self) -> SignedCheckpoint:
        """The latest checkpoint, verified with the ledger's own key before it is handed out."""
        _, note = self.store.latest_checkpoint()
        return open_checkpoint(note, [self.verifier], self.origin)

    def checkpoint_at(self, size: int) -> SignedCheckpoint:
        return open_checkpoint(self.store.checkpoint_at(size), [self.verifier], self.origin)

    def inclusion(self, index: int, size: int | None = None) -> InclusionProof:
        """Proof that record ``index`` is in the tree at ``size`` (default: the latest checkpoint).

        The proof is verified against that checkpoint before it is returned
        (:class:`IntegrityError` otherwise).
        """
        cp = self.checkpoint() if size is None else self.checkpoint_at(size)
        tree_size = cp.checkpoint.size
        if not 0 <= index < tree_size:
            raise NotFound(f"index {index} is not in the tree of size {tree_size}")
        tree = self.store.tree(tree_size)
        leaves, proofs = tree.leaves_and_proofs([index])
        check_inclusion_handed_out(leaves[0], index, proofs[0], cp.checkpoint)
        return InclusionProof(index, tree_size, leaves[0], proofs[0], cp.note)

    def consistency(self, size1: int, size2: int) -> list[bytes]:
        """Proof that the tree at ``size1`` is a prefix of the tree at ``size2``.

        Both sizes must be signed checkpoints' (the ledger signs one per batch and keeps them
        all); the proof is verified against both before it is returned.
        """
        latest = self.checkpoint().checkpoint.size
        if not 0 < size1 <= size2 <= latest:
            raise InvalidInput(f"need 0 < size1 <= size2 <= {latest}, got {size1} and {size2}")
        old, new = self.checkpoint_at(size1).checkpoint, self.checkpoint_at(size2).checkpoint
        proof = self.store.tree(size2).consistency_proof(size1)
        check_consistency_handed_out(proof, old, new)
        return proof
