"""``ledger check`` of one index range ``[lo, hi)``: what one worker process does.

A range is checked exactly as the single pass of :mod:`ledger.fsck` would check it, given the
state that pass would carry in: ``prev`` and the time of record ``lo - 1`` (read from its stored
columns: if they are wrong, the range before fails at ``lo - 1``, which comes first), and the size
of the last checkpoint at or below ``lo``. Every check happens in the order the single pass makes
it, and the first failure is returned with its *key*, ``(position, phase, step)``: the record
being checked, then record checks (phase 0), its body (1), the checkpoint of size
``position + 1`` (2). The failure the whole check names is the one of the lowest failing range,
so it is the one a single pass would meet first.

Only a checkpoint's root needs more than the range: it is the root of ``[0, size)``. Ranges are
``2^k`` records long and aligned, so that root is the fold of the perfect subtrees covering
``[0, lo)`` with this range's own ``[lo, size)``; the range returns its part and
:mod:`ledger.fsck` compares.

Each row is first tried on a fast path (the canonical leaf that the row's own columns and the
expected ``prev`` make, built from bytes and compared with the stored leaf; ``hashlib`` on
bytes; no objects). Anything the fast path does not accept, it hands to the slow
path — the very functions the single pass used — which either names the failure with the message
it always had, or accepts the row. The fast path only accepts rows the slow path accepts.
"""

from __future__ import annotations

import hashlib
import math
import re
from binascii import hexlify
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import rfc8785

from ledger._internal.cells import blob, integer
from ledger.checkpoint import open_checkpoint
from ledger.errors import Error, IntegrityError
from ledger.fsck_rows import RawReader
from ledger.index.rows import rows_of
from ledger.merkle import EMPTY_ROOT, hash_children
from ledger.note import NoteVerifier, parse_verifier
from ledger.record import GENESIS_PREV, Record, check_link
from ledger.registry.entries import MARKER
from ledger.storage import LedgerStore
from ledger.tiles import TILE_HEIGHT

__all__ = ["Failure", "RangeJob", "RangeResult", "check_range", "fold", "record_index"]

Key = tuple[int, int, int]


@dataclass(frozen=True)
class Failure:
    key: Key
    message: str
    index: int | None


@dataclass(frozen=True)
class RangeJob:
    url: str
    origin: str
    vkey: str
    lo: int
    hi: int


@dataclass
class RangeResult:
    """What a range found: its first failure, and what the whole check combines."""

    lo: int
    hi: int
    failure: Failure | None = None
    roots: list[tuple[int, bytes, bytes]] = field(default_factory=list)  # size, own part, stored
    checkpoints: int = 0  # checkpoints of size in (lo, hi] verified
    leaf_hashes: bytes = b""  # the range's leaf hashes, concatenated: its level-0 tiles
    tile_roots: list[bytes] = field(default_factory=list)  # roots of its full level-0 tiles
    peaks: list[bytes] = field(default_factory=list)  # perfect subtrees covering [lo, hi)
    registry: list[tuple[bytes, bytes]] = field(default_factory=list)  # (leaf, body) candidates
    index_at: int | None = None  # the first record whose stored audit index rows differ


def fold(peaks: list[bytes], acc: bytes | None = None) -> bytes:
    """RFC 6962 root from the perfect subtrees covering a prefix, left to right (``acc``: one
    more on the right)."""
    if acc is None:
        if not peaks:
            return EMPTY_ROOT
        acc, peaks = peaks[-1], peaks[:-1]
    for left in reversed(peaks):
        acc = hash_children(left, acc)
    return acc


class _Found(Exception):
    """Carries a failure out of the loop (an :class:`IntegrityError` with its key)."""

    def __init__(self, key: Key, error: IntegrityError) -> None:
        self.failure = Failure(key, str(error), error.index)


