"""Two `ledger serve` processes on one PostgreSQL are one ledger: concurrent appends through both
produce one gapless chain, and `ledger check` passes."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import fresh_pg_schema
from tests.ledger.api.server import init_ledger, ledger_cli, serve, signed, token

pytestmark = pytest.mark.postgres


def test_two_servers_one_chain(tmp_path: Path) -> None:
    with fresh_pg_schema() as db:
        key = init_ledger(db, tmp_path)
        tok = token(db, tmp_path, "ci", "append")
        bodies = signed(120)
        with serve(db, tmp_path, key) as a, serve(db, tmp_path, key) as b:

            def send(i: int) -> dict[str, object]:
                srv = (a, b)[i % 2]
                r = httpx.post(
                    srv.url + "/api/v1/entries",
                    content=bodies[i],
                    timeout=60,
                    headers={"Authorization": f"Bearer {tok}"},
                )
                assert r.status_code == 201, r.text
                out: dict[str, object] = r.json()
                return out

            def batch() -> list[dict[str, object]]:
                more = signed(40)
                r = httpx.post(
                    b.url + "/api/v1/entries:batch",
                    timeout=60,
                    headers={"Authorization": f"Bearer {tok}"},
                    json={"entries": [base64.b64encode(x).decode() for x in more]},
                )
                assert r.status_code == 200, r.text
                results: list[dict[str, object]] = r.json()["results"]
                return results

            with ThreadPoolExecutor(16) as pool:
                batched = pool.submit(batch)  # through one server while both take singles
                receipts = list(pool.map(send, range(len(bodies))))
                receipts += batched.result()
        assert sorted(int(r["index"]) for r in receipts) == list(
            range(1, 161)
        )  # record 0: the registry entry  # type: ignore[call-overload]
        report = json.loads(ledger_cli(tmp_path, "check", "--db", db))
        assert report["ok"] and report["records"] == 161
