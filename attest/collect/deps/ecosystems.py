"""npm package-lock.json (v2/v3), Go go.sum and Rust Cargo.lock."""

from __future__ import annotations

from pathlib import Path

from attest._internal.files import read_json, read_text, read_toml
from attest.collect.deps._common import dependency, purl, sri_hex
from attest.errors import CollectorError
from attest.statement import ResourceDescriptor

__all__ = ["parse_cargo_lock", "parse_go_sum", "parse_package_lock"]


def parse_package_lock(path: Path) -> list[ResourceDescriptor]:
    """lockfileVersion 2 and 3: the ``packages`` map; the root entry ``""`` is the project."""
    doc = read_json(path)
    if not isinstance(doc, dict) or "packages" not in doc:
        version = doc.get("lockfileVersion") if isinstance(doc, dict) else None
        raise CollectorError(
            f"{path}: lockfileVersion {version} has no 'packages' map (need npm 7+, v2 or v3)"
        )
    out = []
    for location, info in sorted(doc["packages"].items()):
        if not location or info.get("link"):
            continue
        name = info.get("name") or location.rsplit("node_modules/", 1)[-1]
        namespace, _, bare = name.rpartition("/")
        version = info.get("version")
        integrity = sri_hex(info.get("integrity", ""))
        out.append(
            dependency(
                name,
                version,
                purl("npm", bare, version, namespace or None),
                [integrity] if integrity else [],
            )
        )
    return out


def parse_go_sum(path: Path) -> list[ResourceDescriptor]:
    """``module version h1:HASH`` lines; the ``/go.mod``-only lines add nothing new. The h1 hash is
    Go's dirhash of the module zip, recorded as the ``dirHash`` digest."""
    out: dict[tuple[str, str], ResourceDescriptor] = {}
    for n, line in enumerate(read_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or not parts[2].startswith("h1:"):
            raise CollectorError(f"{path}:{n}: not a go.sum line")
        module, version, h1 = parts
        if version.endswith("/go.mod"):
            continue
        namespace, _, name = module.rpartition("/")
        rd = ResourceDescriptor(
            name=module,
            uri=purl("golang", name, version, namespace or None),
            digest={"dirHash": h1},
            annotations={"version": version},
        )
        out[(module, version)] = rd
    return list(out.values())


def parse_cargo_lock(path: Path) -> list[ResourceDescriptor]:
    doc = read_toml(path)
    out = []
    for pkg in doc.get("package", []):
        if "source" not in pkg:
            continue  # a workspace member, not a dependency
        checksum = pkg.get("checksum")
        out.append(
            dependency(
                pkg["name"],
                pkg.get("version"),
                purl("cargo", pkg["name"], pkg.get("version")),
                [("sha256", checksum)] if checksum else [],
            )
        )
    return out
