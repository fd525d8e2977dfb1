"""What every ``attest`` subcommand shares: the Typer app, the signing and delivery options,
error-to-exit-code mapping, and sign → submit → write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from attest.errors import Error, InvalidInput, SignatureError, SubmitError
from attest.statement import Statement

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="attest: signed in-toto attestations from every CI step.",
)

_EXIT = {SignatureError: 1, SubmitError: 3}

KeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--key",
        envvar="ATTEST_KEY",
        help="Private key (PEM); passphrase in $ATTEST_KEY_PASSPHRASE.",
    ),
]
SigstoreOpt = Annotated[
    bool, typer.Option("--sigstore", help="Sign keyless with Sigstore (ambient OIDC in CI).")
]
TrustConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--trust-config", help="Sigstore ClientTrustConfig JSON (default: production via TUF)."
    ),
]
OutOpt = Annotated[
    str | None, typer.Option("--out", "-o", help="Write the envelope here ('-' = stdout).")
]
LedgerOpt = Annotated[
    str | None,
    typer.Option(
        "--ledger", envvar="LEDGER_URL", help="Submit to this ledger (token: $LEDGER_TOKEN)."
    ),
]
SubjectOpt = Annotated[
    list[str],
    typer.Option("--subject", "-s", help="File, glob, directory or sha256:… digest; repeatable."),
]


@contextmanager
def errors() -> Iterator[None]:
    try:
        yield
    except Error as e:
        code = next((c for t, c in _EXIT.items() if isinstance(e, t)), 2)
        typer.echo(f"attest: error: {e}", err=True)
        raise typer.Exit(code) from None


def deliver(
    statement: Statement,
    *,
    key: Path | None,
    sigstore: bool,
    trust_config: Path | None,
    out: str | None,
    ledger: str | None,
) -> None:
    """Sign, then submit, then write: a failure at any step leaves nothing behind."""
    if (key is None) == (not sigstore):
        raise InvalidInput("give exactly one of --key FILE or --sigstore")
    payload = statement.to_json()
    if key is not None:
        from attest.dsse import sign_envelope
        from attest.signers import read_signer

        body = sign_envelope(payload, [read_signer(key)]).to_json()
    else:
        from attest.keyless import sign_keyless

        body = sign_keyless(payload, trust_config=trust_config)
    send(body, out=out, ledger=ledger)


def send(body: bytes, *, out: str | None, ledger: str | None) -> None:
    from attest.submit import submit_to_ledger, write_output

    if ledger:
        receipt = submit_to_ledger(ledger, body)
        typer.echo(json.dumps(receipt), err=out == "-")  # stdout unless the envelope is there
    if out is not None or not ledger:
        write_output(out or "-", body)
