"""``ledger check``'s registry step: the derived rows MUST be exactly what the log says.

Kept apart from the record checks of :mod:`ledger.fsck`: it replays every registry entry from the
stored bodies (admin signature, op, applicability — :func:`ledger.registry.entries.replay`) and
compares the result, row by row, with ``registry_entries``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import select

from ledger._internal import schema
from ledger.errors import IntegrityError
from ledger.record import Record
from ledger.registry.entries import (
    ADMIN_META_KEY,
    MARKER,
    RegistryRow,
    admin_keys_from_pem,
    replay,
)
from ledger.storage import LedgerStore

__all__ = ["check_registry"]

_CHUNK = 2000


def _candidates(store: LedgerStore) -> Iterator[tuple[Record, bytes]]:
    """Every stored record whose body may be a registry entry, in index order."""
    batch: list[tuple[bytes, bytes]] = []

    def flush() -> Iterator[tuple[Record, bytes]]:
        bodies = store.bodies([d for _, d in batch])
        for leaf, digest in batch:
            content = bodies.get(digest, ("", b""))[1]
            if MARKER in content:
                yield Record.from_leaf(leaf), content
        batch.clear()

    for _, leaf, _, digest, _ in store.iter_rows():
        batch.append((leaf, digest))
        if len(batch) >= _CHUNK:
            yield from flush()
    yield from flush()


def _stored(store: LedgerStore) -> list[RegistryRow]:
    r = schema.registry_entries.c
    with store._conn() as conn:
        rows = conn.execute(select(r.idx, r.time, r.name, r.op, r.entry).order_by(r.idx)).all()
    out = []
    for row in rows:
        if type(row.idx) is not int or not isinstance(row.entry, bytes | memoryview):
            raise IntegrityError(
                f"registry row {row.idx!r} is stored as {type(row.idx).__name__} / "
                f"{type(row.entry).__name__}, not an integer index and bytes",
                row.idx if type(row.idx) is int else None,
            )
        out.append(RegistryRow(row.idx, row.time, row.name, row.op, bytes(row.entry)))
    return out


def check_registry(
    store: LedgerStore, candidates: Iterable[tuple[Record, bytes]] | None = None
) -> int:
    """Rebuild the registry from the log and compare; :class:`IntegrityError` naming the first
    record index where the rows and the log disagree. Returns the number of registry entries.

    ``candidates``: every record whose body holds the registry's payload type, with its body, in
    index order, when the caller has already read them all (``ledger check`` does, while it
    checks each body); otherwise they are read here."""
    items = _candidates(store) if candidates is None else candidates
    want = replay(items, admin_keys_from_pem(store.meta().get(ADMIN_META_KEY)))
    got = _stored(store)
    for w, g in zip(want, got, strict=False):
        if w != g:
            idx = min(w.idx, g.idx)
            raise IntegrityError(f"registry row for record {idx} disagrees with the log", idx)
    if len(want) != len(got):
        extra = (want if len(want) > len(got) else got)[min(len(want), len(got))]
        raise IntegrityError(
            f"registry rows and the log disagree at record {extra.idx} "
            f"({len(got)} rows, the log implies {len(want)})",
            extra.idx,
        )
    return len(want)
