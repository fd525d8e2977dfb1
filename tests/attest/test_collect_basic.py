"""Collectors on real files and a real git repository: subjects, git, CI, times."""

from __future__ import annotations

import hashlib
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from attest.collect.ci import detect_ci
from attest.collect.clock import parse_time, started_on
from attest.collect.git import collect_git, scrub_url
from attest.collect.subjects import file_digest, resolve_subjects
from attest.errors import CollectorError, InvalidInput


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "dist" / "sub").mkdir(parents=True)
    (tmp_path / "dist" / "a.whl").write_bytes(b"wheel")
    (tmp_path / "dist" / "b.tar.gz").write_bytes(b"sdist")
    (tmp_path / "dist" / "sub" / "c.txt").write_bytes(b"c")
    (tmp_path / "app").write_bytes(b"\x7fELF")
    return tmp_path


def test_files_globs_dirs_and_digests(tree: Path) -> None:
    subjects = resolve_subjects(
        ["app", "dist/*.whl", "dist", "sha256:" + "AB" * 32, "ghcr.io/x/y@sha256:" + "cd" * 32],
        tree,
    )
    by_name = {s.name: dict(s.digest) for s in subjects}
    assert by_name["app"] == {"sha256": sha(b"\x7fELF")}
    assert by_name["dist/a.whl"] == {"sha256": sha(b"wheel")}
    assert by_name["dist/sub/c.txt"] == {"sha256": sha(b"c")}  # a directory: one per file
    assert by_name["sha256:" + "ab" * 32] == {"sha256": "ab" * 32}
    assert by_name["ghcr.io/x/y"] == {"sha256": "cd" * 32}
    assert [s.name for s in subjects].count("dist/a.whl") == 1  # glob and dir overlap once
    assert resolve_subjects(["dist/**/*.txt"], tree)[0].name == "dist/sub/c.txt"


def test_large_file_digest_streams(tmp_path: Path) -> None:
    big = tmp_path / "big"
    data = b"x" * (3 * (1 << 20) + 7)
    big.write_bytes(data)
    assert file_digest(big) == sha(data)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing.bin", "does not exist"),
        ("*.nothing", "no file matches"),
        ("sha256:abc", "64 hex"),
    ],
)
def test_bad_subjects(tree: Path, spec: str, message: str) -> None:
    with pytest.raises(CollectorError, match=message):
        resolve_subjects([spec], tree)


def test_no_subjects_at_all(tree: Path) -> None:
    (tree / "empty").mkdir()
    with pytest.raises(CollectorError, match="no subjects"):
        resolve_subjects(["empty"], tree)


def git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "Ada Author",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_AUTHOR_DATE": "2024-05-01T10:00:00Z",
        "GIT_COMMITTER_NAME": "Cy Committer",
        "GIT_COMMITTER_EMAIL": "cy@example.com",
        "GIT_COMMITTER_DATE": "2024-05-02T11:00:00Z",
        "PATH": "/usr/bin:/bin",
        "HOME": str(repo),
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_git_facts(tmp_path: Path) -> None:
    assert collect_git(tmp_path) is None
    git(tmp_path, "init", "-q", "-b", "main")
    assert collect_git(tmp_path) is None  # no commit yet
    (tmp_path / "f").write_text("1")
    git(tmp_path, "add", "f")
    git(tmp_path, "commit", "-qm", "one")
    git(tmp_path, "tag", "v1.0.0")
    git(tmp_path, "remote", "add", "origin", "https://user:ghp_secret@github.com/example/app.git")
    info = collect_git(tmp_path)
    assert info is not None
    assert info.commit == git(tmp_path, "rev-parse", "HEAD") and len(info.commit) == 40
    assert info.branch == "main" and info.tags == ("v1.0.0",)
    assert (info.author.name, info.author.email) == ("Ada Author", "ada@example.com")
    assert (info.committer.name, info.committer.email) == ("Cy Committer", "cy@example.com")
    assert info.author.time.startswith("2024-05-01T10:00:00")
    assert info.remote_url == "https://github.com/example/app.git"  # the token is gone
    assert not info.dirty
    (tmp_path / "f").write_text("2")
    dirty = collect_git(tmp_path)
    assert dirty is not None and dirty.dirty


def test_scrub_url_keeps_ssh() -> None:
    assert scrub_url("git@github.com:example/app.git") == "git@github.com:example/app.git"
    assert scrub_url("https://gitlab-ci-token:x@gitlab.com/g/p.git") == "https://gitlab.com/g/p.git"


