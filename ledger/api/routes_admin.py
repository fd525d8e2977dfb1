"""Admin routes (scope ``admin``) for API tokens; the trust registry's are in ``routes_signers``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from ledger.api.auth import require
from ledger.api.models import TokenCreate, TokenCreated, TokenPublic, problem_responses
from ledger.log import utc_now
from ledger.tokens import Tokens, parse_expiry

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(require("admin"))])
_ERRORS = problem_responses(401, 403, 404, 422)
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
)
def create_token(request: Request, spec: TokenCreate) -> dict[str, Any]:
    tokens = _tokens(request)
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
