"""The console script: `verify --help` lists every command, the default command's fast parser
(no typer) accepts exactly the typer command's options, and anything else falls back to typer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.main import get_command

from verify._internal.fast import (
    ATTESTATIONS_OPTIONS,
    BUNDLE_OPTIONS,
    CHECK_OPTIONS,
    SUBCOMMANDS,
    parse_attestations,
    parse_check,
    parse_sigstore_bundle,
)
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


def test_the_fast_bundle_parser_knows_exactly_the_sigstore_bundle_options() -> None:
    group = get_command(app)
    command = group.commands["sigstore-bundle"]  # type: ignore[attr-defined]
    typer_opts = {o for p in command.params for o in p.opts if o.startswith("-")}
    assert typer_opts == set(BUNDLE_OPTIONS)
    dests = {p.name for p in command.params if p.name != "file_or_digest"}
    assert dests == {dest for _, dest in BUNDLE_OPTIONS.values()}


def test_the_fast_parsers_take_the_plain_forms_and_leave_the_rest_to_typer() -> None:
    ns = parse_check(["a", "--policy=p", "--layout-key", "k1", "--layout-key=k2", "--record"])
    assert ns is not None and ns.policy == Path("p") and ns.record
    assert ns.layout_key == [Path("k1"), Path("k2")]
    for argv in (
        ["a", "b", "-p", "p"],  # two artifacts
        ["a", "-p"],  # a missing value
        ["a", "-p", "--record"],  # a value that looks like an option
        ["a", "-p", "p", "--record=yes"],
        ["a", "-pp"],  # clustered short option
        ["a", "-p", "p", "--", "x"],
    ):
        assert parse_check(argv) is None, argv
    got = parse_sigstore_bundle(["sha256:" + "0" * 64, "--bundle", "b.json", "--key=k.pem"])
    assert got is not None and got.bundle == Path("b.json") and got.key == Path("k.pem")
    assert parse_sigstore_bundle(["a.txt"]) is None  # --bundle is required
    assert parse_sigstore_bundle(["a.txt", "--bundle", "b", "--certificate-id", "x"]) is None


def test_sigstore_bundle_runs_without_typer(tmp_path: Path) -> None:
    """The plain command line is parsed without typer (its import is a third of the command's
    own start-up); a bad one still gets typer's usage error, exit 2."""
    code = (
        "import sys\n"
        "sys.argv = ['verify', 'sigstore-bundle', '--bundle', 'missing.json', 'sha256:' + '0' * 64]\n"
        "from verify.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    print(e.code, 'typer' in sys.modules)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert p.stdout.split() == ["2", "False"], p.stdout + p.stderr
    assert "cannot read bundle missing.json" in p.stderr
    argv = [VERIFY, "sigstore-bundle", "--bundle"]
    p = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert p.returncode == 2 and "--bundle" in p.stderr


def test_the_fast_attestations_parser_knows_exactly_its_options() -> None:
    group = get_command(app)
    command = group.commands["attestations"]  # type: ignore[attr-defined]
    typer_opts = {o for p in command.params for o in p.opts if o.startswith("-")}
    assert typer_opts == set(ATTESTATIONS_OPTIONS)
    dests = {p.name for p in command.params if p.name != "artifact"}
    assert dests == {dest for _, dest in ATTESTATIONS_OPTIONS.values()}
    got = parse_attestations(["a", "-p", "p", "--bundle", "x", "--bundle=y", "--format", "json"])
    assert got is not None and got.bundle == [Path("x"), Path("y")] and got.fmt == "json"
    assert parse_attestations(["a", "-p", "p"]) is None  # --bundle is required
    assert parse_attestations(["a", "--bundle", "x"]) is None  # and --policy


def test_attestations_runs_without_typer(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.argv = ['verify', 'attestations', 'sha256:' + '0' * 64, '-p', 'missing.yaml',"
        " '--bundle', 'b.json', '--format', 'json']\n"
        "from verify.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    print(e.code, 'typer' in sys.modules)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert p.stdout.splitlines()[-1].split() == ["2", "False"], p.stdout + p.stderr
    assert '"verdict": "ERROR"' in p.stdout and "missing.yaml" in p.stderr


def test_another_commands_line_is_never_read_as_the_default_check(tmp_path: Path) -> None:
    """``verify attestations --policy p --evidence e`` (an option attestations lacks) is typer's
    usage error, even with a file named ``attestations`` in the working directory (the fast path
    took it as the artifact and checked that file: hostile finding, 2026-11-30)."""
    assert set(get_command(app).commands) - {"check"} == SUBCOMMANDS  # type: ignore[attr-defined]
    for name in SUBCOMMANDS:
        assert parse_check([name, "--policy", "p.yaml", "--evidence", "e.json"]) is None
    (tmp_path / "attestations").write_text("a file")
    p = subprocess.run(
        [VERIFY, "attestations", "--policy", "p.yaml", "--evidence", "e.json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert p.returncode == 2, p.stdout + p.stderr
    assert "--evidence" in p.stderr, p.stderr


def test_at_takes_rfc3339_only() -> None:
    """Python's ISO 8601 reader also takes week dates and basic forms; --at does not."""
    import pytest

    from verify.cli import parse_at
    from verify.errors import UsageError

    assert parse_at("2026-11-29T12:00:00Z").isoformat() == "2026-11-29T12:00:00+00:00"
    assert parse_at("2026-11-29t12:00:00.5+01:00").utcoffset() is not None
    for bad in ("2026-W48-1T00:00:00Z", "20261130T000000Z", "2026-11-30 00:00:00Z", "yesterday"):
        with pytest.raises(UsageError, match="not an RFC 3339 time"):
            parse_at(bad)
    with pytest.raises(UsageError, match="time zone"):
        parse_at("2026-11-29T12:00:00")
