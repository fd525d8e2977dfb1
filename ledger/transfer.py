"""``ledger export`` / ``ledger import``: the log as JSON Lines, re-verified on the way in.

Line 1 is a header ``{"format": "provenance-ledger-export", "version": 1, "origin", "vkey",
"checkpoint"}``; every further line is one record ``{"index", "leaf", "body"}`` with the leaf bytes
and the exact body bytes in base64.

Import trusts nothing the file says about itself. In order:

1. the header names this ledger's origin, and its checkpoint verifies with the verifier key the
   operator *pins* (the source ledger's key, given out of band) — never with the ``vkey`` the file
   carries;
2. the file is read once, a line at a time (at most :data:`MAX_LINE_BYTES` each); every record's
   leaf is canonical, its index, ``prev`` and time extend the chain, its body hashes to the leaf's
   digest and is admitted by :func:`admit_body` (the checks ``append`` applies, including a
   signature the trust registry *as this file records it before that record* allowed at that
   record's time — :class:`~ledger.admission.AsOfLog`; skipped only with ``allow_untrusted``);
3. the records reproduce the pinned checkpoint's size and root.

Every line goes through the strict JSON parser (no duplicate keys, no NaN, UTF-8 only); ``index``
and ``version`` must be JSON integers; no body may stand for two records. Verified records go to a
spool (memory, then a private temporary file); only when the whole file has checked out is the
writer's lock taken and the spool written in one transaction (:meth:`LedgerStore.import_records`,
which re-checks chain and root); a failure at any step leaves the ledger as it was. So the lock is
never held while the input is slow or stalled.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from ledger._internal.jsontext import loads as strict_json
from ledger.bodies import MAX_BODY_BYTES, Submission, parse_submission
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.errors import Error, IntegrityError, InvalidInput
from ledger.log import Ledger
from ledger.merkle import CompactRange, hash_leaf
from ledger.note import NoteVerifier
from ledger.record import BODY_TYPES, GENESIS_PREV, Record, check_link

if TYPE_CHECKING:
    from ledger.admission import AsOfLog

__all__ = ["MAX_LINE_BYTES", "admit_body", "export_jsonl", "import_jsonl"]

FORMAT = "provenance-ledger-export"
# A record line holding the largest body append accepts: its base64, plus a fixed bound on the
# rest. The rest is bounded because the origin is (MAX_ORIGIN_BYTES, at `ledger init`): a leaf is
# at most ~330 bytes plus the origin escaped (6 bytes per byte at worst), the header line holds
# the origin three times (origin, vkey, checkpoint) escaped by `json.dumps` — well under 16 KiB.
LINE_OVERHEAD_BYTES = 16 * 1024
MAX_LINE_BYTES = 4 * -(-MAX_BODY_BYTES // 3) + LINE_OVERHEAD_BYTES
SPOOL_MEMORY_BYTES = 32 << 20  # verified records kept in memory before the spool goes to disk
_EXPORT_BATCH = 2000


# -- export -----------------------------------------------------------------------------------


def export_jsonl(
    ledger: Ledger, out: IO[str], progress: Callable[[int], None] | None = None
) -> int:
    """Write header and every record up to the latest checkpoint; return the record count.

    What is written is checked on the way out: indices are gapless, every body is present, the
    leaves reproduce the checkpoint's root, and no stored record lies past the latest checkpoint.
    Raises :class:`IntegrityError` naming the index otherwise (the caller discards the output).
    """
    head = ledger.store.size()  # before the checkpoint: a concurrent append is then covered
    cp = ledger.checkpoint()  # the note's own verified size and root, not the row's columns
    size = cp.checkpoint.size
    header = {
        "format": FORMAT,
        "version": 1,
        "origin": ledger.origin,
        "vkey": ledger.store.meta()["vkey"],
        "checkpoint": cp.note,
    }
    out.write(json.dumps(header) + "\n")
    tree = CompactRange()
    batch: list[tuple[int, bytes, Record]] = []
    for idx, leaf, _, _, _ in ledger.store.iter_rows():
        if idx >= size:
            break
        if idx != tree.size:
            raise IntegrityError(f"record {tree.size} is missing", tree.size)
        try:
            rec = Record.from_leaf(leaf)
        except Error as e:
            raise IntegrityError(f"record {idx}: leaf is not a valid record: {e}", idx) from e
        tree.append(hash_leaf(leaf))
        batch.append((idx, leaf, rec))
        if len(batch) >= _EXPORT_BATCH:
            _write_batch(ledger, out, batch)
            if progress:
                progress(tree.size)
    _write_batch(ledger, out, batch)
    if tree.size != size or tree.root() != cp.checkpoint.root_hash:
        raise IntegrityError(
            f"the stored records do not reproduce the latest checkpoint (size {size})", tree.size
        )
    if head > size:  # commits write both, so a record past the latest checkpoint is tampering
        raise IntegrityError(f"record {size} is not covered by any signed checkpoint", size)
    return size


def _write_batch(ledger: Ledger, out: IO[str], batch: list[tuple[int, bytes, Record]]) -> None:
    """Each record's body, re-hashed and type-checked against its leaf before it is written."""
    bodies = ledger.store.bodies([rec.body_digest for _, _, rec in batch])
    for idx, leaf, rec in batch:
        stored = bodies.get(rec.body_digest)
        if stored is None:
            raise IntegrityError(f"record {idx}: body {rec.body} is missing", idx)
        body_type, content = stored
        if hashlib.sha256(content).digest() != rec.body_digest:
            raise IntegrityError(f"record {idx}: body bytes do not hash to {rec.body}", idx)
        if body_type != rec.body_type:
            raise IntegrityError(
                f"record {idx}: body type {body_type!r} is not the leaf's {rec.body_type!r}", idx
            )
        line = {
            "index": idx,
            "leaf": base64.b64encode(leaf).decode(),
            "body": base64.b64encode(content).decode(),
        }
        out.write(json.dumps(line) + "\n")
    batch.clear()


