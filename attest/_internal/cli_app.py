"""What every ``attest`` subcommand shares: the Typer app, the signing and delivery options,
error-to-exit-code mapping, and sign → submit → write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from attest.errors import Error, InvalidInput, SignatureError, SubmitError
from attest.statement import Statement

if TYPE_CHECKING:
    from attest.signers import KeySigner

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


@dataclass(frozen=True)
class Signing:
    """How this invocation signs: a loaded key file, or Sigstore keyless. Every subcommand makes
    it first, so a wrong combination or a bad key fails before anything is collected or run."""

    signer: KeySigner | None
    trust_config: Path | None = None

    @classmethod
    def of(cls, key: Path | None, sigstore: bool, trust_config: Path | None) -> Signing:
        if (key is None) == (not sigstore):
            raise InvalidInput("give exactly one of --key FILE or --sigstore")
        if key is None:
            return cls(None, trust_config)
        from attest.signers import read_signer

        return cls(read_signer(key))

    def sign(self, payload: bytes) -> bytes:
        """A DSSE envelope (key file) or a Sigstore bundle (keyless) over ``payload``."""
        if self.signer is not None:
            from attest.dsse import sign_envelope

            return sign_envelope(payload, [self.signer]).to_json()
        from attest.keyless import sign_keyless

        return sign_keyless(payload, trust_config=self.trust_config)


def deliver(statement: Statement, signing: Signing, *, out: str | None, ledger: str | None) -> None:
    """Check, sign, submit, then write: a failure at any step leaves nothing behind. Every
    subcommand's Statement passes here, so none signs a predicate its own verifier refuses."""
    from attest.verification import signable_payload

    send(signing.sign(signable_payload(statement)), out=out, ledger=ledger)


def send(body: bytes, *, out: str | None, ledger: str | None) -> None:
    from attest.submit import submit_to_ledger, write_output

    if ledger:
        receipt = submit_to_ledger(ledger, body)
        typer.echo(json.dumps(receipt), err=out == "-")  # stdout unless the envelope is there
    if out is not None or not ledger:
        write_output(out or "-", body)
