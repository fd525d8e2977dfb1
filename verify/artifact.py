"""What is being deployed: a file, a directory (every file in it), or a digest (``sha256:HEX``,
``sha512:HEX``, an OCI reference ``name@sha256:HEX``) — each becomes a named digest."""

from __future__ import annotations

from pathlib import Path

from attest._internal.frozen import Frozen, set_field
from verify.errors import UsageError

__all__ = ["Artifact", "resolve_artifacts"]


class Artifact(Frozen):
    """One thing to deploy: a display name and its digests (``{"sha256": HEX}``)."""

    _fields = ("name", "digest")
    name: str
    digest: dict[str, str]

    def __init__(self, name: str, digest: dict[str, str]) -> None:
        set_field(self, "name", name)
        set_field(self, "digest", digest)

    def digest_keys(self) -> list[str]:
        """The digests as ``ALG:HEX`` strings (what the evidence API looks up)."""
        return [f"{alg}:{value}" for alg, value in sorted(self.digest.items())]

    def named_by(self, digests: list[dict[str, str]]) -> bool:
        """Whether one of ``digests`` (a statement's subjects) names this artifact: algorithm
        names and hex compared case-insensitively, as the audit index reads them (an upper-case
        subject is the same artifact, and a scan naming it so must count)."""
        mine = {(alg.lower(), v.lower()) for alg, v in self.digest.items()}
        return any(
            (str(alg).lower(), v.lower()) in mine
            for d in digests
            for alg, v in d.items()
            if isinstance(v, str)
        )


def _every_file(root: Path) -> list[Path]:
    """Every file under ``root``, hidden ones and ``.git`` included — what is deployed is what
    is verified. A symlink to a directory is refused: walking cannot follow it safely, and its
    files would be deployed without being verified. So is a symlink to a file outside the
    directory (or a dangling one): the bytes verified would be the target's on this machine, and
    what ships is a link to whatever is there on the next."""
    import os

    inside = root.resolve()

    def unreadable(e: OSError) -> None:
        raise UsageError(
            f"{e.filename}: cannot be listed ({e.strerror}): its files would ship unverified"
        )

    out = []
    for top, dirs, files in os.walk(root, onerror=unreadable):
        for d in dirs:
            if os.path.islink(os.path.join(top, d)):
                link = Path(top, d)
                raise UsageError(
                    f"{link} is a symlink to a directory: its files would not be verified; "
                    "give the directory it points to, or copy it in"
                )
        dirs.sort()
        for f in sorted(files):
            path = Path(top, f)
            if path.is_symlink() and not path.resolve().is_relative_to(inside):
                raise UsageError(
                    f"{path} is a symlink to {os.readlink(path)}, outside {root}: the link "
                    "would ship, not the file verified; copy the file in"
                )
            out.append(path)
    return out


def resolve_artifacts(spec: str) -> list[Artifact]:
    """The artifacts ``spec`` names, taken literally — a path is never a glob pattern (a file
    named ``app[1].zip`` is that file); :class:`UsageError` for a missing path, an unreadable or
    non-regular file, or a bad digest."""
    from attest.collect.subjects import file_digest, parse_digest
    from attest.errors import Error as AttestError

    try:
        path = Path(spec)
        digest = None if spec.startswith(("./", "/")) else parse_digest(spec)  # ./X: a path
        if digest is not None:
            if path.exists() or path.is_symlink():  # judged by its name, its bytes unread
                raise UsageError(
                    f"{spec}: both a file and a digest; give ./{spec} for the file, or run "
                    "where no file has that name for the digest"
                )
            return [Artifact(digest.name or spec, dict(digest.digest))]
        if not path.exists():
            raise UsageError(f"{spec}: no such file or directory, and not a digest")
        files = _every_file(path) if path.is_dir() else [path]
        found = [Artifact(f.as_posix(), {"sha256": file_digest(f)}) for f in files]
    except AttestError as e:
        raise UsageError(str(e)) from e
    if not found:
        raise UsageError(f"{spec}: no files to verify")
    return found
