"""Fixtures shared by the ledger tests: export/import sources, and commits made to fail."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from attest.signers import KeySigner
from ledger.log import Ledger
from ledger.registry.admin import create_admin_key
from tests.ledger.exports import trusting_source


@pytest.fixture
def admin(tmp_path: Path) -> KeySigner:
    """The admin key source and target share, so the source's registry entry verifies there."""
    return create_admin_key(tmp_path / "shared.admin.key")


@pytest.fixture
def source(
    tmp_path: Path, signed_samples: list[bytes], sample_pub_pem: bytes, admin: KeySigner
) -> Iterator[Ledger]:
    """The ledger being moved: its own key; record 0 trusts the samples' key, then five samples."""
    url = f"sqlite:///{tmp_path / 'src.db'}"
    with trusting_source(
        url, tmp_path / "src.key", admin, sample_pub_pem, signed_samples[:5]
    ) as lg:
        yield lg


@contextmanager
def failing_commits(engine: Engine, fail: Callable[[], None]) -> Iterator[None]:
    """While open, ``fail()`` runs before every commit that makes appends durable, and may raise:
    the engine's commits (SQLite's sequencer, PostgreSQL's integrator) and, on PostgreSQL, the
    submitter's, which it makes on a connection of its own."""
    from sqlalchemy import event

    from ledger.integrator import SharedSequencer

    def on_commit(_conn: object) -> None:
        fail()

    insert_rows = SharedSequencer._insert_rows

    def failing_insert(self: SharedSequencer, *args: Any) -> Any:
        fail()  # the submitter's one statement in autocommit is its commit: fail before it
        return insert_rows(self, *args)

    event.listen(engine, "commit", on_commit)
    SharedSequencer._insert_rows = failing_insert  # type: ignore[method-assign]
    try:
        yield
    finally:
        SharedSequencer._insert_rows = insert_rows  # type: ignore[method-assign]
        event.remove(engine, "commit", on_commit)
