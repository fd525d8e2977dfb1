"""`ledger tokens create / list / revoke` through the real console script."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.errors import InvalidInput, Unauthenticated
from ledger.log import utc_now
from ledger.storage import LedgerStore
from ledger.tokens import Tokens, parse_expiry
from tests.ledger.api.server import init_ledger, run_ledger


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_ledger(workdir, "tokens", *args)


def test_create_list_revoke(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    init_ledger(db, tmp_path)
    p = run(
        tmp_path,
        "create",
        "--name",
        "ci",
        "--scope",
        "append",
        "--scope",
        "read",
        "--expires",
        "30d",
        "--db",
        db,
    )
    assert p.returncode == 0, p.stderr
    secret = p.stdout.strip()
    assert secret.startswith("lgr_") and len(secret) > 40
    listed = [json.loads(line) for line in run(tmp_path, "list", "--db", db).stdout.splitlines()]
    assert [t["name"] for t in listed] == ["ci"] and listed[0]["scopes"] == ["append", "read"]
    assert secret not in json.dumps(listed)
    store = LedgerStore.open(db)
    try:
        assert Tokens(store.engine, utc_now).authenticate(secret).name == "ci"
    finally:
        store.close()
    again = run(tmp_path, "create", "--name", "ci", "--scope", "read", "--db", db)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "exists" in again.stderr
    bad = run(tmp_path, "create", "--name", "x", "--scope", "write", "--db", db)
    assert bad.returncode == 2 and "unknown scope" in bad.stderr
    assert run(tmp_path, "revoke", "ci", "--db", db).returncode == 0
    assert run(tmp_path, "list", "--db", db).stdout == ""
    gone = run(tmp_path, "revoke", "ci", "--db", db)
    assert gone.returncode == 3


def test_expiry_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_expiry("90d", now) == now + timedelta(days=90)
    assert parse_expiry("12h", now) == now + timedelta(hours=12)
    assert parse_expiry("2027-01-01T00:00:00Z", now).year == 2027
    for bad in ("soon", "2027-01-01T00:00:00", "2020-01-01T00:00:00Z", "0d"):
        with pytest.raises(InvalidInput):
            parse_expiry(bad, now)


def test_an_expired_token_is_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    init_ledger(db, tmp_path)
    store = LedgerStore.open(db)
    try:
        from ledger._internal.db import upgrade_schema

        upgrade_schema(store.engine)
        clock = [datetime(2026, 1, 1, tzinfo=UTC)]
        tokens = Tokens(store.engine, lambda: clock[0])
        secret = tokens.create("t", ["read"], clock[0] + timedelta(hours=1))
        assert tokens.authenticate(secret).scopes == ("read",)
        clock[0] += timedelta(hours=2)
        with pytest.raises(Unauthenticated, match="expired"):
            tokens.authenticate(secret)
    finally:
        store.close()


@pytest.mark.parametrize(
    "expires", ["3000000d", "99999999999d", "999999999999999999999m", "9999-12-31T23:59:59-23:00"]
)
def test_an_expiry_past_the_calendar_is_exit_2_in_one_line(tmp_path: Path, expires: str) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    init_ledger(db, tmp_path, register_samples=False)
    p = run(tmp_path, "create", "--name", "x", "--scope", "read", "--expires", expires, "--db", db)
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and "9999" in p.stderr, p.stderr
    assert run(tmp_path, "list", "--db", db).stdout == ""
