"""Git facts of the checkout being built: commit, branch/tags, author and committer, remote URL,
and whether the tree is dirty. Credentials embedded in a remote URL are removed."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from attest.errors import CollectorError

__all__ = ["GitInfo", "Person", "collect_git", "scrub_url"]


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    time: str


@dataclass(frozen=True)
class GitInfo:
    commit: str
    branch: str
    tags: tuple[str, ...]
    author: Person
    committer: Person
    remote_url: str
    dirty: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "commit": self.commit,
            "branch": self.branch,
            "tags": list(self.tags),
            "author": vars(self.author),
            "committer": vars(self.committer),
            "remoteUrl": self.remote_url,
            "dirty": self.dirty,
        }


def scrub_url(url: str) -> str:
    """Drop ``user:token@`` from an HTTP(S) remote URL; SSH-style URLs are returned as they are."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


def _run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError as e:
        raise CollectorError("git is not installed") from e


def _git(repo: Path, *args: str, check: bool = True) -> str:
    done = _run(repo, *args)
    if check and done.returncode != 0:
        raise CollectorError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip() if done.returncode == 0 else ""


def collect_git(repo: Path) -> GitInfo | None:
    """Facts about ``repo``'s HEAD, or ``None`` when it is not inside a git work tree."""
    probe = _run(repo, "rev-parse", "--is-inside-work-tree")
    if "dubious ownership" in probe.stderr:
        raise CollectorError(
            f"git refuses to read {repo} (owned by another user): run "
            f"`git config --global --add safe.directory {repo.resolve()}` first"
        )
    if probe.returncode != 0 or probe.stdout.strip() != "true":
        return None
    commit = _git(repo, "rev-parse", "HEAD", check=False)
    if not commit:
        return None  # a repository without commits yet
    fields = _git(repo, "log", "-1", "--format=%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI").split("\0")
    if len(fields) != 6:
        raise CollectorError("git log returned an unexpected format")
    tags = _git(repo, "tag", "--points-at", "HEAD", check=False)
    return GitInfo(
        commit=commit,
        branch=_git(repo, "symbolic-ref", "-q", "--short", "HEAD", check=False),
        tags=tuple(sorted(tags.split())) if tags else (),
        author=Person(*fields[:3]),
        committer=Person(*fields[3:]),
        remote_url=scrub_url(_git(repo, "remote", "get-url", "origin", check=False)),
        dirty=bool(_git(repo, "status", "--porcelain", "--untracked-files=no", check=False)),
    )
