"""Python dependencies: requirements.txt (pinned, with hashes), poetry.lock, uv.lock,
Pipfile.lock, and the running interpreter's installed distributions."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from attest._internal.files import read_json, read_text, read_toml
from attest.collect.deps._common import algo_hex, dependency, purl
from attest.errors import CollectorError
from attest.statement import ResourceDescriptor

__all__ = [
    "parse_environment",
    "parse_pipfile_lock",
    "parse_poetry_lock",
    "parse_requirements",
    "parse_uv_lock",
]

_HASH_OPT = re.compile(r"--hash[=\s]+(\S+)")


def _pypi(name: str, version: str | None, hashes: list[tuple[str, str]]) -> ResourceDescriptor:
    canonical = canonicalize_name(name)
    return dependency(canonical, version, purl("pypi", canonical, version), hashes)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            out.append((start, buf.strip()))
        buf = ""
    if buf.strip():
        out.append((start, buf.strip()))
    return out


def parse_requirements(path: Path) -> list[ResourceDescriptor]:
    """``name==version [--hash=alg:hex …]`` lines. Options (``-r``, ``--index-url``) are skipped;
    an unpinned requirement is an error, since it names no exact version. A direct reference
    (``name @ URL``, PEP 508) names no release of an index, so it gets no purl: it is recorded as
    what it is, the URL as ``uri`` (and its ``--hash`` as the digest)."""
    out = []
    for lineno, line in _logical_lines(read_text(path)):
        if line.startswith("-"):
            continue
        spec = _HASH_OPT.sub("", line).strip()
        try:
            req = Requirement(spec)
        except InvalidRequirement as e:
            # packaging's message is three lines (message, the line, a caret): keep the first
            reason = str(e).splitlines()[0] if str(e) else "unreadable"
            raise CollectorError(f"{path}:{lineno}: not a requirement: {reason}") from e
        pins = [s.version for s in req.specifier if s.operator in ("==", "===")]
        hashes = [h for h in (algo_hex(v) for v in _HASH_OPT.findall(line)) if h]
        if req.url:
            out.append(dependency(canonicalize_name(req.name), None, req.url, hashes))
            continue
        if not pins:
            raise CollectorError(
                f"{path}:{lineno}: {req.name} is not pinned (use name==version, e.g. pip-compile)"
            )
        out.append(_pypi(req.name, pins[0], hashes))
    return out


def parse_poetry_lock(path: Path) -> list[ResourceDescriptor]:
    doc = read_toml(path)
    out = []
    for pkg in doc.get("package", []):
        files = pkg.get("files") or doc.get("metadata", {}).get("files", {}).get(pkg["name"], [])
        hashes = [h for h in (algo_hex(f.get("hash", "")) for f in files) if h]
        out.append(_pypi(pkg["name"], pkg.get("version"), hashes))
    return out


def parse_uv_lock(path: Path) -> list[ResourceDescriptor]:
    doc = read_toml(path)
    out = []
    for pkg in doc.get("package", []):
        source = pkg.get("source", {})
        if "editable" in source or "virtual" in source:
            continue  # the project itself, not a dependency
        artifacts = [pkg["sdist"]] if "sdist" in pkg else []
        artifacts += pkg.get("wheels", [])
        hashes = [h for h in (algo_hex(a.get("hash", "")) for a in artifacts) if h]
        out.append(_pypi(pkg["name"], pkg.get("version"), hashes))
    return out


def parse_pipfile_lock(path: Path) -> list[ResourceDescriptor]:
    doc = read_json(path)
    if not isinstance(doc, dict) or "_meta" not in doc:
        raise CollectorError(f"{path} is not a Pipfile.lock (no _meta)")
    out = []
    for section in ("default", "develop"):
        for name, info in sorted((doc.get(section) or {}).items()):
            version = str(info.get("version", "")).lstrip("=") or None
            hashes = [h for h in (algo_hex(x) for x in info.get("hashes", [])) if h]
            out.append(_pypi(name, version, hashes))
    return out


def parse_environment() -> list[ResourceDescriptor]:
    """The distributions installed in the running interpreter, as ``pkg:pypi`` purls."""
    seen: dict[str, ResourceDescriptor] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and canonicalize_name(name) not in seen:
            seen[canonicalize_name(name)] = _pypi(name, dist.version, [])
    return [seen[k] for k in sorted(seen)]
