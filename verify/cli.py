"""The ``verify`` command: the deploy gate.

``verify ARTIFACT --policy FILE [--ledger URL | --evidence FILE | --db URL]`` is the default
command (``verify check …`` is the same); ``export-evidence`` and ``attestations`` are
subcommands. Other modules add subcommands with ``register(app)`` (see :data:`EXTENSIONS`).
Exit codes: 0 pass, 1 policy not met, 2 usage or bad input, 3 evidence unavailable, 4 a
signature, proof, checkpoint or consistency check failed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from verify import errors

__all__ = ["EXTENSIONS", "app", "main"]

DEFAULT_COMMAND = "check"
EXIT_CODES = (
    "Exit codes: 0 pass; 1 policy not met; 2 usage or bad input (policy file included); "
    "3 evidence unavailable (ledger unreachable, nothing recorded); 4 a signature, proof, "
    "checkpoint or consistency check failed."
)
# Modules that add subcommands: each defines ``register(app: typer.Typer) -> None`` and keeps
# its heavy imports inside the command functions (a deploy gate pays for every import).
EXTENSIONS: tuple[str, ...] = ()


class _DefaultGroup(TyperGroup):
    """``verify ARTIFACT …`` runs :data:`DEFAULT_COMMAND`; ``verify NAME …`` a subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [DEFAULT_COMMAND, *args]
        parsed: list[str] = super().parse_args(ctx, args)
        return parsed


app = typer.Typer(
    cls=_DefaultGroup,
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="verify: decide from proved evidence whether an artifact may ship.",
    epilog=EXIT_CODES,
)


class Format(StrEnum):
    text = "text"
    json = "json"


PolicyOpt = Annotated[Path, typer.Option("--policy", "-p", help="The policy YAML file.")]
FormatOpt = Annotated[Format, typer.Option("--format", help="text (people) or json (machines).")]
AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="Judge as of this RFC 3339 time (maxAge, later records ignored)."),
]
ArtifactArg = Annotated[
    str, typer.Argument(help="A file, a directory, sha256:HEX / sha512:HEX, or NAME@sha256:HEX.")
]


def _fail(e: errors.Error, fmt: Format, artifact: str) -> NoReturn:
    if fmt is Format.json:
        from verify.report import dumps, error_report

        print(dumps(error_report(str(e), e.exit_code, [{"name": artifact, "digest": {}}])))
    print(f"verify: {type(e).__name__}: {e}", file=sys.stderr)
    raise typer.Exit(e.exit_code)


def _converted(e: Exception) -> errors.Error | None:
    """Foreign errors that escaped their boundary, as ours (proof failures are exit 4)."""
    from attest.errors import Error as AttestError
    from attest.errors import SignatureError
    from ledger.errors import Error as LedgerError

    if isinstance(e, SignatureError):
        return errors.SignatureFailure(str(e))
    if isinstance(e, AttestError):
        return errors.UsageError(str(e))
    if isinstance(e, LedgerError):
        return errors.ProofFailure(str(e))
    return None


def _guarded(fmt: Format, artifact: str, fn: Callable[[], int]) -> NoReturn:
    try:
        code = fn()
    except errors.Error as e:
        _fail(e, fmt, artifact)
    except Exception as e:
        ours = _converted(e)
        if ours is None:
            raise
        _fail(ours, fmt, artifact)
    raise typer.Exit(code)


def _time(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise errors.UsageError(f"--at: {text!r} is not an RFC 3339 time") from e
    if t.tzinfo is None:
        raise errors.UsageError("--at: give a time zone (e.g. 2026-11-29T12:00:00Z)")
    return t


def _emit(out: Any, fmt: Format) -> int:
    from verify.report import dumps, render_text, to_json

    if fmt is Format.json:
        print(dumps(to_json(out)))
    else:
        render_text(out, sys.stdout)
    return int(out.exit_code)


@app.command(DEFAULT_COMMAND, epilog=EXIT_CODES)
def check(
    artifact: ArtifactArg,
    policy: PolicyOpt,
    ledger: Annotated[str | None, typer.Option("--ledger", help="The ledger's URL.")] = None,
    evidence: Annotated[
        Path | None, typer.Option("--evidence", help="An evidence file (no network).")
    ] = None,
    db: Annotated[str | None, typer.Option("--db", help="The ledger's database URL.")] = None,
    fmt: FormatOpt = Format.text,
    record: Annotated[
        bool, typer.Option("--record", help="Append a signed VSA of the decision to --ledger.")
    ] = False,
    record_key: Annotated[
        Path | None, typer.Option("--record-key", help="Private key that signs the VSA.")
    ] = None,
    at: AtOpt = None,
) -> None:
    """Verify ARTIFACT against the policy, from a ledger's proved evidence (the default command)."""
    from verify.run import Request, run_check

    req = Request(artifact, policy, ledger, evidence, db, record, record_key)
    _guarded(fmt, artifact, lambda: _emit(run_check(req, _time(at)), fmt))


@app.command("export-evidence", epilog=EXIT_CODES)
def export_evidence(
    artifact: ArtifactArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the evidence.")],
    ledger: Annotated[str | None, typer.Option("--ledger", help="The ledger's URL.")] = None,
    db: Annotated[str | None, typer.Option("--db", help="The ledger's database URL.")] = None,
    since: Annotated[
        int | None, typer.Option("--since", help="Add a consistency proof from this tree size.")
    ] = None,
) -> None:
    """Write the self-contained evidence file about ARTIFACT (for `verify --evidence`)."""
    from verify.run import export

    _guarded(Format.text, artifact, lambda: export(artifact, output, ledger, db, since))


@app.command("attestations", epilog=EXIT_CODES)
def attestations(
    artifact: ArtifactArg,
    policy: PolicyOpt,
    bundle: Annotated[
        list[Path],
        typer.Option("--bundle", help="Sigstore bundles, DSSE envelopes, or JSON Lines of them."),
    ],
    fmt: FormatOpt = Format.text,
    at: AtOpt = None,
) -> None:
    """Verify third-party attestations (not in our ledger) against the policy's rules."""
    from verify.run import run_attestations

    _guarded(
        fmt, artifact, lambda: _emit(run_attestations(artifact, policy, bundle, _time(at)), fmt)
    )


for _module in EXTENSIONS:
    import_module(_module).register(app)


def main() -> None:
    app()
