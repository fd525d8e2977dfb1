"""Shared helpers of the dependency parsers: purls, digest maps, reading files with clear errors."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

from packageurl import PackageURL

from attest.statement import ResourceDescriptor

_SRI = {"sha256": "sha256", "sha384": "sha384", "sha512": "sha512", "sha1": "sha1"}


# what each ecosystem calls a valid name (and npm a scope); path-like names never pass
_SEGMENT = re.compile(r"[A-Za-z0-9_~+-][A-Za-z0-9._~+-]*")
_NAMES: dict[str, re.Pattern[str]] = {
    "npm": re.compile(r"[A-Za-z0-9~-][A-Za-z0-9._~-]*"),
    "cargo": re.compile(r"[A-Za-z0-9_-]+"),
    "pypi": re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*"),  # canonical (PEP 503) names
}
_NPM_SCOPE = re.compile(r"@[A-Za-z0-9~-][A-Za-z0-9._~-]*")


def purl(kind: str, name: object, version: object, namespace: str | None = None) -> str:
    """The purl of a package; ``ValueError`` names a package name that is not one (a path such as
    ``../../x``, an empty name) or a name or version that is not a string."""
    if not isinstance(name, str) or not (version is None or isinstance(version, str)):
        raise ValueError(f"package name {name!r} and version {version!r} must be strings")
    _check_name(kind, name, namespace, _NAMES.get(kind, _SEGMENT))
    return str(
        PackageURL(type=kind, namespace=namespace, name=name, version=version or None).to_string()
    )


def _check_name(kind: str, name: str, namespace: str | None, names: re.Pattern[str]) -> None:
    scope = _NPM_SCOPE if kind == "npm" else None
    namespace_ok = not namespace or (
        scope.fullmatch(namespace)
        if scope
        else all(_SEGMENT.fullmatch(s) for s in namespace.split("/"))
    )
    if not namespace_ok or not names.fullmatch(name):
        shown = f"{namespace}/{name}" if namespace else name
        raise ValueError(f"{shown!r} is not a valid {kind} package name")


def checked_purl(text: str) -> str:
    """A purl someone else wrote (a scanner report's), parsed and written back; ``ValueError`` for
    a malformed one or one whose name or namespace is path-like, by the checks :func:`purl`
    applies (PyPI names as any safe segment: a scanner need not give the PEP 503 form)."""
    try:
        parsed = PackageURL.from_string(text)
    except ValueError as e:
        raise ValueError(f"{text!r} is not a package URL ({e})") from e
    kind = parsed.type
    names = _SEGMENT if kind == "pypi" else _NAMES.get(kind, _SEGMENT)
    _check_name(kind, parsed.name, parsed.namespace, names)
    return str(parsed.to_string())


def algo_hex(spec: str) -> tuple[str, str] | None:
    """``sha256:HEX`` / ``sha256=HEX`` → (alg, hex); anything else → None."""
    for sep in (":", "="):
        alg, _, value = spec.partition(sep)
        alg = alg.strip().lower().replace("-", "")
        if value and alg in _SRI:
            return _SRI[alg], value.strip().lower()
    return None


def sri_hex(integrity: str) -> tuple[str, str] | None:
    """Subresource-integrity ``sha512-BASE64`` (npm) → (alg, hex)."""
    alg, _, value = integrity.strip().partition("-")
    if alg not in _SRI or not value:
        return None
    try:
        return _SRI[alg], base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


def dependency(
    name: str, version: str | None, purl_text: str, hashes: Iterable[tuple[str, str]] = ()
) -> ResourceDescriptor:
    """A resolved dependency. A single artifact hash becomes ``digest``; several (one per wheel
    or sdist) are kept in ``annotations.hashes`` since no one of them is *the* digest."""
    found = sorted(set(hashes))
    annotations: dict[str, Any] = {}
    digest: dict[str, str] = {}
    if len(found) == 1:
        digest = {found[0][0]: found[0][1]}
    elif found:
        annotations["hashes"] = [f"{a}:{h}" for a, h in found]
    if version:
        annotations["version"] = version
    return ResourceDescriptor(name=name, uri=purl_text, digest=digest, annotations=annotations)
