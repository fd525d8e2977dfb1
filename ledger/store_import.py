"""``ledger import``: already-sequenced records written verbatim, in one transaction.

:class:`StoreImport` is the import half of :class:`ledger.storage.LedgerStore`, which extends it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.exc import SQLAlchemyError

from ledger._internal import schema
from ledger._internal.db import busy_error, write_transaction
from ledger.bodies import Submission
from ledger.checkpoint import Checkpoint
from ledger.errors import IntegrityError, InvalidInput, StorageError
from ledger.note import NoteSigner
from ledger.record import GENESIS_PREV, Record
from ledger.store_rows import StoreRows
from ledger.tiles import TileTree

__all__ = ["StoreImport"]

_IMPORT_BATCH = 1000  # records per insert during an import (all in one transaction)
_IMPORT_BATCH_BYTES = 16 << 20  # ... or fewer, to bound the bodies held in memory


class StoreImport(StoreRows):
    """Import of a whole exported log into an empty ledger (see the module docstring)."""

    def import_records(
        self,
        items: Iterable[tuple[Record, Submission]],
        origin: str,
        signer: NoteSigner,
        clock: Callable[[], datetime],
        *,
        root: bytes,
    ) -> str:
        """Append already-sequenced records verbatim (``ledger import``) in ONE transaction.

        The transaction holds the write lock from the emptiness check to the commit, so no append
        can land in between. ``items`` is consumed inside it: whatever it raises (a record that
        does not verify, a root that does not match) rolls everything back. The records must
        extend the empty log and reproduce ``root``; only then is a checkpoint signed over them.
        """
        scratch = self.cache.scratch()
        try:
            with write_transaction(self.engine) as conn:
                self._require_empty(conn)

                def batch_ended(size: int) -> None:  # the source log signed a checkpoint here
                    cp_root = TileTree(size, self._overlay_fetch(conn, {}), scratch).root()
                    self._store_checkpoint(conn, Checkpoint(origin, size, cp_root), signer, clock)

                size = self._import_stream(conn, items, batch_ended)
                if TileTree(size, self._overlay_fetch(conn, {}), scratch).root() != root:
                    raise IntegrityError(
                        "imported records do not reproduce the expected root", size
                    )
                if size == 0:  # an export of an empty log: the checkpoint `init` signed is it
                    return self._latest_checkpoint(conn)[1]
                note = self._store_checkpoint(conn, Checkpoint(origin, size, root), signer, clock)
        except SQLAlchemyError as e:
            why = str(getattr(e, "orig", None) or e).splitlines()[0]
            raise busy_error(e) or StorageError(f"import failed and was rolled back: {why}") from e
        self.cache.absorb(scratch)
        return note

    def _require_empty(self, conn: Connection) -> None:
        has_record = conn.execute(select(schema.records.c.idx).limit(1)).first() is not None
        has_body = conn.execute(select(schema.bodies.c.digest).limit(1)).first() is not None
        if has_record or has_body or self._latest_checkpoint(conn)[0] != 0:
            raise InvalidInput(
                "import needs an empty ledger and this one already holds records "
                "(run `ledger init` on a new database)"
            )

    def _import_stream(
        self,
        conn: Connection,
        items: Iterable[tuple[Record, Submission]],
        batch_ended: Callable[[int], None],
    ) -> int:
        """Write ``items`` in batches of bounded size; return the new tree size.

        A source batch's records share one time, and the source signed a checkpoint after each;
        so wherever the time steps up, ``batch_ended(size)`` signs one here too (the rule
        ``ledger check`` holds every log to: see docs/design.md, "Check").
        """
        size, prev, last_time = 0, GENESIS_PREV, ""
        batch: list[tuple[Record, Submission]] = []
        held = 0
        for rec, sub in items:
            if rec.index != size + len(batch) or rec.prev != prev:
                raise IntegrityError(f"record {rec.index} does not extend the log", rec.index)
            if rec.index and rec.time != last_time:
                size, held = self._insert(conn, size, batch), 0
                batch_ended(size)
            prev, last_time = rec.leaf_hash.hex(), rec.time
            batch.append((rec, sub))
            held += len(sub.content)
            if len(batch) >= _IMPORT_BATCH or held >= _IMPORT_BATCH_BYTES:
                size, held = self._insert(conn, size, batch), 0
        return self._insert(conn, size, batch)

    def _insert(self, conn: Connection, size: int, batch: list[tuple[Record, Submission]]) -> int:
        """Write bodies, records and tiles for ``batch`` (no checkpoint); empty it; new size."""
        if batch:
            self._write_rows(
                conn,
                [r for r, _ in batch],
                [
                    {"digest": s.digest, "body_type": s.body_type, "content": s.content}
                    for _, s in batch
                ],
            )
            self._write_tiles(conn, size, [r.leaf_hash for r, _ in batch])
        size += len(batch)
        batch.clear()
        return size
