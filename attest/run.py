"""``attest run``: hash materials, run one step, hash products — an in-toto link's facts."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from attest.collect.clock import Clock
from attest.collect.subjects import resolve_subjects
from attest.errors import CollectorError
from attest.keyless import TOKEN_ENV as SIGSTORE_TOKEN_ENV
from attest.predicates.slsa import BuildMetadata
from attest.signers import PASSPHRASE_ENV
from attest.statement import ResourceDescriptor
from attest.submit import TOKEN_ENV as LEDGER_TOKEN_ENV

__all__ = ["SECRET_ENV", "StepResult", "child_environment", "run_step"]

# What attest reads as a secret: never handed to the command it wraps (a build script, a test
# suite, a dependency's install hook could read and leak them).
SECRET_ENV = (PASSPHRASE_ENV, LEDGER_TOKEN_ENV, SIGSTORE_TOKEN_ENV)

_CHUNK = 1 << 16


@dataclass(frozen=True)
class StepResult:
    materials: list[ResourceDescriptor]
    products: list[ResourceDescriptor]
    exit_code: int
    byproducts: dict[str, object]
    times: BuildMetadata


def _hash_globs(patterns: Sequence[str], base: Path) -> list[ResourceDescriptor]:
    return resolve_subjects(patterns, base) if patterns else []


def _tee(source: IO[bytes], sink: IO[bytes], digest: hashlib._Hash) -> None:
    """Copy the child's stream to ours as it comes (CI logs stay live) while hashing it."""
    for chunk in iter(lambda: source.read1(_CHUNK), b""):  # type: ignore[attr-defined]
        digest.update(chunk)
        sink.write(chunk)
        sink.flush()


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without :data:`SECRET_ENV`."""
    return {k: v for k, v in environ.items() if k not in SECRET_ENV}


def run_step(
    command: Sequence[str],
    *,
    materials: Sequence[str],
    products: Sequence[str],
    base: Path,
    clock: Clock,
) -> StepResult:
    """Run ``command`` in ``base``. Its output streams through to our stdout/stderr as it is
    produced, and its digests go into the byproducts with the exit code. It runs without the
    secrets attest reads (:data:`SECRET_ENV`). Materials are hashed
    before, products after, so a step that rewrites its own inputs shows it."""
    if not command:
        raise CollectorError("attest run needs a command after --")
    before = _hash_globs(materials, base)
    out_digest, err_digest = hashlib.sha256(), hashlib.sha256()
    started = clock()
    try:
        child = subprocess.Popen(
            list(command),
            cwd=base,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_environment(os.environ),
        )
    except FileNotFoundError as e:
        raise CollectorError(f"command not found: {command[0]}") from e
    except PermissionError as e:
        raise CollectorError(f"command not executable: {command[0]}") from e
    assert child.stdout is not None and child.stderr is not None
    pumps = [
        threading.Thread(target=_tee, args=(child.stdout, sys.stdout.buffer, out_digest)),
        threading.Thread(target=_tee, args=(child.stderr, sys.stderr.buffer, err_digest)),
    ]
    for p in pumps:
        p.start()
    try:
        returncode = child.wait()
    except KeyboardInterrupt:
        child.terminate()
        returncode = child.wait()
        raise
    finally:
        for p in pumps:
            p.join()
    finished = clock()
    after = _hash_globs(products, base)
    byproducts: dict[str, object] = {
        "return-value": returncode,
        "stdoutDigest": {"sha256": out_digest.hexdigest()},
        "stderrDigest": {"sha256": err_digest.hexdigest()},
        "commandDigest": {"sha256": hashlib.sha256("\0".join(command).encode()).hexdigest()},
    }
    return StepResult(before, after, returncode, byproducts, BuildMetadata("", started, finished))
