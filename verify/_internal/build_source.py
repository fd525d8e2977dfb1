"""The repository a SLSA v1 provenance says was built, and the ref of that same source.

SLSA v1 leaves ``externalParameters`` to the build type, so where the source is depends on it:

1. GitHub Actions workflow build types (``actions.github.io``'s and the slsa-github-generator's):
   ``externalParameters.workflow.repository`` and ``.ref``;
2. attest's own build type (:data:`attest.build.BUILD_TYPE`): ``externalParameters.source``
   (``uri`` ``git+REPO@COMMIT``, ``ref``) — what :func:`attest.build.provenance_statement`
   writes; its ``workflow`` (GitHub's ``GITHUB_WORKFLOW_REF``) is not the source;
3. any other build type: ``externalParameters.source`` or ``.workflow``, whichever names a
   repository; both naming one must agree (repository and ref), else the source is unclear.

``resolvedDependencies`` are never the source: a requirement ``helper @ git+https://…/app@main``
is a dependency of the build, not the repository that was built. A source that cannot be told
unambiguously raises :class:`~verify.errors.RuleFailed` with the reason (the rule fails closed),
and so does a repository that cannot be read as a host and a path (:func:`repo`).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from attest._internal.frozen import Frozen, set_field
from attest.predicates import SLSAProvenance
from verify.errors import RuleFailed

__all__ = [
    "ATTEST_BUILD_TYPE",
    "GITHUB_WORKFLOW_BUILD_TYPES",
    "BuildSource",
    "build_source",
    "repo",
    "source_uri",
]

ATTEST_BUILD_TYPE = "https://provenance-ledger.dev/attest/build/v1"  # attest.build.BUILD_TYPE
GITHUB_WORKFLOW_BUILD_TYPES = frozenset(
    {
        "https://actions.github.io/buildtypes/workflow/v1",
        "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
    }
)


class BuildSource(Frozen):
    """``repo``: normalised by :func:`repo` (``https://HOST/PATH``), ``""`` if the source names
    none; ``ref``: that source's ref, ``""`` if it names none; ``where``: the
    ``externalParameters`` key it was read from."""

    _fields = ("repo", "ref", "where")
    repo: str
    ref: str
    where: str

    def __init__(self, repo: str, ref: str, where: str) -> None:
        set_field(self, "repo", repo)
        set_field(self, "ref", ref)
        set_field(self, "where", where)


_SCP = re.compile(r"(?:[^@/:]+@)?(?P<host>[^@/:]+):(?P<path>.+)")
_SCHEMES = frozenset({"https", "http", "ssh", "git"})


def _unreadable(value: str, why: str) -> RuleFailed:
    return RuleFailed(f"{value!r} cannot be read as a repository (host and path): {why}")


# a port that says nothing: the scheme's own (so https://github.com:443/x is https://github.com/x)
_DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}


def _host_path(value: str, revision: bool) -> tuple[str, str, str]:
    """``value``'s host (lower-cased, with its port if given), raw path and revision (``""``
    unless ``revision``: then what follows the last ``@`` of the path — never the ``user@``
    of the host)."""
    if any(c.isspace() or not c.isprintable() or c == "\\" for c in value):
        raise _unreadable(value, "it holds a space, a control character or a backslash")
    if "://" in value:
        try:
            parts = urllib.parse.urlsplit(value)
            port = parts.port
        except ValueError as e:
            raise _unreadable(value, str(e)) from e
        if parts.scheme.lower() not in _SCHEMES:
            raise _unreadable(value, f"scheme {parts.scheme!r} is not one of {sorted(_SCHEMES)}")
        if "?" in value or "#" in value:
            raise _unreadable(value, "it has a query or a fragment")
        host, path = (parts.hostname or "").rstrip("."), parts.path
        if ":" in host:  # an IPv6 literal keeps its brackets, so a port cannot merge into it
            host = f"[{host}]"
        if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
            host += f":{port}"
    else:  # scp-like, as git reads it: [user@]host:path, no slash before the colon
        m = _SCP.fullmatch(value)
        if m is None:
            raise _unreadable(value, "neither a URL nor user@host:path")
        host, path = m["host"].lower().rstrip("."), m["path"]
        if "[" in host or "]" in host:
            raise _unreadable(
                value, "an IPv6 host in user@host:path form (write ssh://[HOST]/PATH)"
            )
    rev = ""
    if revision and "@" in path:
        path, rev = path.rsplit("@", 1)
    return host, path, rev


def _normal(value: str, revision: bool) -> tuple[str, str]:
    """``https://HOST/PATH`` (the comparable form) and the revision; :class:`RuleFailed` for a
    value with no host and path."""
    host, path, rev = _host_path(value, revision)
    path = path.rstrip("/").removesuffix(".git").rstrip("/").lstrip("/")
    segments = path.split("/")
    if not host or not path or any(s in ("", ".", "..") or "@" in s for s in segments):
        raise _unreadable(value, "no host, no path, or an empty, '.', '..' or '@' segment")
    return f"https://{host}/{path}", rev


def repo(value: str) -> str:
    """A repository as a policy's ``sourceRepo`` or a ``repository`` field writes it (no
    revision), as ``https://HOST/PATH``: ``git+`` and the userinfo dropped, the host
    lower-cased, ``ssh://``, ``https://`` and scp-like (``git@host:owner/repo``) spellings read
    alike, ``.git`` and slashes at the end removed (slashes, then ``.git``, then slashes); the
    path's case is kept. :class:`RuleFailed` for a value with no host and path."""
    return _normal(value.removeprefix("git+"), revision=False)[0]


