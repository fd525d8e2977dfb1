"""Admin routes for the trust registry (scope ``admin``): list, add and revoke signers.

Each change is a ledger entry signed with the ledger's admin key (``LEDGER_ADMIN_KEY_FILE``,
default ``<checkpoint key stem>.admin.key``), appended through the same admission as any body;
the reply is that entry's receipt. The token is checked (the router's dependency) before a body
is read — bounded in size and time, by :func:`~ledger.api.request_body.read_model` — and the
append is waited for in a worker thread.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ledger.api.auth import require
from ledger.api.models import Receipt, problem_responses, receipt_json
from ledger.api.request_body import json_body, read_model, read_optional_model
from ledger.errors import InvalidInput
from ledger.log import Ledger
from ledger.record import parse_when

if TYPE_CHECKING:
    from attest.signers import KeySigner

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/admin/signers", tags=["admin"], dependencies=[Depends(require("admin"))]
)
_ERRORS = problem_responses(401, 403, 404, 408, 409, 413, 422)


def _rfc3339(value: object) -> object:
    """A time on the wire is an RFC 3339 string naming its zone, read as the CLI reads one — not
    a number of seconds or any other form pydantic's datetime would also take."""
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 time string with a zone, e.g. 2027-01-01T00:00:00Z")
    try:
        return parse_when(value, "time")
    except InvalidInput as e:
        raise ValueError(str(e)) from None


Time = Annotated[datetime, BeforeValidator(_rfc3339)]


class SignerAdd(BaseModel):
    """A public key (PEM or securesystemslib JSON), or a Sigstore identity with its trusted root."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "ci",
                    "key": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA…\n-----END PUBLIC KEY-----\n",
                    "predicateTypes": ["https://slsa.dev/provenance/v1"],
                    "validUntil": "2027-01-01T00:00:00Z",
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=128)
    key: str | None = None
    sigstoreIssuer: str | None = None  # noqa: N815 - the wire name
    sigstoreIdentity: str | None = None  # noqa: N815
    regex: bool = False
    trustedRoot: dict[str, Any] | None = None  # noqa: N815
    validFrom: Time | None = None  # noqa: N815
    validUntil: Time | None = None  # noqa: N815
    predicateTypes: list[str] = Field(default_factory=list)  # noqa: N815


class SignerRevoke(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"at": "2026-12-01T00:00:00Z"}]})

    at: Time | None = Field(None, description="Effective time (default: now).")


def _admin_key(request: Request) -> KeySigner:
    """The admin key, read when needed (admin changes are rare; the file may be rotated)."""
    from ledger.keys import default_key_path
    from ledger.registry.admin import admin_key_path, load_admin_key

    s = request.app.state.settings
    key = s.key_file or default_key_path(s.database_url)
    return load_admin_key(s.admin_key_file or admin_key_path(key))


@router.get("", summary="Every signer ever added (revoked ones included)", responses=_ERRORS)
def list_signers(request: Request) -> list[dict[str, Any]]:
    from ledger.registry import list_signers as listed

    return listed(request.app.state.ledger)


@router.post(
    "",
    summary="Add a signer (a logged registry entry)",
    status_code=201,
    response_model=Receipt,
    responses=_ERRORS,
    openapi_extra=json_body(SignerAdd),
)
async def add_signer(request: Request) -> dict[str, object]:
    spec = await read_model(request, SignerAdd)  # after the admin token was checked
    return await run_in_threadpool(_add, request, spec)


def _add(request: Request, spec: SignerAdd) -> dict[str, object]:
    from ledger.registry import add_signer as add
    from ledger.registry import make_spec

    ledger: Ledger = request.app.state.ledger
    built = make_spec(
        spec.name,
        now=ledger.now(),
        key=spec.key.encode() if spec.key is not None else None,
        issuer=spec.sigstoreIssuer,
        identity=spec.sigstoreIdentity,
        regex=spec.regex,
        trusted_root=json.dumps(spec.trustedRoot).encode() if spec.trustedRoot else None,
        valid_from=spec.validFrom,
        valid_until=spec.validUntil,
        predicate_types=spec.predicateTypes,
    )
    return receipt_json(add(ledger, built, _admin_key(request)))


@router.post(
    "/{name}:revoke",
    summary="Revoke a signer (a logged registry entry)",
    response_model=Receipt,
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {**json_body(SignerRevoke)["requestBody"], "required": False},
    },
)
async def revoke_signer(
    request: Request,
    name: Annotated[str, Path(min_length=1, max_length=128, examples=["ci"])],
) -> dict[str, object]:
    body = await read_optional_model(request, SignerRevoke)  # after the admin token was checked
    at = body.at if body else None  # Time: RFC 3339 with a zone (_rfc3339)
    return await run_in_threadpool(_revoke, request, name, at)


def _revoke(request: Request, name: str, at: datetime | None) -> dict[str, object]:
    from ledger.registry import revoke_signer as revoke

    ledger: Ledger = request.app.state.ledger
    return receipt_json(revoke(ledger, name, at, _admin_key(request)))
