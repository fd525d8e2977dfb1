"""Subjects: files, globs, directories (one subject per file) and digest strings."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from attest.errors import CollectorError
from attest.statement import ResourceDescriptor

__all__ = ["file_digest", "parse_digest", "resolve_subjects"]

_CHUNK = 1 << 20
_DIGEST = re.compile(r"(?:(?P<name>[^@\s]+)@)?(?P<alg>sha256|sha384|sha512):(?P<hex>[0-9a-fA-F]+)")
_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128}
_GLOB_CHARS = frozenset("*?[")
# a PEM private key (PKCS#8, encrypted or not, or a traditional RSA/EC one) in a file's first bytes
_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_HEAD = 4096


def file_digest(path: Path) -> str:
    """Hex SHA-256 of a regular file (through a symlink to one), streamed. Anything else — a FIFO,
    a device, a socket, a directory — is refused before a byte is read: reading it could block
    forever or never end. The check is on the open file, so a swap after it changes nothing.
    A file that holds a PEM private key in its first bytes (the signing key itself, reached by
    ``../key`` or a symlink, included: keys are PEM) is refused too: its digest would be signed
    and published, and a digest of a low-entropy or known-format secret is an oracle for it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise CollectorError(f"cannot read {path}: {e.strerror}") from e
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise CollectorError(f"{path} is not a regular file; only files can be subjects")
        if _PRIVATE_KEY.search(os.pread(f.fileno(), _HEAD, 0)):
            raise CollectorError(f"{path} is a private key; a key is never hashed as a subject")
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

    def unreadable(e: OSError) -> None:  # never fewer subjects than the directory holds
        raise CollectorError(f"{e.filename}: cannot be listed ({e.strerror})")

    for root, dirs, files in os.walk(directory, onerror=unreadable):
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
    path = base / spec  # an absolute spec stays itself
    if _GLOB_CHARS & set(spec) and not (path.exists() or path.is_symlink()):
        files = _glob(spec, base)  # a name that exists is that file, never a pattern
        if not files:
            raise CollectorError(f"no file matches {spec!r}")
        return files
    if path.is_dir():
        return list(_walk(path))
    if not path.exists() and not path.is_symlink():
        raise CollectorError(f"subject {spec} does not exist")
    return [path]


def _name(path: Path, base: Path) -> str:
    """The name a subject is recorded under: its path relative to ``base`` as the user spelled
    it — ``./`` and doubled slashes dropped, ``..`` kept. A symlink is recorded under its own name,
    never its target's; and ``..`` is never collapsed on the names alone, since ``x/../a.txt``
    through a symlinked directory ``x`` is another file than ``a.txt``. A path outside ``base``
    (an absolute spec) keeps the absolute spelling the user gave."""
    given, root = PurePosixPath(path.as_posix()), PurePosixPath(base.as_posix())
    return (given.relative_to(root) if given.is_relative_to(root) else given).as_posix()


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