_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_BODY_TYPES = {"dsse": b"dsse", "sigstore-bundle": b"sigstore-bundle"}
_INDEX_LIMIT = 10**16  # the template's index has at most 16 digits


def _leaf_template(origin: str) -> tuple[bytes, ...] | None:
    """The canonical leaf of a valid record of this log, as :meth:`Record._encode` writes it, in
    the pieces around its five fields: every field but ``log`` is plain ASCII and the keys come
    in RFC 8785 order, so only the origin's own RFC 8785 string literal is fixed here. A leaf is
    ``body hex, bodyType, index, prev hex, time`` joined with these pieces, where the body hex is
    64 lower-case hex digits, bodyType ``dsse`` or ``sigstore-bundle``, the index a decimal
    without leading zeros of at most 16 digits, prev 64 lower-case hex digits and the time as
    :data:`_TIME` (None: no valid record names this origin)."""
    try:
        literal = rfc8785.dumps(origin)
    except (rfc8785.CanonicalizationError, UnicodeError):
        return None
    return (
        b'{"body":"sha256:',
        b'","bodyType":"',
        b'","index":',
        b',"log":' + literal + b',"prev":"',
        b'","time":"',
        b'","v":1}',
    )


class _Range:
    def __init__(self, job: RangeJob, store: LedgerStore, reader: RawReader) -> None:
        self.job, self.store, self.reader = job, store, reader
        self.verifier: NoteVerifier = parse_verifier(job.vkey)
        self.template = _leaf_template(job.origin)
        self.out = RangeResult(job.lo, job.hi)
        self.expected = job.lo
        self.prev, self.last_time = GENESIS_PREV, ""  # prev: hex of record expected - 1's hash
        if job.lo:
            link = reader.link_before(job.lo)
            ok = link is not None and type(link[0]) is bytes and type(link[1]) is str
            # not ok: the range before fails at lo - 1, before anything this range could name
            self.prev, self.last_time = (link[0].hex(), link[1]) if ok and link else ("", "")
        self.last_cp = reader.last_checkpoint_at_most(job.lo) or 0
        self.cps = reader.checkpoints(job.lo, job.hi)
        self.next_cp = 0  # position in self.cps of the next checkpoint to reach
        self.good_time: str | None = None  # the last time string that is a valid date
        self.stack: list[bytes] = []  # perfect subtrees covering [lo, expected), left to right
        self.hashes: list[bytes] = []
        self.indexed: list[tuple[int, str, bytes]] = []  # (index, time, body) of checked records

    # -- the tree of the range ----------------------------------------------------------------

    def grow(self, leaf_hash: bytes) -> None:
        """Append record ``expected - 1``'s leaf hash (the hot loop inlines this)."""
        self.hashes.append(leaf_hash)
        node, merges, stack = leaf_hash, 0, self.stack
        count = self.expected - 1 - self.job.lo  # leaves before this one; lo is aligned
        while count & 1:
            node, merges, count = hash_children(stack.pop(), node), merges + 1, count >> 1
            if merges == TILE_HEIGHT:
                self.out.tile_roots.append(node)
        stack.append(node)

    # -- checkpoints --------------------------------------------------------------------------

    def checkpoints_at(self, size: int) -> None:
        """Every checkpoint of ``size`` (verified as the single pass does, but for the root of
        ``[0, size)``, which :mod:`ledger.fsck` compares); then the next row is read, as the
        single pass reads it, and a cell of the wrong type there is named now."""
        while self.next_cp < len(self.cps) and self.cps[self.next_cp][0] == size:
            _, raw_root, root_t, note = self.cps[self.next_cp]
            where = max(size - 1, 0)
            key = (size - 1, 2, 0)
            try:
                root = blob(raw_root, root_t, f"checkpoint at size {size}: root", where)
                cp = open_checkpoint(note, [self.verifier], self.job.origin).checkpoint
            except IntegrityError as e:
                raise _Found(key, e) from e
            except Error as e:
                err = IntegrityError(f"checkpoint at size {size}: {e}", where)
                raise _Found(key, err) from e
            if cp.size != size or cp.root_hash != root:
                err = IntegrityError(
                    f"checkpoint at size {size} does not match the recomputed tree", where
                )
                raise _Found(key, err)
            self.out.roots.append((size, fold(self.stack), root))
            self.out.checkpoints += 1
            self.last_cp = size
            self.next_cp += 1
            if self.next_cp < len(self.cps) and self.cps[self.next_cp][0] == size:
                err = IntegrityError(f"checkpoint at size {size} is stored more than once", where)
                raise _Found(key, err)  # no primary key holds: which copy would a reader get?
            self.convert_checkpoint((size - 1, 2, 1))

    def convert_checkpoint(self, key: Key) -> None:
        if self.next_cp >= len(self.cps):
            return
        size, root, root_t, _ = self.cps[self.next_cp]
        try:
            integer(size, "a checkpoint size")
            blob(root, root_t, f"checkpoint at size {size}: root", max(size - 1, 0))
        except IntegrityError as e:
            raise _Found(key, e) from e

    def start_checkpoints(self) -> None:
        """Skip the checkpoint rows at or below ``lo`` (the range before verified them)."""
        while self.next_cp < len(self.cps) and self.cps[self.next_cp][0] <= self.job.lo:
            self.next_cp += 1

    # -- records ------------------------------------------------------------------------------

    def next_size(self) -> Any:
        return self.cps[self.next_cp][0] if self.next_cp < len(self.cps) else None

    def scan(self) -> None:
        """Every row of the range: the fast path inline, anything else to :meth:`slow`.

        The fast path accepts a row only if each check of the slow path passes: the leaf is the
        canonical leaf of a record with the row's own columns (body digest, body type, index,
        time) and the expected ``prev`` (so it parses, re-encodes to itself, names this log and
        its index, and the columns agree with it), its time is a valid date not before the last,
        the stored hash is the leaf's, the batch rule holds, and the body hashes to the digest.
        Only the leaf's bytes are compared: they are built from the row, not parsed."""
        if self.template is None:
            fast = False
            p0 = p1 = p2 = p3 = p4 = p5 = b""
        else:
            fast = True
            p0, p1, p2, p3, p4, p5 = self.template
        sha256, lo, join, body_types = hashlib.sha256, self.job.lo, b"".join, _BODY_TYPES
        time_ok, limit = _TIME.fullmatch, _INDEX_LIMIT
        stack, hashes, tile_roots = self.stack, self.hashes, self.out.tile_roots
        registry, indexed = self.out.registry, self.indexed
        expected, last_time, last_cp = self.expected, self.last_time, self.last_cp
        prev, good_time = self.prev.encode(), self.good_time
        good_tb = good_time.encode() if good_time is not None else b""
        cp_size = self.next_size()
        for idx, leaf, leaf_hash, digest, time, btype, content in self.reader.records(
            lo, self.job.hi
        ):
            ok = False
            if (
                fast
                and type(idx) is int
                and idx == expected
                and idx < limit
                and type(leaf) is bytes
                and type(leaf_hash) is bytes
                and type(digest) is bytes
                and len(digest) == 32
                and type(content) is bytes
                and type(time) is str
                and type(btype) is str
                and len(prev) == 64
            ):
                bt = body_types.get(btype)
                if time != good_time and time_ok(time) and _valid_time(time):
                    good_time, good_tb = time, time.encode()
                ok = (
                    bt is not None
                    and time == good_time
                    and time >= last_time
                    and leaf
                    == join(
                        (p0, hexlify(digest), p1, bt, p2, b"%d" % idx, p3, prev, p4, good_tb, p5)
                    )
                    and sha256(b"\x00" + leaf).digest() == leaf_hash
                    and (time == last_time or last_cp == idx or not idx)
                    and sha256(content).digest() == digest
                )
            if ok:
                last_time = time
                prev = hexlify(leaf_hash)
                expected = idx + 1
                if MARKER in content:
                    registry.append((leaf, content))
                indexed.append((idx, time, content))
                hashes.append(leaf_hash)
                node, merges, count = leaf_hash, 0, idx - lo
                while count & 1:
                    node = sha256(b"\x01" + stack.pop() + node).digest()
                    merges, count = merges + 1, count >> 1
                    if merges == TILE_HEIGHT:
                        tile_roots.append(node)
                stack.append(node)
            else:
                self.expected, self.last_time, self.last_cp = expected, last_time, last_cp
                self.prev, self.good_time = prev.decode(), good_time
                self.slow(idx)
                expected, last_time, prev = self.expected, self.last_time, self.prev.encode()
            if expected == cp_size:
                self.expected, self.last_cp = expected, last_cp
                self.checkpoints_at(expected)
                last_cp, cp_size = self.last_cp, self.next_size()
        self.expected, self.last_time, self.last_cp = expected, last_time, last_cp
        self.prev, self.good_time = prev.decode(), good_time

    def slow(self, idx: Any) -> None:
        """The single pass's checks of stored row ``idx``, with its messages: raise, or accept."""
        p = self.expected
        row = self.reader.exact_record(idx)
        try:  # read as stored, as LedgerStore.iter_rows reads it
            i = record_index(row[0], p)
            leaf = blob(row[1], row[2], f"record {i}: leaf", i)
            leaf_hash = blob(row[3], row[4], f"record {i}: leaf hash", i)
            digest = blob(row[5], row[6], f"record {i}: body digest", i)
        except IntegrityError as e:
            raise _Found((p, -1, 0), e) from e
        try:
            if i < 0:
                raise IntegrityError(f"a record is stored at index {i}, below 0", i)
            if i < p:  # rows come in index order: record i's row again (no primary key holds)
                raise IntegrityError(f"record {i} is stored more than once", i)
            if i != p:
                raise IntegrityError(f"record {p} is missing (next stored index is {i})", p)
            rec = check_record(
                i, leaf, leaf_hash, digest, row[7], self.job.origin, self.prev, self.last_time
            )
            if i and rec.time != self.last_time and self.last_cp != i:
                raise IntegrityError(
                    f"records {self.last_cp}..{i - 1} have no checkpoint of their own: their "
                    f"batch ended before record {i} (a later time) but no checkpoint of size "
                    f"{i} is stored",
                    self.last_cp,
                )
        except IntegrityError as e:
            raise _Found((p, 0, 0), e) from e
        try:
            content = check_body(self.store, rec)
        except IntegrityError as e:
            raise _Found((p, 1, 0), e) from e
        self.prev, self.last_time = leaf_hash.hex(), rec.time
        self.expected = i + 1
        if MARKER in content:
            self.out.registry.append((leaf, content))
        self.indexed.append((i, rec.time, content))
        self.grow(leaf_hash)

    def run(self) -> RangeResult:
        try:
            self.start_checkpoints()
            self.scan()
            if self.expected < self.job.hi:  # the range ends early: name the gap as the pass would
                nxt = self.reader.next_index(self.expected)
                if nxt is not None:
                    self.slow(nxt)
        except _Found as f:
            self.out.failure = f.failure
        if self.out.failure is None:  # a range that fails names that first: its index is moot
            self.out.index_at = self.index_difference()
        self.out.leaf_hashes = b"".join(self.hashes)
        self.out.peaks = list(self.stack)
        return self.out

    def index_difference(self) -> int | None:
        """The first record of the range whose stored audit index rows are not the rows derived
        again from its body (:func:`ledger.index.rows.rows_of`, the append path's derivation),
        given the stored registry rows (which the caller checks against the log first)."""
        job = self.job
        try:
            registry = self.reader.registry_rows()
        except IntegrityError:
            return None  # malformed registry rows: the caller's registry check names them
        want = rows_of(self.indexed, registry)
        got = self.reader.index_rows(job.lo, job.hi)
        first: int | None = None
        wanted: tuple[list[Any], list[Any], list[Any]] = (want.terms, want.deps, want.vulns)
        for w, g in zip(wanted, got, strict=True):
            # as multisets; dict's == (C) over the counts, not Counter's (a Python loop per row)
            if len(w) == len(g) and dict.__eq__(Counter(w), Counter(g)):
                continue
            differ = Counter(w)
            differ.subtract(Counter(tuple(row) for row in g))
            at = min(_row_index(row, job.lo) for row, n in differ.items() if n)
            first = at if first is None else min(first, at)
        return first


