"""Importing the verify modules for Sigstore, layouts, SLSA and VSAs loads no heavy dependency:
sigstore-python and in-toto load only when a bundle or layout is verified, and the database and
web stacks never (issue 11: a deploy gate pays its start-up on every run)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sigstore", "in_toto", "securesystemslib", "sqlalchemy", "fastapi", "ledger")


def test_imports_stay_light() -> None:
    code = (
        "import sys\n"
        "import verify.conformance, verify.layout, verify.layout_cli, verify.layout_gate\n"
        "import verify.slsa_github, verify.vsa\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_the_check_can_fail() -> None:
    """Guard against a vacuous pass: the same probe sees sigstore once it is imported."""
    code = "import sys, sigstore.models\nprint('sigstore' in sys.modules)\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "True"
