"""Shared fixtures: upstream vectors from ../shared/fixtures, and a ledger on each real backend."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from ledger._internal.sample import sample_envelopes
from ledger.log import Ledger

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
REQUIRE_FIXTURES_ENV = "LEDGER_REQUIRE_FIXTURES"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

T = TypeVar("T")


# Upstream fixtures live in ../shared/fixtures, beside the repo (never copied into it). A clone
# without them still collects: every test that needs one skips with the path in its reason, and
# LEDGER_REQUIRE_FIXTURES=1 (set by .ci/run) turns each of those skips into a failure.
# Inside a test, call fixture_path(); module-level constants stay plain paths (FIXTURES / ...) and
# the tests reading them carry @needs_fixtures(...); parametrize lists read from the folder at
# collection time come from fixture_cases().


def _missing_fixture(path: Path) -> NoReturn:
    reason = f"upstream fixture {path} is missing: tests need ../shared/fixtures beside the repo"
    if os.environ.get(REQUIRE_FIXTURES_ENV) == "1":
        pytest.fail(f"{REQUIRE_FIXTURES_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def fixture_path(*parts: str) -> Path:
    """Inside a test: the upstream fixture's path; skips (fails when required) if it is missing."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        _missing_fixture(path)
    return path


def needs_fixtures(*parts: str) -> pytest.MarkDecorator:
    """Mark a test (or a module, as ``pytestmark``) that reads an upstream fixture through a
    module-level path: at setup it skips (fails when required) if that path is missing."""
    return pytest.mark.upstream_fixtures(FIXTURES.joinpath(*parts))


def fixture_cases(
    parts: tuple[str, ...],
    load: Callable[[Path], Iterable[T]],
    ids: Callable[[T], str] | None = None,
) -> list[Any]:
    """``parametrize`` values loaded at collection time from the upstream fixture at ``parts``.
    When it is missing, a single placeholder case that skips (fails when required) at setup,
    instead of a collection error or a silently empty parameter set."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        return [pytest.param(None, id="fixtures-missing", marks=needs_fixtures(*parts))]
    return [pytest.param(v, id=ids(v) if ids else None) for v in load(path)]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "upstream_fixtures(path): needs that path under ../shared/fixtures"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("upstream_fixtures"):
        for path in mark.args:
            if not path.exists():
                _missing_fixture(path)


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


@contextmanager
def fresh_pg_schema() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    base = _pg_base_url()
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def pg_conninfo(url: str) -> str:
    """A psycopg connection string for a SQLAlchemy URL of ``pg_url``'s (its schema kept)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_pg_schema() as url:
        yield url


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
def sample_key() -> ed25519.Ed25519PrivateKey:
    """The key ``signed_samples`` are signed with (register it to have them admitted)."""
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def sample_pub_pem(sample_key: ed25519.Ed25519PrivateKey) -> bytes:
    return sample_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="session")
def signed_samples(sample_key: ed25519.Ed25519PrivateKey) -> list[bytes]:
    return sample_envelopes(12, sample_key)


_PEAK_WRAPPER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = child.stderr.read()
_, status, usage = os.wait4(child.pid, 0)
sys.stderr.buffer.write(err)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measuring_peak(
    argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, int]:
    """Run ``argv``; return its exit code, stderr and peak resident memory (KiB).

    Linux carries a process's peak RSS across ``exec``, so a child spawned straight from this
    (large) test process would report the test process's size. A small interpreter in between
    spawns the command, and reports the grandchild's own peak.
    """
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-c", _PEAK_WRAPPER, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return p.returncode, p.stderr, int(p.stdout.strip())