def source_uri(value: str) -> tuple[str, str]:
    """A source ``uri`` — ``git+REPO@REVISION`` (SLSA, attest), the one form that carries a
    revision — as :func:`repo` and the revision (``""`` if none, or not a ``git+`` URI)."""
    if not value.startswith("git+"):
        return repo(value), ""
    return _normal(value.removeprefix("git+"), revision=True)


def _one(values: set[str], what: str, where: str) -> str:
    values.discard("")
    if len(values) > 1:
        raise RuleFailed(f"externalParameters.{where} names more than one {what}: {sorted(values)}")
    return next(iter(values), "")


def _read(part: Mapping[str, Any], where: str) -> BuildSource:
    """One ``externalParameters`` entry's repository and ref; two that disagree are unclear, and
    a value that names no host and path fails closed."""
    uri, repository = part.get("uri"), part.get("repository")
    repos: set[str] = set()
    refs = {part["ref"]} if isinstance(part.get("ref"), str) else set()
    if isinstance(uri, str) and uri:
        found, rev = source_uri(uri)
        repos.add(found)
        refs |= {rev} if rev.startswith("refs/") else set()
    if isinstance(repository, str) and repository:
        repos.add(repo(repository))
    return BuildSource(_one(repos, "repository", where), _one(refs, "ref", where), where)


def _part(ext: Mapping[str, Any], key: str) -> BuildSource | None:
    part = ext.get(key)
    return _read(part, key) if isinstance(part, Mapping) else None


def build_source(p: SLSAProvenance) -> BuildSource:
    """The source ``p``'s build type defines (module docstring); raises
    :class:`~verify.errors.RuleFailed` when there is none or it is unclear."""
    ext = p.external_parameters
    if p.build_type in GITHUB_WORKFLOW_BUILD_TYPES:
        keys: tuple[str, ...] = ("workflow",)
    elif p.build_type == ATTEST_BUILD_TYPE:
        keys = ("source",)
    else:
        keys = ("source", "workflow")
    found = [s for k in keys if (s := _part(ext, k)) is not None and s.repo]
    if not found:
        where = " or ".join(f"externalParameters.{k}" for k in keys)
        raise RuleFailed(f"no source repository in {where} (build type {p.build_type!r})")
    if len({(s.repo, s.ref) for s in found}) > 1:
        named = "; ".join(f"{s.where}: {s.repo} {s.ref or '(no ref)'}" for s in found)
        raise RuleFailed(
            f"build type {p.build_type!r} does not say which is the source, and {named} differ"
        )
    return found[0]
