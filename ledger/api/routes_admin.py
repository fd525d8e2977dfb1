"""Admin routes (scope ``admin``) for API tokens; the trust registry's are in ``routes_signers``.

The token is checked (the router's dependency) before a body is read: a handler reads its own
body with :func:`~ledger.api.request_body.read_model`, bounded in size and time.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ledger.api.auth import require
from ledger.api.models import TokenCreate, TokenCreated, TokenPublic, problem_responses
from ledger.api.request_body import json_body, read_model
from ledger.log import utc_now
from ledger.tokens import Tokens, parse_expiry

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(require("admin"))])
_ERRORS = problem_responses(401, 403, 404, 408, 413, 422)
Name = Annotated[str, Path(min_length=1, max_length=128, examples=["ci"])]


def _tokens(request: Request) -> Tokens:
    tokens: Tokens = request.app.state.tokens
    return tokens


@router.post(
    "/tokens",
    summary="Create a token (shown once)",
    status_code=201,
    response_model=TokenCreated,
    responses=_ERRORS,
    openapi_extra=json_body(TokenCreate),
)
async def create_token(request: Request) -> dict[str, Any]:
    spec = await read_model(request, TokenCreate)  # after the admin token was checked
    return await run_in_threadpool(_create, _tokens(request), spec)


def _create(tokens: Tokens, spec: TokenCreate) -> dict[str, Any]:
    expires = parse_expiry(spec.expires, utc_now()) if spec.expires else None
    token = tokens.create(spec.name, spec.scopes, expires)
    info = next(t for t in tokens.list() if t.name == spec.name)
    return {**info.to_json(), "token": token}


@router.get(
    "/tokens",
    summary="List tokens (never their values)",
    response_model=list[TokenPublic],
    responses=_ERRORS,
)
def list_tokens(request: Request) -> list[dict[str, object]]:
    return [t.to_json() for t in _tokens(request).list()]


@router.delete(
    "/tokens/{name}",
    summary="Revoke a token",
    status_code=204,
    responses=_ERRORS,
    response_class=Response,
)
def revoke_token(request: Request, name: Name) -> Response:
    _tokens(request).revoke(name)
    return Response(status_code=204)
