"""``ledger serve`` and ``ledger tokens``: the HTTP service and its bearer tokens."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.cli import DEFAULT_DB, DbOpt, KeyOpt, _emit, _epilog, _errors, _key, app
from ledger.errors import InvalidInput

if TYPE_CHECKING:
    from ledger.log import Ledger
    from ledger.tokens import Tokens

__all__ = ["serve", "tokens_app"]

tokens_app = typer.Typer(no_args_is_help=True, help="API bearer tokens (stored as hashes).")
app.add_typer(tokens_app, name="tokens")


def _open_tokens(db: str) -> tuple[Ledger, Tokens]:
    from ledger._internal.db import upgrade_schema
    from ledger.log import Ledger, utc_now
    from ledger.tokens import Tokens

    ledger = Ledger.open(db)
    upgrade_schema(ledger.store.engine)
    return ledger, Tokens(ledger.store.engine, utc_now)


@app.command(epilog=_epilog("ledger serve --db sqlite:///ledger.db --port 8080 --workers 2"))
def serve(
    db: DbOpt = DEFAULT_DB,
    key_file: KeyOpt = None,
    host: Annotated[str, typer.Option(envvar="LEDGER_HOST", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="LEDGER_PORT", help="Port to bind.")] = 8080,
    workers: Annotated[
        int, typer.Option(envvar="LEDGER_WORKERS", help="Worker processes, each its own Ledger.")
    ] = 1,
    access_log: Annotated[
        bool, typer.Option(envvar="LEDGER_ACCESS_LOG", help="Log every request.")
    ] = True,
    pin_workers: Annotated[
        bool,
        typer.Option(
            envvar="LEDGER_PIN_WORKERS",
            help="Pin each worker process to one CPU, round robin (a host serving the ledger "
            "alone, --workers 2 up to its cores; one worker is never pinned).",
        ),
    ] = False,
) -> None:
    """Serve the ledger over HTTP (FastAPI on uvicorn) until interrupted."""
    import uvicorn

    from ledger._internal.db import upgrade_schema
    from ledger.api.cpu_slots import SLOTS_ENV
    from ledger.api.http_protocol import PROTOCOL as HTTP_PROTOCOL
    from ledger.log import Ledger

    with _errors():
        key = _key(db, key_file)
        if workers < 1:
            raise InvalidInput("--workers must be at least 1")
        with Ledger.open(db, key) as ledger:  # fail fast, one line, before any worker starts
            upgrade_schema(ledger.store.engine)
        # Workers read their settings from the environment (pydantic-settings, LEDGER_*).
        os.environ.update(
            LEDGER_DATABASE_URL=db,
            LEDGER_KEY_FILE=str(Path(key).resolve()),
            LEDGER_HOST=host,
            LEDGER_PORT=str(port),
            LEDGER_WORKERS=str(workers),
        )
        _check_settings()
    # One worker is not pinned: its writer thread should have the other cores.
    pin = pin_workers and workers > 1
    slots = private_dir(SLOTS_ENV, "ledger-cpu-slots-") if pin else nullcontext()
    with _shared_metrics(workers), slots:
        uvicorn.run(
            "ledger.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=access_log,
            log_level="info",
            http=HTTP_PROTOCOL,
        )


@contextmanager
def _shared_metrics(workers: int) -> Iterator[None]:
    """Several workers: prometheus-client's multiprocess mode, in a private directory unless the
    operator names one (``PROMETHEUS_MULTIPROC_DIR``, which must then be emptied between runs, as
    prometheus-client requires). Set before any worker starts, so every worker's metrics use it."""
    from ledger.api.metrics import MULTIPROCESS_ENV

    if workers < 2 or os.environ.get(MULTIPROCESS_ENV):
        yield
        return
    with private_dir(MULTIPROCESS_ENV, "ledger-metrics-"):
        yield


@contextmanager
def private_dir(variable: str, prefix: str) -> Iterator[None]:
    """A new private directory named in the environment ``variable`` while the workers run
    (they inherit the environment), removed after."""
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        os.environ[variable] = d
        try:
            yield
        finally:
            del os.environ[variable]


def _check_settings() -> None:
    """Read the ``LEDGER_*`` settings as each worker will, so a bad one stops here in one line
    (exit 2) instead of in every worker's startup."""
    from pydantic import ValidationError

    from ledger.api.settings import Settings

    try:
        Settings()
    except ValidationError as e:
        first = e.errors()[0]
        name = "LEDGER_" + "_".join(str(p) for p in first["loc"]).upper()
        raise InvalidInput(f"{name}: {first['msg']}") from e


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option("--name", help="A unique name, e.g. ci-main.")],
    scope: Annotated[list[str], typer.Option("--scope", help="append, read or admin; repeatable.")],
    expires: Annotated[
        str | None, typer.Option(help="RFC 3339 time or a duration: 90d, 12h, 30m.")
    ] = None,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Create a token and print it once (only its SHA-256 is stored)."""
    from ledger.log import utc_now
    from ledger.tokens import parse_expiry

    with _errors():
        when = parse_expiry(expires, utc_now()) if expires else None
        ledger, tokens = _open_tokens(db)
        with ledger:
            typer.echo(tokens.create(name, scope, when))
        typer.echo(f"ledger: token {name!r} created; it is not shown again", err=True)


@tokens_app.command("revoke")
def tokens_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")], db: DbOpt = DEFAULT_DB
) -> None:
    """Revoke a token (servers stop accepting it within LEDGER_TOKEN_CACHE_SECONDS)."""
    with _errors():
        ledger, tokens = _open_tokens(db)
        with ledger:
            tokens.revoke(name)
        typer.echo(f"ledger: token {name!r} revoked", err=True)


@tokens_app.command("list")
def tokens_list(db: DbOpt = DEFAULT_DB) -> None:
    """One JSON line per token: name, scopes, created, expires (never the token)."""
    with _errors():
        ledger, tokens = _open_tokens(db)
        with ledger:
            for t in tokens.list():
                _emit(t.to_json())
