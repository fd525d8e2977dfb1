"""RFC 9457 problem details: every error the API returns, mapped in one place from ledger.errors.

Each error class has a stable ``type`` URI (``urn:provenance-ledger:problem:<slug>``), a status
and a title; ``detail`` is the error's own one-line message, written for a person to act on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from ledger.errors import (
    BadQuery,
    CheckpointError,
    ClientGone,
    ConflictError,
    Error,
    IntegrityError,
    InvalidInput,
    NoteError,
    NotFound,
    NotTrusted,
    Overloaded,
    ProofError,
    RefusedValue,
    SlowBody,
    StorageError,
    TooLarge,
    Unauthenticated,
    Unauthorized,
)

__all__ = ["PROBLEMS", "PROBLEM_TYPE", "Problem", "install", "problem_of", "problem_response"]

PROBLEM_TYPE = "urn:provenance-ledger:problem:"
MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True)
class Problem:
    status: int
    slug: str
    title: str

    @property
    def type(self) -> str:
        return PROBLEM_TYPE + self.slug


INTERNAL = Problem(500, "internal", "Internal error")  # also any exception not the ledger's
# Most specific first is not needed: problem_of walks the error's MRO.
PROBLEMS: dict[type[Error], Problem] = {
    TooLarge: Problem(413, "too-large", "Body too large"),
    BadQuery: Problem(400, "bad-query", "Bad query parameter"),
    SlowBody: Problem(408, "body-timeout", "Request body too slow"),
    ClientGone: Problem(400, "client-disconnected", "Client disconnected"),
    InvalidInput: Problem(422, "invalid-input", "Invalid input"),
    NotTrusted: Problem(403, "not-trusted", "Not signed by a trusted signer"),
    Unauthenticated: Problem(401, "unauthenticated", "Missing or invalid bearer token"),
    Unauthorized: Problem(403, "forbidden", "Token lacks the needed scope"),
    NotFound: Problem(404, "not-found", "Not found"),
    Overloaded: Problem(503, "overloaded", "Overloaded; retry later"),
    ConflictError: Problem(409, "conflict", "Conflict"),
    RefusedValue: Problem(422, "refused-value", "The database refused a value of this body"),
    StorageError: Problem(503, "storage-unavailable", "Database unavailable"),
    IntegrityError: Problem(500, "integrity", "Stored data failed an integrity check"),
    ProofError: Problem(500, "integrity", "Stored data failed an integrity check"),
    NoteError: Problem(500, "integrity", "Stored data failed an integrity check"),
    CheckpointError: Problem(500, "integrity", "Stored data failed an integrity check"),
    Error: INTERNAL,
}
# Errors the framework raises before a handler runs.
REQUEST_INVALID = Problem(422, "invalid-request", "Invalid request parameters")
HTTP_PROBLEMS = {
    404: Problem(404, "not-found", "Not found"),
    405: Problem(405, "method-not-allowed", "Method not allowed"),
}


def problem_of(exc: Error) -> tuple[Problem, dict[str, Any], dict[str, str]]:
    """The problem for ``exc``: its descriptor, its JSON object, and extra response headers."""
    problem = next(PROBLEMS[c] for c in type(exc).__mro__ if c in PROBLEMS)
    headers: dict[str, str] = {}
    if isinstance(exc, Overloaded):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if isinstance(exc, SlowBody | ClientGone):  # the rest of the body is not read
        headers["Connection"] = "close"
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="ledger"'
    return problem, _body(problem, str(exc)), headers


def _body(problem: Problem, detail: str) -> dict[str, Any]:
    return {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": detail,
    }


def problem_response(
    problem: Problem, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return Response(json.dumps(body), problem.status, headers=headers or {}, media_type=MEDIA_TYPE)


def install(app: FastAPI, on_refusal: Callable[[str], None]) -> None:
    """Register the one handler for ledger errors and the adapters for framework errors."""

    async def ledger_error(_req: Request, exc: Exception) -> Response:
        assert isinstance(exc, Error)
        problem, body, headers = problem_of(exc)
        on_refusal(problem.slug)
        return problem_response(problem, body, headers)

    async def validation_error(_req: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        on_refusal(REQUEST_INVALID.slug)
        msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        detail = f"{where}: {msg}" if where else "invalid request"
        return problem_response(REQUEST_INVALID, _body(REQUEST_INVALID, detail))

    async def http_error(_req: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        problem = HTTP_PROBLEMS.get(
            exc.status_code, Problem(exc.status_code, "http-error", "HTTP error")
        )
        return problem_response(problem, _body(problem, str(exc.detail)), dict(exc.headers or {}))

    async def unexpected(_req: Request, exc: Exception) -> Response:
        # Starlette's ServerErrorMiddleware answers with this, then re-raises: the server logs
        # the traceback; the client gets the documented problem, never the exception's text.
        on_refusal(INTERNAL.slug)
        return problem_response(INTERNAL, _body(INTERNAL, "an unexpected error; it is logged"))

    app.add_exception_handler(Exception, unexpected)
    app.add_exception_handler(Error, ledger_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
