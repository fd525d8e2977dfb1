"""Shared helpers of the dependency parsers: purls, digest maps, reading files with clear errors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

from packageurl import PackageURL

from attest.statement import ResourceDescriptor

_SRI = {"sha256": "sha256", "sha384": "sha384", "sha512": "sha512", "sha1": "sha1"}


def purl(kind: str, name: str, version: str | None, namespace: str | None = None) -> str:
    return str(
        PackageURL(type=kind, namespace=namespace, name=name, version=version or None).to_string()
    )


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
