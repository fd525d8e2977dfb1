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
unambiguously raises :class:`~verify.errors.RuleFailed` with the reason (the rule fails closed).
"""

from __future__ import annotations

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
]

ATTEST_BUILD_TYPE = "https://provenance-ledger.dev/attest/build/v1"  # attest.build.BUILD_TYPE
GITHUB_WORKFLOW_BUILD_TYPES = frozenset(
    {
        "https://actions.github.io/buildtypes/workflow/v1",
        "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
    }
)


class BuildSource(Frozen):
    """``repo``: normalised (no ``git+``, revision, ``.git`` or trailing slash), ``""`` if the
    source names none; ``ref``: that source's ref, ``""`` if it names none; ``where``: the
    ``externalParameters`` key it was read from."""

    _fields = ("repo", "ref", "where")
    repo: str
    ref: str
    where: str

    def __init__(self, repo: str, ref: str, where: str) -> None:
        set_field(self, "repo", repo)
        set_field(self, "ref", ref)
        set_field(self, "where", where)


def repo(uri: str) -> str:
    """``git+https://host/o/r.git@rev`` -> ``https://host/o/r``."""
    uri = uri.removeprefix("git+")
    if "@" in uri.split("://", 1)[-1]:
        uri = uri.rsplit("@", 1)[0]
    return uri.removesuffix(".git").rstrip("/")


def _revision(uri: str) -> str:
    rest = uri.removeprefix("git+").split("://", 1)[-1]
    return rest.rsplit("@", 1)[1] if "@" in rest else ""


def _one(values: set[str], what: str, where: str) -> str:
    values.discard("")
    if len(values) > 1:
        raise RuleFailed(f"externalParameters.{where} names more than one {what}: {sorted(values)}")
    return next(iter(values), "")


def _read(part: Mapping[str, Any], where: str) -> BuildSource:
    """One ``externalParameters`` entry's repository and ref; two that disagree are unclear."""
    uris = [part[k] for k in ("uri", "repository") if isinstance(part.get(k), str)]
    refs = {part["ref"]} if isinstance(part.get("ref"), str) else set()
    refs |= {r for u in uris if (r := _revision(u)).startswith("refs/")}
    found = _one({repo(u) for u in uris}, "repository", where)
    return BuildSource(found, _one(refs, "ref", where), where)


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
