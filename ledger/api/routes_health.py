"""``/healthz`` (database reachable, sequencer alive) and ``/metrics`` (Prometheus text)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ledger.api.models import Health, problem_responses
from ledger.errors import StorageError
from ledger.log import Ledger

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="Liveness and readiness",
    response_model=Health,
    responses=problem_responses(503),
)
def healthz(request: Request) -> dict[str, Any]:
    """200 when the database answers and this process's sequencer thread runs; else 503."""
    ledger: Ledger = request.app.state.ledger
    size, _ = ledger.store.latest_checkpoint()  # StorageError → 503
    if not ledger.writer_alive():
        raise StorageError("the sequencer thread of this process has stopped")
    return {"status": "ok", "database": "ok", "sequencer": "ok", "treeSize": size}


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics(request: Request) -> Response:
    data = request.app.state.metrics.exposition()
    return Response(data, media_type="text/plain; version=0.0.4; charset=utf-8")
