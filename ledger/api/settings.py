"""Server settings: ``LEDGER_*`` environment variables (flags of ``ledger serve`` set them).

The table in docs/operations.md lists every one; keep the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.bodies import MAX_BODY_BYTES
from ledger.sequencer import DEFAULT_LINGER

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Read once per process, in the app factory (never at import time)."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    database_url: Annotated[str, Field(description="Database URL.")] = "sqlite:///ledger.db"
    key_file: Annotated[
        Path | None, Field(description="Checkpoint key (default: derived from URL).")
    ] = None
    admin_key_file: Annotated[
        Path | None, Field(description="Admin key for registry changes (default: beside the key).")
    ] = None
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    public_reads: Annotated[
        bool, Field(description="Reads need no token (else the read scope).")
    ] = True
    max_body_bytes: Annotated[
        int,
        Field(
            ge=1024,
            le=MAX_BODY_BYTES,
            description="One body, alone or in a batch; at most 1 MiB, the most a ledger holds.",
        ),
    ] = MAX_BODY_BYTES
    max_batch_entries: Annotated[int, Field(ge=1, le=10_000)] = 1000
    max_batch_bytes: Annotated[int, Field(ge=1024, le=1 << 30)] = 32 << 20
    max_pending: Annotated[
        int, Field(ge=1, description="Appends waiting per process, then 503.")
    ] = 10_000
    max_sequencer_batch: Annotated[int, Field(ge=1, le=10_000)] = 1000
    linger_ms: Annotated[
        float,
        Field(
            ge=0,
            le=1000,
            description="SQLite: how long the writer waits for the callers it just answered to "
            "come back and join the next batch (0: never waits).",
        ),
    ] = DEFAULT_LINGER * 1000
    token_cache_seconds: Annotated[float, Field(ge=0, le=300)] = 5.0
    body_timeout_seconds: Annotated[
        float, Field(gt=0, le=3600, description="A request body not complete by then is 408.")
    ] = 30.0
    retry_after_seconds: Annotated[int, Field(ge=1, le=3600)] = 1
    otel: Annotated[
        bool, Field(description="FastAPI's OpenTelemetry spans, metrics and logs per request.")
    ] = False
