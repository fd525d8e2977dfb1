"""The dependency direction of DESIGN.md §2, checked by parsing every import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PURE = [
    "ledger/merkle.py",
    "ledger/note.py",
    "ledger/checkpoint.py",
    "ledger/record.py",
    "ledger/tiles.py",
]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def files(pkg: str) -> list[Path]:
    return sorted((ROOT / pkg).rglob("*.py"))


def test_ledger_never_imports_verify() -> None:
    for path in files("ledger"):
        assert not any(m.split(".")[0] == "verify" for m in imports(path)), path


def test_attest_imports_neither_ledger_nor_verify() -> None:
    for path in files("attest"):
        bad = {"verify"} if path.name == "cli.py" else {"ledger", "verify"}
        assert not any(m.split(".")[0] in bad for m in imports(path)), path


def test_the_checker_sees_imports() -> None:
    """Guard against a vacuous pass: the parser does find the ledger's own imports."""
    assert "ledger.errors" in imports(ROOT / "ledger" / "merkle.py")


@pytest.mark.parametrize("name", PURE)
def test_pure_core_has_no_database_network_or_clock(name: str) -> None:
    mods = imports(ROOT / name)
    assert not any(
        m.split(".")[0] in {"sqlalchemy", "alembic", "psycopg", "httpx", "fastapi", "socket"}
        for m in mods
    )
    assert "ledger.storage" not in mods
    assert "datetime.now" not in (ROOT / name).read_text()


def test_pure_modules_do_not_load_the_database_layer() -> None:
    """A deploy gate importing the pure core must not pay for SQLAlchemy or Alembic at start-up."""
    import subprocess
    import sys

    code = (
        "import sys, ledger, ledger.merkle, ledger.checkpoint, ledger.record, ledger.note, "
        "ledger.tiles, ledger.bodies; "
        "print(sorted(m for m in ('sqlalchemy', 'alembic', 'psycopg') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    lazy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, ledger; ledger.Ledger; print('sqlalchemy' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert lazy.stdout.strip() == "True"


def test_attest_public_names_resolve() -> None:
    import attest

    for name in attest.__all__:
        assert getattr(attest, name) is not None, name


def test_attest_verification_does_not_load_sigstore_until_a_bundle_is_verified() -> None:
    """A deploy gate checking key-signed DSSE never pays for sigstore-python's import."""
    import subprocess
    import sys

    code = (
        "import sys, attest.verification, attest.cli\n"
        "heavy = [m for m in ('sigstore', 'in_toto', 'httpx', 'sqlalchemy', 'ledger') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
