"""``verify sigstore-bundle``: the sigstore-conformance ``bundle-verify`` client protocol.

::

    verify sigstore-bundle --bundle FILE --certificate-identity ID
        --certificate-oidc-issuer URL [--trusted-root FILE] [--key FILE] FILE_OR_DIGEST

Exit 0 when the bundle verifies for the artifact (a file, or ``sha256:HEX``), non-zero otherwise
with the reason on stderr (2 bad input, 4 a signature, certificate, log entry or time check
failed). Without ``--trusted-root`` the Sigstore production root shipped with sigstore-python is
used, offline. With ``--key`` the bundle must be signed with that managed key (the identity
options are then not consulted).

Verification is sigstore-python's (:class:`attest._internal.sigstore_compat.CompatVerifier`),
plus Rekor ``intoto`` v0.0.2 entries and managed keys, which sigstore-python 4.5 lacks. A DSSE
bundle's in-toto Statement must name the artifact's SHA-256 among its subjects.

:func:`register` adds the command to a Typer app (``verify/commands.py`` calls it);
``python -m verify.conformance sigstore-bundle …`` runs it standalone. The protocol itself is
:mod:`verify.bundle_verify` (no typer: ``verify sigstore-bundle`` runs it directly when its command
line is plain); this module re-exports its names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from verify.bundle_verify import (
    EXIT_INVALID_INPUT,
    EXIT_VERIFICATION_FAILED,
    VerifiedSigstoreBundle,
    artifact_digest,
    run_bundle_verify,
    verify_sigstore_bundle,
)

__all__ = [
    "EXIT_INVALID_INPUT",
    "EXIT_VERIFICATION_FAILED",
    "VerifiedSigstoreBundle",
    "artifact_digest",
    "register",
    "verify_sigstore_bundle",
]


def register(app: typer.Typer) -> None:
    """Add ``sigstore-bundle`` to a Typer app."""
    app.command("sigstore-bundle")(sigstore_bundle)


def sigstore_bundle(
    file_or_digest: Annotated[
        str, typer.Argument(metavar="FILE_OR_DIGEST", help="The artifact, or sha256:HEX.")
    ],
    bundle: Annotated[Path, typer.Option("--bundle", help="Sigstore bundle (JSON).")],
    certificate_identity: Annotated[
        str | None,
        typer.Option("--certificate-identity", help="Expected certificate SAN, exactly."),
    ] = None,
    certificate_oidc_issuer: Annotated[
        str | None,
        typer.Option("--certificate-oidc-issuer", help="Expected OIDC issuer, exactly."),
    ] = None,
    trusted_root: Annotated[
        Path | None,
        typer.Option("--trusted-root", help="trusted_root.json (default: Sigstore production)."),
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", help="Managed public key (PEM) instead of identity.")
    ] = None,
) -> None:
    """Verify a Sigstore bundle (sigstore-conformance bundle-verify protocol). Exit 0 = verified."""
    code = run_bundle_verify(
        file_or_digest, bundle, certificate_identity, certificate_oidc_issuer, trusted_root, key
    )
    if code:
        raise typer.Exit(code)


def _standalone() -> typer.Typer:
    app = typer.Typer(add_completion=False, no_args_is_help=True)

    @app.callback()
    def _main() -> None:
        """verify (conformance commands only)."""

    register(app)
    return app


if __name__ == "__main__":
    _standalone()(prog_name="verify")
