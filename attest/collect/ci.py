"""Which CI ran this, from its environment: builder id, invocation (run) id and URL, and the
workflow/job parameters SLSA calls external. GitHub Actions, GitLab CI, or generic."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CIContext", "detect_ci"]


@dataclass(frozen=True)
class CIContext:
    provider: str
    builder_id: str
    invocation_id: str = ""
    run_url: str = ""
    repository: str = ""
    commit: str = ""
    ref: str = ""
    started_at: str = ""
    external: Mapping[str, Any] = field(default_factory=dict)
    internal: Mapping[str, Any] = field(default_factory=dict)


def _present(values: Mapping[str, Any]) -> dict[str, Any]:
    """Only the values the CI actually set."""
    return {k: v for k, v in values.items() if v}


def _github(env: Mapping[str, str]) -> CIContext:
    server = env.get("GITHUB_SERVER_URL", "https://github.com")
    repo = env.get("GITHUB_REPOSITORY", "")
    run = env.get("GITHUB_RUN_ID", "")
    attempt = env.get("GITHUB_RUN_ATTEMPT", "1")
    run_url = f"{server}/{repo}/actions/runs/{run}" if repo and run else ""
    hosted = env.get("RUNNER_ENVIRONMENT", "github-hosted")
    return CIContext(
        provider="github-actions",
        builder_id=f"{server}/actions/runner/{hosted}",
        invocation_id=f"{run_url}/attempts/{attempt}" if run_url else "",
        run_url=run_url,
        repository=f"{server}/{repo}" if repo else "",
        commit=env.get("GITHUB_SHA", ""),
        ref=env.get("GITHUB_REF", ""),
        external=_present(
            {
                "workflow": _present(
                    {
                        "ref": env.get("GITHUB_WORKFLOW_REF", ""),
                        "repository": f"{server}/{repo}" if repo else "",
                        "path": env.get("GITHUB_WORKFLOW_REF", "").split("@")[0].split("/", 2)[-1],
                    }
                ),
                "event": env.get("GITHUB_EVENT_NAME", ""),
                "job": env.get("GITHUB_JOB", ""),
            }
        ),
        internal=_present(
            {
                "runner": env.get("RUNNER_NAME", ""),
                "runnerOs": env.get("RUNNER_OS", ""),
                "runnerArch": env.get("RUNNER_ARCH", ""),
                "actor": env.get("GITHUB_ACTOR", ""),
                "triggeringActor": env.get("GITHUB_TRIGGERING_ACTOR", ""),
            }
        ),
    )


def _gitlab(env: Mapping[str, str]) -> CIContext:
    server = env.get("CI_SERVER_URL", "https://gitlab.com")
    project = env.get("CI_PROJECT_PATH", "")
    runner = env.get("CI_RUNNER_ID", "")
    return CIContext(
        provider="gitlab-ci",
        builder_id=f"{server}/{project}/-/runners/{runner}" if runner else f"{server}/-/runners",
        invocation_id=env.get("CI_JOB_URL", ""),
        run_url=env.get("CI_JOB_URL") or env.get("CI_PIPELINE_URL", ""),
        repository=env.get("CI_PROJECT_URL", ""),
        commit=env.get("CI_COMMIT_SHA", ""),
        ref=env.get("CI_COMMIT_REF_NAME", ""),
        started_at=env.get("CI_JOB_STARTED_AT", ""),
        external=_present(
            {
                "configPath": env.get("CI_CONFIG_PATH", ""),
                "pipelineSource": env.get("CI_PIPELINE_SOURCE", ""),
                "job": env.get("CI_JOB_NAME", ""),
                "stage": env.get("CI_JOB_STAGE", ""),
                "pipelineId": env.get("CI_PIPELINE_ID", ""),
            }
        ),
        internal=_present(
            {
                "runnerDescription": env.get("CI_RUNNER_DESCRIPTION", ""),
                "runnerTags": env.get("CI_RUNNER_TAGS", ""),
                "user": env.get("GITLAB_USER_LOGIN", ""),
            }
        ),
    )


def _generic(env: Mapping[str, str]) -> CIContext:
    run_url = env.get("ATTEST_RUN_URL") or env.get("BUILD_URL", "")
    builder = env.get("ATTEST_BUILDER_ID") or (
        f"{env.get('JENKINS_URL', '').rstrip('/')}" if env.get("JENKINS_URL") else ""
    )
    return CIContext(
        provider="generic" if env.get("CI") else "local",
        builder_id=builder or f"local://{socket.gethostname()}",
        invocation_id=env.get("ATTEST_INVOCATION_ID") or env.get("BUILD_TAG") or run_url,
        run_url=run_url,
    )


def detect_ci(env: Mapping[str, str]) -> CIContext:
    """The CI context ``env`` describes (pass ``os.environ``). ``ATTEST_BUILDER_ID`` overrides
    the builder id everywhere, for self-hosted runners with a stable identity."""
    if env.get("GITHUB_ACTIONS") == "true":
        ctx = _github(env)
    elif env.get("GITLAB_CI") == "true":
        ctx = _gitlab(env)
    else:
        return _generic(env)
    override = env.get("ATTEST_BUILDER_ID")
    if override:
        ctx = CIContext(**{**vars(ctx), "builder_id": override})
    return ctx
