"""The two hottest audit routes as plain Starlette endpoints, ahead of FastAPI's.

``GET /api/v1/evidence`` and ``GET /api/v1/search`` take only optional string query parameters
and return JSON bytes the handler wrote itself, so FastAPI's per-request work (solving the
dependency tree, validating each declared parameter through pydantic, matching its route table)
buys them nothing; it was about a third of an evidence answer's CPU. These endpoints read the same
parameters (the last value of a repeated one, as FastAPI does), check the same read access and
call the same answer functions (:func:`ledger.api.routes_audit.evidence_answer`,
:func:`~ledger.api.routes_audit.search_answer`); errors go through the app's exception handlers
to the same problem documents. The FastAPI routes stay declared behind them, and still give the
OpenAPI schema (these are left out of it). ``create_app`` adds them first, so they match first.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ledger.api.auth import check_read
from ledger.api.routes_audit import SEARCH_PARAMS, evidence_answer, search_answer

__all__ = ["ROUTES"]


async def evidence(request: Request) -> Response:
    check_read(request)
    p = request.query_params
    return await evidence_answer(
        request,
        p.get("subject"),
        p.get("asOf"),
        p.get("since"),
        p.get("cursor"),
        p.get("limit"),
        p.get("registry"),
    )


async def search(request: Request) -> Response:
    check_read(request)
    p = request.query_params
    params = {name: p.get(name) for name in SEARCH_PARAMS}
    # A page of up to 100 records with bodies and proofs: off the event loop, as FastAPI runs
    # the declared (sync) route.
    return await run_in_threadpool(search_answer, request, params)


ROUTES = (("/api/v1/evidence", evidence), ("/api/v1/search", search))
