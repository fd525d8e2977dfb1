"""A story's reads cost what the records about its digests cost, never the size of the log
(h36 F1): ``query.about`` finds the records by subject, then classifies them by predicate type
through the by-record index ``ix_terms_by_record`` — never through the primary key's
``(kind='predicateType', value)`` prefix, which reads every predicateType row of the log."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, insert

from ledger._internal import schema
from ledger.api.routes_audit import story_document
from ledger.index import query as q
from ledger.index import story
from ledger.index.derived import PRODUCER_PREFIXES
from ledger.index.driver_sql import sqlite_driver
from ledger.index.evidence import AuditReader
from ledger.log import Ledger
from tests.ledger import audit_samples as s
from tests.ledger.test_index import KEY, audited

__all__ = ["audited"]  # the fixture, re-exported for pytest

PROV = "https://slsa.dev/provenance/v1"
TEST = "https://in-toto.io/attestation/test-result/v0.1"
ART = "sha256:" + "a" * 64


@pytest.fixture
def conn() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    schema.indexes.create_all(engine)
    with engine.connect() as c:
        yield c
    engine.dispose()


def _add(conn: Connection, first: int, n: int, subject: str, ptype: str) -> None:
    rows = []
    for i in range(first, first + n):
        rows.append({"kind": "subject", "value": subject, "idx": i})
        rows.append({"kind": "predicateType", "value": ptype, "idx": i})
    conn.execute(insert(schema.ix_terms), rows)


def _steps(conn: Connection) -> int:
    """SQLite virtual-machine steps (in units of 100) one producer read of ART takes."""
    raw = sqlite_driver(conn)
    assert isinstance(raw, sqlite3.Connection)
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    raw.set_progress_handler(tick, 100)
    try:
        q.about(conn, [ART], 1 << 40, 2001, PRODUCER_PREFIXES)
        q.about(conn, [ART], 1 << 40, 1001, PRODUCER_PREFIXES, without=True)
    finally:
        raw.set_progress_handler(None, 100)
    return count[0]


def test_predicate_types_are_read_by_record(conn: Connection) -> None:
    raw = sqlite_driver(conn)
    assert raw is not None
    plan = raw.execute("EXPLAIN QUERY PLAN " + q._TYPES_SQLITE.format("?,?"), (1, 2)).fetchall()
    details = " ".join(str(row[-1]) for row in plan)
    assert "ix_terms_by_record" in details, details


def test_about_classifies_by_predicate_type(conn: Connection) -> None:
    _add(conn, 0, 1, ART, PROV)
    _add(conn, 1, 5, ART, TEST)
    _add(conn, 6, 3, "sha256:" + "b" * 64, PROV)
    assert q.about(conn, [ART], 100, 10, PRODUCER_PREFIXES) == [(0, ART)]
    others = q.about(conn, [ART], 100, 3, PRODUCER_PREFIXES, without=True)
    assert others == [(3, ART), (4, ART), (5, ART)]  # the newest 3
    assert q.about(conn, [ART], 4, 10, PRODUCER_PREFIXES, without=True) == [
        (1, ART),
        (2, ART),
        (3, ART),
    ]


def test_about_cost_does_not_grow_with_unrelated_records(conn: Connection) -> None:
    """One build and 300 tests of ART: the producer reads take about as many SQLite steps with
    20,000 unrelated builds in the log as with 100 (the correlated EXISTS read them all, per
    record about ART)."""
    _add(conn, 0, 1, ART, PROV)
    _add(conn, 1, 300, ART, TEST)
    _add(conn, 301, 100, "sha256:" + "c" * 64, PROV)
    small = _steps(conn)
    _add(conn, 401, 20_000, "sha256:" + "d" * 64, PROV)
    big = _steps(conn)
    assert big <= small * 1.5 + 10, (small, big)


def _chain_link(k: int, n: int) -> bytes:
    """A build whose n subjects are the previous one's n materials (h36 F3's chain)."""
    resolved = [
        {"uri": f"file:m{i}", "digest": {"sha256": s.sha(f"amp-{k + 1}-{i}")}} for i in range(n)
    ]
    pred = {"buildDefinition": {"buildType": "b", "resolvedDependencies": resolved}}
    subjects = [(f"s{i}", s.sha(f"amp-{k}-{i}")) for i in range(n)]
    return s.sign(s.statement(subjects, PROV, pred), KEY)


def test_a_story_describes_each_record_once(
    audited: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """h36 F3: a chain of 3 builds, each about the previous one's 40 materials, built a step (and
    its 40 material dicts) per (record, digest) pair: n*n per level, 2,001,000 material dicts
    for 3 steps at n = 1,000."""
    audited.append_many([_chain_link(k, 40) for k in range(3)])
    built = {"steps": 0, "materials": 0}
    describe = story._describe

    def counting(*args: Any) -> dict[str, Any]:
        st = describe(*args)
        built["steps"] += 1
        built["materials"] += len(st.get("materials", []))
        return st

    monkeypatch.setattr(story, "_describe", counting)
    told = story_document(AuditReader(audited), "sha256:" + s.sha("amp-0-0"), None)
    assert [len(st["materials"]) for st in told["story"]] == [40, 40, 40]
    assert built == {"steps": 3, "materials": 120}