def _row_index(row: tuple[Any, ...], lo: int) -> int:
    """An index row's record (its third column; a stored one may hold anything: a fraction names
    the record it falls in, anything unreadable the first record of the range that read it)."""
    value = row[2]
    if isinstance(value, float) and math.isfinite(value):
        return max(math.floor(value), lo)
    try:
        return int(str(value))
    except ValueError:
        return lo


def record_index(value: object, at: int) -> int:
    """A stored record index, which must be an integer; if it is not (SQLite stores any type),
    the failure names ``at``, the record the single pass expected where it met this row."""
    try:
        return integer(value, "a record index")
    except IntegrityError as e:
        raise IntegrityError(f"record {at}: {e}", at) from e


def _valid_time(t: str) -> bool:
    try:
        datetime.fromisoformat(t)
    except ValueError:
        return False
    return True


def check_record(
    i: int,
    leaf: bytes,
    leaf_hash: bytes,
    digest: bytes,
    time: Any,
    origin: str,
    prev: str,
    last_time: str,
) -> Record:
    """Steps 2 to 5 of :mod:`ledger.fsck` for the stored row of record ``i``."""
    try:
        rec = Record.from_leaf(leaf)
    except Error as e:
        raise IntegrityError(f"record {i}: leaf is not a valid record: {e}", i) from e
    check_link(rec, index=i, origin=origin, prev=prev, last_time=last_time)
    if rec.leaf_hash != leaf_hash:  # from_leaf hashed exactly the stored leaf bytes
        raise IntegrityError(f"record {i}: stored leaf hash does not match the leaf bytes", i)
    if rec.time != time or rec.body_digest != digest:
        raise IntegrityError(f"record {i}: indexed columns disagree with the leaf", i)
    return rec


