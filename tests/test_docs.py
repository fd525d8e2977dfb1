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
import subprocess
import sys
from pathlib import Path

import pytest

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
