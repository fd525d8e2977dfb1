"""``/metrics`` with several workers is the server's, not the answering worker's: counters and
histograms of every worker summed (prometheus-client's multiprocess mode), the tree size read at
scrape time."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import fresh_pg_schema
from tests.ledger.api.server import Server, init_ledger, serve, signed, token


def _sample(text: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{re.escape(name + labels)} ([0-9.e+]+)$", text, re.M)
    assert m is not None, f"{name}{labels} missing from /metrics"
    return float(m.group(1))


def _scrapes(server: Server, n: int) -> list[str]:
    out = []
    for _ in range(n):  # a new connection each time (either worker may answer)
        r = server.get("/metrics")
        assert r.status_code == 200
        out.append(r.text)
    return out


def test_every_scrape_of_a_two_worker_server_counts_every_workers_appends(
    tmp_path: Path,
) -> None:
    with fresh_pg_schema() as db:
        key = init_ledger(db, tmp_path)
        append = token(db, tmp_path, "append", "append")
        with serve(db, tmp_path, key, LEDGER_WORKERS="2") as server:
            bodies = signed(24)
            for body in bodies:
                r = server.post("/api/v1/entries", append, content=body)
                assert r.status_code == 201, r.text
            refused = server.post("/api/v1/entries", append, content=b"{}")
            assert refused.status_code == 422
            size = server.get("/api/v1/checkpoint").text.splitlines()[1]
            for text in _scrapes(server, 8):
                assert _sample(text, "ledger_appends_total", '{result="new"}') == len(bodies)
                assert _sample(text, "ledger_append_seconds_count") == len(bodies)
                assert _sample(text, "ledger_tree_size") == float(size)
                assert "ledger_refusals_total" in text
