"""The default command's argument parser without typer (or argparse): ``verify ARTIFACT --policy
FILE …`` runs on every deploy, and importing typer and building its command costs more than the
verification itself (argparse's translations lookup alone was ~5 ms of a cold start). It accepts
exactly the options of :func:`verify.cli.check` (a test compares the two) in their plain forms
(``--opt VALUE``, ``--opt=VALUE``, ``-p VALUE``); anything else (``--help``, a subcommand, an
unknown or abbreviated option, a missing value or ``--policy``, ``--``, a bad ``--format``) goes to
the typer app, which runs it or says what is wrong."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

__all__ = ["CHECK_OPTIONS", "CheckArgs", "parse_check"]

# option -> (takes a value, the check() parameter it fills)
CHECK_OPTIONS: dict[str, tuple[bool, str]] = {
    "--policy": (True, "policy"),
    "-p": (True, "policy"),
    "--ledger": (True, "ledger"),
    "--evidence": (True, "evidence"),
    "--db": (True, "db"),
    "--format": (True, "fmt"),
    "--record": (False, "record"),
    "--record-key": (True, "record_key"),
    "--at": (True, "at"),
    "--layout": (True, "layout"),
    "--layout-key": (True, "layout_key"),
    "--link-dir": (True, "link_dir"),
}
_PATHS = frozenset({"policy", "evidence", "record_key", "layout", "link_dir"})
_FORMATS = ("text", "json")


class CheckArgs(NamedTuple):
    """The default command's arguments (the names of :func:`verify.cli.check`'s parameters)."""

    artifact: str
    policy: Path
    ledger: str | None = None
    evidence: Path | None = None
    db: str | None = None
    fmt: str = "text"
    record: bool = False
    record_key: Path | None = None
    at: str | None = None
    layout: Path | None = None
    layout_key: list[Path] = []  # noqa: RUF012 - replaced, never mutated, by parse_check
    link_dir: Path | None = None


class _ForTyper(Exception):
    """``argv`` is not a plain default command: typer runs it or says what is wrong."""


def _option(args: list[str], i: int) -> tuple[str, object, int]:
    """The option at ``args[i]``: (the parameter it fills, its value, the next index)."""
    name, eq, attached = args[i].partition("=") if args[i].startswith("--") else (args[i], "", "")
    spec = CHECK_OPTIONS.get(name)
    if spec is None:
        raise _ForTyper  # unknown, abbreviated or clustered
    takes_value, dest = spec
    if not takes_value:
        if eq:
            raise _ForTyper
        return dest, True, i + 1
    if eq:
        value, i = attached, i + 1
    elif i + 1 < len(args) and not args[i + 1].startswith("-"):
        value, i = args[i + 1], i + 2
    else:
        raise _ForTyper  # a missing value, or one that looks like an option
    return dest, Path(value) if dest in _PATHS else value, i


def _parse(args: list[str]) -> CheckArgs:
    got: dict[str, object] = {}
    layout_keys: list[Path] = []
    artifact: str | None = None
    i = 0
    while i < len(args):
        if not args[i].startswith("-") or args[i] == "-":
            if artifact is not None:
                raise _ForTyper  # a second positional
            artifact, i = args[i], i + 1
            continue
        dest, value, i = _option(args, i)
        if dest == "layout_key":
            layout_keys.append(Path(str(value)))
        else:
            got[dest] = value
    if artifact is None or "policy" not in got or got.get("fmt", "text") not in _FORMATS:
        raise _ForTyper
    return CheckArgs(artifact, layout_key=layout_keys, **got)  # type: ignore[arg-type]


def parse_check(argv: Sequence[str]) -> CheckArgs | None:
    """The default command's arguments, or ``None`` when typer should handle ``argv``."""
    args = list(argv)
    if not args or any(a in ("--help", "-h", "--version", "--") for a in args):
        return None
    try:
        return _parse(args[1:] if args[0] == "check" else args)
    except _ForTyper:
        return None
