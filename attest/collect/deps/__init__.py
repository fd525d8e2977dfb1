"""Dependencies → SLSA ``resolvedDependencies``: purls and digests from lock files and SBOMs.

:func:`collect_dependencies` picks the parser by file name (or SBOM content); ``python-env``
names the running interpreter's installed distributions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from attest.collect.deps.ecosystems import parse_cargo_lock, parse_go_sum, parse_package_lock
from attest.collect.deps.python import (
    parse_environment,
    parse_pipfile_lock,
    parse_poetry_lock,
    parse_requirements,
    parse_uv_lock,
)
from attest.collect.deps.sbom import parse_cyclonedx, parse_spdx
from attest.errors import CollectorError
from attest.statement import ResourceDescriptor

__all__ = ["PYTHON_ENV", "collect_dependencies"]

PYTHON_ENV = "python-env"
Parser = Callable[[Path], list[ResourceDescriptor]]

_BY_NAME: dict[str, Parser] = {
    "poetry.lock": parse_poetry_lock,
    "uv.lock": parse_uv_lock,
    "pipfile.lock": parse_pipfile_lock,
    "package-lock.json": parse_package_lock,
    "npm-shrinkwrap.json": parse_package_lock,
    "go.sum": parse_go_sum,
    "cargo.lock": parse_cargo_lock,
}


def _parser_for(path: Path) -> Parser:
    name = path.name.lower()
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name.endswith((".txt", ".in")):
        return parse_requirements
    if name.endswith(".json"):
        try:
            head = path.read_bytes()[:65536]
        except OSError as e:
            raise CollectorError(f"cannot read {path}: {e.strerror}") from e
        if b'"bomFormat"' in head:
            return parse_cyclonedx
        if b'"spdxVersion"' in head:
            return parse_spdx
    raise CollectorError(
        f"{path}: unknown dependency file (requirements*.txt, poetry.lock, uv.lock, Pipfile.lock, "
        "package-lock.json, go.sum, Cargo.lock, CycloneDX or SPDX JSON, or python-env)"
    )


def collect_dependencies(spec: str) -> list[ResourceDescriptor]:
    """Parse one dependency source. Any read or format problem is a :class:`CollectorError`."""
    if spec == PYTHON_ENV:
        return parse_environment()
    path = Path(spec)
    if not path.is_file():
        raise CollectorError(f"dependency file {spec} does not exist")
    try:
        return _parser_for(path)(path)
    except (KeyError, TypeError, AttributeError) as e:
        raise CollectorError(f"{path}: unexpected structure ({e.__class__.__name__}: {e})") from e
    except ValueError as e:  # a purl refused by purl(), a bad name or version
        raise CollectorError(f"{path}: {e}") from e
