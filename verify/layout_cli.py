"""``verify layout``: verify an in-toto supply chain against its signed layout, as
``in-toto-verify`` does (:mod:`verify.layout_gate` does the work; :func:`register` adds the
command to the typer app, see :data:`verify.commands.EXTENSIONS`).

``verify layout --layout FILE --layout-key PUB… --link-dir DIR [--at TIME] [--param K=V…]
[--inspect-in DIR] [--format text|json] [ARTIFACT…]``. Exit codes: 0 the supply chain satisfies
the layout; 1 it does not; 2 bad input; 4 a layout key has no valid signature on the layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from verify.cli import EXIT_CODES, Format, emit, guarded, parse_at
from verify.layout_gate import LayoutSpec, run_layout

__all__ = ["layout", "register"]


def layout(
    layout: Annotated[Path, typer.Option("--layout", help="The signed in-toto layout.")],
    layout_key: Annotated[
        list[Path],
        typer.Option("--layout-key", help="A key that must have signed it (PEM or sslib JSON)."),
    ],
    link_dir: Annotated[Path, typer.Option("--link-dir", help="The link files' directory.")],
    artifacts: Annotated[
        list[Path] | None,
        typer.Argument(help="Final products to check (named as the layout's products)."),
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Judge the layout's expiry as of this time.")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="KEY=VALUE layout parameter.")
    ] = None,
    inspect_in: Annotated[
        Path | None,
        typer.Option("--inspect-in", help="Run the inspections here (default: cwd)."),
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="text (people) or json (machines).")
    ] = Format.text,
) -> None:
    """Verify an in-toto supply chain against its signed layout, as in-toto-verify does."""
    spec = LayoutSpec(layout, tuple(layout_key), link_dir, inspect_in)
    names = ", ".join(map(str, artifacts or [])) or str(layout)
    guarded(
        fmt,
        names,
        lambda: emit(run_layout(spec, artifacts or [], param or [], parse_at(at)), fmt),
    )


def register(app: typer.Typer) -> None:
    """Add ``verify layout`` to a typer app."""
    app.command("layout", epilog=EXIT_CODES)(layout)