GITHUB = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "example/app",
    "GITHUB_RUN_ID": "9876543210",
    "GITHUB_RUN_ATTEMPT": "2",
    "GITHUB_SHA": "a" * 40,
    "GITHUB_REF": "refs/tags/v1.2.3",
    "GITHUB_WORKFLOW_REF": "example/app/.github/workflows/release.yml@refs/tags/v1.2.3",
    "GITHUB_EVENT_NAME": "push",
    "GITHUB_ACTOR": "octocat",
    "RUNNER_ENVIRONMENT": "github-hosted",
}
GITLAB = {
    "GITLAB_CI": "true",
    "CI": "true",
    "CI_SERVER_URL": "https://gitlab.example.com",
    "CI_PROJECT_PATH": "group/app",
    "CI_PROJECT_URL": "https://gitlab.example.com/group/app",
    "CI_RUNNER_ID": "42",
    "CI_JOB_URL": "https://gitlab.example.com/group/app/-/jobs/777",
    "CI_COMMIT_SHA": "b" * 40,
    "CI_COMMIT_REF_NAME": "main",
    "CI_JOB_STARTED_AT": "2024-07-01T08:00:00Z",
    "CI_CONFIG_PATH": ".gitlab-ci.yml",
    "CI_JOB_NAME": "build",
}


def test_github_actions() -> None:
    ci = detect_ci(GITHUB)
    assert ci.provider == "github-actions"
    assert ci.builder_id == "https://github.com/actions/runner/github-hosted"
    assert ci.run_url == "https://github.com/example/app/actions/runs/9876543210"
    assert ci.invocation_id.endswith("/attempts/2")
    assert ci.external["workflow"]["path"] == ".github/workflows/release.yml"
    assert ci.internal["actor"] == "octocat"


def test_gitlab_ci() -> None:
    ci = detect_ci(GITLAB)
    assert ci.provider == "gitlab-ci"
    assert ci.builder_id == "https://gitlab.example.com/group/app/-/runners/42"
    assert ci.run_url == GITLAB["CI_JOB_URL"] and ci.commit == "b" * 40
    assert ci.started_at == "2024-07-01T08:00:00Z"


def test_generic_and_override() -> None:
    ci = detect_ci(
        {"CI": "true", "BUILD_URL": "https://jenkins/job/1/", "JENKINS_URL": "https://jenkins/"}
    )
    assert (ci.provider, ci.builder_id, ci.run_url) == (
        "generic",
        "https://jenkins",
        "https://jenkins/job/1/",
    )
    assert detect_ci({}).builder_id.startswith("local://")
    assert (
        detect_ci({**GITHUB, "ATTEST_BUILDER_ID": "https://builders.example/x"}).builder_id
        == "https://builders.example/x"
    )


def test_times_are_utc() -> None:
    assert parse_time("2024-07-01T10:00:00+02:00") == datetime(2024, 7, 1, 8, tzinfo=UTC)
    assert parse_time("0") == datetime(1970, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="time zone"):
        parse_time("2024-07-01T10:00:00")
    with pytest.raises(InvalidInput, match="RFC 3339"):
        parse_time("soon")
    assert started_on(None, {}, GITLAB["CI_JOB_STARTED_AT"]) == datetime(2024, 7, 1, 8, tzinfo=UTC)
    assert started_on(
        "2024-01-01T00:00:00Z", {"ATTEST_STARTED_ON": "2023-01-01T00:00:00Z"}, ""
    ) == datetime(2024, 1, 1, tzinfo=UTC)
    assert started_on(None, {}, "") is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand the checkout to another user")
def test_git_dubious_ownership_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What actions/checkout in a container hits: the checkout belongs to another user."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "f").write_text("1")
    git(repo, "add", "f")
    git(repo, "commit", "-qm", "one")
    monkeypatch.setenv("HOME", str(tmp_path))  # no global safe.directory
    for p in [repo, *repo.rglob("*")]:
        os.chown(p, 65534, 65534, follow_symlinks=False)
    with pytest.raises(CollectorError, match=r"safe\.directory"):
        collect_git(repo)


def test_a_subject_that_exists_is_that_file_even_with_glob_characters(tmp_path: Path) -> None:
    (tmp_path / "app1.zip").write_text("the attested build")
    (tmp_path / "app[1].zip").write_text("another file")
    [got] = resolve_subjects(["app[1].zip"], base=tmp_path)
    assert got.name == "app[1].zip"
    assert got.digest == {"sha256": hashlib.sha256(b"another file").hexdigest()}
    [globbed] = resolve_subjects(["app[0-9].zip"], base=tmp_path)  # a pattern still globs
    assert globbed.name == "app1.zip"
