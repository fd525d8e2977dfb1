"""What a hostile tester did to ``ledger export`` / ``ledger import`` on a fresh clone (issue 7,
H9): each test names the attack, and fails on the code before the fix."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ledger._internal import db as dbmod
from ledger._internal.db import write_transaction
from ledger._internal.output import STALE_PARTIAL_SECONDS
from ledger.bodies import parse_submission
from ledger.checkpoint import sign_checkpoint
from ledger.errors import IntegrityError, InvalidInput, NoteError, Overloaded
from ledger.fsck import check_ledger
from ledger.log import Ledger, utc_now
from ledger.note import generate_key, open_note, parse_verifier
from ledger.record import GENESIS_PREV, Record
from ledger.transfer import MAX_LINE_BYTES, import_jsonl
from tests.conftest import _pg_base_url, envelope
from tests.ledger.exports import EMPTY, ORIGIN, forge_export, stored_counts
from tests.ledger.test_fsck import _tamper
from tests.ledger.test_transfer_cli import assert_one_line, ledger_cli


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _import(ledger: Ledger, data: bytes, vkey: str) -> int:
    return import_jsonl(
        ledger, io.BytesIO(data), parse_verifier(vkey), utc_now, allow_untrusted=True
    )


def _leaf_line(**fields: object) -> tuple[bytes, bytes]:
    """A leaf with ``fields`` over a valid record's (unsigned input), and its record line."""
    body = envelope(1)
    rec = {
        "v": 1,
        "log": ORIGIN,
        "index": 0,
        "prev": GENESIS_PREV,
        "time": "2026-01-01T00:00:00.000000Z",
        "bodyType": "dsse",
        "body": "sha256:" + hashlib.sha256(body).hexdigest(),
        **fields,
    }
    leaf = json.dumps(rec).encode()
    return leaf, json.dumps({"index": 0, "leaf": _b64(leaf), "body": _b64(body)}).encode()


# -- 1. tracebacks on unsigned input ----------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [{"prev": 1}, {"time": 5}, {"body": 7}, {"bodyType": []}, {"log": "\ud800"}, {"v": True}],
    ids=["prev-int", "time-int", "body-int", "bodyType-list", "log-lone-surrogate", "v-true"],
)
def test_leaf_with_a_field_of_the_wrong_type_is_refused_not_a_traceback(
    ledger: Ledger, tmp_path: Path, fields: dict[str, object]
) -> None:
    key = generate_key(ORIGIN)
    path = forge_export(tmp_path / "x.jsonl", key, [(envelope(1), "dsse")])
    header = path.read_bytes().split(b"\n")[0]
    leaf, line = _leaf_line(**fields)
    with pytest.raises(IntegrityError, match="line 2"):
        _import(ledger, header + b"\n" + line + b"\n", key.verifier_key())
    with pytest.raises(InvalidInput):
        Record.from_leaf(leaf)
    assert stored_counts(ledger) == EMPTY


def test_stored_leaf_with_an_int_prev_is_named_by_check_not_a_traceback(ledger: Ledger) -> None:
    ledger.append(envelope(1))
    leaf, _ = _leaf_line(prev=1)
    _tamper(ledger, "records", "UPDATE records SET leaf = :l WHERE idx = 0", l=leaf)
    with pytest.raises(IntegrityError, match="record 0: leaf is not a valid record"):
        check_ledger(ledger.store)


def test_header_checkpoint_with_a_lone_surrogate_is_a_note_error_not_a_unicode_crash(
    ledger: Ledger,
) -> None:
    key = generate_key(ORIGIN)
    h = {"format": "provenance-ledger-export", "version": 1, "origin": ORIGIN}
    line = json.dumps({**h, "vkey": key.verifier_key(), "checkpoint": "\ud800"}).encode()
    with pytest.raises(InvalidInput, match="lone surrogate"):  # the strict parser refuses it
        _import(ledger, line + b"\n", key.verifier_key())
    with pytest.raises(NoteError):
        open_note("\ud800\n\n\u2014 a b\n", [])
    assert stored_counts(ledger) == EMPTY


# -- 2. a private key passed as --vkey --------------------------------------------------------


