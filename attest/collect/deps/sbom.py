"""CycloneDX and SPDX JSON SBOMs: every component/package with a purl, and its hashes."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from attest._internal.files import read_json
from attest.collect.deps._common import algo_hex, dependency
from attest.errors import CollectorError
from attest.statement import ResourceDescriptor

__all__ = ["parse_cyclonedx", "parse_spdx"]


def _hashes(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [h for h in (algo_hex(f"{a}:{v}") for a, v in pairs) if h]


def _components(items: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for c in items:
        yield c
        yield from _components(c.get("components", []))


def _canonical_purl(text: str, source: Path) -> str:
    try:
        return str(PackageURL.from_string(text).to_string())
    except ValueError as e:
        raise CollectorError(f"{source}: bad purl {text!r}: {e}") from e


def parse_cyclonedx(path: Path) -> list[ResourceDescriptor]:
    doc = read_json(path)
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise CollectorError(f"{path} is not a CycloneDX JSON SBOM (bomFormat)")
    out = []
    for c in _components(doc.get("components", [])):
        if not c.get("purl"):
            continue
        hashes = _hashes((h.get("alg", ""), h.get("content", "")) for h in c.get("hashes", []))
        out.append(
            dependency(c["name"], c.get("version"), _canonical_purl(c["purl"], path), hashes)
        )
    return out


def parse_spdx(path: Path) -> list[ResourceDescriptor]:
    doc = read_json(path)
    if not isinstance(doc, dict) or not str(doc.get("spdxVersion", "")).startswith("SPDX-"):
        raise CollectorError(f"{path} is not an SPDX JSON document (spdxVersion)")
    described = set(doc.get("documentDescribes", []))
    out = []
    for p in doc.get("packages", []):
        if p.get("SPDXID") in described:
            continue  # the thing the SBOM describes, not one of its dependencies
        purls = [
            r["referenceLocator"]
            for r in p.get("externalRefs", [])
            if r.get("referenceType") == "purl"
        ]
        if not purls:
            continue
        hashes = _hashes(
            (c.get("algorithm", ""), c.get("checksumValue", "")) for c in p.get("checksums", [])
        )
        out.append(
            dependency(p["name"], p.get("versionInfo"), _canonical_purl(purls[0], path), hashes)
        )
    return out
