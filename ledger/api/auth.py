"""Bearer-token authentication as a FastAPI dependency: ``Depends(require("append"))``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ledger.errors import Unauthenticated, Unauthorized
from ledger.tokens import TokenInfo, Tokens

__all__ = ["BEARER_AUTH", "OPTIONAL_AUTH", "authorize", "check_read", "require", "require_read"]

_bearer = HTTPBearer(auto_error=False, description="A token from `ledger tokens create`.")
# Read routes: a token is optional in the OpenAPI (public reads need none; LEDGER_PUBLIC_READS=false
# makes the server ask for one with the read scope).
OPTIONAL_AUTH: dict[str, object] = {"security": [{}, {"HTTPBearer": []}]}
# Hot write routes call :func:`authorize` themselves (FastAPI's dependency machinery costs more
# than the check) and declare the scheme here for the OpenAPI.
BEARER_AUTH: dict[str, object] = {"security": [{"HTTPBearer": []}]}
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def authorize(request: Request, scope: str) -> TokenInfo:
    """The request's bearer token, which must carry ``scope``."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthenticated(f"this operation needs a bearer token with the {scope!r} scope")
    return _scoped(request, credentials.strip(), scope)


def _check(request: Request, creds: HTTPAuthorizationCredentials | None, scope: str) -> TokenInfo:
    if creds is None or not creds.credentials:
        raise Unauthenticated(f"this operation needs a bearer token with the {scope!r} scope")
    return _scoped(request, creds.credentials, scope)


def _scoped(request: Request, credentials: str, scope: str) -> TokenInfo:
    tokens: Tokens = request.app.state.tokens
    info = tokens.authenticate(credentials)
    if scope not in info.scopes:
        raise Unauthorized(
            f"token {info.name!r} has scopes {', '.join(info.scopes)}; this needs {scope!r}"
        )
    return info


def require(scope: str) -> Callable[[Request, Credentials], Awaitable[TokenInfo]]:
    async def dependency(request: Request, creds: Credentials) -> TokenInfo:
        return _check(request, creds, scope)

    return dependency


def check_read(request: Request) -> TokenInfo | None:
    """Nothing when reads are public (``LEDGER_PUBLIC_READS``), else a token with ``read``."""
    if request.app.state.settings.public_reads:
        return None
    return authorize(request, "read")


async def require_read(request: Request) -> TokenInfo | None:
    """:func:`check_read` as a dependency. (The route's OpenAPI says the token is optional:
    ``OPTIONAL_AUTH``.)"""
    return check_read(request)
