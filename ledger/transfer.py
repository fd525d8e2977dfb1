"""``ledger export`` / ``ledger import``: the log as JSON Lines, re-verified on the way in.

Line 1 is a header ``{"format": "provenance-ledger-export", "version": 1, "origin", "vkey",
"checkpoint"}``; every further line is one record ``{"index", "leaf", "body"}`` with the leaf bytes
and the exact body bytes in base64. Import checks each record (canonical leaf, index, chain, body
digest), appends them verbatim, and finally requires the recomputed root to equal the root of the
exported checkpoint, whose signature it verifies with the exported key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import IO, Any

from ledger.checkpoint import open_checkpoint
from ledger.errors import Error, IntegrityError, InvalidInput
from ledger.log import Ledger
from ledger.merkle import CompactRange
from ledger.note import parse_verifier
from ledger.record import GENESIS_PREV, Record, check_link

__all__ = ["export_jsonl", "import_jsonl"]

FORMAT = "provenance-ledger-export"


def export_jsonl(
    ledger: Ledger, out: IO[str], progress: Callable[[int], None] | None = None
) -> int:
    """Write header and every record up to the latest checkpoint; return the record count."""
    cp = ledger.checkpoint()
    size = cp.checkpoint.size
    header = {
        "format": FORMAT,
        "version": 1,
        "origin": ledger.origin,
        "vkey": ledger.store.meta()["vkey"],
        "checkpoint": cp.note,
    }
    out.write(json.dumps(header) + "\n")
    batch: list[tuple[int, bytes, bytes]] = []
    count = 0
    for idx, leaf, _, digest, _ in ledger.store.iter_rows():
        if idx >= size:
            break
        batch.append((idx, leaf, digest))
        if len(batch) >= 2000:
            count += _write_batch(ledger, out, batch)
            if progress:
                progress(count)
    count += _write_batch(ledger, out, batch)
    return count


def _write_batch(ledger: Ledger, out: IO[str], batch: list[tuple[int, bytes, bytes]]) -> int:
    bodies = ledger.store.bodies([d for _, _, d in batch])
    for idx, leaf, digest in batch:
        line = {
            "index": idx,
            "leaf": base64.b64encode(leaf).decode(),
            "body": base64.b64encode(bodies[digest][1]).decode(),
        }
        out.write(json.dumps(line) + "\n")
    n = len(batch)
    batch.clear()
    return n


def _parse_line(n: int, line: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except ValueError as e:
        raise InvalidInput(f"line {n}: not JSON") from e
    if not isinstance(obj, dict):
        raise InvalidInput(f"line {n}: not a JSON object")
    return obj


def _records(lines: Iterator[str], origin: str) -> Iterable[tuple[Record, bytes]]:
    prev, last_time = GENESIS_PREV, ""
    for n, line in enumerate(lines, start=2):
        obj = _parse_line(n, line)
        try:
            leaf = base64.b64decode(obj["leaf"], validate=True)
            body = base64.b64decode(obj["body"], validate=True)
            rec = Record.from_leaf(leaf)
        except (KeyError, TypeError, binascii.Error, ValueError) as e:
            raise InvalidInput(f"line {n}: malformed record line") from e
        except Error as e:
            raise IntegrityError(f"line {n}: {e}", obj.get("index")) from e
        if obj.get("index") != rec.index:
            raise IntegrityError(f"line {n}: index field disagrees with the leaf", n - 2)
        check_link(rec, index=n - 2, origin=origin, prev=prev, last_time=last_time)
        if hashlib.sha256(body).digest() != rec.body_digest:
            raise IntegrityError(f"record {rec.index}: body does not hash to {rec.body}", rec.index)
        prev, last_time = rec.leaf_hash.hex(), rec.time
        yield rec, body


def _read_header(lines: Iterator[str], ledger: Ledger) -> dict[str, Any]:
    header = _parse_line(1, next(lines, ""))
    if header.get("format") != FORMAT or header.get("version") != 1:
        raise InvalidInput("not a provenance-ledger export (bad header line)")
    if header.get("origin") != ledger.origin:
        raise InvalidInput(
            f"export is of log {header.get('origin')!r}, this ledger is {ledger.origin!r}"
        )
    return header


def import_jsonl(
    ledger: Ledger,
    open_lines: Callable[[], Iterator[str]],
    now: Callable[[], datetime],
    batch_size: int = 5000,
) -> int:
    """Import an export into an empty ledger of the same origin; return the record count.

    Two passes: the first verifies every line and the exported checkpoint (signature and root)
    without writing; only a file that checks out completely is written in the second.
    """
    if ledger.store.size() != 0:
        raise InvalidInput("import needs an empty ledger (run `ledger init` on a new database)")
    signer = ledger.require_signer()
    lines = open_lines()
    header = _read_header(lines, ledger)
    try:
        want = open_checkpoint(
            str(header["checkpoint"]), [parse_verifier(str(header["vkey"]))], ledger.origin
        ).checkpoint
    except Error as e:
        raise IntegrityError(f"exported checkpoint does not verify: {e}") from e
    tree = CompactRange()
    for rec, _ in _records(lines, ledger.origin):
        tree.append(rec.leaf_hash)
    if tree.size != want.size or tree.root() != want.root_hash:
        raise IntegrityError(
            f"export holds {tree.size} records whose root does not match its checkpoint (size {want.size})",
            tree.size,
        )
    lines = open_lines()
    _read_header(lines, ledger)
    batch: list[tuple[Record, bytes]] = []
    for item in _records(lines, ledger.origin):
        batch.append(item)
        if len(batch) >= batch_size:
            ledger.store.import_records(batch, ledger.origin, signer, now())
            batch.clear()
    if batch:
        ledger.store.import_records(batch, ledger.origin, signer, now())
    if ledger.checkpoint().checkpoint.root_hash != want.root_hash:
        raise IntegrityError(
            "imported tree root differs from the exported checkpoint's root", tree.size
        )
    return tree.size
