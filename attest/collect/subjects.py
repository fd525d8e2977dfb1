"""Subjects: files, globs, directories (one subject per file) and digest strings."""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from attest.errors import CollectorError
from attest.statement import ResourceDescriptor

__all__ = ["file_digest", "parse_digest", "resolve_subjects"]

_CHUNK = 1 << 20
_DIGEST = re.compile(
    r"^(?:(?P<name>[^@\s]+)@)?(?P<alg>sha256|sha384|sha512):(?P<hex>[0-9a-fA-F]+)$"
)
_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128}
_GLOB_CHARS = frozenset("*?[")


def file_digest(path: Path) -> str:
    """Hex SHA-256 of a file, streamed."""
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
    except OSError as e:
        raise CollectorError(f"cannot read {path}: {e.strerror}") from e
    return h.hexdigest()


def parse_digest(spec: str) -> ResourceDescriptor | None:
    """``sha256:HEX`` or an OCI reference ``NAME@sha256:HEX`` → a subject; else ``None``."""
    m = _DIGEST.match(spec.strip())
    if m is None:
        return None
    alg, hexdigest = m["alg"], m["hex"].lower()
    if len(hexdigest) != _HEX_LEN[alg]:
        raise CollectorError(f"{spec}: a {alg} digest has {_HEX_LEN[alg]} hex characters")
    return ResourceDescriptor(name=m["name"] or f"{alg}:{hexdigest}", digest={alg: hexdigest})


def _walk(directory: Path) -> Iterable[Path]:
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            yield Path(root) / name


def _expand(spec: str, base: Path) -> list[Path]:
    if _GLOB_CHARS & set(spec):
        pattern = spec if os.path.isabs(spec) else str(base / spec)
        found = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
        files = [p for p in found if p.is_file()]
        if not files:
            raise CollectorError(f"no file matches {spec!r}")
        return files
    path = Path(spec) if os.path.isabs(spec) else base / spec
    if path.is_dir():
        return list(_walk(path))
    if not path.exists():
        raise CollectorError(f"subject {spec} does not exist")
    return [path]


def _name(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def resolve_subjects(specs: Sequence[str], base: Path | None = None) -> list[ResourceDescriptor]:
    """One subject per file named, globbed or found under a directory; digests taken as given.
    Duplicate names keep the first; the order is stable (sorted within each spec)."""
    base = base or Path.cwd()
    out: dict[str, ResourceDescriptor] = {}
    for spec in specs:
        direct = parse_digest(spec)
        if direct is not None:
            out.setdefault(direct.name, direct)
            continue
        for path in _expand(spec, base):
            name = _name(path, base)
            if name not in out:
                out[name] = ResourceDescriptor(name=name, digest={"sha256": file_digest(path)})
    if not out:
        raise CollectorError("no subjects: give at least one file, glob, directory or digest")
    return list(out.values())
