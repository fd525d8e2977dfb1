"""The ``verify`` command's typer app: ``verify --help`` and the subcommands. The default command
usually runs without it (:func:`verify.cli.main` parses ``verify ARTIFACT …`` itself).

To add a subcommand, write a module with ``register(app: typer.Typer) -> None`` (keep its heavy
imports inside the command function) and name it in :data:`EXTENSIONS`.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from verify.cli import (
    DEFAULT_COMMAND,
    EXIT_CODES,
    Format,
    LayoutOptions,
    guarded,
    run_attestations_command,
    run_check_command,
)

__all__ = ["EXTENSIONS", "app"]

# Modules that add subcommands (``verify sigstore-bundle``, in-toto layouts, …).
EXTENSIONS: tuple[str, ...] = ("verify.conformance", "verify.layout_cli")


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

PolicyOpt = Annotated[Path, typer.Option("--policy", "-p", help="The policy YAML file.")]
LayoutOpt = Annotated[
    Path | None, typer.Option("--layout", help="A signed in-toto layout to check too.")
]
LayoutKeyOpt = Annotated[
    list[Path] | None,
    typer.Option("--layout-key", help="A key that must have signed the layout."),
]
FormatOpt = Annotated[Format, typer.Option("--format", help="text (people) or json (machines).")]
AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="Judge as of this RFC 3339 time (maxAge, later records ignored)."),
]
ArtifactArg = Annotated[
    str, typer.Argument(help="A file, a directory, sha256:HEX / sha512:HEX, or NAME@sha256:HEX.")
]


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
    layout: LayoutOpt = None,
    layout_key: LayoutKeyOpt = None,
    link_dir: Annotated[
        Path | None, typer.Option("--link-dir", help="The layout's link files' directory.")
    ] = None,
) -> None:
    """Verify ARTIFACT against the policy, from a ledger's proved evidence (the default command)."""
    run_check_command(
        artifact,
        policy,
        ledger,
        evidence,
        db,
        fmt,
        record,
        record_key,
        at,
        LayoutOptions(layout, tuple(layout_key or ()), link_dir),
    )


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

    guarded(Format.text, artifact, lambda: export(artifact, output, ledger, db, since))


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
    layout: LayoutOpt = None,
    layout_key: LayoutKeyOpt = None,
    link_dir: Annotated[
        Path | None,
        typer.Option("--link-dir", help="The layout's link files (else: links among --bundle)."),
    ] = None,
) -> None:
    """Verify third-party attestations (not in our ledger) against the policy's rules."""
    run_attestations_command(
        artifact, policy, bundle, fmt.value, at, layout, tuple(layout_key or ()), link_dir
    )


for _module in EXTENSIONS:
    import_module(_module).register(app)
