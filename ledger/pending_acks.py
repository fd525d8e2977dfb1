"""Acknowledgements left on pending rows by the integrator, and their verification by waiters.

The integrator has, in the transaction that logs a batch, every record's bytes and every inclusion
proof (computed from the tiles it just wrote and verified against the checkpoint it just signed).
It writes them onto the batch's pending rows (revision 0007) instead of deleting the rows, so a
waiting appender in any process reads one row instead of looking its body up in the log and
computing its proof from the tiles again.

A row is only a claim. :class:`AckReader` acknowledges from it only what it verifies itself: the
checkpoint with the ledger's key, the record as the record of this very body at this index, and
the proof of the record's leaf against the checkpoint. A row that fails any of these is handed
back, and the waiter looks the body up in the log as it always did, so an ack row written by
someone without the key can cost a lookup but never produce a wrong acknowledgement.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import struct
import zlib
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ledger._internal.db import PlannedEachTime, prepare_for
from ledger.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint, parse_checkpoint
from ledger.errors import Error
from ledger.merkle import HASH_SIZE, hash_leaf, verify_inclusion
from ledger.note import NoteSigner, NoteVerifier, unverified_signatures
from ledger.record import body_record_index
from ledger.sequencer import AppendResult
from ledger.storage import SequencedBatch

__all__ = [
    "ACK_KEEP_SECONDS",
    "ACK_PREFIX",
    "FAILURE_WINDOW_SECONDS",
    "FINISH_AND_PURGE_SQL",
    "FINISH_SQL",
    "PURGE_SECONDS",
    "AckReader",
    "FailureNotices",
    "RowStates",
    "ack_mac_key",
    "encode_acks",
    "finish_params",
    "sign_failure",
]

log = logging.getLogger(__name__)

ACK_KEEP_SECONDS = 30  # an acknowledged row stays this long for its waiter, then a batch drops it
PURGE_SECONDS = 5.0  # how often an integrator's batch drops the rows kept past ACK_KEEP_SECONDS
_CACHED_NOTES = 8
ACK_PREFIX = "ack:"  # an integration notification's element that carries acknowledgements
_HEAD = struct.Struct(">H")  # lengths of the note and of each leaf
_ENTRY = struct.Struct(">32sHB")  # digest, leaf length, number of proof hashes


def ack_mac_key(signer: NoteSigner) -> bytes:
    """The key acknowledgements in notifications are authenticated with: derived from the
    checkpoint key as :func:`ledger.pending.pending_mac_key` is (Ed25519 signatures are
    deterministic), under another message, so only a process holding the key file has it."""
    return hashlib.sha256(signer.sign(b"provenance-ledger acknowledgement MAC key v1")).digest()


def _mac(key: bytes, schema: str, packed: bytes) -> bytes:
    return hmac.new(key, schema.encode() + b"\n" + packed, hashlib.sha256).digest()


_FAILURE_MARK = "mac:"  # the last line of a failure notification: its time and HMAC
FAILURE_WINDOW_SECONDS = 30  # a failure announced longer ago (or ahead, by the clocks) is stale


def sign_failure(key: bytes, schema: str, text: str, now: float, size: int) -> str:
    """The body of a notification that integration failed for the whole log (after the
    schema's line): ``text``, then a line with the time ``now`` (ms), the log's size ``size``
    when it failed, and an HMAC under :func:`ack_mac_key`'s key over schema, time, size and
    text, so a waiter fails its appends only on a failure a process holding the key file
    announced just now, and not once the log has grown past it (anyone who can connect may
    NOTIFY; see :class:`FailureNotices`)."""
    at = str(int(now * 1000))  # milliseconds: two announcements of one failure differ
    mac = _mac(key, schema, _failure_message(at, str(size), text))
    return f"{text}\n{_FAILURE_MARK}{at}:{size}:{base64.b64encode(mac).decode()}"


def _failure_message(at: str, size: str, text: str) -> bytes:
    return f"failure\n{at}\n{size}\n{text}".encode()


DB_NOW = "SELECT extract(epoch FROM clock_timestamp())::float8"
"""The database's clock (s): a row error is signed by it, as a wait's insert is timed by it
(:class:`~ledger.pending.Inserted`), so hosts' clocks never enter the comparison."""


def sign_row_error(
    key: bytes, schema: str, digest: bytes, row_mac: object, text: str, now: float
) -> str:
    """What the integrator writes into a failed pending row's ``error``: ``text`` (an
    :func:`~ledger.pending.error_text`), then a line with an HMAC under :func:`ack_mac_key`'s key
    over the schema, the row's digest and its submission MAC as read (``row_mac``: bytes, or
    None), the time ``now`` (ms; also on the line) and the text. Anyone who can write the table
    can write an error; a waiter believes only one this makes for the submission it made
    (:func:`open_row_error`). Found by the
    hostile tests of 2026-12-02: an error written onto a live row by a plain database session
    failed its append with the writer's own words and status — a 403 "revoked" for a body that
    was then logged; and a genuine error bound to the row's submission *time* (a column the
    writer can set too) could be copied from a planted row onto a real submission; and one
    signed long ago, written back onto a row revived for the purpose, answered an append that
    found that row pending (so the time: a wait takes no error signed before its insert)."""
    at = str(int(now * 1000))
    mac = _mac(key, schema, _row_error_message(digest, row_mac, at, text))
    return f"{text}\n{_FAILURE_MARK}{at}:{base64.b64encode(mac).decode()}"


def open_row_error(
    key: bytes, schema: str, digest: bytes, row_mac: object, stored: str
) -> tuple[str, float] | None:
    """The error text of a failed row's ``stored`` error and when it was signed (s), if
    :func:`sign_row_error` made it for this digest and submission MAC; None if not (forged,
    moved from another row, or left from another submission of the body)."""
    text, _, last = stored.rpartition("\n")
    if not last.startswith(_FAILURE_MARK):
        return None
    at, _, encoded = last[len(_FAILURE_MARK) :].partition(":")
    try:
        mac = base64.b64decode(encoded, validate=True)
        when = int(at) / 1000
    except (binascii.Error, ValueError):
        return None
    expected = _mac(key, schema, _row_error_message(digest, row_mac, at, text))
    return (text, when) if hmac.compare_digest(mac, expected) else None


def _row_error_message(digest: bytes, row_mac: object, at: str, text: str) -> bytes:
    # hex, one field a line, the free text last: no digest or MAC can stand for another's
    raw = bytes(row_mac) if isinstance(row_mac, (bytes, bytearray, memoryview)) else b""
    return f"row error\n{digest.hex()}\n{raw.hex()}\n{at}\n{text}".encode()


LISTEN_SKEW_SECONDS = 2.0
"""How far another host's clock may lag this one's when :meth:`FailureNotices.listening` drops
notices announced before the waiter listened, and a waiter drops a row error signed before its
wait's insert."""


class FailureNotices:
    """A waiter's check of failure notifications. A :func:`sign_failure` body counts once,
    within :data:`FAILURE_WINDOW_SECONDS` of its time, and not if this process was acknowledged
    under a checkpoint larger than the log it says failed after it was announced: the log grew
    since, so it was repaired. A notification is delivered to every listener once, so a second
    delivery of the same body is a replay by someone who captured it with LISTEN (found by the
    hostile test of 2026-12-01: a genuine failure captured once failed every waiting append
    whenever it was sent again, long after the log was repaired)."""

    def __init__(self, key: bytes | None) -> None:
        self._key = key
        self._seen: dict[bytes, float] = {}  # MACs accepted, by their time
        # the largest checkpoint this process was acknowledged under, and when it last was
        self._largest, self._largest_at = 0, float("-inf")
        self._since = float("-inf")  # when the waiter last began to LISTEN

    def listening(self, now: float) -> None:
        """The waiter began to ``LISTEN`` at ``now`` (first or after a reconnection). A notice
        announced before then was never delivered to this listener, so one that arrives is a
        replay: :meth:`open` refuses notices older than ``now`` less
        :data:`LISTEN_SKEW_SECONDS` (the clocks of two hosts differ). Without it, a new process
        or a reconnected waiter could be failed by a genuine notice captured and sent again
        within the window (its ``_seen`` is empty)."""
        self._since = now

    def saw(self, tree_size: int, now: float) -> None:
        """An acknowledgement under a checkpoint of ``tree_size`` reached this process at
        ``now``."""
        if tree_size >= self._largest:
            self._largest, self._largest_at = tree_size, now

    def open(self, schema: str, body: str, now: float) -> str | None:
        """The failure text of ``body``, or None (it is then only a wake-up): no valid HMAC,
        outside the window, of a log that grew past it since, or seen before."""
        text, _, last = body.rpartition("\n")
        if self._key is None or not last.startswith(_FAILURE_MARK):
            return None
        at, _, rest = last[len(_FAILURE_MARK) :].partition(":")
        size, _, encoded = rest.partition(":")
        try:
            mac = base64.b64decode(encoded, validate=True)
            when, failed_at = int(at) / 1000, int(size)
        except (binascii.Error, ValueError):
            return None
        expected = _mac(self._key, schema, _failure_message(at, size, text))
        if (
            not hmac.compare_digest(mac, expected)
            or abs(now - when) > FAILURE_WINDOW_SECONDS
            or when < self._since - LISTEN_SKEW_SECONDS  # announced before we listened
            # acknowledged under a larger checkpoint after the failure was announced: repaired
            # since (a log found smaller than before, announced after, is a failure in itself)
            or (failed_at < self._largest and self._largest_at > when)
        ):
            return None
        self._seen = {m: t for m, t in self._seen.items() if now - t <= FAILURE_WINDOW_SECONDS}
        if mac in self._seen:
            return None
        self._seen[mac] = when
        return text


def encode_acks(
    key: bytes,
    schema: str,
    note: str,
    entries: Sequence[tuple[bytes, bytes, Sequence[bytes]]],
    budget: int,
) -> str | None:
    """``entries`` (digest, record bytes, inclusion proof) of a committed batch and the note it
    signed, as one notification element of at most ``budget`` characters: ``ack:`` and the
    base64 of an HMAC (:func:`ack_mac_key`, over the schema and the rest) and the compressed
    entries. As many leading entries as fit (None: not even one); the waiter of a body left
    out reads its acknowledgement row."""
    head = _HEAD.pack(len(note.encode())) + note.encode()
    parts = [
        _ENTRY.pack(d, len(leaf), len(proof)) + leaf + b"".join(proof) for d, leaf, proof in entries
    ]
    n = len(parts)
    while n:
        packed = zlib.compress(head + b"".join(parts[:n]), 1)
        text = ACK_PREFIX + base64.b64encode(_mac(key, schema, packed) + packed).decode()
        if len(text) <= budget:
            return text
        n //= 2
    return None


# The end of a batch, one statement in its transaction: acknowledge the logged rows, and delete
# the rows of bodies that were in the log already (by key). The row sets are disjoint (a row
# acknowledged now had no ``done_at`` in the statement's snapshot). Every PURGE_SECONDS the same
# statement also drops the rows acknowledged over ACK_KEEP_SECONDS ago: that takes a scan of the
# table (30 s of appends), which every batch paid until 2026-12-01 (1.4-1.5 ms of a batch of six,
# most of the integrator's database time; docs/benchmarks.md).
# The waiters are woken after the commit (ledger.pending.notify: never inside the durable write).
FINISH_SQL = PlannedEachTime(
    "WITH acked AS ("
    " UPDATE pending p SET idx = v.idx, leaf = v.leaf, proof = v.proof, cp_size = %s,"
    " done_at = now()"
    " FROM unnest(%b::bytea[], %s::bigint[], %b::bytea[], %b::bytea[])"  # bytea arrays in binary
    " AS v(digest, idx, leaf, proof) WHERE p.digest = v.digest)"
    " DELETE FROM pending WHERE digest = ANY(%b::bytea[])"
)
FINISH_AND_PURGE_SQL = PlannedEachTime(
    FINISH_SQL + " OR done_at < now() - make_interval(secs => %s)"
)


def finish_params(
    read: Sequence[bytes], seq: SequencedBatch, purge: bool = False
) -> tuple[Any, ...]:
    """The parameters of :data:`FINISH_SQL` (``purge``: of :data:`FINISH_AND_PURGE_SQL`) for the
    rows ``read`` (in batch order) of ``seq``."""
    digests: list[bytes] = []
    indices: list[int] = []
    leaves: list[bytes] = []
    proofs: list[bytes] = []
    known: list[bytes] = []
    for i, digest in enumerate(read):
        index = seq.indices[i]
        leaf = seq.records.get(index) if seq.new[i] else None
        if leaf is None or not seq.proofs:  # in the log before this batch: looked up as before
            known.append(digest)
            continue
        digests.append(digest)
        indices.append(index)
        leaves.append(leaf)
        proofs.append(b"".join(seq.proofs[i]))
    params = (seq.tree_size, digests, indices, leaves, proofs, known)
    return (*params, ACK_KEEP_SECONDS) if purge else params


# Every pending row of the digests, whatever its state: its acknowledgement (record, proof and
# the note of its checkpoint), or its error, or neither (still to be integrated).
_ROWS = PlannedEachTime(
    "SELECT p.digest, p.idx, p.leaf, p.proof, c.note, p.error, p.done_at IS NULL, p.mac"
    " FROM pending p "
    "LEFT JOIN checkpoints c ON c.size = p.cp_size WHERE p.digest = ANY(%b::bytea[])"
)


@dataclass
class RowStates:
    """What the pending rows say of some digests (:meth:`AckReader.states`)."""

    acks: dict[bytes, AppendResult] = field(default_factory=dict)  # verified acknowledgements
    queued: set[bytes] = field(default_factory=set)  # rows still to be integrated
    # rows marked failed: the error as stored and the row's submission MAC (its waiter opens
    # it, knowing which submission it made: open_row_error)
    failed: dict[bytes, tuple[str, bytes | None]] = field(default_factory=dict)

    def unsettled(self, digests: Sequence[bytes]) -> list[bytes]:
        """Of ``digests``, those the rows leave open, to be looked up in the log: no row
        (logged already, or acknowledged long ago), an acknowledgement that did not verify, or a
        failed row (in case the body was logged another way)."""
        return [d for d in digests if d not in self.acks and d not in self.queued]


class AckReader:
    """Reads and verifies acknowledgement rows for one process's waiter."""

    def __init__(self, verifier: NoteVerifier, origin: str, mac_key: bytes | None = None) -> None:
        self._verifier, self._origin, self._mac_key = verifier, origin, mac_key
        self._notes: dict[str, SignedCheckpoint] = {}

    def from_notification(
        self, element: str, schema: str, waiting: Container[bytes]
    ) -> dict[bytes, AppendResult]:
        """The acknowledgements an :func:`encode_acks` element carries for bodies in
        ``waiting``, each verified as a row's is (the record names this body at its index, and
        its proof verifies against the note's checkpoint) — except the note's signature: the
        element's HMAC stands for it. Only a process holding the key file can make that HMAC,
        and the integrator makes it over a note it signed and verified itself, after the batch
        committed. An element that fails is ignored (and logged): its bodies' rows remain."""
        if self._mac_key is None:
            return {}
        try:
            raw = base64.b64decode(element[len(ACK_PREFIX) :], validate=True)
            mac, packed = raw[:32], raw[32:]
            if not hmac.compare_digest(mac, _mac(self._mac_key, schema, packed)):
                raise Error("its HMAC does not verify")
            data = zlib.decompress(packed)
            (size,) = _HEAD.unpack_from(data)
            at = _HEAD.size + size
            note = data[_HEAD.size : at].decode()
            text, _ = unverified_signatures(note)
            cp = parse_checkpoint(text)
            if cp.origin != self._origin:
                raise Error(f"its checkpoint is of {cp.origin!r}")
        except (Error, ValueError, binascii.Error, zlib.error, struct.error) as e:
            log.warning("ignoring an acknowledgement notification: %s", e)
            return {}
        out: dict[bytes, AppendResult] = {}
        while at < len(data):
            try:
                digest, leaf_len, hashes = _ENTRY.unpack_from(data, at)
            except struct.error:
                log.warning("ignoring the rest of an acknowledgement notification: cut short")
                break
            at += _ENTRY.size
            leaf, proof = (
                data[at : at + leaf_len],
                data[at + leaf_len : at + leaf_len + hashes * 32],
            )
            at += leaf_len + hashes * HASH_SIZE
            if digest in waiting:
                result = self._verified(digest, None, leaf, proof, note, cp)
                if result is not None:
                    out[digest] = result
        return out

    def states(self, conn: psycopg.Connection[Any], digests: Sequence[bytes]) -> RowStates:
        """In one query, what the rows of ``digests`` say: each acknowledgement that verifies
        (as above), each row still to be integrated, each failed row's error (unopened)."""
        out = RowStates()
        rows = conn.execute(_ROWS, (list(digests),), prepare=prepare_for(_ROWS)).fetchall()
        for raw, index, leaf, proof, note, error, undone, row_mac in rows:
            digest = bytes(raw)
            if error is not None:
                out.failed[digest] = (str(error), None if row_mac is None else bytes(row_mac))
            elif index is None:  # queued; or, done yet with no record, a tampered row: open
                if undone:
                    out.queued.add(digest)
            elif note is not None and leaf is not None and proof is not None:
                result = self._verified(digest, int(index), bytes(leaf), bytes(proof), note)
                if result is not None:
                    out.acks[digest] = result
        return out

    def _checkpoint(self, note: str) -> SignedCheckpoint:
        signed = self._notes.get(note)
        if signed is None:
            signed = open_checkpoint(note, [self._verifier], self._origin)
            if len(self._notes) >= _CACHED_NOTES:
                self._notes.pop(next(iter(self._notes)))
            self._notes[note] = signed
        return signed

    def _verified(
        self,
        digest: bytes,
        index: int | None,
        leaf: bytes,
        proof: bytes,
        note: str,
        cp: Checkpoint | None = None,
    ) -> AppendResult | None:
        """The acknowledgement of ``digest`` if the record ``leaf`` names it at ``index`` (None:
        the record's own), inside ``cp`` (None: ``note`` verified with the ledger's key), and its
        ``proof`` verifies against that checkpoint; else None (and a warning)."""
        try:
            if cp is None:
                cp = self._checkpoint(note).checkpoint
            named = body_record_index(leaf, digest)
            index = named if index is None else index
            if index is None or named != index or not 0 <= index < cp.size:
                raise Error(f"the row does not name record {index} of this body")
            if len(proof) % HASH_SIZE:
                raise Error("the proof is not a whole number of hashes")
            hashes = [proof[i : i + HASH_SIZE] for i in range(0, len(proof), HASH_SIZE)]
            leaf_hash = hash_leaf(leaf)
            verify_inclusion(leaf_hash, index, cp.size, hashes, cp.root_hash)
        except Error as e:  # never trusted: the waiter looks the body up in the log instead
            log.warning("ignoring the acknowledgement row of %s: %s", digest.hex()[:16], e)
            return None
        return AppendResult(index, leaf_hash, hashes, cp.size, note, False)
