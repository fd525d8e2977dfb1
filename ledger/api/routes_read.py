"""The log's own reads under ``/api/v1``: checkpoint, entries with proofs, inclusion, consistency.

Handlers are plain ``def`` (FastAPI runs them in its thread pool): each is a few short database
reads through :class:`~ledger.log.Ledger`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BeforeValidator

from ledger.api.auth import OPTIONAL_AUTH, require_read
from ledger.api.models import (
    ConsistencyProof,
    EntryReply,
    InclusionReply,
    b64,
    problem_responses,
    proof_json,
)
from ledger.errors import IntegrityError, NotFound
from ledger.log import Ledger
from ledger.tokens import TokenInfo

__all__ = ["CHECKPOINT_CACHE", "cache_control", "router"]

router = APIRouter(tags=["read"])
Reader = Annotated[TokenInfo | None, Depends(require_read)]
MAX_INDEX = (1 << 63) - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _decimal(value: object) -> object:
    """Path and query integers are plain decimals: ``1.0``, ``+1``, ``01`` and `` 1`` name no
    record (lax parsing would read them all as 1, so one record had many URLs)."""
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        raise ValueError("must be a decimal integer: digits only, no sign, point or leading zero")
    return value


Decimal = BeforeValidator(_decimal)
Index = Annotated[int, Path(ge=0, le=MAX_INDEX, examples=[2]), Decimal]
CHECKPOINT_CACHE = "max-age=2"
_ERRORS = problem_responses(401, 403, 404, 422)
_NOTE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/plain": {"example": "demo.example/ledger\n3\nq5x0…=\n\n\u2014 demo…\n"}},
        "description": "The latest signed checkpoint (C2SP tlog-checkpoint in a signed note).",
    }
}


def cache_control(request: Request, directives: str) -> str:
    """``public`` when reads are public; ``private`` when they need a token."""
    scope = "public" if request.app.state.settings.public_reads else "private"
    return f"{scope}, {directives}"


def _ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


def checkpoint_response(request: Request) -> PlainTextResponse:
    note = _ledger(request).checkpoint().note
    return PlainTextResponse(
        note,
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": cache_control(request, CHECKPOINT_CACHE)},
    )


@router.get(
    "/api/v1/checkpoint",
    openapi_extra=OPTIONAL_AUTH,
    summary="The latest signed checkpoint",
    response_class=PlainTextResponse,
    responses={**_NOTE, **_ERRORS},
)
def get_checkpoint(request: Request, _r: Reader) -> PlainTextResponse:
    return checkpoint_response(request)


@router.get(
    "/api/v1/entries/{index}",
    openapi_extra=OPTIONAL_AUTH,
    summary="A record, its exact body and its inclusion proof",
    response_model=EntryReply,
    responses=_ERRORS,
)
def get_entry(request: Request, index: Index, _r: Reader) -> dict[str, Any]:
    ledger = _ledger(request)
    proof = ledger.inclusion(index)
    record = ledger.store.record(index)
    found = ledger.store.bodies([record.body_digest]).get(record.body_digest)
    if found is None:
        raise IntegrityError(f"record {index} has no stored body", index)
    body_type, content = found
    return {
        **proof_json(proof),
        "record": record.to_json(),
        "bodyType": body_type,
        "body": b64(content),
    }


@router.get(
    "/api/v1/proof/inclusion",
    openapi_extra=OPTIONAL_AUTH,
    summary="Inclusion proof of a record in the tree of a checkpointed size",
    response_model=InclusionReply,
    responses=_ERRORS,
)
def get_inclusion(
    request: Request,
    index: Annotated[int, Query(ge=0, le=MAX_INDEX, examples=[2]), Decimal],
    _r: Reader,
    size: Annotated[
        int | None,
        Query(ge=1, le=MAX_INDEX, description="A checkpointed tree size; default: latest."),
        Decimal,
    ] = None,
) -> dict[str, Any]:
    return proof_json(_ledger(request).inclusion(index, size))


@router.get(
    "/api/v1/proof/consistency",
    openapi_extra=OPTIONAL_AUTH,
    summary="Consistency proof between two tree sizes",
    response_model=ConsistencyProof,
    response_model_by_alias=True,
    responses=_ERRORS,
)
def get_consistency(
    request: Request,
    from_: Annotated[int, Query(alias="from", ge=1, le=MAX_INDEX, examples=[1]), Decimal],
    to: Annotated[int, Query(ge=1, le=MAX_INDEX, examples=[3]), Decimal],
    _r: Reader,
) -> dict[str, Any]:
    ledger = _ledger(request)
    latest = ledger.checkpoint().checkpoint.size
    if to > latest:
        raise NotFound(f"the latest checkpoint has size {latest}; no tree of size {to} yet")
    proof = ledger.consistency(from_, to)
    return {"from": from_, "to": to, "proof": [b64(h) for h in proof]}