def test_private_key_passed_as_vkey_is_refused_without_echoing_it(
    ledger: Ledger, db_url: str, key_path: Path, tmp_path: Path
) -> None:
    secret = key_path.read_text().strip()
    # PRIVATE+KEY+<name>+<hash>+<base64>: the base64 may itself hold a "+", even end with one
    blob = secret.split("+", 4)[4]
    assert secret.startswith("PRIVATE+KEY+") and len(blob) >= 16
    export = forge_export(tmp_path / "e.jsonl", generate_key(ORIGIN), [])
    runs = [
        ledger_cli("import", str(export), "--vkey", secret, "--db", db_url, ok=False),
        ledger_cli("import", str(export), "--db", db_url, ok=False,
                   env={"LEDGER_IMPORT_VKEY": secret}),
        ledger_cli("check", "--vkey", secret, "--db", db_url, ok=False),
        ledger_cli("check", "--db", db_url, ok=False, env={"LEDGER_VKEY": secret}),
        ledger_cli("import", str(export), "--vkey", secret[:-3] + "!!!", "--db", db_url, ok=False),
    ]  # fmt: skip
    for p in runs:
        assert_one_line(p, 2, "--vkey")
        assert blob not in p.stderr and blob[:16] not in p.stderr, p.stderr
    for p in runs[:4]:
        assert "private" in p.stderr
    assert stored_counts(ledger) == EMPTY


# -- 3 and 4. the write lock ------------------------------------------------------------------


@pytest.fixture
def other_schema_url() -> Iterator[str]:
    base = _pg_base_url()
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{base}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def test_a_writer_holding_one_schemas_lock_does_not_block_a_ledger_in_another_schema(
    pg_url: str, other_schema_url: str, tmp_path: Path
) -> None:
    with (
        Ledger.create(pg_url, ORIGIN, tmp_path / "a.key") as a,
        Ledger.create(other_schema_url, ORIGIN, tmp_path / "b.key") as b,
        write_transaction(a.store.engine),  # a stalled writer of ledger A holds its lock
    ):
        done: list[int] = []
        t = threading.Thread(target=lambda: done.append(b.append(envelope(1)).index))
        t.start()
        t.join(10)
        assert done == [0], "an append to ledger B waited for ledger A's writer"
    t.join(60)


def test_an_append_waiting_past_the_lock_timeout_is_one_line_busy(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, db_url: str, key_path: Path
) -> None:
    monkeypatch.setattr(dbmod, "LOCK_TIMEOUT_SECONDS", 0.5)
    with Ledger.open(db_url, key_path) as other:  # new connections get the short timeout
        with write_transaction(ledger.store.engine):
            started = time.monotonic()
            with pytest.raises(Overloaded) as err:
                other.append(envelope(1))
            assert time.monotonic() - started < 30
        assert str(err.value).startswith("the ledger is busy (another writer")
        assert "\n" not in str(err.value) and "SQL" not in str(err.value)
        assert other.append(envelope(1)).index == 0  # and a retry works


# -- 6, 7, 8. export trusts the stored rows ---------------------------------------------------


def _six(db_url: str, key_path: Path) -> Ledger:
    lg = Ledger.create(db_url, ORIGIN, key_path)
    for i in range(6):
        lg.append(envelope(i))
    return lg


def test_latest_checkpoint_row_holding_an_older_note_fails_export_instead_of_truncating(
    db_url: str, key_path: Path, tmp_path: Path
) -> None:
    with _six(db_url, key_path) as lg:
        old = lg.store.checkpoint_at(3)
        _tamper(lg, "checkpoints", "UPDATE checkpoints SET note = :n WHERE size = 6", n=old)
    out = tmp_path / "out.jsonl"
    p = ledger_cli("export", str(out), "--db", db_url, ok=False)
    assert_one_line(p, 1, "size 6", "note of size 3")
    assert not out.exists()


def test_stored_checkpoint_with_a_bad_signature_is_exit_1_in_export_and_proof(
    db_url: str, key_path: Path, tmp_path: Path
) -> None:
    with _six(db_url, key_path) as lg:
        cp = lg.checkpoint().checkpoint
        forged = sign_checkpoint(cp, generate_key(ORIGIN))  # same name, another key
        _tamper(lg, "checkpoints", "UPDATE checkpoints SET note = :n WHERE size = 6", n=forged)
    p = ledger_cli("export", str(tmp_path / "out.jsonl"), "--db", db_url, ok=False)
    assert_one_line(p, 1, "checkpoint at size 6")
    assert_one_line(ledger_cli("proof", "--index", "0", "--db", db_url, ok=False), 1)
    assert_one_line(ledger_cli("checkpoint", "--db", db_url, ok=False), 1)


