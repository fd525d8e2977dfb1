"""``POST /api/v1/entries`` is served by a plain Starlette endpoint ahead of FastAPI's declared
route (``routes_write.PLAIN_ROUTES``): the same statuses, headers and bytes, the same problems,
the same OpenAPI document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.ledger.api.server import init_ledger, signed, token


@pytest.fixture()
def apps(tmp_path: Path) -> tuple[Any, Any, dict[str, str]]:
    """The app as served and the same app without the plain endpoint, on one SQLite ledger."""
    from starlette.routing import Route

    from ledger.api import routes_write
    from ledger.api.app import create_app
    from ledger.api.settings import Settings

    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    key = init_ledger(db, tmp_path)
    tokens = {s: token(db, tmp_path, s, s) for s in ("append", "read")}
    s = Settings(database_url=db, key_file=key, max_body_bytes=8192)
    served, declared = create_app(s), create_app(s)
    plain = {endpoint for _, endpoint in routes_write.PLAIN_ROUTES}
    routes = served.router.routes
    first_router = next(i for i, r in enumerate(routes) if not isinstance(r, Route))
    assert {getattr(r, "endpoint", None) for r in routes[:first_router]} >= plain
    declared.router.routes[:] = [
        r
        for r in declared.router.routes
        if not (isinstance(r, Route) and r.endpoint in plain and r.include_in_schema is False)
    ]
    assert "post" in declared.openapi()["paths"]["/api/v1/entries"]  # the declared route
    return served, declared, tokens


def _same(ra: Any, rb: Any) -> None:
    assert (ra.status_code, ra.headers.get("content-type"), ra.headers.get("allow")) == (
        rb.status_code,
        rb.headers.get("content-type"),
        rb.headers.get("allow"),
    ), (ra.text, rb.text)
    assert ra.content == rb.content


def test_plain_append_answers_exactly_as_the_declared_route(
    apps: tuple[Any, Any, dict[str, str]],
) -> None:
    from fastapi.testclient import TestClient

    served, declared, tokens = apps
    auth = {"authorization": f"Bearer {tokens['append']}"}
    body = signed(1)[0]
    with TestClient(served) as a, TestClient(declared) as b:
        assert a.app.openapi() == b.app.openapi()
        # The same body: appended by one, the first record from the other, then twice alike.
        first, again = a.post("/api/v1/entries", content=body, headers=auth), None
        assert first.status_code == 201, first.text
        again = b.post("/api/v1/entries", content=body, headers=auth)
        assert again.status_code == 200
        assert {**json.loads(first.content), "duplicate": True} == json.loads(again.content)
        assert first.headers["content-type"] == again.headers["content-type"]
        _same(
            a.post("/api/v1/entries", content=body, headers=auth),
            b.post("/api/v1/entries", content=body, headers=auth),
        )
        refused: list[tuple[str, dict[str, str], bytes]] = [
            ("POST", {}, body),  # no token: 401
            ("POST", {"authorization": "Bearer nope"}, body),  # unknown token: 401
            ("POST", {"authorization": f"Bearer {tokens['read']}"}, body),  # scope: 403
            ("POST", auth, b"not json"),  # 422
            ("POST", auth, b'{"payloadType": "x", "payloadType": "y"}'),  # duplicate key: 422
            ("POST", auth, b"{}" + b" " * 9000),  # over LEDGER_MAX_BODY_BYTES: 413
            ("POST", auth, body.replace(b'"sig":"', b'"sig":"AA')),  # broken signature
            ("GET", auth, b""),  # 405, as for any route without the method
            ("PUT", auth, body),
            ("DELETE", auth, b""),
        ]
        for method, headers, content in refused:
            ra = a.request(method, "/api/v1/entries", headers=headers, content=content)
            rb = b.request(method, "/api/v1/entries", headers=headers, content=content)
            assert ra.status_code >= 400, (method, headers, ra.text)
            _same(ra, rb)
        size = a.get("/api/v1/checkpoint").text.split("\n")[1]
        assert size == b.get("/api/v1/checkpoint").text.split("\n")[1]
        assert int(size) == 2  # the signer's registry entry and the one body: nothing refused
