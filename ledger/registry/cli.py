"""``ledger signers``: add, revoke, list the trust registry; give an old ledger an admin key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.cli import DEFAULT_DB, DbOpt, KeyOpt, _emit, _errors, _key, _open
from ledger.errors import InvalidInput
from ledger.record import parse_when

signers_app: typer.Typer = typer.Typer(
    no_args_is_help=True, help="The trust registry: who may sign what, when (logged)."
)

AdminOpt = Annotated[
    Path | None,
    typer.Option(
        "--admin-key-file",
        envvar="LEDGER_ADMIN_KEY_FILE",
        help="Admin key (default: <checkpoint key stem>.admin.key beside the checkpoint key).",
    ),
]
TimeOpt = Annotated[
    str | None, typer.Option(help="RFC 3339 time with a zone, e.g. 2026-01-01T00:00:00Z.")
]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InvalidInput(f"cannot read {what} {path}: {e.strerror}") from e


def _admin(db: str, key_file: Path | None, admin_key_file: Path | None) -> Path:
    from ledger.registry.admin import admin_key_path

    return admin_key_file or admin_key_path(_key(db, key_file))


@signers_app.command("add")
def add(
    name: Annotated[str, typer.Option("--name", help="The signer's name (never reused).")],
    key: Annotated[
        Path | None, typer.Option(help="Public key: PEM or securesystemslib JSON.")
    ] = None,
    sigstore_issuer: Annotated[str | None, typer.Option(help="OIDC issuer (exact).")] = None,
    sigstore_identity: Annotated[str | None, typer.Option(help="Certificate subject.")] = None,
    regex: Annotated[bool, typer.Option(help="Match the identity as a full regex.")] = False,
    trusted_root: Annotated[Path | None, typer.Option(help="Sigstore trusted_root.json.")] = None,
    valid_from: TimeOpt = None,
    valid_until: TimeOpt = None,
    predicate_type: Annotated[
        list[str] | None, typer.Option(help="Allowed predicate type (repeat; default: any).")
    ] = None,
    db: DbOpt = DEFAULT_DB,
    key_file: KeyOpt = None,
    admin_key_file: AdminOpt = None,
) -> None:
    """Log a new signer; print its record index."""
    from ledger.registry import add_signer, make_spec
    from ledger.registry.admin import load_admin_key

    with _errors():
        spec_args = {
            "key": _read(key, "key") if key else None,
            "issuer": sigstore_issuer,
            "identity": sigstore_identity,
            "regex": regex,
            "trusted_root": _read(trusted_root, "trusted root") if trusted_root else None,
            "valid_from": parse_when(valid_from, "--valid-from"),
            "valid_until": parse_when(valid_until, "--valid-until"),
            "predicate_types": predicate_type or [],
        }
        admin = load_admin_key(_admin(db, key_file, admin_key_file))
        with _open(db, key_file, writer=True) as ledger:
            spec = make_spec(name, now=ledger.now(), **spec_args)  # type: ignore[arg-type]
            _emit({"name": name, "index": add_signer(ledger, spec, admin).index})


@signers_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The signer to revoke.")],
    at: TimeOpt = None,
    db: DbOpt = DEFAULT_DB,
    key_file: KeyOpt = None,
    admin_key_file: AdminOpt = None,
) -> None:
    """Log a revocation effective at --at (default: now); print its record index."""
    from ledger.registry import revoke_signer
    from ledger.registry.admin import load_admin_key

    with _errors():
        when = parse_when(at, "--at")
        admin = load_admin_key(_admin(db, key_file, admin_key_file))
        with _open(db, key_file, writer=True) as ledger:
            _emit({"name": name, "index": revoke_signer(ledger, name, when, admin).index})


@signers_app.command("list")
def list_cmd(db: DbOpt = DEFAULT_DB) -> None:
    """Print every signer ever added, as one JSON array."""
    from ledger.registry import list_signers

    with _errors(), _open(db, None, writer=False) as ledger:
        _emit(list_signers(ledger))


@signers_app.command("init-admin")
def init_admin_cmd(
    db: DbOpt = DEFAULT_DB, key_file: KeyOpt = None, admin_key_file: AdminOpt = None
) -> None:
    """Give a ledger made before the registry existed an admin key (file + public key in meta)."""
    from ledger.registry.admin import init_admin

    with _errors(), _open(db, None, writer=False) as ledger:
        path = _admin(db, key_file, admin_key_file)
        init_admin(ledger.store, path)
        typer.echo(f"ledger: admin key in {path} (keep it private)", err=True)
