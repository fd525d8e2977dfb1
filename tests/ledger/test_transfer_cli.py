"""``ledger export`` / ``ledger import`` through the console script: pins, FIFOs, one-line errors.

The key is pinned through ``LEDGER_IMPORT_VKEY`` in the attack tests, so that they run the
attack, and fail, on a ledger that ignores the variable too.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import subprocess
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from attest.signers import KeySigner
from ledger.log import Ledger
from ledger.note import generate_key
from ledger.record import BodyType
from tests.conftest import envelope
from tests.ledger.exports import (
    EMPTY,
    ORIGIN,
    export_to,
    forge_export,
    stored_counts,
)
from tests.ledger.test_cli import LEDGER
from tests.ledger.test_fsck import _tamper


def ledger_cli(
    *args: str, env: dict[str, str] | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    p = subprocess.run(
        [LEDGER, *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=300,
        check=False,
    )
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def assert_one_line(p: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert p.returncode == code, p.stderr
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("ledger: error: "), p.stderr
    for w in words:
        assert w in p.stderr


@pytest.fixture
def target(db_url: str, key_path: Path, admin: KeySigner) -> Iterator[tuple[Ledger, list[str]]]:
    """An empty ledger of the same origin and admin key, and the CLI options that reach it."""
    with Ledger.create(db_url, ORIGIN, key_path, admin_key=admin) as lg:
        yield lg, ["--db", db_url, "--key-file", str(key_path)]


def _pin(lg: Ledger) -> dict[str, str]:
    return {"LEDGER_IMPORT_VKEY": lg.store.meta()["vkey"]}


def test_cli_export_signed_by_a_fresh_key_for_the_same_origin_is_refused_with_the_real_key_pinned(
    source: Ledger, target: tuple[Ledger, list[str]], tmp_path: Path
) -> None:
    lg, opts = target
    with Ledger.create(f"sqlite:///{tmp_path / 'f.db'}", ORIGIN, tmp_path / "f.key") as forger:
        forger.append(envelope(666))
        forged = export_to(forger, tmp_path / "forged.jsonl")
    p = ledger_cli("import", str(forged), *opts, env=_pin(source), ok=False)
    assert_one_line(p, 1, "does not verify with the pinned key")
    assert stored_counts(lg) == EMPTY
    real = export_to(source, tmp_path / "real.jsonl")
    assert (
        json.loads(ledger_cli("import", str(real), *opts, env=_pin(source)).stdout)["imported"] == 6
    )


def test_import_without_a_pinned_key_is_refused_saying_how_to_pin(
    source: Ledger, target: tuple[Ledger, list[str]], tmp_path: Path
) -> None:
    lg, opts = target
    real = export_to(source, tmp_path / "real.jsonl")
    assert_one_line(ledger_cli("import", str(real), *opts, ok=False), 2, "--vkey", "LEDGER_IMPORT_")
    p = ledger_cli("import", str(real), "--vkey", "not-a-key", *opts, ok=False)
    assert_one_line(p, 2, "--vkey")
    assert stored_counts(lg) == EMPTY


def _serve_fifo(fifo: Path, payloads: list[bytes], stop: threading.Event) -> None:
    """Serve each payload to the next reader that opens ``fifo``; wait until it is read whole."""
    for payload in payloads:
        while True:
            if stop.is_set():
                return
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as e:
                if e.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                time.sleep(0.01)
        os.set_blocking(fd, False)
        try:
            view = memoryview(payload)
            while view and not stop.is_set():
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    time.sleep(0.01)
            unread = bytearray(4)
            while not stop.is_set():
                fcntl.ioctl(fd, termios.FIONREAD, unread)
                if not int.from_bytes(unread, "little"):
                    break
                time.sleep(0.01)
        except BrokenPipeError:
            pass
        finally:
            os.close(fd)
        time.sleep(1)  # let the reader see end-of-file before the next payload is offered


def test_fifo_serving_the_real_export_then_a_forged_one_imports_the_real_one_only(
    source: Ledger, target: tuple[Ledger, list[str]], tmp_path: Path
) -> None:
    lg, opts = target
    real = export_to(source, tmp_path / "real.jsonl").read_bytes()
    forger = generate_key(ORIGIN)  # a chain of other bodies, under the same (real) header
    forged_file = forge_export(tmp_path / "f.jsonl", forger, [(envelope(9), "dsse")])
    forged = real.split(b"\n", 1)[0] + b"\n" + forged_file.read_bytes().split(b"\n", 1)[1]
    fifo = tmp_path / "export.fifo"
    os.mkfifo(fifo)
    stop = threading.Event()
    writer = threading.Thread(target=_serve_fifo, args=(fifo, [real, forged], stop))
    writer.start()
    try:
        p = ledger_cli("import", str(fifo), *opts, env=_pin(source), ok=False)
    finally:
        stop.set()
        writer.join(10)
    assert p.returncode == 0, p.stderr
    assert lg.store.records(0, 10) == source.store.records(0, 6)
    assert stored_counts(lg)["records"] == 6


def test_cli_3_6mb_non_json_body_labelled_sigstore_bundle_is_refused(
    target: tuple[Ledger, list[str]], tmp_path: Path
) -> None:
    lg, opts = target
    key = generate_key(ORIGIN)
    bodies: list[tuple[bytes, BodyType]] = [(b"\x00" * 3_600_000, "sigstore-bundle")]
    path = forge_export(tmp_path / "big.jsonl", key, bodies)
    p = ledger_cli(
        "import", str(path), *opts, env={"LEDGER_IMPORT_VKEY": key.verifier_key()}, ok=False
    )
    assert_one_line(p, 2, "line 2: longer than")
    assert stored_counts(lg) == EMPTY


def _malformed(header: bytes) -> dict[str, bytes | None]:
    """File contents that must each be refused as bad input (None: no file at all)."""
    h = json.loads(header)
    no_vkey = {k: v for k, v in h.items() if k != "vkey"}
    no_checkpoint = {k: v for k, v in h.items() if k != "checkpoint"}
    return {
        "invalid-UTF-8-in-the-header": b'{"format": "\xff"}\n',
        "invalid-UTF-8-in-a-record-line": header + b'{"index": 0, "leaf": "\xfe\xff"}\n',
        "header-without-vkey": json.dumps(no_vkey).encode() + b"\n",
        "header-without-checkpoint": json.dumps(no_checkpoint).encode() + b"\n",
        "deeply-nested-JSON-header": b"[" * 200_000 + b"\n",
        "deeply-nested-JSON-record-line": header + b"[" * 200_000 + b"\n",
        "line-longer-than-a-1MiB-body-needs": header + b'{"body": "' + b"A" * (2 << 20),
        "record-line-not-an-object": header + b"[1]\n",
        "empty-file": b"",
        "missing-file": None,
    }


CASES = list(_malformed(b"{}"))


@pytest.fixture(scope="module")
def empty_target(
    tmp_path_factory: pytest.TempPathFactory, signed_samples: list[bytes]
) -> Iterator[tuple[Path, bytes, dict[str, str]]]:
    """One empty SQLite ledger for every malformed file (each must leave it empty)."""
    d = tmp_path_factory.mktemp("import")
    with Ledger.create(f"sqlite:///{d / 'src.db'}", ORIGIN, d / "src.key") as src:
        src.append_many(signed_samples[:2])
        header = export_to(src, d / "real.jsonl").read_bytes().split(b"\n", 1)[0] + b"\n"
        pin = _pin(src)
    Ledger.create(f"sqlite:///{d / 'dst.db'}", ORIGIN, d / "dst.key").close()
    yield d, header, pin


@pytest.mark.parametrize("case", CASES)
def test_malformed_import_file_is_one_line_exit_2_and_writes_nothing(
    case: str, empty_target: tuple[Path, bytes, dict[str, str]]
) -> None:
    d, header, pin = empty_target
    content = _malformed(header)[case]
    path = d / f"{case}.jsonl"
    if content is not None:
        path.write_bytes(content)
    db = f"sqlite:///{d / 'dst.db'}"
    p = ledger_cli(
        "import", str(path), "--db", db, "--key-file", str(d / "dst.key"), env=pin, ok=False
    )
    assert_one_line(p, 2)
    with Ledger.open(db) as lg:
        assert stored_counts(lg) == EMPTY


@pytest.fixture
def exported(tmp_path: Path) -> Iterator[tuple[Ledger, str]]:
    """A source ledger of 400 small bodies (an export of ~260 KB)."""
    url = f"sqlite:///{tmp_path / 'src.db'}"
    with Ledger.create(url, ORIGIN, tmp_path / "src.key") as lg:
        lg.append_many([envelope(i) for i in range(400)])
        yield lg, url


def _no_partial(*dirs: Path) -> None:
    for d in dirs:
        assert not [f for f in os.listdir(d) if f.endswith(".partial")], os.listdir(d)


def test_export_to_a_directory_is_one_line_exit_2_and_leaves_no_partial(
    exported: tuple[Ledger, str], tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    p = ledger_cli("export", str(tmp_path / "out"), "--db", exported[1], ok=False)
    assert_one_line(p, 2, "is a directory")
    _no_partial(tmp_path, tmp_path / "out")


def test_export_into_a_missing_directory_is_one_line_exit_2(
    exported: tuple[Ledger, str], tmp_path: Path
) -> None:
    p = ledger_cli("export", str(tmp_path / "nope" / "out.jsonl"), "--db", exported[1], ok=False)
    assert_one_line(p, 2, "No such file or directory")
    assert not (tmp_path / "nope").exists()


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (needs root)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if r.returncode:
        pytest.skip(f"cannot mount a small tmpfs: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_export_to_a_full_disk_is_one_line_exit_2_and_leaves_no_partial(
    exported: tuple[Ledger, str], full_disk: Path
) -> None:
    p = ledger_cli("export", str(full_disk / "out.jsonl"), "--db", exported[1], ok=False)
    assert_one_line(p, 2, "No space left on device")
    assert os.listdir(full_disk) == []


def test_export_with_a_body_missing_is_exit_1_naming_the_index_and_writes_no_file(
    db_url: str, key_path: Path, tmp_path: Path
) -> None:
    with Ledger.create(db_url, ORIGIN, key_path) as lg:
        lg.append_many([envelope(i) for i in range(5)])
        digest = lg.store.record(3).body_digest
        _tamper(lg, "bodies", "DELETE FROM bodies WHERE digest = :d", d=digest)
    p = ledger_cli("export", str(tmp_path / "out.jsonl"), "--db", db_url, ok=False)
    assert_one_line(p, 1, "record 3", "is missing", "(index 3)")
    assert not (tmp_path / "out.jsonl").exists()
    _no_partial(tmp_path)


def test_export_with_checkpoints_deleted_is_exit_1_instead_of_writing_0_of_6(
    db_url: str, key_path: Path, tmp_path: Path
) -> None:
    with Ledger.create(db_url, ORIGIN, key_path) as lg:
        for i in range(6):
            lg.append(envelope(i))
        _tamper(lg, "checkpoints", "DELETE FROM checkpoints WHERE size > 0")
    p = ledger_cli("export", str(tmp_path / "out.jsonl"), "--db", db_url, ok=False)
    assert_one_line(p, 1, "not covered by any signed checkpoint", "(index 0)")
    assert not (tmp_path / "out.jsonl").exists()
    _no_partial(tmp_path)


def test_import_of_dev_zero_reads_one_capped_line_and_is_refused(
    empty_target: tuple[Path, bytes, dict[str, str]],
) -> None:
    d, _, pin = empty_target
    db = f"sqlite:///{d / 'dst.db'}"
    p = ledger_cli(
        "import", "/dev/zero", "--db", db, "--key-file", str(d / "dst.key"), env=pin, ok=False
    )
    assert_one_line(p, 2, "line 1: longer than")


def test_export_to_stdout_piped_into_import_from_stdin(
    source: Ledger, target: tuple[Ledger, list[str]], tmp_path: Path
) -> None:
    lg, opts = target
    src_db = f"sqlite:///{tmp_path / 'src.db'}"
    out = ledger_cli("export", "-", "--db", src_db).stdout
    p = subprocess.run(
        [LEDGER, "import", "-", *opts],
        input=out,
        capture_output=True,
        text=True,
        env={**os.environ, **_pin(source)},
        timeout=300,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    assert lg.checkpoint().checkpoint.root_hash == source.checkpoint().checkpoint.root_hash
