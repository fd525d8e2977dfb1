"""The ``attest`` command: build, sign and deliver in-toto attestations from a CI step.

Every subcommand signs with ``--key FILE`` or ``--sigstore`` and then submits to ``--ledger URL``
and/or writes ``--out FILE`` (``-`` = stdout, the default). Errors are one line on stderr:
exit 1 signature or verification failure, 2 bad input (missing file, bad lock file, wrong
passphrase, usage), 3 ledger unreachable or refusing. ``attest run`` exits with its command's code.
Nothing is written unless everything before it succeeded.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Annotated

import typer

# the subcommands register themselves on the shared app when imported
from attest._internal import cli_build, cli_security  # noqa: F401
from attest._internal.cli_app import (
    KeyOpt,
    LedgerOpt,
    OutOpt,
    Signing,
    SigstoreOpt,
    TrustConfigOpt,
    app,
    deliver,
    errors,
)
from attest._internal.cli_help import EXIT_CODES, epilog
from attest.errors import InvalidInput
from attest.statement import parse_statement
from attest.verification import read_document

__all__ = ["app", "main"]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"attest {metadata.version('provenance-ledger')}")
        raise typer.Exit()


@app.callback(epilog=EXIT_CODES)
def _main(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """attest: signed in-toto attestations from every CI step."""


@app.command(epilog=epilog("attest keygen -o ci-key"))
def keygen(
    output: Annotated[Path, typer.Option("--output", "-o", help="Writes NAME and NAME.pub.")],
    key_type: Annotated[
        str, typer.Option("--type", help="ed25519, ecdsa-p256, ecdsa-p384 or rsa (3072-bit, PSS).")
    ] = "ed25519",
    encrypt: Annotated[
        bool,
        typer.Option("--encrypt", help="Encrypt with the passphrase in $ATTEST_KEY_PASSPHRASE."),
    ] = False,
) -> None:
    """Generate a signing key pair."""
    from attest.signers import PASSPHRASE_ENV, env_passphrase, write_keypair

    with errors():
        passphrase = env_passphrase()
        if encrypt and passphrase is None:
            raise InvalidInput(f"--encrypt needs a passphrase in ${PASSPHRASE_ENV}")
        public = write_keypair(output, key_type, passphrase if encrypt else None)
        typer.echo(
            json.dumps({"keyid": public.keyid, "scheme": public.scheme, "public": f"{output}.pub"})
        )


@app.command(epilog=epilog("attest sign statement.json --key ci-key -o statement.intoto.json"))
def sign(
    statement_file: Annotated[Path, typer.Argument(help="An in-toto Statement (JSON).")],
    key: KeyOpt = None,
    sigstore: SigstoreOpt = False,
    trust_config: TrustConfigOpt = None,
    out: OutOpt = None,
    ledger: LedgerOpt = None,
) -> None:
    """Validate a Statement and sign it."""
    with errors():
        signing = Signing.of(key, sigstore, trust_config)
        statement = parse_statement(read_document(statement_file))
        deliver(statement, signing, out=out, ledger=ledger)


@app.command(epilog=epilog("attest verify statement.intoto.json --key ci-key.pub"))
def verify(
    envelope: Annotated[Path, typer.Argument(help="DSSE envelope or Sigstore bundle (JSON).")],
    key: Annotated[
        list[Path] | None, typer.Option("--key", help="Trusted public key; repeatable.")
    ] = None,
    subject: Annotated[
        list[str] | None, typer.Option("--subject", help="Artifact the statement must name.")
    ] = None,
    trusted_root: Annotated[
        Path | None, typer.Option("--trusted-root", help="Sigstore trusted_root.json (bundles).")
    ] = None,
    identity: Annotated[
        str | None, typer.Option("--identity", help="Certificate subject (bundles).")
    ] = None,
    issuer: Annotated[str | None, typer.Option("--issuer", help="OIDC issuer (bundles).")] = None,
    regex: Annotated[
        bool, typer.Option("--regex", help="Identity and issuer are regexes.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail when the predicate breaks its schema.")
    ] = False,
) -> None:
    """Check one envelope or bundle locally: signature, statement schema, subjects."""
    from attest.verification import verify_file

    with errors():
        result = verify_file(
            envelope,
            keys=key or [],
            subjects=subject or [],
            trusted_root=trusted_root,
            identity=identity,
            issuer=issuer,
            regex=regex,
            strict=strict,
        )
        typer.echo(json.dumps(result))


def main() -> None:
    app(prog_name="attest")


if __name__ == "__main__":
    main()
