"""`pip install .` without extras must run every console script: each third-party module that
attest, ledger and verify import is a declared [project] dependency, with a lower bound (issue 7:
`attest provenance --deps requirements.txt` died with "No module named 'packaging'")."""

from __future__ import annotations

import importlib.metadata
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.test_layering import ROOT, files, imports

OURS = {"attest", "ledger", "verify"}


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


def third_party_imports() -> dict[str, set[str]]:
    """Top-level module → the files importing it, for every non-stdlib, non-project import."""
    found: dict[str, set[str]] = {}
    for package in sorted(OURS):
        for path in files(package):
            for module in imports(path):
                top = module.split(".")[0]
                if top not in OURS and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_packaging_imported_but_not_declared_is_caught() -> None:
    found = third_party_imports()
    assert "packaging" in found  # attest/collect/deps/python.py: the module from the issue
    assert {"cryptography", "sqlalchemy", "typer"} <= set(found)  # the parser sees imports


def test_every_third_party_import_is_a_declared_dependency() -> None:
    names = {canonicalize_name(r.name) for r in declared()}
    distributions = importlib.metadata.packages_distributions()
    missing = {
        module: sorted(where)
        for module, where in third_party_imports().items()
        if not {canonicalize_name(d) for d in distributions.get(module, [module])} & names
    }
    assert not missing, f"imported but not in [project] dependencies: {missing}"


def test_every_declared_dependency_has_a_lower_bound() -> None:
    for r in declared():
        assert any(s.operator in (">=", "~=", "==") for s in r.specifier), r
