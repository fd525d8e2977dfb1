"""Sigstore keyless signing through sigstore-python: an ambient OIDC token (GitHub Actions,
GitLab, Buildkite, Google Cloud, or ``SIGSTORE_ID_TOKEN``) buys a short-lived Fulcio certificate;
the DSSE envelope is logged in Rekor and returned as a Sigstore bundle v0.3.

This is the one part of :mod:`attest` that needs the network (Fulcio, Rekor, and TUF unless a
trust config file is given). Everything before the first request is checked locally first.
"""

from __future__ import annotations

import os
from pathlib import Path

from attest.errors import InvalidInput, SignatureError
from attest.statement import parse_statement

__all__ = ["TOKEN_ENV", "ambient_token", "sign_keyless"]

TOKEN_ENV = "SIGSTORE_ID_TOKEN"  # noqa: S105 - a variable name, not a secret


def ambient_token() -> str:
    """The OIDC identity token: ``$SIGSTORE_ID_TOKEN``, else the CI provider's ambient one."""
    token = os.environ.get(TOKEN_ENV)
    if token:
        return token
    from sigstore.oidc import IdentityError, detect_credential

    try:
        detected = detect_credential()
    except IdentityError as e:
        raise SignatureError(f"cannot get an ambient OIDC token: {e}") from e
    if not detected:
        raise SignatureError(
            "no OIDC identity for Sigstore keyless signing: run in CI with an ID token "
            f"(GitHub Actions: permissions id-token: write) or set ${TOKEN_ENV}"
        )
    return str(detected)


def sign_keyless(
    statement: bytes, *, token: str | None = None, trust_config: Path | None = None
) -> bytes:
    """Sign ``statement`` (exact bytes) keylessly; return the Sigstore bundle JSON."""
    parse_statement(statement)
    from sigstore import dsse
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    raw = token or ambient_token()
    try:
        identity = IdentityToken(raw)
    except (SigstoreError, ValueError) as e:
        raise SignatureError(f"the OIDC token is not usable for Sigstore: {e}") from e
    try:
        config = (
            ClientTrustConfig.from_json(trust_config.read_text())
            if trust_config is not None
            else ClientTrustConfig.production()
        )
    except OSError as e:
        raise InvalidInput(f"cannot read trust config {trust_config}: {e.strerror}") from e
    except (SigstoreError, ValueError) as e:
        raise SignatureError(f"cannot load Sigstore trust config: {e}") from e
    try:
        context = SigningContext.from_trust_config(config)
        with context.signer(identity, cache=False) as signer:
            bundle = signer.sign_dsse(dsse.Statement(statement))
    except (SigstoreError, ValueError, OSError) as e:
        raise SignatureError(f"Sigstore keyless signing failed: {e}") from e
    except Exception as e:  # network stack errors (requests, urllib3) surface untyped
        raise SignatureError(f"Sigstore keyless signing failed (network?): {e}") from e
    return bundle.to_json().encode()
