"""Shared fixtures: upstream vectors from ../shared/fixtures, and a ledger on each real backend."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from ledger._internal.sample import sample_envelopes
from ledger.log import Ledger

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def fixture_path(*parts: str) -> Path:
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.fail(
            f"upstream fixture {path} is missing: tests need ../shared/fixtures beside the repo"
        )
    return path


def _pg_base_url() -> str:
    url = os.environ.get("LEDGER_TEST_DATABASE_URL", DEFAULT_PG)
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except OperationalError as e:
        reason = f"no PostgreSQL server answers at {url} ({e.orig.__class__.__name__})"
        if os.environ.get("LEDGER_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"LEDGER_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    return url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    base = _pg_base_url()
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "checkpoint.key"


@pytest.fixture
def ledger(db_url: str, key_path: Path) -> Iterator[Ledger]:
    with Ledger.create(db_url, "test.example/ledger", key_path) as lg:
        yield lg


def envelope(i: int) -> bytes:
    """A small, distinct, well-formed DSSE envelope (not signed: shape tests only)."""
    payload = base64.b64encode(json.dumps({"n": i}).encode()).decode()
    return json.dumps(
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": payload,
            "signatures": [{"sig": "c2ln"}],
        }
    ).encode()


@pytest.fixture(scope="session")
def signed_samples() -> list[bytes]:
    return sample_envelopes(12)
