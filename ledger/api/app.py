"""The app factory: ``uvicorn ledger.api.app:create_app --factory`` or ``ledger serve``.

Settings are read when the app is made (once per worker process, never at import time) and the
:class:`~ledger.log.Ledger` is opened in the lifespan. Several processes (or machines) on one
PostgreSQL database are one ledger: appends serialise on the database's write lock.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ledger._internal.db import upgrade_schema
from ledger.api import (
    audit_raw,
    problems,
    routes_admin,
    routes_audit,
    routes_health,
    routes_read,
    routes_signers,
    routes_tiles,
    routes_write,
)
from ledger.api.cpu_slots import pin_this_worker
from ledger.api.fast_path import LedgerAPI
from ledger.api.metrics import Metrics
from ledger.api.service import WriteService
from ledger.api.settings import Settings
from ledger.api.trust_rounds import trust_rounds
from ledger.keys import default_key_path
from ledger.log import Ledger, utc_now
from ledger.tokens import Tokens

__all__ = ["create_app"]

DESCRIPTION = """\
Provenance Ledger: an append-only, hash-chained, Merkle-proved log of signed attestations.

Writes need a bearer token with the `append` scope; reads are public unless the server runs with
`LEDGER_PUBLIC_READS=false` (then the `read` scope). Errors are RFC 9457 problem details whose
`type` is stable: see docs/api.md.
"""


def create_app(settings: Settings | None = None) -> LedgerAPI:
    """A new app; its ledger opens when the app starts and closes when it stops."""
    s = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pinned = pin_this_worker()  # `ledger serve --pin-workers`: before any thread starts
        key = s.key_file or default_key_path(s.database_url)
        ledger = Ledger.open(
            s.database_url, key, max_batch=s.max_sequencer_batch, linger=s.linger_ms / 1000
        )
        try:
            upgrade_schema(ledger.store.engine)
            metrics = Metrics(lambda: float(ledger.store.latest_checkpoint()[0]))
            app.state.settings = s
            app.state.ledger = ledger
            app.state.metrics = metrics
            app.state.tokens = Tokens(ledger.store.engine, utc_now, s.token_cache_seconds)
            app.state.writer = WriteService(
                ledger,
                metrics,
                max_pending=s.max_pending,
                retry_after=s.retry_after_seconds,
                max_body_bytes=s.max_body_bytes,
                rounds=trust_rounds(ledger),
            )
            # Everything loaded so far (modules, the app, the ledger) lives as long as the
            # worker: out of the collector's sight, a full collection no longer walks it (it
            # took ~90 ms of CPU mid-request, a purl page's p99 at 200,000 records).
            gc.collect()
            gc.freeze()
            yield
        finally:
            gc.unfreeze()
            writer = getattr(app.state, "writer", None)
            if writer is not None:
                await writer.close()
            metrics_now = getattr(app.state, "metrics", None)
            if metrics_now is not None:
                metrics_now.close()
            ledger.close()
            if pinned is not None:
                pinned.release()

    app = LedgerAPI(
        fast_path=not s.otel,  # FastAPI's telemetry middleware must then see every request
        title="Provenance Ledger",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry bridge asks on every request whether a provider is set up
        # (about 4 % of a single append's event-loop time); the ledger's metrics are /metrics
        telemetry=None if s.otel else {"tracing": False, "metrics": False, "logs": False},
    )

    def refused(reason: str) -> None:
        metrics = getattr(app.state, "metrics", None)
        if metrics is not None:
            metrics.refused(reason)

    problems.install(app, refused)
    # The hot audit GETs and the single append first, as plain endpoints served ahead of the
    # middleware stack (ledger.api.fast_path); FastAPI's routes behind them give the schema.
    for path, endpoint in audit_raw.ROUTES:
        route = app.add_plain_route(path, endpoint, ["GET"])
        if route.methods is not None:  # Starlette adds HEAD to a GET; FastAPI's route answers 405
            route.methods.discard("HEAD")
    for path, endpoint in routes_write.PLAIN_ROUTES:
        app.add_plain_route(path, endpoint, ["POST"])
    for module in (
        routes_write,
        routes_read,
        routes_audit,
        routes_tiles,
        routes_admin,
        routes_signers,
        routes_health,
    ):
        app.include_router(module.router)
    return app
