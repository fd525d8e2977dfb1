"""The error on a failed pending row counts only if the integrator wrote it
(``pending_acks.sign_row_error``). The hostile test of 2026-12-02 wrote one onto a live row with
a plain database session (no key file): the append failed with the writer's own words and status
(403 "signer revoked"), and the body was logged all the same."""

from __future__ import annotations

import hashlib
import threading
import time
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

import ledger.integrator as integrator_module
from ledger.errors import Error, IntegrityError, RefusedValue
from ledger.index import rows as rows_module
from ledger.log import Ledger
from ledger.pending import INTEGRATED_CHANNEL, hint, pending_mac_key, row_mac
from ledger.pending_acks import ack_mac_key, open_row_error, sign_row_error
from ledger.sequencer import AppendResult
from tests.conftest import envelope, pg_conninfo
from tests.ledger.pending_rows import hold_up_integration, pending_error
from tests.ledger.test_index_unstorable import unstorable_envelope

KEY, SCHEMA, DIGEST, ROW_MAC = b"k" * 32, "ledger_a", b"\1" * 32, b"\2" * 32
NOW = 1_800_000_000.0
TEXT = "RefusedValue: the database refuses this row\nits second line"
FORGED = "NotTrusted: signer 'ci' was revoked at 2026-12-01T00:00:00Z (forged)"


def test_a_row_error_the_integrator_wrote_opens() -> None:
    stored = sign_row_error(KEY, SCHEMA, DIGEST, ROW_MAC, TEXT, NOW)
    assert open_row_error(KEY, SCHEMA, DIGEST, ROW_MAC, stored) == (TEXT, NOW)
    assert open_row_error(
        KEY, SCHEMA, DIGEST, None, sign_row_error(KEY, SCHEMA, DIGEST, None, TEXT, NOW)
    )


@pytest.mark.parametrize(
    "where",
    [
        {"key": b"x" * 32},  # not the ledger's key
        {"schema": "ledger_b"},  # another ledger's row
        {"digest": b"\3" * 32},  # moved onto another body's row
        {"row_mac": b"\4" * 32},  # another submission's row (a planted one's, say)
        {"row_mac": None},
    ],
)
def test_a_row_error_read_anywhere_else_does_not_open(where: dict[str, object]) -> None:
    stored = sign_row_error(KEY, SCHEMA, DIGEST, ROW_MAC, TEXT, NOW)
    args: dict[str, object] = {"key": KEY, "schema": SCHEMA, "digest": DIGEST}
    args |= {"row_mac": ROW_MAC, "stored": stored} | where
    assert open_row_error(**args) is None  # type: ignore[arg-type]


def test_no_digest_and_mac_of_a_row_stand_for_another_rows() -> None:
    """The HMAC's message is framed so that a planted row whose digest carries another's
    digest, a newline and a submission field cannot lend its error to that row (found by the
    second hostile test of 2026-12-02 when the message joined raw digest bytes and a time)."""
    planted = DIGEST + b"\n" + ROW_MAC.hex().encode()
    stored = sign_row_error(KEY, SCHEMA, planted, b"", TEXT, NOW)
    for moved in (stored, f"{ROW_MAC.hex()}\n{stored}"):
        assert open_row_error(KEY, SCHEMA, DIGEST, ROW_MAC, moved) is None


@pytest.mark.parametrize(
    "stored",
    [
        FORGED,  # no HMAC line
        FORGED + "\nmac:not base64!",
        FORGED + "\nmac:soon:AAAA",
        lambda: sign_row_error(KEY, SCHEMA, DIGEST, ROW_MAC, TEXT, NOW).replace(
            f"mac:{int(NOW * 1000)}", f"mac:{int(NOW * 1000) + 1}"
        ),  # the time altered
        lambda: sign_row_error(KEY, SCHEMA, DIGEST, ROW_MAC, TEXT, NOW).replace(
            "refuses", "Refuses"
        ),
    ],
)
def test_a_forged_or_altered_row_error_does_not_open(stored: object) -> None:
    text = stored() if callable(stored) else stored
    assert open_row_error(KEY, SCHEMA, DIGEST, ROW_MAC, str(text)) is None


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


def _append_tampered(
    lg: Ledger,
    body: bytes,
    gate: threading.Event,
    tamper: Callable[[], object],
    *,
    look: bool = True,
) -> AppendResult:
    """Append ``body`` while integration is held up (``gate``, from hold_up_integration):
    once its row is pending, ``tamper`` with it; with ``look``, give the waiter time to read
    the row (it looks at rows waited on for over a second); then let integration go on."""
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(lg.append, body)
        time.sleep(0.5)  # its row is pending; integration is held up
        tamper()
        if look:
            time.sleep(2.5)
        gate.set()
        return waiting.result(timeout=30)


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
        result = _append_tampered(lg, body, gate, lambda: _forge(pg_url, digest))
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


