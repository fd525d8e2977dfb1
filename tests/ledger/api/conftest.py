"""One real server per backend per test module (starting uvicorn costs about a second)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_pg_schema
from tests.ledger.api.server import Server, init_ledger, serve, token


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    workdir = tmp_path_factory.mktemp("server")
    if request.param == "sqlite":
        yield f"sqlite:///{workdir / 'ledger.db'}", workdir
        return
    with fresh_pg_schema() as url:
        yield url, workdir


@pytest.fixture(scope="module")
def server(backend_db: tuple[str, Path]) -> Iterator[Server]:
    db, workdir = backend_db
    key = init_ledger(db, workdir)
    with serve(db, workdir, key) as srv:
        yield srv


@pytest.fixture(scope="module")
def tokens(server: Server, backend_db: tuple[str, Path]) -> dict[str, str]:
    """Tokens named after their scopes: append, read, admin."""
    db, workdir = backend_db
    return {s: token(db, workdir, s, s) for s in ("append", "read", "admin")}