def check_body(store: LedgerStore, rec: Record) -> bytes:
    """Step 6: the body exists, hashes to the record's digest and has its type; its bytes."""
    try:
        found = store.bodies([rec.body_digest])
    except IntegrityError as e:
        raise IntegrityError(f"record {rec.index}: {e}", rec.index) from e
    got = found.get(rec.body_digest)
    if got is None:
        raise IntegrityError(f"record {rec.index}: body {rec.body} is missing", rec.index)
    if hashlib.sha256(got[1]).digest() != rec.body_digest:
        raise IntegrityError(f"record {rec.index}: body bytes do not hash to {rec.body}", rec.index)
    if got[0] != rec.body_type:
        raise IntegrityError(
            f"record {rec.index}: body type {got[0]!r} is not the record's", rec.index
        )
    return got[1]


_STORES: dict[str, LedgerStore] = {}


def check_range(job: RangeJob) -> RangeResult:
    """Check ``[job.lo, job.hi)`` (in a worker process: its store is opened once and kept)."""
    store = _STORES.get(job.url)
    if store is None:
        store = _STORES[job.url] = LedgerStore.open(job.url)
    return check_range_with(job, store)


def check_range_with(job: RangeJob, store: LedgerStore) -> RangeResult:
    reader = RawReader(store.engine)
    try:
        return _Range(job, store, reader).run()
    finally:
        reader.close()
