"""``LEDGER_OTEL``: FastAPI's OpenTelemetry bridge is off unless asked for. Off, no request asks
OpenTelemetry for its tracer provider (the per-request cost it removes); on, a configured provider
is asked and traces the request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.ledger.api.server import init_ledger


@pytest.mark.parametrize("otel", [False, True])
def test_otel_setting_decides_whether_requests_are_traced(
    otel: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient
    from opentelemetry import trace

    from ledger.api.app import create_app
    from ledger.api.settings import Settings

    asked: list[str] = []

    class Recording(trace.TracerProvider):  # a configured provider, as an SDK's would be
        def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
            asked.append("get_tracer")
            return trace.NoOpTracer()

    recorder = Recording()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: recorder)
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    key = init_ledger(db, tmp_path)
    app = create_app(Settings(database_url=db, key_file=key, otel=otel))
    with TestClient(app) as client:
        assert client.get("/api/v1/checkpoint").status_code == 200
    assert bool(asked) is otel


def test_otel_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from ledger.api.settings import Settings

    monkeypatch.setenv("LEDGER_OTEL", "true")
    assert Settings().otel is True
    monkeypatch.setenv("LEDGER_OTEL", "maybe")
    with pytest.raises(ValueError, match="otel"):
        Settings()