@pytest.mark.parametrize("what", ["bytes", "type"])
def test_export_of_a_tampered_body_is_exit_1_naming_the_index(
    what: str, db_url: str, key_path: Path, tmp_path: Path
) -> None:
    with _six(db_url, key_path) as lg:
        digest = lg.store.record(4).body_digest
        sql = {
            "bytes": "UPDATE bodies SET content = :c WHERE digest = :d",
            "type": "UPDATE bodies SET body_type = 'sigstore-bundle' WHERE digest = :d",
        }[what]
        _tamper(lg, "bodies", sql, d=digest, c=envelope(99))
    out = tmp_path / "out.jsonl"
    p = ledger_cli("export", str(out), "--db", db_url, ok=False)
    assert_one_line(p, 1, "record 4", "(index 4)")
    assert not out.exists()


# -- 10, 11, 12. what import and append parse -------------------------------------------------


def _lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def test_export_line_with_duplicate_keys_is_refused_not_last_wins(
    ledger: Ledger, tmp_path: Path
) -> None:
    key = generate_key(ORIGIN)
    header, record = _lines_of(forge_export(tmp_path / "x.jsonl", key, [(envelope(1), "dsse")]))
    obj = json.loads(record)
    dup = b'{"index": 0, "leaf": "AAAA", "leaf": "%s", "body": "%s"}' % (
        obj["leaf"].encode(),
        obj["body"].encode(),
    )
    with pytest.raises(InvalidInput, match="duplicate key 'leaf'"):
        _import(ledger, header + b"\n" + dup + b"\n", key.verifier_key())
    assert stored_counts(ledger) == EMPTY


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"payloadType": "a", "payloadType": "b", "payload": "", "signatures": [{"sig": ""}]}',
         "duplicate key"),
        (b'{"payloadType": "a", "payload": "", "signatures": [{"sig": ""}], "n": NaN}', "NaN"),
        ("{\"payloadType\": \"\u00e9\", \"payload\": \"\", \"signatures\": [{\"sig\": \"\"}]}"
         .encode("utf-16"), "UTF-8"),
    ],
    ids=["duplicate-keys", "NaN", "UTF-16"],
)  # fmt: skip
def test_body_with_duplicate_keys_nan_or_utf16_is_refused_by_append_and_import(
    body: bytes, message: str, ledger: Ledger, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_submission(body)
    with pytest.raises(InvalidInput, match=message):
        ledger.append(body)
    key = generate_key(ORIGIN)
    path = forge_export(tmp_path / "x.jsonl", key, [(body, "dsse")])
    with pytest.raises(InvalidInput, match=message):
        _import(ledger, path.read_bytes(), key.verifier_key())
    assert stored_counts(ledger) == EMPTY


@pytest.mark.parametrize(
    ("where", "value"),
    [("index", True), ("index", 0.0), ("version", True), ("version", 1.0)],
    ids=["index-true", "index-0.0", "version-true", "version-1.0"],
)
def test_index_or_version_that_is_a_bool_or_float_is_refused(
    where: str, value: object, ledger: Ledger, tmp_path: Path
) -> None:
    key = generate_key(ORIGIN)
    header, record = _lines_of(forge_export(tmp_path / "x.jsonl", key, [(envelope(1), "dsse")]))
    if where == "index":
        record = json.dumps({**json.loads(record), "index": value}).encode()
    else:
        header = json.dumps({**json.loads(header), "version": value}).encode()
    with pytest.raises(InvalidInput, match=where if where == "index" else "bad header"):
        _import(ledger, header + b"\n" + record + b"\n", key.verifier_key())
    assert stored_counts(ledger) == EMPTY


def test_export_reusing_one_body_for_two_records_is_an_integrity_error_at_its_index(
    ledger: Ledger, tmp_path: Path
) -> None:
    key = generate_key(ORIGIN)
    path = forge_export(tmp_path / "x.jsonl", key, [(envelope(1), "dsse"), (envelope(1), "dsse")])
    with pytest.raises(IntegrityError, match=r"record 1: body sha256:\w+ is already record 0") as e:
        _import(ledger, path.read_bytes(), key.verifier_key())
    assert e.value.index == 1
    assert stored_counts(ledger) == EMPTY


# -- 14. origin length ------------------------------------------------------------------------


def test_init_refuses_an_origin_longer_than_255_bytes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    p = ledger_cli("init", "--origin", "a" * 256, "--db", url, ok=False)
    assert_one_line(p, 2, "origin", "255")
    assert not (tmp_path / "l.db.key").exists()


def test_the_longest_origin_with_the_largest_body_exports_and_imports(tmp_path: Path) -> None:
    origin = "x" * 3 + "\U0001d518" * 63  # 255 bytes, each 4-byte char escaped to 12 by JSON
    assert len(origin.encode()) == 255
    big = b'{"payloadType": "p", "payload": "", "signatures": [{"sig": ""}], "pad": "%s"}'
    body = big % (b"a" * ((1 << 20) - len(big) + 2))
    assert len(body) == 1 << 20
    with (
        Ledger.create(f"sqlite:///{tmp_path / 's.db'}", origin, tmp_path / "s.key") as src,
        Ledger.create(f"sqlite:///{tmp_path / 'd.db'}", origin, tmp_path / "d.key") as dst,
    ):
        src.append(body)
        buf = io.StringIO()
        from ledger.transfer import export_jsonl

        export_jsonl(src, buf)
        data = buf.getvalue().encode()
        assert max(len(line) for line in data.splitlines()) <= MAX_LINE_BYTES
        assert _import(dst, data, src.store.meta()["vkey"]) == 1


# -- 5, 15, 16, 18. where export writes -------------------------------------------------------


@pytest.fixture
def small(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    with Ledger.create(url, ORIGIN, tmp_path / "src.key") as lg:
        lg.append_many([envelope(i) for i in range(400)])
    return url


_KILLED_MID_WRITE = """
import os, signal, sys, time
from ledger._internal.output import atomic_output
with atomic_output(sys.argv[1]) as out:
    out.write("x" * 100000)
    out.flush()
    os.kill(os.getpid(), getattr(signal, sys.argv[2]))
    time.sleep(30)
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_export_killed_mid_write_leaves_no_partial_file(sig: str, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    p = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_WRITE, str(target), sig],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert p.returncode in (128 + signal.SIGTERM, -signal.SIGKILL), p
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)


def test_export_removes_its_own_stale_partial_files_only(small: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    stale, fresh = tmp_path / ".out.jsonl.dead01.partial", tmp_path / ".out.jsonl.live01.partial"
    other = tmp_path / ".other.jsonl.dead02.partial"
    for f in (stale, fresh, other):
        f.write_text("partial")
    old = time.time() - STALE_PARTIAL_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    ledger_cli("export", str(out), "--db", small)
    assert not stale.exists() and fresh.exists() and other.exists()
    assert len(out.read_text().splitlines()) == 401


def test_export_to_a_closed_pipe_is_one_line_output_closed(small: str) -> None:
    from tests.ledger.test_cli import LEDGER

    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    p = subprocess.Popen(
        [LEDGER, "export", "-", "--db", small],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert p.stdout is not None and p.stderr is not None
    p.stdout.read(10)
    p.stdout.close()  # as `| head -c 10` does
    err = p.stderr.read().decode()
    assert p.wait(60) == 2
    assert err == "ledger: error: cannot write to standard output: output closed\n", err


def test_export_to_dot_slash_dash_writes_a_file_named_dash(small: str, tmp_path: Path) -> None:
    from tests.ledger.test_cli import LEDGER

    p = subprocess.run(
        [LEDGER, "export", "./-", "--db", small],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    assert len((tmp_path / "-").read_text().splitlines()) == 401


def test_export_through_a_symlink_replaces_its_target_and_honours_the_umask(
    small: str, tmp_path: Path
) -> None:
    real = tmp_path / "real.jsonl"
    real.write_text("old")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    old_mask = os.umask(0o022)
    try:
        ledger_cli("export", str(link), "--db", small)
    finally:
        os.umask(old_mask)
    assert link.is_symlink() and link.resolve() == real
    assert len(real.read_text().splitlines()) == 401
    assert real.stat().st_mode & 0o777 == 0o644
    assert not [f for f in os.listdir(tmp_path) if "partial" in f]
