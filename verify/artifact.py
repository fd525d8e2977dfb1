"""What is being deployed: a file, a directory (every file in it), or a digest (``sha256:HEX``,
``sha512:HEX``, an OCI reference ``name@sha256:HEX``) — each becomes a named digest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from verify.errors import UsageError

__all__ = ["Artifact", "resolve_artifacts"]


@dataclass(frozen=True)
class Artifact:
    """One thing to deploy: a display name and its digests (``{"sha256": HEX}``)."""

    name: str
    digest: dict[str, str]

    def digest_keys(self) -> list[str]:
        """The digests as ``ALG:HEX`` strings (what the evidence API looks up)."""
        return [f"{alg}:{value}" for alg, value in sorted(self.digest.items())]

    def named_by(self, digests: list[dict[str, str]]) -> bool:
        """Whether one of ``digests`` (a statement's subjects) names this artifact."""
        return any(d.get(alg) == v for d in digests for alg, v in self.digest.items())


def _no_symlinked_directory(root: Path) -> None:
    """Refuse a directory artifact holding a symlink to a directory: walking skips it, so the
    files under it would be deployed without being verified."""
    import os

    if not root.is_dir():
        return
    for top, dirs, _ in os.walk(root):
        for d in dirs:
            if os.path.islink(os.path.join(top, d)):
                link = Path(top, d)
                raise UsageError(
                    f"{link} is a symlink to a directory: its files would not be verified; "
                    "give the directory it points to, or copy it in"
                )


def resolve_artifacts(spec: str) -> list[Artifact]:
    """The artifacts ``spec`` names; :class:`UsageError` for a missing path or a bad digest."""
    from attest.collect.subjects import parse_digest, resolve_subjects
    from attest.errors import Error as AttestError

    try:
        digest = parse_digest(spec)
        if digest is None:
            if not Path(spec).exists():
                raise UsageError(f"{spec}: no such file or directory, and not a digest")
            _no_symlinked_directory(Path(spec))
            found = resolve_subjects([spec])
        else:
            found = [digest]
    except AttestError as e:
        raise UsageError(str(e)) from e
    if not found:
        raise UsageError(f"{spec}: no files to verify")
    return [Artifact(d.name or spec, dict(d.digest)) for d in found]
