"""Reading a request body: bounded in size and in time, parsed strictly, after authentication.

Every route that reads a body reads it here, and only once the bearer token has been checked
(a request without one never costs the server its body). The body is refused with 413 as soon as
it is known to exceed its limit, with 408 if it has not fully arrived within
``LEDGER_BODY_TIMEOUT_SECONDS`` (a client that holds a partial body open cannot pin a worker's
connection forever), and a client that disconnects mid-body is logged in one line.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from ledger._internal.jsontext import loads as strict_json
from ledger.errors import ClientGone, InvalidInput, SlowBody, TooLarge

__all__ = ["json_body", "read_limited", "read_model", "read_optional_model"]

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger("uvicorn.error")  # the server log, in its format


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused with :class:`TooLarge` as soon as it is known to exceed
    ``limit``, and with :class:`SlowBody` if it is not complete within the configured time."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body is {declared} bytes; the limit is {limit}")
    seconds: float = request.app.state.settings.body_timeout_seconds
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"body is over the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise SlowBody(
            f"the body did not arrive within {seconds:g} s ({size} bytes received); send it at once"
        ) from None
    except ClientDisconnect:
        client = request.client.host if request.client else "?"
        log.warning(
            "%s %s: client %s disconnected after %d body bytes",
            request.method,
            request.url.path,
            client,
            size,
        )
        raise ClientGone(f"the client disconnected after {size} body bytes") from None
    return b"".join(chunks)


async def read_model(request: Request, model: type[M]) -> M:
    """The body as ``model``: at most ``LEDGER_MAX_BODY_BYTES``, strict JSON (UTF-8, no duplicate
    keys, no NaN), then the model's fields; each failure an :class:`InvalidInput` in our words."""
    found = await read_optional_model(request, model)
    if found is None:
        raise InvalidInput("the request needs a JSON object body")
    return found


async def read_optional_model(request: Request, model: type[M]) -> M | None:
    """As :func:`read_model`, but an empty body is ``None``."""
    raw = await read_limited(request, request.app.state.settings.max_body_bytes)
    if not raw.strip():
        return None
    doc: Any = strict_json(raw, "the request body")
    if not isinstance(doc, dict):
        raise InvalidInput("the request body must be a JSON object")
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        raise InvalidInput(_reason(e)) from None


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that reads ``model`` itself (FastAPI would read and
    parse a declared body parameter before the route's dependencies check the token)."""
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }


def _reason(e: ValidationError) -> str:
    """The first field error as ``field: message`` (pydantic's message, without its links)."""
    first = e.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid')}"
