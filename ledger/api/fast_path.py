"""The hot plain routes (the single append, evidence, search) served ahead of FastAPI's middleware.

A request to ``POST /api/v1/entries`` went through eight ASGI layers before its endpoint (the
server-error, telemetry, body-limit, exception and exit-stack middleware, the router's scan of
the routes) and back through four ``send`` wrappers: about 7 % of a single append's event-loop
samples in a profile (skipping them saved 2.6 % of the app's CPU per append, measured by
``bench/asgi_append.py``), for layers these endpoints do not use (they read their own body with a limit, have no
dependencies and send a whole response). :class:`LedgerAPI` builds FastAPI's middleware stack
as usual and puts :class:`FastPath` in front of it: a request whose path is one of the plain
routes and that the route matches fully (its method) goes through the two layers that decide
what it gets back — Starlette's :class:`ServerErrorMiddleware` (a 500 for an unexpected error)
and :class:`ExceptionMiddleware` (the app's problem+json handlers), built from the same handlers
as FastAPI's own — and then the endpoint. Anything else (another method, a ``root_path``, a
lifespan or websocket scope) takes the full stack, so it gets what it always got. With
middleware added to the app, or with ``LEDGER_OTEL`` on (FastAPI's telemetry middleware records
every request's exceptions), every request takes the full stack.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["FastPath", "LedgerAPI"]


class FastPath:
    """Dispatch ``routes`` (by exact path, then the route's own match) to their short stacks;
    everything else to ``full``."""

    def __init__(self, full: ASGIApp, routes: dict[str, list[tuple[Route, ASGIApp]]]) -> None:
        self._full, self._routes = full, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            for route, stack in self._routes.get(scope["path"], ()):
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    scope.setdefault("router", scope["app"].router)
                    await stack(scope, receive, send)
                    return
        await self._full(scope, receive, send)


class LedgerAPI(FastAPI):
    """FastAPI whose plain routes (:meth:`add_plain_route`) skip its middleware stack."""

    def __init__(self, *, fast_path: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        self._plain: list[Route] = []
        self._fast_path = fast_path  # off: every request through the full stack

    def add_plain_route(
        self, path: str, endpoint: Callable[..., Any], methods: Sequence[str]
    ) -> Route:
        """A plain Starlette endpoint at ``path``, ahead of every FastAPI route there (which
        stays behind it for the OpenAPI schema), served by :class:`FastPath`."""
        self.router.add_route(path, endpoint, methods=list(methods), include_in_schema=False)
        route: BaseRoute = self.router.routes[-1]
        assert isinstance(route, Route)
        self._plain.append(route)
        return route

    def build_middleware_stack(self) -> ASGIApp:
        full = super().build_middleware_stack()
        if self.user_middleware or not self._fast_path:  # it must see every request
            return full
        error_handler = None
        handlers: dict[Any, Any] = {}
        for key, value in self.exception_handlers.items():  # split as FastAPI splits them
            if key in (500, Exception):
                error_handler = value
            else:
                handlers[key] = value
        routes: dict[str, list[tuple[Route, ASGIApp]]] = {}
        for route in self._plain:
            if route not in self.router.routes:  # taken out since: not served at all
                continue
            inner = ExceptionMiddleware(route.app, handlers=handlers, debug=self.debug)
            stack = ServerErrorMiddleware(inner, handler=error_handler, debug=self.debug)
            routes.setdefault(route.path, []).append((route, stack))
        return FastPath(full, routes)
