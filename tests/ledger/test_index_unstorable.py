"""A body whose statement holds a value no backend can index as given (a NUL, a lone surrogate,
a value longer than its column) is logged like any other: the value is left out of the indexes
on both backends alike, the other bodies of its batch go in, and later appends work.

Until 2026-12-01 such a body passed admission and then failed every PostgreSQL integration batch
it was in, for good: its pending row stayed, and no append of any process was acknowledged again
(found by the hostile test of that day)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import select

from ledger._internal import schema
from ledger.errors import AppendsFailed, RefusedValue
from ledger.fsck import check_ledger
from ledger.index import rows as rows_module
from ledger.index.maintain import check_indexes, reindex
from ledger.index.rows import storable
from ledger.log import Ledger
from ledger.sequencer import AppendResult

_VULNS = "https://in-toto.io/attestation/vulns/v0.1"


def _env(statement: dict[str, Any]) -> bytes:
    payload = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": payload,
            "signatures": [{"sig": "c2ln"}],
        }
    ).encode()


def _slsa(deps: list[dict[str, Any]], n: int, builder: str | None = None) -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"s{n}", "digest": {"sha256": f"{n:064x}"}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://example.com/b@v1",
                "resolvedDependencies": deps,
                "externalParameters": {"repository": "https://git.example.com/app"},
            },
            "runDetails": {"builder": {"id": builder or f"https://builder.example/{n}"}},
        },
    }


def _vulns(subject: dict[str, str], vuln: str) -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": subject}],
        "predicateType": _VULNS,
        "predicate": {"scanner": {"result": [{"id": vuln}]}},
    }


_CASES: dict[str, tuple[dict[str, Any], str]] = {
    # the statement, and the value that must not be indexed
    "NUL in a purl": (_slsa([{"uri": "pkg:npm/fo\u0000o@1.0"}], 1), "pkg:npm/fo\u0000o"),
    "NUL in a builder id": (_slsa([], 2, builder="b\u0000x"), "b\u0000x"),
    "lone surrogate in a purl": (_slsa([{"uri": "pkg:npm/s\ud800x@1"}], 3), "pkg:npm/s\ud800x"),
    "dependency digest over 200": (
        _slsa([{"uri": "pkg:npm/foo@1", "digest": {"sha256": "a" * 300}}], 4),
        "sha256:" + "a" * 300,
    ),
    "vulnerable subject over 512": (_vulns({"sha256": "b" * 600}, "CVE-2026-1"), "b" * 600),
    "NUL in a vulnerability id": (_vulns({"sha256": "c" * 64}, "CVE-\u00002"), "CVE-\u00002"),
}


def _all_values(lg: Ledger) -> set[str]:
    t, d, v = schema.ix_terms.c, schema.ix_deps.c, schema.ix_vulns.c
    with lg.store.engine.connect() as conn:
        rows = [
            *conn.execute(select(t.value)).all(),
            *conn.execute(select(d.package, d.version, d.digest)).all(),
            *conn.execute(select(v.vuln, v.product, v.component)).all(),
        ]
    return {str(x) for row in rows for x in row}


@pytest.mark.parametrize("case", list(_CASES))
def test_an_unindexable_value_neither_blocks_nor_fails_its_batch(ledger: Ledger, case: str) -> None:
    statement, value = _CASES[case]
    good = [_env(_slsa([{"uri": f"pkg:npm/good{i}@1.0.{i}"}], 100 + i)) for i in range(3)]
    results = ledger.append_many([*good, _env(statement)])
    assert [r.index for r in results] == [0, 1, 2, 3]
    later = ledger.append(_env(_slsa([{"uri": "pkg:npm/later@2.0"}], 999)))
    assert later.index == 4
    values = _all_values(ledger)
    assert {"pkg:npm/good0", "pkg:npm/good2", "pkg:npm/later"} <= values
    assert value not in values and not any(v.startswith(value) for v in values)
    check_ledger(ledger.store)  # the stored rows are the rows derived from the bodies
    rows = check_indexes(ledger.store)
    assert reindex(ledger.store) == rows


@pytest.mark.parametrize(
    ("value", "limit", "kept"),
    [
        ("pkg:npm/ok", 512, True),
        ("", 512, True),
        ("ünïcødé ✓ 𝄞", 512, True),
        ("x" * 512, 512, True),
        ("x" * 513, 512, False),
        ("x" * 201, 200, False),
        ("a\u0000b", 512, False),
        ("\ud800", 512, False),
        ("ok \udfff", 512, False),
    ],
)
def test_storable(value: str, limit: int, kept: bool) -> None:
    assert storable(value, limit) is kept


def unstorable_envelope() -> bytes:
    """A signed body with a value PostgreSQL refuses every time (NUL in a purl), for tests
    that switch :func:`storable` off."""
    return _env(_CASES["NUL in a purl"][0])


def test_a_value_postgresql_refuses_fails_its_own_body_only(
    pg_url: str, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a refused value get past :func:`storable` (here: the filter switched off), the
    batch's failure is the row's own (SQLSTATE class 22, ``RefusedValue``): the quarantine marks
    that row failed and logs the others, instead of retrying the batch forever."""
    monkeypatch.setattr(rows_module, "storable", lambda value, limit=512: True)
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        good = [_env(_slsa([{"uri": f"pkg:npm/good{i}@1.0.{i}"}], 100 + i)) for i in range(3)]
        bad = unstorable_envelope()
        with pytest.raises(AppendsFailed, match="1 of 4") as e:
            lg.append_many([*good, bad])
        *logged, refused = e.value.outcomes
        assert isinstance(refused, RefusedValue)
        assert "NUL" in str(refused) or "0x00" in str(refused)
        assert "stays pending" not in str(refused)  # not retried: it would fail every time
        assert sorted(cast(AppendResult, r).index for r in logged) == [0, 1, 2]
        assert lg.append(_env(_slsa([], 999))).index == 3  # the ledger goes on
        with pytest.raises(RefusedValue):  # the same body again: refused again, nothing logged
            lg.append(bad)
        assert lg.store.size() == 4
