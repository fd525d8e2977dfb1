"""The error on a failed pending row counts only if the integrator wrote it
(``pending_acks.sign_row_error``). The hostile test of 2026-12-02 wrote one onto a live row with
a plain database session (no key file): the append failed with the writer's own words and status
(403 "signer revoked"), and the body was logged all the same."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from ledger.errors import IntegrityError
from ledger.log import Ledger
from ledger.pending_acks import open_row_error, sign_row_error
from tests.conftest import envelope, pg_conninfo
from tests.ledger.pending_rows import hold_up_integration

KEY, SCHEMA, DIGEST, SUBMITTED = b"k" * 32, "ledger_a", b"\1" * 32, 1_800_000_000
TEXT = "RefusedValue: the database refuses this row\nits second line"
FORGED = "NotTrusted: signer 'ci' was revoked at 2026-12-01T00:00:00Z (forged)"


def test_a_row_error_the_integrator_wrote_opens() -> None:
    stored = sign_row_error(KEY, SCHEMA, DIGEST, SUBMITTED, TEXT)
    assert open_row_error(KEY, SCHEMA, DIGEST, SUBMITTED, stored) == TEXT


@pytest.mark.parametrize(
    "where",
    [
        {"key": b"x" * 32},  # not the ledger's key
        {"schema": "ledger_b"},  # another ledger's row
        {"digest": b"\2" * 32},  # moved onto another body's row
        {"submitted": SUBMITTED + 1},  # left from an earlier submission of the body
    ],
)
def test_a_row_error_read_anywhere_else_does_not_open(where: dict[str, object]) -> None:
    stored = sign_row_error(KEY, SCHEMA, DIGEST, SUBMITTED, TEXT)
    args: dict[str, object] = {"key": KEY, "schema": SCHEMA, "digest": DIGEST}
    args |= {"submitted": SUBMITTED, "stored": stored} | where
    assert open_row_error(**args) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "stored",
    [
        FORGED,  # no HMAC line
        FORGED + "\nmac:not base64!",
        lambda: sign_row_error(KEY, SCHEMA, DIGEST, SUBMITTED, TEXT).replace("refuses", "Refuses"),
    ],
)
def test_a_forged_or_altered_row_error_does_not_open(stored: object) -> None:
    text = stored() if callable(stored) else stored
    assert open_row_error(KEY, SCHEMA, DIGEST, SUBMITTED, str(text)) is None


def _forge(pg_url: str, digest: bytes, *, until: threading.Event | None = None) -> None:
    """Write ``FORGED`` onto the body's live pending row, as anyone who can write the table
    can; with ``until``, again whenever the row is clean, until the event is set."""
    with psycopg.connect(pg_conninfo(pg_url), autocommit=True) as conn:
        while True:
            conn.execute(
                "UPDATE pending SET error = %s WHERE digest = %s AND error IS NULL",
                (FORGED, digest),
            )
            if until is None or until.wait(0.02):
                return


def _records_of(pg_url: str, digest: bytes) -> int:
    with psycopg.connect(pg_conninfo(pg_url)) as conn:
        row = conn.execute("SELECT count(*) FROM records WHERE body_digest = %s", (digest,))
        return int(row.fetchone()[0])  # type: ignore[index]


def test_a_forged_error_on_a_live_row_does_not_fail_its_append(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The waiter finds the row failed without the key, submits the body again (which clears
    the error), and the append is acknowledged as new, once."""
    body = envelope(1)
    digest = hashlib.sha256(body).digest()
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        gate = hold_up_integration(monkeypatch)
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(lg.append, body)
            time.sleep(0.5)  # its row is pending; integration is held up
            _forge(pg_url, digest)
            time.sleep(2.5)  # the waiter looks at rows waited on for over a second
            gate.set()
            result = waiting.result(timeout=30)
        assert (result.index, result.duplicate) == (1, False)
        assert _records_of(pg_url, digest) == 1
        assert lg.append(body).duplicate


def test_an_error_forged_again_and_again_fails_the_append_naming_the_tampering(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer who marks the row failed every time it is submitted: after two submissions the
    append fails with an IntegrityError that says so — never with the writer's text — and the
    ledger still appends other bodies."""
    body = envelope(2)
    digest = hashlib.sha256(body).digest()
    stop = threading.Event()
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        gate = hold_up_integration(monkeypatch)  # so the writer always marks the row first
        with ThreadPoolExecutor(2) as pool:
            forging = pool.submit(_forge, pg_url, digest, until=stop)
            try:
                with pytest.raises(IntegrityError) as e:
                    pool.submit(lg.append, body).result(timeout=60)
            finally:
                stop.set()
                gate.set()
            forging.result(timeout=10)
        assert "no process holding the ledger's key wrote it" in str(e.value)
        assert "revoked" not in str(e.value)
        assert _records_of(pg_url, digest) == 0
        assert lg.append(envelope(3)).index == 1
        assert lg.append(body).index == 2  # the writer gone, the body goes in
