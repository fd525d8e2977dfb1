"""The console script: `verify --help` lists every command, the default command's fast parser
(no typer) accepts exactly the typer command's options, and anything else falls back to typer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.main import get_command

from verify._internal.fast import CHECK_OPTIONS, parse_check
from verify.commands import app

VERIFY = str(Path(sys.executable).with_name("verify"))


def test_help_lists_every_command_and_the_exit_codes() -> None:
    p = subprocess.run([VERIFY, "--help"], capture_output=True, text=True, check=False)
    assert p.returncode == 0
    for name in ("check", "export-evidence", "attestations", "Exit codes: 0 pass"):
        assert name in p.stdout
    p = subprocess.run([VERIFY, "check", "--help"], capture_output=True, text=True, check=False)
    assert p.returncode == 0 and "--evidence" in p.stdout and "--record-key" in p.stdout


def test_the_fast_parser_knows_exactly_the_check_options() -> None:
    group = get_command(app)
    check = group.commands["check"]  # type: ignore[attr-defined]
    typer_opts = {o for p in check.params for o in p.opts if o.startswith("-")}
    assert typer_opts == set(CHECK_OPTIONS)
    dests = {p.name for p in check.params if p.name != "artifact"}
    assert dests == {dest for _, dest in CHECK_OPTIONS.values()}


def test_the_fast_parser_hands_anything_else_to_typer() -> None:
    ns = parse_check(["a.zip", "--policy", "p.yaml", "--evidence", "e.json", "--format", "json"])
    assert ns is not None and ns.artifact == "a.zip" and ns.fmt == "json"
    assert parse_check(["check", "a.zip", "-p", "p.yaml", "--record"]) is not None
    for argv in (
        [],
        ["--help"],
        ["a.zip", "--help"],
        ["export-evidence", "a.zip", "-o", "x"],
        ["a.zip"],  # --policy missing: typer says so, exit 2
        ["a.zip", "-p", "p", "--format", "xml"],
        ["a.zip", "-p", "p", "--bogus"],
        ["a.zip", "-p", "p", "--pol", "q"],  # no abbreviations
    ):
        assert parse_check(argv) is None, argv


def test_usage_errors_exit_2_through_typer(tmp_path: Path) -> None:
    for argv in (["a.zip"], ["a.zip", "-p", "p", "--format", "xml"], ["nope-command", "--bogus"]):
        p = subprocess.run(
            [VERIFY, *argv], capture_output=True, text=True, check=False, cwd=tmp_path
        )
        assert p.returncode == 2, (argv, p.stdout, p.stderr)
