"""``POST /api/v1/entries`` and ``POST /api/v1/entries:batch``: thin over :class:`WriteService`.

``append_entry`` reads nothing but the request, so ``create_app`` also mounts it as a plain
Starlette endpoint (:data:`PLAIN_ROUTES`) ahead of FastAPI's routes, as it does the hot audit
GETs (:mod:`ledger.api.audit_raw`): the same handler, the same exception handlers and so the same
answers and problems, without FastAPI's per-request routing and dependency work (about a fifth of
a single append's event-loop time). The declared route stays behind it for the OpenAPI schema.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ledger._internal.jsontext import loads as strict_json
from ledger.api.auth import BEARER_AUTH, authorize
from ledger.api.models import BatchReply, BatchRequest, Receipt, problem_responses, receipt_json
from ledger.api.problems import problem_of
from ledger.api.request_body import read_limited
from ledger.api.service import WriteService
from ledger.errors import Error, InvalidInput

__all__ = ["PLAIN_ROUTES", "router"]

router = APIRouter(tags=["write"])


def _json(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj), status, media_type="application/json")


_ENVELOPE_EXAMPLE = {
    "payloadType": "application/vnd.in-toto+json",
    "payload": "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEiLCAuLi59",
    "signatures": [{"keyid": "…", "sig": "MEUCIQ…"}],
}


@router.post(
    "/api/v1/entries",
    summary="Append one DSSE envelope or Sigstore bundle",
    status_code=201,
    response_model=Receipt,
    responses={
        200: {"model": Receipt, "description": "The same body was already in the log."},
        **problem_responses(401, 403, 408, 413, 422, 503),
    },
    openapi_extra={
        **BEARER_AUTH,
        "requestBody": {
            "required": True,
            "description": "The exact bytes of one DSSE envelope or Sigstore bundle (JSON).",
            "content": {
                "application/json": {"schema": {"type": "object"}, "example": _ENVELOPE_EXAMPLE}
            },
        },
    },
)
async def append_entry(request: Request) -> Response:
    """Verified, stored byte for byte, sequenced; answered once the entry is durable and covered
    by a signed checkpoint (201), or with the first record if the body is already there (200)."""
    authorize(request, "append")
    body = await read_limited(request, request.app.state.settings.max_body_bytes)
    service: WriteService = request.app.state.writer
    result = await service.append(body)
    return _json(receipt_json(result), 200 if result.duplicate else 201)


PLAIN_ROUTES = (("/api/v1/entries", append_entry),)


_BATCH_SHAPE = 'a batch is {"entries": ["<standard base64 of one body>", …]}'


def _decode_batch(raw: bytes, max_entries: int) -> list[bytes]:
    """The wrapper, read with the strict parser every body goes through (UTF-8, no duplicate
    keys, no NaN), then each entry's exact bytes; every refusal in our own words."""
    doc = strict_json(raw, "the batch")
    if not isinstance(doc, dict) or "entries" not in doc:
        raise InvalidInput(f'{_BATCH_SHAPE}: no "entries" member')
    extra = sorted(k for k in doc if k != "entries")
    if extra:
        raise InvalidInput(f"{_BATCH_SHAPE}: unknown member {extra[0]!r}")
    entries = doc["entries"]
    if not isinstance(entries, list) or not entries:
        raise InvalidInput(f'{_BATCH_SHAPE}: "entries" must be a non-empty array')
    if len(entries) > max_entries:
        raise InvalidInput(f"{len(entries)} entries; a batch holds at most {max_entries}")
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, str):
            raise InvalidInput(f"entries[{i}] must be a string (the standard base64 of one body)")
        try:
            out.append(base64.b64decode(entry, validate=True))
        except (binascii.Error, ValueError) as e:
            raise InvalidInput(f"entries[{i}] is not standard base64") from e
    return out


@router.post(
    "/api/v1/entries:batch",
    summary="Append many bodies; one result or problem per entry",
    response_model=BatchReply,
    responses=problem_responses(401, 403, 408, 413, 422),
    openapi_extra={
        **BEARER_AUTH,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": BatchRequest.model_json_schema(),
                    "example": {"entries": ["eyJwYXlsb2FkVHlwZSI6Li4ufQ=="]},
                }
            },
        },
    },
)
async def append_batch(request: Request) -> Response:
    """Entries are checked one by one: each gets its own receipt or problem, in order. The reply
    is 200 whenever the batch itself was well formed."""
    authorize(request, "append")
    settings = request.app.state.settings
    raw = await read_limited(request, settings.max_batch_bytes)
    bodies = _decode_batch(raw, settings.max_batch_entries)
    service: WriteService = request.app.state.writer
    request.app.state.metrics.batch_entries.observe(len(bodies))
    results = await service.append_many(bodies)
    return _json({"results": [_item(request, r) for r in results]})


def _item(request: Request, result: Any) -> dict[str, Any]:
    if isinstance(result, Error):
        problem, body, _ = problem_of(result)
        request.app.state.metrics.refused(problem.slug)
        return body
    return receipt_json(result)