# -- import -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    origin: str
    vkey: str
    checkpoint: str


def _lines(src: IO[bytes], max_bytes: int) -> Iterator[tuple[int, bytes]]:
    """Number each line, reading at most ``max_bytes + 1`` bytes for any one of them."""
    n = 0
    while line := src.readline(max_bytes + 1):
        n += 1
        if len(line) > max_bytes and not line.endswith(b"\n"):
            raise InvalidInput(
                f"line {n}: longer than {max_bytes} bytes (a record line holds one body of at "
                f"most {MAX_BODY_BYTES} bytes)"
            )
        yield n, line


def _parse_line(n: int, line: bytes) -> dict[str, Any]:
    """One line through the strict parser (UTF-8, no duplicate keys, no NaN, bounded nesting)."""
    obj = strict_json(line, f"line {n}")
    if not isinstance(obj, dict):
        raise InvalidInput(f"line {n}: not a JSON object")
    return obj


def _is_int(value: object, want: int | None = None) -> bool:
    """A JSON integer (``true`` and ``1.0`` are not), equal to ``want`` if given."""
    return type(value) is int and (want is None or value == want)


def _read_header(lines: Iterator[tuple[int, bytes]], origin: str) -> _Header:
    first = next(lines, None)
    if first is None:
        raise InvalidInput("the file is empty: not a provenance-ledger export")
    obj = _parse_line(*first)
    if obj.get("format") != FORMAT or not _is_int(obj.get("version"), 1):
        raise InvalidInput("not a provenance-ledger export (bad header line)")
    for field in ("origin", "vkey", "checkpoint"):
        if not isinstance(obj.get(field), str):
            raise InvalidInput(f"export header has no {field!r} string")
    if obj["origin"] != origin:
        raise InvalidInput(f"export is of log {obj['origin']!r}, this ledger is {origin!r}")
    return _Header(obj["origin"], obj["vkey"], obj["checkpoint"])


def _open_pinned(header: _Header, pinned: NoteVerifier) -> Checkpoint:
    """The export's checkpoint, verified with the operator's pinned key and nothing else."""
    try:
        return open_checkpoint(header.checkpoint, [pinned], header.origin).checkpoint
    except Error as e:
        raise IntegrityError(
            f"the export's checkpoint does not verify with the pinned key "
            f"{pinned.name}+{pinned.key_hash:08x}: {e}"
        ) from e


def admit_body(rec: Record, content: bytes, as_of: AsOfLog | None = None) -> Submission:
    """The one place an imported body is admitted: it must be the body the leaf names, and pass
    the checks ``append`` applies (size, JSON, envelope or bundle shape, type against content;
    with ``as_of``, Statement and a trusted signature as of the record's time — records must then
    come in index order).

    A body that does not hash to the leaf's digest is an integrity failure; a body that does but
    that ``append`` would refuse is invalid input.
    """
    if hashlib.sha256(content).digest() != rec.body_digest:
        raise IntegrityError(f"record {rec.index}: body does not hash to {rec.body}", rec.index)
    if as_of is not None:
        sub = as_of.admit_record(rec, content).submission  # its errors name the record
    else:
        try:
            sub = parse_submission(content)
        except InvalidInput as e:
            raise InvalidInput(f"record {rec.index}: {e}") from e
    if sub.body_type != rec.body_type:
        raise InvalidInput(
            f"record {rec.index}: the leaf says {rec.body_type} but the body is {sub.body_type}"
        )
    return sub


def _decode_record(n: int, obj: dict[str, Any]) -> tuple[Record, bytes]:
    try:
        leaf = base64.b64decode(obj["leaf"], validate=True)
        body = base64.b64decode(obj["body"], validate=True)
    except (KeyError, TypeError, binascii.Error, ValueError) as e:
        raise InvalidInput(f"line {n}: malformed record line") from e
    if not _is_int(obj.get("index")):
        raise InvalidInput(f"line {n}: index must be a JSON integer")
    try:
        rec = Record.from_leaf(leaf)
    except Error as e:
        raise IntegrityError(f"line {n}: {e}", n - 2) from e
    if obj["index"] != rec.index:
        raise IntegrityError(f"line {n}: index field disagrees with the leaf", n - 2)
    return rec, body


