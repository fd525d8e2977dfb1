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

The records are written as they are read, inside one transaction under the writer's lock
(:meth:`LedgerStore.import_records`); a failure at any step rolls all of it back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from ledger.bodies import MAX_BODY_BYTES, Submission, parse_submission
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.errors import Error, IntegrityError, InvalidInput
from ledger.log import Ledger
from ledger.merkle import CompactRange, hash_leaf
from ledger.note import NoteVerifier
from ledger.record import GENESIS_PREV, Record, check_link

if TYPE_CHECKING:
    from ledger.admission import AsOfLog

__all__ = ["MAX_LINE_BYTES", "admit_body", "export_jsonl", "import_jsonl"]

FORMAT = "provenance-ledger-export"
# A record line holding the largest body append accepts: its base64, plus room for the leaf
# (whose size is bounded by the origin's) and the JSON around them.
MAX_LINE_BYTES = 4 * -(-MAX_BODY_BYTES // 3) + 64 * 1024
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


def _lines(src: IO[bytes], max_bytes: int) -> Iterator[tuple[int, str]]:
    """Number and decode each line, reading at most ``max_bytes + 1`` bytes for any one of them."""
    n = 0
    while line := src.readline(max_bytes + 1):
        n += 1
        if len(line) > max_bytes and not line.endswith(b"\n"):
            raise InvalidInput(
                f"line {n}: longer than {max_bytes} bytes (a record line holds one body of at "
                f"most {MAX_BODY_BYTES} bytes)"
            )
        try:
            yield n, line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidInput(f"line {n}: not UTF-8 (at byte {e.start})") from e


def _parse_line(n: int, line: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except ValueError as e:
        raise InvalidInput(f"line {n}: not JSON") from e
    except RecursionError as e:
        raise InvalidInput(f"line {n}: JSON nested too deeply") from e
    if not isinstance(obj, dict):
        raise InvalidInput(f"line {n}: not a JSON object")
    return obj


def _read_header(lines: Iterator[tuple[int, str]], origin: str) -> _Header:
    first = next(lines, None)
    if first is None:
        raise InvalidInput("the file is empty: not a provenance-ledger export")
    obj = _parse_line(*first)
    if obj.get("format") != FORMAT or obj.get("version") != 1:
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
    try:
        rec = Record.from_leaf(leaf)
    except Error as e:
        raise IntegrityError(f"line {n}: {e}", n - 2) from e
    if obj.get("index") != rec.index:
        raise IntegrityError(f"line {n}: index field disagrees with the leaf", n - 2)
    return rec, body


def _verified_records(
    lines: Iterator[tuple[int, str]], origin: str, want: Checkpoint, as_of: AsOfLog | None
) -> Iterator[tuple[Record, Submission]]:
    """Each record as it is verified; raises at the end unless they reproduce ``want``."""
    prev, last_time, tree = GENESIS_PREV, "", CompactRange()
    for n, line in lines:
        rec, body = _decode_record(n, _parse_line(n, line))
        check_link(rec, index=tree.size, origin=origin, prev=prev, last_time=last_time)
        if tree.size >= want.size:
            raise IntegrityError(
                f"export holds more records than its checkpoint covers ({want.size})", tree.size
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

    ``pinned`` is the source ledger's verifier key, obtained out of band. ``src`` is read once;
    records are verified as they stream into one write transaction, which commits only after the
    last record reproduces the pinned checkpoint's root. Any failure leaves the ledger as it was.
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
    try:
        records = _verified_records(lines, ledger.origin, want, as_of)
        ledger.store.import_records(records, ledger.origin, signer, now, root=want.root_hash)
    finally:
        if as_of is not None:
            as_of.close()
    return want.size


def _as_of(ledger: Ledger) -> AsOfLog:
    """Admission against the registry the imported log records, checked with this ledger's admin
    key (``ledger init --admin-key`` the source's to import its registry)."""
    from ledger.admission import AsOfLog, RootFiles
    from ledger.registry.entries import ADMIN_META_KEY, admin_keys_from_pem

    return AsOfLog(admin_keys_from_pem(ledger.store.meta().get(ADMIN_META_KEY)), RootFiles())
