"""schemathesis against the served OpenAPI: no 5xx, and every response matches its schema.

Bounded (a few examples per operation) so the suite stays fast. Runs with an admin+append+read
token, so generated requests reach the handlers instead of stopping at 401.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.ledger.api.server import Server, init_ledger, serve, token


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    workdir: Path = tmp_path_factory.mktemp("fuzz")
    db = f"sqlite:///{workdir / 'ledger.db'}"
    key = init_ledger(db, workdir)
    tok = token(db, workdir, "all", "append", "read", "admin")
    with serve(db, workdir, key) as srv:
        yield srv, tok


def test_api_conforms_to_its_openapi(fuzz_server: tuple[Server, str]) -> None:
    """Each operation with its own Hypothesis run (schemathesis's pytest plugin does not load
    under pytest 9, so the operations are driven here directly)."""
    srv, tok = fuzz_server
    api = schemathesis.openapi.from_url(srv.url + "/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: schemathesis.Case) -> None:
            # A schema-valid body may still be refused (a signature is more than a shape), so
            # positive-data acceptance is not asked for; every other check is.
            case.call_and_validate(
                headers={"Authorization": f"Bearer {tok}"},
                excluded_checks=[checks.positive_data_acceptance],
            )

        check()
