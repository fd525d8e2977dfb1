"""The ledger as a library: open a database, append bodies, read proofs and checkpoints."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger._internal.collector import collector_paused
from ledger._internal.db_errors import one_line
from ledger.bodies import MAX_BODY_BYTES, Submission, parse_submission
from ledger.checkpoint import SignedCheckpoint, open_checkpoint
from ledger.errors import (
    AppendsFailed,
    CheckpointError,
    Error,
    IntegrityError,
    InvalidInput,
    NoteError,
    NotFound,
    StorageError,
)
from ledger.keys import load_signer, write_signer
from ledger.note import NoteSigner, NoteVerifier, generate_key, parse_verifier
from ledger.record import MAX_ORIGIN_BYTES, format_time
from ledger.registry.trust_state import TrustState
from ledger.sequencer import DEFAULT_LINGER, AppendResult, Chunk, Sequencer
from ledger.storage import LedgerStore
from ledger.writer_checks import check_consistency_handed_out, check_inclusion_handed_out

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from attest.signers import KeySigner
    from ledger.admission import Admitted, Trust
    from ledger.integrator import SharedSequencer

__all__ = ["InclusionProof", "Ledger", "utc_now"]

_VERIFIED_NOTES = 64  # checkpoints whose verification is remembered (readers ask for the latest)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _check_origin(origin: str) -> None:
    """An origin fits :data:`MAX_ORIGIN_BYTES`, so every record line of an export fits the line
    cap import reads with (``transfer.MAX_LINE_BYTES``)."""
    try:
        size = len(origin.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise InvalidInput("the origin is not encodable as UTF-8") from e
    if size > MAX_ORIGIN_BYTES:
        raise InvalidInput(
            f"the origin is {size} bytes; at most {MAX_ORIGIN_BYTES} (a log name such as "
            "example.com/ledger)"
        )


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
        linger: float = DEFAULT_LINGER,
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
        self._max_batch, self._linger = max_batch, linger
        self._sequencer: Sequencer | SharedSequencer | None = None
        self._writer_lock = threading.Lock()  # one writer per Ledger, none once closed
        self._closed = False
        self._trust = TrustState(store, self.origin)
        self._verified_notes: dict[str, SignedCheckpoint] = {}  # note text -> verified

    @classmethod
    def create(
        cls,
        url: str,
        origin: str,
        key_path: Path,
        clock: Callable[[], datetime] = utc_now,
        *,
        admin_key: KeySigner | None = None,
    ) -> Ledger:
        """Create schema, checkpoint key and admin key (``admin_key_path(key_path)``, unless an
        existing ``admin_key`` is given). Refuses an existing ledger or key file; leaves nothing
        half-made."""
        from ledger.registry.admin import admin_key_path, create_admin_key, public_pem
        from ledger.registry.entries import ADMIN_META_KEY

        _check_origin(origin)
        store = LedgerStore.open(url, create=True)
        written: list[Path] = []
        try:
            if store.exists():
                raise InvalidInput(f"a ledger already exists at {url}; refusing to overwrite it")
            signer = generate_key(origin)
            write_signer(key_path, signer)
            written.append(key_path)
            if admin_key is None:
                admin_key = create_admin_key(admin_key_path(key_path))
                written.append(admin_key_path(key_path))
            store.create(origin, signer, clock(), {ADMIN_META_KEY: public_pem(admin_key)})
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            store.close()
            raise
        return cls(store, signer, clock)

    @classmethod
    def open(
        cls,
        url: str,
        key_path: Path | None = None,
        clock: Callable[[], datetime] = utc_now,
        **kw: Any,
    ) -> Ledger:
        store = LedgerStore.open(url)
        try:
            signer = load_signer(key_path) if key_path is not None else None
            return cls(store, signer, clock, **kw)
        except BaseException:
            store.close()  # do not leak the engine's connections when opening fails
            raise

    def close(self) -> None:
        """Stop the writer (appends from now on are refused) and release the database."""
        with self._writer_lock:
            self._closed = True
            writer, self._sequencer = self._sequencer, None
        if writer is not None:
            writer.close()
        self._trust.close()
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------------

    def now(self) -> datetime:
        """This ledger's clock (admission time, registry entry times)."""
        return self._clock()

    def require_signer(self) -> NoteSigner:
        if self._signer is None:
            raise InvalidInput("this ledger was opened without its key file; it cannot append")
        return self._signer

    def _seq(self) -> Sequencer | SharedSequencer:
        """The writer: in-process on SQLite; on PostgreSQL the shared path (pending rows, one
        integrator across every process: :mod:`ledger.integrator`). Started by the first
        append, once (concurrent first appends share it); refused after :meth:`close`."""
        writer = self._sequencer
        if writer is not None:
            return writer
        with self._writer_lock:
            if self._closed:
                raise _closed_error()
            if self._sequencer is None:
                self._sequencer = self._start_writer()
            return self._sequencer

    def _start_writer(self) -> Sequencer | SharedSequencer:
        if self.store.engine.dialect.name != "postgresql":
            return Sequencer(
                self.store,
                self.origin,
                self.require_signer(),
                self._clock,
                max_batch=self._max_batch,
                linger=self._linger,
            )
        import psycopg

        from ledger.integrator import SharedSequencer

        self.store.ensure_pending_table()
        try:
            return SharedSequencer(
                self.store,
                self.origin,
                self.require_signer(),
                self._clock,
                self.checkpoint,
                max_batch=self._max_batch,
            )
        except psycopg.Error as e:  # its connections: the ledger's error, not a defect
            raise StorageError(f"cannot start the writer: {one_line(e)}") from e

    # Every entry point (``ledger append``, ``ledger import``, the HTTP API) admits first:
    # ``admit`` then ``submit`` / ``append_admitted``. ``append``, ``append_many`` and
    # ``append_submissions`` are the raw sequencing calls (shape checks only) that tests and
    # benchmarks use; they never consult the trust registry.

    def trust(self) -> Trust:
        """The current trust state, as committed when this is called: every call asks, with one
        indexed query (``max(idx)`` of ``registry_entries``), whether the registry changed —
        in this process or any other — and only then re-reads it. So a submission admitted
        after a revocation was acknowledged, by any process, is judged with it."""
        return self._trust.current()

    def trust_at(self, version: int) -> Trust | None:
        """The trust state this process holds if it is that of registry version ``version``
        (read by the caller, after its request arrived), else None: then ask :meth:`trust`."""
        return self._trust.held(version)

    def admit(
        self,
        content: bytes,
        *,
        at: datetime | None = None,
        max_bytes: int = MAX_BODY_BYTES,
        trust: Trust | None = None,
    ) -> Admitted:
        """Run every admission check (see :mod:`ledger.admission`) at ``at`` (default: now, by
        this ledger's clock) against the current trust state (or ``trust``, a :meth:`trust` read
        after the body arrived); raise the first failure. A body over ``max_bytes`` (the server's
        ``LEDGER_MAX_BODY_BYTES``; at most :data:`~ledger.bodies.MAX_BODY_BYTES`, the most any
        ledger holds) is :class:`TooLarge`."""
        from ledger.admission import admit_body

        limit = min(max_bytes, MAX_BODY_BYTES)
        trusted = self.trust() if trust is None else trust
        return admit_body(content, trusted, format_time(at or self._clock()), max_bytes=limit)

    def admit_many(
        self, contents: Sequence[bytes], *, max_bytes: int = MAX_BODY_BYTES
    ) -> list[Admitted | Error]:
        """:meth:`admit` for each body against one trust state, read once, at one instant (a
        batch's arrival): each body's :class:`Admitted` or the error that refused it."""
        from ledger.admission import admit_bodies

        try:
            trust = self.trust()
        except Error as e:
            return [e] * len(contents)
        at = format_time(self._clock())
        return admit_bodies(contents, trust, at, max_bytes=min(max_bytes, MAX_BODY_BYTES))

    def submit(self, admitted: Admitted) -> Future[AppendResult]:
        """Queue an admitted body; the future resolves once it is durable and checkpointed.
        Raises :class:`~ledger.errors.Overloaded` at once when the queue is full. A registry
        entry never joins a batch: it is appended here, at once (:meth:`append_registry`), and
        the future returned is already done."""
        if admitted.registry_op is not None:
            fut: Future[AppendResult] = Future()
            try:
                fut.set_result(self.append_registry(admitted))
            except Error as e:
                fut.set_exception(e)
            return fut
        return self._seq().submit(admitted.submission)

    def submit_many(self, subs: Sequence[Submission]) -> list[tuple[int, Chunk]]:
        """Queue admitted attestations' submissions in order (never a registry entry: those go
        through :meth:`submit`); ``(size, future)`` per chunk, each future resolving to its
        chunk's outcomes once they are durable and checkpointed (each an
        :class:`~ledger.sequencer.AppendResult`, or the error that failed that body alone), or
        failing with the chunk's error (an :class:`~ledger.errors.Error` such as
        :class:`~ledger.errors.Overloaded`)."""
        return self._seq().submit_many(subs)

    def append_admitted(self, admitted: Sequence[Admitted]) -> list[AppendResult]:
        """Append admitted bodies in order and wait for all (blocking for queue space). Runs of
        attestations are batched; each registry entry is appended on its own. If any fails,
        :class:`~ledger.errors.AppendsFailed` once all have finished, as
        :meth:`Sequencer.append_many` does."""
        outcomes: list[AppendResult | BaseException] = []
        run: list[Submission] = []

        def flush() -> None:
            if run:
                try:
                    outcomes.extend(self.append_submissions(run))
                except AppendsFailed as e:
                    outcomes.extend(e.outcomes)  # type: ignore[arg-type]
                run.clear()

        for a in admitted:
            if a.registry_op is None:
                run.append(a.submission)
                continue
            flush()
            try:
                outcomes.append(self.append_registry(a))
            except Error as e:
                outcomes.append(e)
        flush()
        AppendsFailed.check(outcomes)
        return [o for o in outcomes if isinstance(o, AppendResult)]

    def append_registry(self, admitted: Admitted) -> AppendResult:
        """Append one admitted registry entry on its own, synchronously. Inside the write
        transaction, under the write lock and before it is sequenced, it is checked again
        against the registry as committed (:func:`~ledger.registry.entries.require_applies`):
        a change that lost a race to another (two adds of one name) is refused with the error
        admission would now give, and nothing is written. Returns once checkpointed."""
        from ledger.registry.entries import require_applies

        op, sub = admitted.registry_op, admitted.submission
        if op is None:
            raise InvalidInput("not a registry entry")
        if self._closed:
            raise _closed_error()

        def recheck(conn: Connection) -> list[Submission]:
            require_applies(conn, sub.digest, op)
            return [sub]

        try:
            seq = self.store.sequence(recheck, self.origin, self.require_signer(), self._clock)
        finally:
            self._trust.forget()
        return AppendResult(
            seq.indices[0],
            seq.leaf_hashes[0],
            seq.proofs[0],
            seq.tree_size,
            seq.checkpoint,
            not seq.new[0],
        )

    def writer_alive(self) -> bool:
        """False once this process's sequencer thread has died (no appends can complete)."""
        return self._sequencer is None or self._sequencer.alive()

    def append(self, content: bytes) -> AppendResult:
        """Raw: shape-check and append one body (no trust check); returns once checkpointed."""
        return self._seq().submit(parse_submission(content)).result()

    def append_many(self, contents: Sequence[bytes]) -> list[AppendResult]:
        """Raw: shape-check every body first (all or none are submitted), then append them.
        The cyclic garbage collector is paused meanwhile (:mod:`ledger._internal.collector`)."""
        with collector_paused():
            subs = [parse_submission(c) for c in contents]
            return self.append_submissions(subs)

    def append_submissions(self, subs: Sequence[Submission]) -> list[AppendResult]:
        """Raw: sequence already shape-checked bodies."""
        with collector_paused():
            return self._seq().append_many(subs)

    # -- reading ------------------------------------------------------------------------------

    def checkpoint(self) -> SignedCheckpoint:
        """The latest checkpoint, verified with the ledger's own key before it is handed out."""
        size, note = self.store.latest_checkpoint()
        return self._stored_checkpoint(size, note)

    def checkpoint_at(self, size: int) -> SignedCheckpoint:
        return self._stored_checkpoint(size, self.store.checkpoint_at(size))

    def latest_checkpoint_in(self, conn: Connection) -> SignedCheckpoint:
        """:meth:`checkpoint`, read on ``conn`` (a read that needs more than the checkpoint: one
        connection, one transaction)."""
        size, note = self.store._latest_checkpoint(conn)
        return self._stored_checkpoint(size, note)

    def stored_checkpoint(self, size: int, note: str) -> SignedCheckpoint:
        """The checkpoint row ``(size, note)`` a caller read itself, verified like any other
        (:meth:`_stored_checkpoint`)."""
        return self._stored_checkpoint(size, note)

    def _stored_checkpoint(self, size: int, note: str) -> SignedCheckpoint:
        """A stored note, verified, and of the size its row is filed under. Stored data that
        fails is an integrity failure (exit 1), never bad input."""
        where = max(size - 1, 0)
        cached = self._verified_notes.get(note)
        if cached is not None and cached.checkpoint.size == size:
            return cached  # the same text verified before: verifying is deterministic
        try:
            signed = open_checkpoint(note, [self.verifier], self.origin)
        except (NoteError, CheckpointError) as e:
            raise IntegrityError(
                f"the stored checkpoint at size {size} is not valid: {e}", where
            ) from e
        if signed.checkpoint.size != size:
            raise IntegrityError(
                f"the checkpoint stored at size {size} is a signed note of size "
                f"{signed.checkpoint.size}",
                where,
            )
        if len(self._verified_notes) >= _VERIFIED_NOTES:
            self._verified_notes = {}  # threads share it: replace, never mutate while full
        self._verified_notes[note] = signed
        return signed

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


def _closed_error() -> StorageError:
    return StorageError("this ledger has been closed; it takes no more appends")
