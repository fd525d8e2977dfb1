"""The ``ledger`` command's failures: one line each that says what is wrong, the documented exit
code, and nothing left behind — and its help, version and examples."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
import typer
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from ledger.bodies import MAX_BODY_BYTES
from ledger.cli import app
from ledger.keys import default_key_path, write_signer
from ledger.note import generate_key
from tests.conftest import _pg_base_url, run_measuring_peak
from tests.ledger.test_cli import LEDGER, run

EXIT_CODES = (
    "Exit codes: 0 ok, 1 integrity failure, 2 bad input, 3 not found, 4 database failure, "
    "5 not trusted."
)
COMMANDS = ["init", "append", "checkpoint", "proof", "check", "reindex", "export", "import"]
GROUPS = ["signers", "tokens"]  # their own subcommands and help (not covered here)
SERVICE = ["serve"]  # exit codes and an example in its help, but the example runs until stopped


def one_line_error(p: subprocess.CompletedProcess[str], code: int) -> str:
    """Assert that ``p`` failed with ``code`` and one line on stderr; return that line."""
    assert p.returncode == code, (p.returncode, p.stderr)
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("ledger: error: "), p.stderr
    assert "Traceback" not in p.stderr and "SELECT" not in p.stderr and "INSERT" not in p.stderr
    return p.stderr.strip()


def init_trusted(cwd: Path, work: Path, *args: str) -> None:
    """``ledger init`` with ``args``, and the samples' key registered as signer ``ci``."""
    run(cwd, "init", "--origin", "cli.example/log", *args)
    run(cwd, "signers", "add", "--name", "ci", "--key", str(work / "sample.pub"), *args)


