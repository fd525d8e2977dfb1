"""The plain routes skip FastAPI's middleware stack (``ledger.api.fast_path``): only a request a
plain route fully matches does, and it gets the answer the full stack would give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.ledger.api.server import init_ledger, signed, token


@pytest.fixture()
def served(tmp_path: Path) -> tuple[Any, dict[str, str]]:
    from ledger.api.app import create_app
    from ledger.api.settings import Settings

    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    key = init_ledger(db, tmp_path)
    tokens = {s: token(db, tmp_path, s, s) for s in ("append", "read")}
    return create_app(Settings(database_url=db, key_file=key)), tokens


class _Counted:
    """An ASGI app that counts the requests it passes on, by (method, path)."""

    def __init__(self, app: Any) -> None:
        self.app, self.seen = app, []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


def test_only_fully_matched_plain_routes_skip_the_stack(
    served: tuple[Any, dict[str, str]],
) -> None:
    from fastapi.testclient import TestClient

    from ledger.api.fast_path import FastPath

    app, tokens = served
    auth = {"authorization": f"Bearer {tokens['append']}"}
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200  # builds the stack
        stack = app.middleware_stack
        assert isinstance(stack, FastPath)
        assert sorted(stack._routes) == ["/api/v1/entries", "/api/v1/evidence", "/api/v1/search"]
        full = stack._full = _Counted(stack._full)
        body = signed(1)[0]
        assert c.post("/api/v1/entries", content=body, headers=auth).status_code == 201
        assert c.post("/api/v1/entries", content=b"{}", headers=auth).status_code == 422
        assert c.get("/api/v1/search", params={"subject": "sha256:" + "0" * 64}).status_code == 200
        assert full.seen == []  # the plain routes, answers and problems alike, went around it
        assert c.get("/api/v1/entries").status_code == 405  # another method: the full stack
        assert c.head("/api/v1/evidence").status_code == 405
        assert c.get("/api/v1/checkpoint").status_code == 200
        assert full.seen == [
            ("GET", "/api/v1/entries"),
            ("HEAD", "/api/v1/evidence"),
            ("GET", "/api/v1/checkpoint"),
        ]


def test_an_unexpected_error_is_the_full_stacks_500(
    served: tuple[Any, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from ledger.api.service import WriteService

    app, tokens = served
    auth = {"authorization": f"Bearer {tokens['append']}"}

    async def broken(self: Any, body: bytes) -> Any:
        raise RuntimeError("a defect")

    monkeypatch.setattr(WriteService, "append", broken)
    with TestClient(app, raise_server_exceptions=False) as c:
        fast = c.post("/api/v1/entries", content=signed(1)[0], headers=auth)
        assert c.app.middleware_stack._routes  # type: ignore[attr-defined]
        c.app.middleware_stack._routes = {}  # type: ignore[attr-defined]  # all: the full stack
        slow = c.post("/api/v1/entries", content=signed(1)[0], headers=auth)
    assert fast.status_code == slow.status_code == 500
    assert (fast.headers["content-type"], fast.content) == (
        slow.headers["content-type"],
        slow.content,
    )
    # the documented problem, not Starlette's text/plain, and nothing of the exception's text
    assert fast.headers["content-type"] == "application/problem+json"
    problem = fast.json()
    assert problem["type"] == "urn:provenance-ledger:problem:internal"
    assert problem["status"] == 500
    assert "a defect" not in fast.text


def test_with_otel_every_request_takes_the_full_stack(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from ledger.api.app import create_app
    from ledger.api.fast_path import FastPath
    from ledger.api.settings import Settings

    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    key = init_ledger(db, tmp_path)
    on = create_app(Settings(database_url=db, key_file=key, otel=True))
    with TestClient(on) as c:
        assert c.get("/healthz").status_code == 200
        assert not isinstance(on.middleware_stack, FastPath)


def test_middleware_added_to_the_app_sees_every_request(
    served: tuple[Any, dict[str, str]],
) -> None:
    from fastapi.testclient import TestClient

    app, tokens = served
    seen: list[str] = []

    class Mark:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                seen.append(scope["path"])
            await self.inner(scope, receive, send)

    app.add_middleware(Mark)
    auth = {"authorization": f"Bearer {tokens['append']}"}
    with TestClient(app) as c:
        assert c.post("/api/v1/entries", content=signed(1)[0], headers=auth).status_code == 201
    assert seen == ["/api/v1/entries"]
