"""A clone without ../shared/fixtures still collects: the tests that need a fixture skip with its
path as the reason, the others run, and LEDGER_REQUIRE_FIXTURES=1 (set by .ci/run) fails them.

The tests are copied into a temporary directory with nothing beside it and run there in a
subprocess: the modules that read the fixture folder at collection time (parametrize lists,
module constants, a module-wide mark) — once a collection error each — then two of them with the
fixtures required.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_FIXTURES_ENV

REPO = Path(__file__).resolve().parents[1]
COLLECTION_TIME_READERS = [
    "tests/ledger/test_note_vectors.py",
    "tests/ledger/test_merkle_vectors.py",
    "tests/attest/test_statement_vectors.py",
    "tests/attest/test_sigstore.py",
    "tests/attest/test_predicates.py",
]


@pytest.fixture(scope="module")
def lone_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clone = tmp_path_factory.mktemp("no-shared-beside") / "repo"
    shutil.copytree(REPO / "tests", clone / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", clone)
    assert not (clone.parent / "shared").exists()
    return clone


def pytest_in(clone: Path, *args: str, require: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != REQUIRE_FIXTURES_ENV}
    if require:
        env[REQUIRE_FIXTURES_ENV] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *args],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_without_shared_fixtures_those_tests_skip_with_the_path(lone_clone: Path) -> None:
    run = pytest_in(lone_clone, *COLLECTION_TIME_READERS, require=False)
    assert run.returncode == 0, run.stdout + run.stderr
    missing = lone_clone.parent / "shared" / "fixtures"
    for folder in ("checkpoints", "merkle-vectors/transparency-dev-merkle", "slsa-provenance"):
        assert f"upstream fixture {missing}/{folder} is missing" in run.stdout
    assert f"upstream fixture {missing}/conformance/assets/bundle-verify is missing" in run.stdout
    # the tests in those modules that need no fixture still ran
    assert " passed" in run.stdout.splitlines()[-1]


def test_without_shared_fixtures_required_fixtures_fail(lone_clone: Path) -> None:
    run = pytest_in(lone_clone, *COLLECTION_TIME_READERS[:3:2], require=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"{REQUIRE_FIXTURES_ENV}=1 but upstream fixture" in run.stdout
    assert " error" in run.stdout.splitlines()[-1]
