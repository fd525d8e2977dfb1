"""Statement builders: collected facts in, an in-toto Statement out. Pure: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from attest.collect.ci import CIContext
from attest.collect.docker import BaseImage
from attest.collect.git import GitInfo
from attest.predicates import Builder, BuildMetadata, Link, SLSAProvenance, TestResult
from attest.statement import ResourceDescriptor, Statement

__all__ = ["BUILD_TYPE", "link_statement", "provenance_statement", "statement"]

BUILD_TYPE = "https://provenance-ledger.dev/attest/build/v1"


def statement(
    subjects: Sequence[ResourceDescriptor], predicate_type: str, predicate: Mapping[str, Any]
) -> Statement:
    return Statement(tuple(subjects), predicate_type, predicate)


def _source(git: GitInfo | None, ci: CIContext) -> ResourceDescriptor | None:
    commit = (git.commit if git else "") or ci.commit
    repo = (git.remote_url if git else "") or ci.repository
    if not commit:
        return None
    uri = f"git+{repo}@{commit}" if repo else ""
    return ResourceDescriptor(name="source", uri=uri, digest={"gitCommit": commit})


def provenance_statement(
    *,
    subjects: Sequence[ResourceDescriptor],
    ci: CIContext,
    git: GitInfo | None,
    dependencies: Sequence[ResourceDescriptor] = (),
    base_images: Sequence[BaseImage] = (),
    started_on: datetime | None,
    finished_on: datetime,
    parameters: Mapping[str, str] | None = None,
    build_type: str = BUILD_TYPE,
) -> Statement:
    """SLSA Provenance v1: source, CI run, people, times, dependencies and base images."""
    source = _source(git, ci)
    external: dict[str, Any] = {"ci": ci.provider, **dict(ci.external)}
    if source is not None:
        src: dict[str, Any] = {"uri": source.uri or "", "digest": dict(source.digest)}
        ref = ci.ref or (f"refs/heads/{git.branch}" if git and git.branch else "")
        if ref:
            src["ref"] = ref
        if git and git.tags:
            src["tags"] = list(git.tags)
        external["source"] = src
    if parameters:
        external["parameters"] = dict(parameters)
    internal: dict[str, Any] = dict(ci.internal)
    if git is not None:
        internal["git"] = {
            "author": vars(git.author),
            "committer": vars(git.committer),
            "branch": git.branch,
            "dirty": git.dirty,
        }
    resolved = [source] if source is not None else []
    resolved += [b.descriptor for b in base_images]
    resolved += list(dependencies)
    predicate = SLSAProvenance(
        build_type=build_type,
        external_parameters=external,
        internal_parameters=internal,
        resolved_dependencies=tuple(resolved),
        builder=Builder(id=ci.builder_id),
        metadata=BuildMetadata(
            invocation_id=ci.invocation_id, started_on=started_on, finished_on=finished_on
        ),
    )
    return statement(subjects, SLSAProvenance.PREDICATE_TYPE, predicate.to_dict())


def link_statement(
    *,
    step: str,
    command: Sequence[str],
    materials: Sequence[ResourceDescriptor],
    products: Sequence[ResourceDescriptor],
    byproducts: Mapping[str, Any],
    environment: Mapping[str, Any],
) -> Statement:
    """An in-toto Link v0.3 statement; products are the subjects. A step with no products
    still needs a subject, so it names its command digest instead."""
    link = Link(
        name=step,
        command=tuple(command),
        materials=tuple(materials),
        byproducts=byproducts,
        environment=environment,
    )
    subjects = list(products)
    if not subjects:
        digest = byproducts.get("commandDigest", {})
        subjects = [ResourceDescriptor(name=f"step:{step}", digest=digest)]
    return statement(subjects, Link.PREDICATE_TYPE, link.to_dict())


def test_result_statement(
    *,
    subjects: Sequence[ResourceDescriptor],
    result: str,
    url: str = "",
    configuration: Sequence[ResourceDescriptor] = (),
    passed: Sequence[str] = (),
    failed: Sequence[str] = (),
    warned: Sequence[str] = (),
) -> Statement:
    model = TestResult(
        result=result,  # type: ignore[arg-type]  # validated by TestResult itself
        configuration=tuple(configuration),
        url=url,
        passed_tests=tuple(passed),
        failed_tests=tuple(failed),
        warned_tests=tuple(warned),
    )
    return statement(subjects, TestResult.PREDICATE_TYPE, model.to_dict())