def _verified_records(
    lines: Iterator[tuple[int, bytes]], origin: str, want: Checkpoint, as_of: AsOfLog | None
) -> Iterator[tuple[Record, Submission]]:
    """Each record as it is verified; raises at the end unless they reproduce ``want``."""
    prev, last_time, tree = GENESIS_PREV, "", CompactRange()
    seen: dict[bytes, int] = {}  # body digest -> the record that holds it
    for n, line in lines:
        rec, body = _decode_record(n, _parse_line(n, line))
        check_link(rec, index=tree.size, origin=origin, prev=prev, last_time=last_time)
        if tree.size >= want.size:
            raise IntegrityError(
                f"export holds more records than its checkpoint covers ({want.size})", tree.size
            )
        first = seen.setdefault(rec.body_digest, rec.index)
        if first != rec.index:  # a ledger stores each body once: append answers the first index
            raise IntegrityError(
                f"record {rec.index}: body {rec.body} is already record {first}", rec.index
            )
        sub = admit_body(rec, body, as_of)
        tree.append(rec.leaf_hash)
        prev, last_time = rec.leaf_hash.hex(), rec.time
        yield rec, sub
    if tree.size != want.size or tree.root() != want.root_hash:
        raise IntegrityError(
            f"export holds {tree.size} records whose root does not match its checkpoint "
            f"(size {want.size})",
            tree.size,
        )


class _Spool:
    """Verified records, held until the whole file has checked out: memory up to
    :data:`SPOOL_MEMORY_BYTES`, then a private temporary file (``$TMPDIR``). The writer's lock is
    taken only once it is complete, so slow or stalled input never holds up appends."""

    _FRAME = struct.Struct(">IBI")  # leaf length, body type, body length

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed by close()
            max_size=SPOOL_MEMORY_BYTES, prefix="ledger-import-"
        )

    def add(self, rec: Record, sub: Submission) -> None:
        kind = BODY_TYPES.index(sub.body_type)
        self._file.write(self._FRAME.pack(len(rec.leaf), kind, len(sub.content)))
        self._file.write(rec.leaf)
        self._file.write(sub.content)

    def replay(self) -> Iterator[tuple[Record, Submission]]:
        """The records again, re-parsed (the writer re-checks chain and root under its lock)."""
        self._file.seek(0)
        while header := self._file.read(self._FRAME.size):
            leaf_len, kind, body_len = self._FRAME.unpack(header)
            rec = Record.from_leaf(self._file.read(leaf_len))
            yield rec, Submission.of(self._file.read(body_len), BODY_TYPES[kind])

    def close(self) -> None:
        self._file.close()


def import_jsonl(
    ledger: Ledger,
    src: IO[bytes],
    pinned: NoteVerifier,
    now: Callable[[], datetime],
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    allow_untrusted: bool = False,
) -> int:
    """Import an export into an empty ledger of the same origin; return the record count.

    ``pinned`` is the source ledger's verifier key, obtained out of band. ``src`` is read once,
    and every record verified (chain, bodies, admission, the pinned checkpoint's root) into a
    spool *before* the writer's lock is taken; then the spool is written in one transaction,
    which re-checks chain and root and commits only if they hold. Any failure leaves the
    ledger as it was.
    """
    signer = ledger.require_signer()
    if pinned.name != ledger.origin:
        raise InvalidInput(
            f"the pinned key is named {pinned.name!r}; this ledger's origin is {ledger.origin!r}"
        )
    if ledger.store.size() != 0:  # checked again under the write lock
        raise InvalidInput("import needs an empty ledger (run `ledger init` on a new database)")
    lines = _lines(src, max_line_bytes)
    want = _open_pinned(_read_header(lines, ledger.origin), pinned)
    as_of = None if allow_untrusted else _as_of(ledger)
    spool = _Spool()
    try:
        for rec, sub in _verified_records(lines, ledger.origin, want, as_of):
            spool.add(rec, sub)
        ledger.store.import_records(spool.replay(), ledger.origin, signer, now, root=want.root_hash)
    finally:
        spool.close()
        if as_of is not None:
            as_of.close()
    return want.size


def _as_of(ledger: Ledger) -> AsOfLog:
    """Admission against the registry the imported log records, checked with this ledger's admin
    key (``ledger init --admin-key`` the source's to import its registry)."""
    from ledger.admission import AsOfLog, RootFiles
    from ledger.registry.entries import ADMIN_META_KEY, admin_keys_from_pem

    return AsOfLog(admin_keys_from_pem(ledger.store.meta().get(ADMIN_META_KEY)), RootFiles())
