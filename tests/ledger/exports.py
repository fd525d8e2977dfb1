"""Helpers for the export/import tests: real exports, forged exports, and what an import left."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from ledger import merkle
from ledger._internal import schema
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.log import Ledger
from ledger.note import NoteSigner
from ledger.record import GENESIS_PREV, BodyType, Record
from ledger.registry import add_signer, make_spec
from ledger.transfer import export_jsonl

if TYPE_CHECKING:
    from attest.signers import KeySigner

ORIGIN = "test.example/ledger"  # the origin of the `ledger` fixture


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def trusting_source(
    url: str, key_path: Path, admin: KeySigner, pub_pem: bytes, bodies: Sequence[bytes]
) -> Ledger:
    """A ledger whose record 0 registers ``pub_pem`` as signer ``ci``, then ``bodies``: its export
    imports into a ledger that shares ``admin`` (the registry entry must verify there too)."""
    lg = Ledger.create(url, ORIGIN, key_path, admin_key=admin)
    add_signer(lg, make_spec("ci", now=lg.now(), key=pub_pem), admin)
    lg.append_many(bodies)
    return lg


def export_to(ledger: Ledger, path: Path) -> Path:
    with path.open("w") as out:
        export_jsonl(ledger, out)
    return path


def forge_export(
    path: Path,
    signer: NoteSigner,
    bodies: Sequence[tuple[bytes, BodyType]],
    *,
    signed_size: int | None = None,
) -> Path:
    """An export of ``bodies`` — canonical leaves, a sound chain — whose checkpoint ``signer`` signs.

    ``signed_size`` (default: all of them) lets the checkpoint cover more leaves than the file holds.
    """
    prev, leaves, lines = GENESIS_PREV, [], []
    n = len(bodies) if signed_size is None else signed_size
    for i in range(n):
        body, kind = bodies[i] if i < len(bodies) else (b'{"extra": %d}' % i, "dsse")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        rec = Record(signer.name, i, prev, "2026-01-01T00:00:00.000000Z", kind, digest)
        leaves.append(rec.leaf_hash)
        prev = rec.leaf_hash.hex()
        if i < len(bodies):
            lines.append({"index": i, "leaf": _b64(rec.leaf), "body": _b64(body)})
    note = sign_checkpoint(Checkpoint(signer.name, n, merkle.root(leaves)), signer)
    header = {
        "format": "provenance-ledger-export",
        "version": 1,
        "origin": signer.name,
        "vkey": signer.verifier_key(),
        "checkpoint": note,
    }
    path.write_text("".join(json.dumps(x) + "\n" for x in [header, *lines]))
    return path


def stored_counts(ledger: Ledger) -> dict[str, int]:
    """Rows per table, and the latest checkpoint's size: all 0 (and one checkpoint) when empty."""
    with ledger.store.engine.connect() as conn:
        counts = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (schema.records, schema.bodies, schema.tiles, schema.checkpoints)
        }
    counts["latest"] = ledger.store.latest_checkpoint()[0]
    return counts


EMPTY = {"records": 0, "bodies": 0, "tiles": 0, "checkpoints": 1, "latest": 0}
