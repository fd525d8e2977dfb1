"""Subjects: files, globs, directories (one subject per file) and digest strings."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from attest.errors import CollectorError
from attest.statement import ResourceDescriptor

__all__ = ["file_digest", "parse_digest", "resolve_subjects"]

_CHUNK = 1 << 20
_DIGEST = re.compile(r"(?:(?P<name>[^@\s]+)@)?(?P<alg>sha256|sha384|sha512):(?P<hex>[0-9a-fA-F]+)")
_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128}
_GLOB_CHARS = frozenset("*?[")


def file_digest(path: Path) -> str:
    """Hex SHA-256 of a regular file (through a symlink to one), streamed. Anything else — a FIFO,
    a device, a socket, a directory — is refused before a byte is read: reading it could block
    forever or never end. The check is on the open file, so a swap after it changes nothing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise CollectorError(f"cannot read {path}: {e.strerror}") from e
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise CollectorError(f"{path} is not a regular file; only files can be subjects")
        try:
            return hashlib.file_digest(f, "sha256").hexdigest()
        except OSError as e:
            raise CollectorError(f"cannot read {path}: {e.strerror}") from e


def parse_digest(spec: str) -> ResourceDescriptor | None:
    """``sha256:HEX`` or an OCI reference ``NAME@sha256:HEX`` → a subject; else ``None``."""
    m = _DIGEST.fullmatch(spec.strip())
    if m is None:
        return None
    alg, hexdigest = m["alg"], m["hex"].lower()
    if len(hexdigest) != _HEX_LEN[alg]:
        raise CollectorError(f"{spec}: a {alg} digest has {_HEX_LEN[alg]} hex characters")
    return ResourceDescriptor(name=m["name"] or f"{alg}:{hexdigest}", digest={alg: hexdigest})


def _walk(directory: Path) -> Iterable[Path]:
    """Every file under ``directory``; symlinked directories are not entered (no loops)."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            yield Path(root) / name


def _hidden(parts: Sequence[str]) -> bool:
    return any(p.startswith(".") and p not in (".", "..") for p in parts)


def _glob(spec: str, base: Path) -> list[Path]:
    """``pathlib`` globbing, whose ``**`` never follows a symlinked directory (a link back up the
    tree cannot make it loop), with ``glob.glob``'s manners: names starting with a dot match only a
    pattern that spells a dot, and a trailing ``**`` means every file below."""
    root, pattern = base, spec
    if os.path.isabs(spec):
        root = Path(Path(spec).anchor)
        pattern = Path(spec).relative_to(root).as_posix()
    if pattern == "**" or pattern.endswith("/**"):
        pattern += "/*"
    dots = _hidden(Path(pattern).parts)
    found = (p for p in root.glob(pattern) if dots or not _hidden(p.relative_to(root).parts))
    return sorted(p for p in found if not p.is_dir())


def _expand(spec: str, base: Path) -> list[Path]:
    if not spec.strip():
        raise CollectorError(
            "an empty subject names nothing: give a file, glob, directory or digest"
        )
    if _GLOB_CHARS & set(spec):
        files = _glob(spec, base)
        if not files:
            raise CollectorError(f"no file matches {spec!r}")
        return files
    path = base / spec  # an absolute spec stays itself
    if path.is_dir():
        return list(_walk(path))
    if not path.exists() and not path.is_symlink():
        raise CollectorError(f"subject {spec} does not exist")
    return [path]


def _name(path: Path, base: Path, spec: str) -> str:
    """The name a subject is recorded under: its path relative to ``base``, worked out on the
    names alone — a symlink is recorded under its own name, never its target's. An absolute
    ``spec`` outside ``base`` keeps the absolute spelling the user gave."""
    normal = os.path.normpath(path)
    relative = os.path.relpath(normal, os.path.normpath(base))
    outside = relative == os.pardir or relative.startswith(os.pardir + os.sep)
    return Path(normal if outside and os.path.isabs(spec) else relative).as_posix()


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
            name = _name(path, base, spec)
            if name not in out:
                out[name] = ResourceDescriptor(name=name, digest={"sha256": file_digest(path)})
    if not out:
        raise CollectorError("no subjects: give at least one file, glob, directory or digest")
    return list(out.values())