def test_a_genuine_error_of_a_planted_row_copied_onto_a_real_submission_does_not_fail_it(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The integrator's own error for a row planted without the key, copied — with that row's
    MAC and time — onto the real submission of the same body: the waiter sees the row is not
    the one its insert made, takes the error as forged and submits again (the second hostile
    test of 2026-12-02 had the append refused at once while its body was logged)."""
    body = envelope(4)
    digest = hashlib.sha256(body).digest()
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        with psycopg.connect(pg_conninfo(pg_url), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO pending (digest, body_type, content, mac, submitted)"
                " VALUES (%s, 'dsse', %s, %s, %s)",
                (digest, envelope(99), b"\0" * 32, int(time.time())),
            )
            lg.append(envelope(1))  # its batch reads the planted row and marks it failed
            deadline = time.monotonic() + 30
            while (genuine := pending_error(lg, digest)) is None:
                assert time.monotonic() < deadline, "the planted row was never marked failed"
                time.sleep(0.05)
            planted = conn.execute(
                "SELECT mac, submitted FROM pending WHERE digest = %s", (digest,)
            ).fetchone()
            assert planted is not None
            gate = hold_up_integration(monkeypatch)
            result = _append_tampered(  # its insert replaces the failed row
                lg,
                body,
                gate,
                lambda: conn.execute(
                    "UPDATE pending SET error = %s, mac = %s, submitted = %s WHERE digest = %s",
                    (genuine, *planted, digest),
                ),
            )
        assert (result.index, result.duplicate) == (2, False)
        assert _records_of(pg_url, digest) == 1


def test_a_forged_error_does_not_stretch_the_wait_past_its_bound(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each submission sent again keeps the first one's deadline: a writer marking the row
    just before each deadline stretched a 6 s bound to 12 s (the second hostile test of
    2026-12-02; each resubmission started a new bound)."""
    body = envelope(5)
    digest = hashlib.sha256(body).digest()
    stop = threading.Event()
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        lg._seq()._wait_timeout = 6.0  # type: ignore[attr-defined]
        gate = hold_up_integration(monkeypatch)

        def late_forger() -> None:
            with psycopg.connect(pg_conninfo(pg_url), autocommit=True) as conn:
                while not stop.wait(0.1):
                    conn.execute(
                        "UPDATE pending SET error = %s WHERE digest = %s AND error IS NULL"
                        " AND extract(epoch FROM now()) - submitted > 3.5",
                        (FORGED, digest),
                    )

        with ThreadPoolExecutor(2) as pool:
            forging = pool.submit(late_forger)
            started = time.monotonic()
            try:
                with pytest.raises(Error):
                    pool.submit(lg.append, body).result(timeout=60)
                took = time.monotonic() - started
            finally:
                stop.set()
                gate.set()
            forging.result(timeout=10)
        assert took < 9, took


def _row(conn: psycopg.Connection[Any], digest: bytes) -> tuple[bytes, int]:
    row = conn.execute("SELECT mac, submitted FROM pending WHERE digest = %s", (digest,)).fetchone()
    assert row is not None
    return bytes(row[0]), int(row[1])


def test_a_row_of_this_process_altered_under_it_is_submitted_again(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One UPDATE of the row's time before the integrator reads it: the integrator genuinely
    refuses the row ("not written by a ledger appender"), but the row was this process's own,
    fresh, so the error means tampering: the body goes round again and is logged (the third
    hostile test of 2026-12-02 had the append failed at once, the body never logged)."""
    body = envelope(6)
    digest = hashlib.sha256(body).digest()
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        gate = hold_up_integration(monkeypatch)
        with psycopg.connect(pg_conninfo(pg_url), autocommit=True) as conn:
            result = _append_tampered(
                lg,
                body,
                gate,
                lambda: conn.execute(
                    "UPDATE pending SET submitted = submitted + 1 WHERE digest = %s", (digest,)
                ),
                look=False,
            )
        assert (result.index, result.duplicate) == (1, False)
        assert _records_of(pg_url, digest) == 1


def test_a_genuine_error_of_the_waits_earlier_row_does_not_count_for_its_resubmission(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resubmission gets a later submission time than the row it replaces, so a different
    MAC: an error the integrator signed for the earlier row, copied with that row's MAC onto
    the new one, is forged (the third hostile test of 2026-12-02: the waiter's resubmission
    landed in the same second, with the same MAC, and the copied error failed the append while
    its body was logged)."""
    body = envelope(7)
    digest = hashlib.sha256(body).digest()
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        ack_key = ack_mac_key(lg.require_signer())
        gate = hold_up_integration(monkeypatch)
        with (
            psycopg.connect(pg_conninfo(pg_url), autocommit=True) as conn,
            ThreadPoolExecutor(1) as pool,
        ):
            schema = str(conn.execute("SELECT current_schema()").fetchone()[0])  # type: ignore[index]
            while time.time() % 1 > 0.05:  # early in a second, so a resubmission at once
                time.sleep(0.01)  # falls in the same one
            waiting = pool.submit(lg.append, body)
            time.sleep(0.2)
            first_mac, first_at = _row(conn, digest)
            conn.execute("UPDATE pending SET error = %s WHERE digest = %s", (FORGED, digest))
            hinted = f"{schema}{hint([digest])}"  # the waiter looks now, not in a second
            conn.execute("SELECT pg_notify(%s, %s)", (INTEGRATED_CHANNEL, hinted))
            deadline = time.monotonic() + 10
            while _row(conn, digest)[1] == first_at:  # the waiter sends the body again
                assert time.monotonic() < deadline, (
                    "the body was not submitted again at a later time"
                )
                time.sleep(0.05)
            second_mac, second_at = _row(conn, digest)
            assert second_at > first_at and second_mac != first_mac
            genuine = sign_row_error(
                ack_key,
                schema,
                digest,
                first_mac,
                f"IntegrityError: pending row sha256:"
                f"{digest.hex()} was not written by a ledger appender",
                time.time(),
            )
            conn.execute(
                "UPDATE pending SET error = %s, mac = %s, submitted = %s WHERE digest = %s",
                (genuine, first_mac, first_at, digest),
            )
            time.sleep(2.5)
            gate.set()
            result = waiting.result(timeout=30)
        assert (result.index, result.duplicate) == (1, False)
        assert _records_of(pg_url, digest) == 1


def test_an_old_genuine_error_written_back_onto_a_revived_row_does_not_answer_its_duplicate(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An append that found the body's row pending (a valid submission of another process)
    is not answered by an error the integrator signed for that row before the append's insert:
    the fourth hostile test of 2026-12-02 revived an old refused row (error cleared), let the
    real append find it pending, then wrote the old genuine refusal back — the append failed
    with it, and the body was never logged."""
    body = envelope(8)
    digest = hashlib.sha256(body).digest()
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        signer = lg.require_signer()
        gate = hold_up_integration(monkeypatch)
        with psycopg.connect(pg_conninfo(pg_url), autocommit=True) as conn:
            schema = str(conn.execute("SELECT current_schema()").fetchone()[0])  # type: ignore[index]
            at = int(time.time())
            valid = row_mac(pending_mac_key(signer), digest, "dsse", at)
            conn.execute(
                "INSERT INTO pending (digest, body_type, content, mac, submitted)"
                " VALUES (%s, 'dsse', %s, %s, %s)",
                (digest, body, valid, at),
            )
            old = sign_row_error(
                ack_mac_key(signer),
                schema,
                digest,
                valid,
                "RefusedValue: the write failed and was rolled back (an old refusal)",
                time.time() - 60,
            )
            result = _append_tampered(  # its insert finds the row pending: a duplicate
                lg,
                body,
                gate,
                lambda: conn.execute(
                    "UPDATE pending SET error = %s WHERE digest = %s", (old, digest)
                ),
            )
        assert result.index == 1
        assert _records_of(pg_url, digest) == 1


def test_a_genuine_refusal_reaches_its_appender_whatever_the_hosts_clocks_say(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body PostgreSQL refuses every time, its appender's clock 3 s ahead of the
    integrator's (simulated: the submitter's ``time.time``): the genuine ``RefusedValue``, not
    a tampering error. The fifth hostile test of 2026-12-02 found a 2 s skew turned it into
    one, when the insert was timed by the appender's clock and the error by the integrator's;
    both are the database's clock now."""
    monkeypatch.setattr(rows_module, "storable", lambda value, limit=512: True)
    ahead = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if k[0] != "_"})
    ahead.time = lambda: time.time() + 3.0
    monkeypatch.setattr(integrator_module, "time", ahead)
    bad = unstorable_envelope()
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.append(envelope(0))
        with pytest.raises(RefusedValue):
            lg.append(bad)
        assert lg.store.size() == 1
