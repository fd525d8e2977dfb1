"""Build (once) the audit benchmark's ledger: ``bench.audit_corpus`` bodies through the real
import path, kept under ``/tmp`` and reused between runs (keyed by :data:`VERSION` and the size).

Record 0 is a trust-registry ``add`` of the signer (signed with the ledger's admin key, as
``ledger signers add`` writes it), so the index derives each body's signer from a signature that
verifies. The rest go through :meth:`ledger.storage.LedgerStore.import_records` — what
``ledger import`` runs: bodies, records, tiles, the registry's and the audit indexes' derived rows
in one transaction, a checkpoint signed wherever the record time steps up (every ``batch``
records). The import needs the root first, so bodies are generated once into a spool file and
read back for the import.
"""

from __future__ import annotations

import json
import struct
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from attest.signers import KeySigner
from bench import audit_corpus
from ledger.bodies import parse_submission
from ledger.log import Ledger, utc_now
from ledger.merkle import CompactRange
from ledger.record import GENESIS_PREV, Record, format_time
from ledger.registry.admin import admin_key_path, load_admin_key
from ledger.registry.entries import sign_op
from ledger.registry.model import RegistryOp
from ledger.registry.service import make_spec

VERSION = "audit-v1"
ORIGIN = "bench.example/audit"
SIGNER = "ci-builder"
SEED = 10
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_LEN = struct.Struct(">I")


def _signer_key(directory: Path) -> KeySigner:
    path = directory / "signer.pem"
    if not path.exists():
        pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return KeySigner(key)


def _registry_body(directory: Path, signer: KeySigner, key_path: Path) -> bytes:
    pem = signer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    spec = make_spec(SIGNER, now=EPOCH, key=pem)
    op = RegistryOp.add(ORIGIN, spec, EPOCH)
    return sign_op(op, load_admin_key(admin_key_path(key_path)))


def _spool(path: Path, first: bytes, signer: KeySigner, size: int) -> list[str]:
    """Write ``first`` and ``size - 1`` corpus bodies, length-prefixed; the artifacts' digests."""
    subjects: list[str] = []
    with path.open("wb") as f:
        f.write(_LEN.pack(len(first)) + first)
        for b in audit_corpus.bodies(signer, SEED, size - 1, subjects):
            f.write(_LEN.pack(len(b)) + b)
    return subjects


def _read_spool(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while head := f.read(4):
            yield f.read(_LEN.unpack(head)[0])


def _records(spool: Path, batch: int) -> Iterator[tuple[Record, object]]:
    prev = GENESIS_PREV
    for i, content in enumerate(_read_spool(spool)):
        sub = parse_submission(content)
        when = format_time(EPOCH + timedelta(seconds=i // batch))  # one time per batch
        rec = Record(ORIGIN, i, prev, when, sub.body_type, "sha256:" + sub.digest.hex())
        prev = rec.leaf_hash.hex()
        yield rec, sub


def build(directory: Path, size: int, batch: int = 1000) -> dict[str, float]:
    """Create ``directory/audit.db`` (key ``audit.key``, admin key beside it)."""
    db, key = directory / "audit.db", directory / "audit.key"
    for p in (db, key, admin_key_path(key)):
        p.unlink(missing_ok=True)
    signer = _signer_key(directory)
    t0 = time.perf_counter()
    with Ledger.create(f"sqlite:///{db}", ORIGIN, key) as lg:
        spool = directory / "bodies.spool"
        subjects = _spool(spool, _registry_body(directory, signer, key), signer, size)
        t1 = time.perf_counter()
        compact = CompactRange()
        for rec, _ in _records(spool, batch):
            compact.append(rec.leaf_hash)
        t2 = time.perf_counter()
        lg.store.import_records(
            _records(spool, batch),  # type: ignore[arg-type]
            ORIGIN,
            lg.require_signer(),
            utc_now,
            root=compact.root(),
        )
        t3 = time.perf_counter()
    spool.unlink()
    (directory / "subjects.json").write_text(json.dumps(subjects))
    return {"generate_s": t1 - t0, "root_s": t2 - t1, "import_s": t3 - t2, "records": size}


def cached(size: int, root: Path = Path("/tmp/audit-bench")) -> Path:
    """The directory holding a built ledger of ``size`` records (built on first use)."""
    directory = root / f"{VERSION}-{size}"
    if not (directory / "done.json").exists():
        directory.mkdir(parents=True, exist_ok=True)
        stats = build(directory, size)
        (directory / "done.json").write_text(json.dumps(stats))
        print(f"built {size} records: {json.dumps(stats)}", file=sys.stderr)
    return directory


if __name__ == "__main__":
    print(cached(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
