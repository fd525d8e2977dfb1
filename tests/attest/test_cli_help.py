"""The attest command's surface: --version, exit codes and a working example in every --help,
and inputs read no further than the size limit."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from attest._internal.cli_help import EXIT_CODES, RUN_EXIT_CODES
from attest.cli import app
from attest.verification import MAX_DOCUMENT_BYTES
from tests.conftest import run_measuring_peak

DATA = Path(__file__).parent / "data"
ATTEST = [sys.executable, "-m", "attest.cli"]
# the order the examples run in, each using what the ones before it made
COMMANDS = ["keygen", "run", "provenance", "test-result", "scan", "vex", "sign", "verify"]


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return " ".join(line.strip(" │") for line in result.output.splitlines())


def _example(command: str) -> str:
    found = re.search(r"Example: (.+?)\s{2,}", _help(command))
    assert found, f"`attest {command} --help` has no example"
    return found.group(1)


def test_version_prints_the_installed_version() -> None:
    p = subprocess.run([*ATTEST, "--version"], capture_output=True, text=True, check=False)
    assert p.returncode == 0
    assert p.stdout == f"attest {metadata.version('provenance-ledger')}\n"


def test_help_of_every_subcommand_lists_the_exit_codes_and_an_example() -> None:
    assert sorted(typer.main.get_group(app).commands) == sorted(COMMANDS)
    assert EXIT_CODES in _help()
    for command in COMMANDS:
        codes = RUN_EXIT_CODES if command == "run" else EXIT_CODES
        assert codes in _help(command), command
        assert _example(command).startswith(f"attest {command} "), command


def test_the_help_examples_work_as_written_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("GITHUB_ACTIONS", "GITLAB_CI", "ATTEST_KEY", "LEDGER_URL", "ATTEST_KEY_PASSPHRASE"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print('hello')\n")
    (tmp_path / "dist").mkdir()
    shutil.copy(DATA / "grype.json", tmp_path / "grype.json")
    attest_dir = str(Path(shutil.which("attest") or ATTEST[0]).parent)
    env = {**os.environ, "PATH": f"{attest_dir}{os.pathsep}{os.environ['PATH']}"}
    for command in COMMANDS:
        if command == "sign":  # the one input no earlier example makes
            digest = hashlib.sha256((tmp_path / "dist" / "app.tgz").read_bytes()).hexdigest()
            statement = {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "dist/app.tgz", "digest": {"sha256": digest}}],
                "predicateType": "https://example.com/release/v1",
                "predicate": {"channel": "stable"},
            }
            (tmp_path / "statement.json").write_text(json.dumps(statement))
        example = _example(command)
        p = subprocess.run(
            ["sh", "-c", example],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert p.returncode == 0, (example, p.stderr)
    assert json.loads(p.stdout)["verified"] is True


@pytest.mark.parametrize("command", ["verify", "sign"])
def test_dev_zero_or_a_file_one_byte_too_big_is_refused_after_reading_the_limit(
    tmp_path: Path, command: str
) -> None:
    (tmp_path / "big.json").write_bytes(b" " * (MAX_DOCUMENT_BYTES + 1))
    key = tmp_path / "k"
    assert CliRunner().invoke(app, ["keygen", "-o", str(key)]).exit_code == 0
    key_arg = str(key) + (".pub" if command == "verify" else "")
    for name in ("/dev/zero", str(tmp_path / "big.json")):
        start = time.monotonic()
        code, err, peak = run_measuring_peak([*ATTEST, command, name, "--key", key_arg])
        assert code == 2, err
        assert err == (
            f"attest: error: {name} is larger than {MAX_DOCUMENT_BYTES} bytes, "
            "the largest body a ledger takes\n"
        )
        assert peak < 200 * 1024, f"{name}: {peak} KiB read into memory"
        assert time.monotonic() - start < 30
