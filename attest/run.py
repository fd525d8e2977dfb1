"""``attest run``: hash materials, run one step, hash products — an in-toto link's facts."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from attest.collect.clock import Clock
from attest.collect.subjects import resolve_subjects
from attest.errors import CollectorError
from attest.predicates.slsa import BuildMetadata
from attest.statement import ResourceDescriptor

__all__ = ["StepResult", "run_step"]


@dataclass(frozen=True)
class StepResult:
    materials: list[ResourceDescriptor]
    products: list[ResourceDescriptor]
    exit_code: int
    byproducts: dict[str, object]
    times: BuildMetadata


def _hash_globs(patterns: Sequence[str], base: Path) -> list[ResourceDescriptor]:
    return resolve_subjects(patterns, base) if patterns else []


def run_step(
    command: Sequence[str],
    *,
    materials: Sequence[str],
    products: Sequence[str],
    base: Path,
    clock: Clock,
) -> StepResult:
    """Run ``command`` in ``base``; its output passes through to our stdout/stderr and its
    digests go into the byproducts with the exit code. Materials are hashed before, products
    after, so a step that rewrites its own inputs shows it."""
    if not command:
        raise CollectorError("attest run needs a command after --")
    before = _hash_globs(materials, base)
    started = clock()
    try:
        done = subprocess.run(list(command), cwd=base, capture_output=True, check=False)
    except FileNotFoundError as e:
        raise CollectorError(f"command not found: {command[0]}") from e
    except PermissionError as e:
        raise CollectorError(f"command not executable: {command[0]}") from e
    finished = clock()
    sys.stdout.buffer.write(done.stdout)
    sys.stdout.buffer.flush()
    sys.stderr.buffer.write(done.stderr)
    sys.stderr.buffer.flush()
    after = _hash_globs(products, base)
    byproducts: dict[str, object] = {
        "return-value": done.returncode,
        "stdoutDigest": {"sha256": hashlib.sha256(done.stdout).hexdigest()},
        "stderrDigest": {"sha256": hashlib.sha256(done.stderr).hexdigest()},
        "commandDigest": {"sha256": hashlib.sha256("\0".join(command).encode()).hexdigest()},
    }
    return StepResult(
        before, after, done.returncode, byproducts, BuildMetadata("", started, finished)
    )
