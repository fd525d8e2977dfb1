"""The default command's argument parser without typer: ``verify ARTIFACT --policy FILE …`` runs
on every deploy, and importing typer and building its command costs more than the verification
itself. It accepts exactly the options of :func:`verify.cli.check` (a test compares the two);
anything else (``--help``, a subcommand, a parse error) goes to the typer app."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

__all__ = ["CHECK_OPTIONS", "parse_check"]

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


class _Refused(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Refused(message)


def _parser() -> _Parser:
    p = _Parser(add_help=False, allow_abbrev=False)
    p.add_argument("artifact")
    p.add_argument("--policy", "-p", type=Path, required=True)
    p.add_argument("--ledger")
    p.add_argument("--evidence", type=Path)
    p.add_argument("--db")
    p.add_argument("--format", dest="fmt", choices=("text", "json"), default="text")
    p.add_argument("--record", action="store_true")
    p.add_argument("--record-key", type=Path)
    p.add_argument("--at")
    p.add_argument("--layout", type=Path)
    p.add_argument("--layout-key", type=Path, action="append", default=[])
    p.add_argument("--link-dir", type=Path)
    return p


def parse_check(argv: Sequence[str]) -> argparse.Namespace | None:
    """The default command's arguments, or ``None`` when typer should handle ``argv``."""
    if not argv or any(a in ("--help", "-h", "--version") for a in argv):
        return None
    if argv[0] == "check":
        argv = argv[1:]
    try:
        return _parser().parse_args(list(argv))
    except _Refused:
        return None