def failed_init(cwd: Path, db: str, *more: str) -> subprocess.CompletedProcess[str]:
    return run(cwd, "init", "--origin", "x/y", "--db", db, *more, ok=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def work(tmp_path: Path, signed_samples: list[bytes], sample_pub_pem: bytes) -> Path:
    for i, body in enumerate(signed_samples[:3]):
        (tmp_path / f"a{i}.json").write_bytes(body)
    (tmp_path / "sample.pub").write_bytes(sample_pub_pem)
    some = generate_key("some.example/log")  # no ledger's key
    write_signer(tmp_path / "some.key", some)
    (tmp_path / "some.vkey").write_text(some.verifier_key())
    return tmp_path


def _vkey(work: Path) -> str:
    return (work / "some.vkey").read_text()


# -- item: bounded reads ---------------------------------------------------------------------


def _run_measured(cwd: Path, *args: str) -> tuple[int, str, float, int]:
    """Run the ledger command; return exit code, stderr, seconds and peak memory (KiB)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    start = time.monotonic()
    code, err, peak = run_measuring_peak([LEDGER, *args], cwd=cwd, env=env)
    return code, err, time.monotonic() - start, peak


def test_append_of_dev_zero_or_a_file_one_byte_too_big_reads_no_more_than_the_limit(
    work: Path,
) -> None:
    run(work, "init", "--origin", "cli.example/log")
    (work / "big.json").write_bytes(b" " * (MAX_BODY_BYTES + 1))
    for name in ("/dev/zero", "big.json"):
        code, err, seconds, peak_kib = _run_measured(work, "append", name)
        assert code == 2 and err.count("\n") == 1, err
        assert f"{name} is larger than the {MAX_BODY_BYTES}-byte body limit" in err
        assert peak_kib < 200 * 1024, f"{name}: {peak_kib} KiB read into memory"
        assert seconds < 30
    assert json.loads(run(work, "check").stdout)["records"] == 0


# -- item: database errors say what is wrong -------------------------------------------------


def test_connection_refused_names_the_server(work: Path) -> None:
    port = free_port()
    p = run(work, "checkpoint", "--db", f"postgresql://postgres@127.0.0.1:{port}/test", ok=False)
    line = one_line_error(p, 4)
    assert (
        line
        == f"ledger: error: cannot connect to PostgreSQL at 127.0.0.1:{port}: connection refused"
    )


@pytest.mark.postgres
def test_a_missing_postgres_database_is_named(work: Path) -> None:
    name = "nope_" + uuid.uuid4().hex[:12]
    url = make_url(_pg_base_url()).set(database=name).render_as_string(hide_password=False)
    line = one_line_error(run(work, "check", "--db", url, ok=False), 3)
    assert line.endswith(f'database "{name}" does not exist')


@pytest.mark.postgres
def test_an_uninitialised_postgres_database_says_run_init(work: Path, pg_url: str) -> None:
    line = one_line_error(run(work, "checkpoint", "--db", pg_url, ok=False), 3)
    assert "no ledger in PostgreSQL database" in line and "run `ledger init" in line


def test_an_uninitialised_sqlite_file_says_run_init_and_stays_empty(work: Path) -> None:
    (work / "empty.db").touch()
    for args in (
        ["checkpoint"],
        ["check"],
        ["export", "out.jsonl"],
        ["append", "a0.json", "--key-file", "some.key"],
    ):
        p = run(work, *args, "--db", "sqlite:///empty.db", ok=False)
        assert one_line_error(p, 3) == (
            "ledger: error: no ledger in sqlite file empty.db: "
            "run `ledger init --origin NAME --db sqlite:///empty.db` first"
        ), args
    assert (work / "empty.db").stat().st_size == 0
    assert not (work / "out.jsonl").exists()


def test_a_read_only_sqlite_url_refuses_writes_in_one_line(work: Path) -> None:
    init_trusted(work, work)
    run(work, "append", "a0.json")
    ro = f"sqlite:///file:{work / 'ledger.db'}?mode=ro&uri=true"
    key = ["--key-file", str(work / "ledger.db.key")]
    line = one_line_error(run(work, "append", "a1.json", "--db", ro, *key, ok=False), 4)
    assert line.endswith(f"the database is read-only (sqlite file {work / 'ledger.db'})")
    assert json.loads(run(work, "check", "--db", ro).stdout)["records"] == 2  # signer, a0


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs holding a ledger of one record, remounted read-only (needs root, as in CI)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], check=False)
    if p.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_a_read_only_file_system_is_named_in_one_line_and_nothing_changes(
    read_only_mount: Path, work: Path
) -> None:
    mnt = read_only_mount
    init_trusted(mnt, work)
    run(mnt, "append", str(work / "a0.json"))
    (work / "k").write_bytes((mnt / "ledger.db.key").read_bytes())
    (work / "k").chmod(0o600)
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
    before = sorted(os.listdir(mnt))
    read_only = (
        "ledger: error: the database is read-only: ledger.db is on a read-only file system "
        "(SQLite writes a -shm file beside it even to read)"
    )
    assert one_line_error(run(mnt, "check", ok=False), 4) == read_only
    p = run(mnt, "append", str(work / "a1.json"), "--key-file", str(work / "k"), ok=False)
    assert one_line_error(p, 4) == read_only
    p = failed_init(work, f"sqlite:///{mnt}/new.db")
    assert one_line_error(p, 4) == (
        f"ledger: error: the database is read-only: cannot create {mnt}/new.db: "
        "read-only file system"
    )
    p = failed_init(work, "sqlite:///new.db", "--key-file", f"{mnt}/k")
    assert one_line_error(p, 2).endswith("Read-only file system")
    assert not (work / "new.db").exists()  # made before the key file failed, then removed
    assert sorted(os.listdir(mnt)) == before


@pytest.mark.postgres
def test_a_read_only_postgres_transaction_refuses_writes_in_one_line(
    work: Path, pg_url: str
) -> None:
    init_trusted(work, work, "--db", pg_url, "--key-file", "k")
    ro = pg_url + "%20-cdefault_transaction_read_only%3Don"
    p = run(work, "append", "a0.json", "--db", ro, "--key-file", "k", ok=False)
    assert "the database is read-only (PostgreSQL database " in one_line_error(p, 4)
    assert json.loads(run(work, "check", "--db", pg_url).stdout)["records"] == 1  # the signer


def test_a_failed_write_gives_the_drivers_reason_without_sql_or_parameters(work: Path) -> None:
    init_trusted(work, work)
    run(work, "append", "a0.json")
    con = sqlite3.connect(work / "ledger.db")
    con.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON records BEGIN SELECT RAISE(ABORT, 'quota'); END"
    )
    con.commit()
    con.close()
    line = one_line_error(run(work, "append", "a1.json", ok=False), 4)
    assert line.endswith(": the write failed and was rolled back: quota")
    assert json.loads(run(work, "check").stdout)["records"] == 2  # signer, a0


# -- item: reading commands and a failed init create nothing ---------------------------------


def test_reading_commands_on_a_missing_sqlite_file_create_nothing(work: Path) -> None:
    (work / "x.jsonl").write_text("{}\n")
    before = sorted(os.listdir(work))
    for args in (
        ["checkpoint"],
        ["proof", "--index", "0"],
        ["check"],
        ["export", "out.jsonl"],
        ["append", "a0.json", "--key-file", "some.key"],
        ["import", "x.jsonl", "--key-file", "some.key", "--vkey", _vkey(work)],
    ):
        p = run(work, *args, "--db", "sqlite:///missing.db", ok=False)
        assert one_line_error(p, 3) == "ledger: error: no ledger at missing.db", args
    assert sorted(os.listdir(work)) == before


def test_a_failed_init_removes_the_file_it_created(work: Path) -> None:
    (work / "taken.key").write_text("not mine")
    p = failed_init(work, "sqlite:///new.db", "--key-file", "taken.key")
    assert "already exists" in one_line_error(p, 2)
    assert not list(work.glob("new.db*"))
    assert (work / "taken.key").read_text() == "not mine"
    p = failed_init(work, "sqlite:///no/such/dir/new.db")
    assert one_line_error(p, 4).endswith("directory no/such/dir does not exist")
    port = free_port()
    p = failed_init(work, f"postgresql://u@127.0.0.1:{port}/db")
    one_line_error(p, 4)
    assert sorted(p.name for p in work.glob("*.key")) == ["some.key", "taken.key"]


def test_init_over_an_existing_empty_file_keeps_that_file_when_it_fails(work: Path) -> None:
    (work / "mine.db").touch()
    (work / "mine.db.key").write_text("taken")
    p = failed_init(work, "sqlite:///mine.db")
    one_line_error(p, 2)
    assert (work / "mine.db").exists()


# -- item: one key path per PostgreSQL database ------------------------------------------------


def test_default_key_path_is_the_same_for_every_spelling_of_a_postgres_url() -> None:
    spellings = [
        "postgresql://alice@db.example:5432/ledger",
        "postgresql+psycopg://alice@db.example:5432/ledger",
        "postgresql+psycopg://alice:secret@db.example:5432/ledger",
        "postgresql://alice:other@db.example:5432/ledger",
    ]
    paths = {default_key_path(u) for u in spellings}
    assert len(paths) == 1
    assert default_key_path("postgresql://alice@db.example:5432/other") not in paths
    assert default_key_path("sqlite:///dir/ledger.db") == Path("dir/ledger.db.key")


@pytest.mark.postgres
def test_a_ledger_made_with_one_url_spelling_appends_with_the_other(
    work: Path, pg_url: str
) -> None:
    plain = "postgresql://" + pg_url.split("://", 1)[1]
    init_trusted(work, work, "--db", plain)
    out = run(work, "append", "a0.json", "--db", pg_url).stdout
    assert json.loads(out)["index"] == 1  # after the signer's entry


# -- item: every subcommand, broken database: one line, documented code ----------------------


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("postgresql://postgres@127.0.0.1:{port}/test", 4),
        ("sqlite:///missing.db", 3),
        ("mysql://root@localhost/x", 2),
        ("::not a url::", 2),
    ],
)
def test_every_subcommand_with_a_broken_database_url_fails_in_one_line(
    work: Path, url: str, code: int
) -> None:
    url = url.format(port=free_port())
    (work / "x.jsonl").write_text("{}\n")
    before = sorted(os.listdir(work))
    cases = {
        "init": ["--origin", "x/y", "--key-file", "new.key"],
        "append": ["a0.json", "--key-file", "some.key"],
        "checkpoint": [],
        "proof": ["--index", "0"],
        "check": [],
        "reindex": [],
        "export": ["out.jsonl"],
        "import": ["x.jsonl", "--key-file", "some.key", "--vkey", _vkey(work)],
    }
    assert sorted(cases) == sorted(COMMANDS)
    for command, args in cases.items():
        p = run(work, command, *args, "--db", url, ok=False)
        expected = code if not (command == "init" and code == 3) else 0
        if expected == 0:  # init is the one command that may make a missing SQLite file
            for made in work.glob("new.*"):
                made.unlink()
            for made in work.glob("missing.db*"):  # the ledger, and its writers' queue file
                made.unlink()
            continue
        one_line_error(p, expected)
    assert sorted(os.listdir(work)) == before


# -- item: --version, and every --help lists the exit codes and an example that works --------


def test_version_prints_the_installed_version() -> None:
    p = subprocess.run([LEDGER, "--version"], capture_output=True, text=True, check=False)
    assert p.returncode == 0
    assert p.stdout == f"ledger {metadata.version('provenance-ledger')}\n"


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return " ".join(line.strip(" │") for line in result.output.splitlines())


def examples() -> Iterator[tuple[str, str]]:
    for command in COMMANDS:
        text = _help(command)
        example = re.search(r"Example: (.+?)\s{2,}", text)
        assert example, f"`ledger {command} --help` has no example"
        yield command, example.group(1)


def test_help_of_every_subcommand_lists_the_exit_codes_and_an_example() -> None:
    assert sorted(typer.main.get_group(app).commands) == sorted(COMMANDS + GROUPS + SERVICE)
    assert EXIT_CODES in _help()
    for command in COMMANDS + SERVICE:
        assert EXIT_CODES in _help(command), command
    assert [c for c, _ in examples()] == COMMANDS


def test_the_help_examples_work_as_written_in_order(work: Path) -> None:
    (work / "build.intoto.json").write_bytes((work / "a0.json").read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["PATH"] = f"{Path(LEDGER).parent}{os.pathsep}{env['PATH']}"
    for command, example in examples():
        if command == "append":  # what init cannot do: trust the key that signed the body
            run(work, "signers", "add", "--name", "ci", "--key", "sample.pub")
        if command == "import":  # an empty ledger of the same origin and admin key to import into
            copy = ["--db", "sqlite:///copy.db", "--admin-key", "ledger.db.admin.key"]
            run(work, "init", "--origin", "example.com/ledger", *copy)
        assert f"{example} ".startswith(f"ledger {command} ") or command == "import", example
        p = subprocess.run(
            ["sh", "-c", example], cwd=work, env=env, capture_output=True, text=True, check=False
        )
        assert p.returncode == 0, (command, example, p.stderr)
    copy = json.loads(run(work, "check", "--db", "sqlite:///copy.db").stdout)
    assert copy["records"] == json.loads(run(work, "check").stdout)["records"] == 2
