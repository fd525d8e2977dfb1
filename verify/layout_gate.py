"""In-toto layouts in the gate: what ``verify layout`` (:mod:`verify.layout_cli`, the
``in-toto-verify`` equivalent) runs, and the layout rule of the default command (``--layout FILE
--layout-key PUB… --link-dir DIR``, or the policy's ``layout:`` section). No typer here: the
default command's fast path uses it.

The layout, its keys and the link directory are read first (:func:`read_layout`: unreadable input
is exit 2 before anything is fetched or run); :func:`check_layout` then runs
:func:`verify.layout.verify_layout`. A layout key without a valid signature is exit 4
(:class:`~verify.errors.SignatureFailure`); a supply chain that does not satisfy the layout is a
failed rule (exit 1). in-toto loads only when a layout is verified.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from verify.errors import SignatureFailure, UsageError

if TYPE_CHECKING:
    from verify.artifact import Artifact
    from verify.layout import LayoutVerdict
    from verify.pipeline import Outcome
    from verify.policy import Policy
    from verify.rules import RuleResult

__all__ = [
    "RULE",
    "LayoutFiles",
    "LayoutSpec",
    "check_layout",
    "layout_rule",
    "read_layout",
    "run_layout",
    "spec_from",
]

RULE = "in-toto layout"


@dataclass(frozen=True)
class LayoutSpec:
    """Where the layout's parts are (paths already resolved)."""

    file: Path
    keys: tuple[Path, ...]
    link_dir: Path | None  # None: the links are given in memory (``verify attestations``)
    inspect_in: Path | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LayoutFiles:
    """A layout and its keys, read; the link directory, checked."""

    spec: LayoutSpec
    layout: bytes
    keys: tuple[bytes, ...]


def spec_from(
    layout: Path | None,
    keys: Sequence[Path],
    link_dir: Path | None,
    policy: Policy | None = None,
) -> LayoutSpec | None:
    """The layout to check: the command-line options (paths relative to the current directory)
    if given, else the policy's ``layout:`` section (paths relative to the policy file)."""
    if layout is not None or keys or link_dir is not None:
        if layout is None or not keys or link_dir is None:
            raise UsageError(
                "a layout needs all of --layout FILE, --layout-key PUB, --link-dir DIR"
            )
        return LayoutSpec(layout, tuple(keys), link_dir)
    if policy is None or policy.layout is None:
        return None
    lp = policy.layout
    return LayoutSpec(
        policy.path(lp.file),
        tuple(policy.path(k) for k in lp.keys),
        policy.path(lp.link_dir),
        policy.path(lp.inspect_in) if lp.inspect_in is not None else None,
        dict(lp.parameters),
    )


def _read(path: Path, what: str) -> bytes:
    from verify._internal.files import read_limited

    return read_limited(path, what)


def read_layout(spec: LayoutSpec) -> LayoutFiles:
    """Read the layout and its keys; :class:`UsageError` if any is unreadable or the link
    directory is not a directory."""
    layout = _read(spec.file, "layout")
    keys = tuple(_read(k, "layout key") for k in spec.keys)
    if spec.link_dir is not None and not spec.link_dir.is_dir():
        raise UsageError(f"link directory {spec.link_dir} is not a directory")
    if spec.inspect_in is not None and not spec.inspect_in.is_dir():
        raise UsageError(f"inspection directory {spec.inspect_in} is not a directory")
    return LayoutFiles(spec, layout, keys)


def check_layout(
    files: LayoutFiles,
    at: datetime,
    artifacts: Mapping[str, str] | None = None,
    links: Mapping[str, bytes] | None = None,
) -> LayoutVerdict:
    """Verify the layout as ``in-toto-verify`` does, with the links in the spec's directory, or
    ``links`` (file name -> bytes) when it has none. Raises :class:`SignatureFailure` (exit 4)
    for a layout key without a valid signature, :class:`UsageError` for malformed input, and
    :class:`verify.layout.LayoutError` when the supply chain does not satisfy the layout."""
    from attest.errors import InvalidInput
    from verify.layout import LayoutSignatureError, verify_layout

    spec = files.spec
    source = spec.link_dir if spec.link_dir is not None else links
    if source is None:
        raise UsageError("the layout has no links: give --link-dir DIR or the link files")
    try:
        return verify_layout(
            files.layout,
            files.keys,
            source,
            at=at,
            parameters=dict(spec.parameters) or None,
            inspect_in=spec.inspect_in or Path.cwd(),
            artifacts=artifacts,
        )
    except LayoutSignatureError as e:
        raise SignatureFailure(f"layout {spec.file}: {e}") from e
    except InvalidInput as e:
        raise UsageError(f"layout {spec.file}: {e}") from e


def _passed(files: LayoutFiles, verdict: LayoutVerdict) -> str:
    expires = f", expires {verdict.expires.isoformat()}" if verdict.expires else ""
    return (
        f"{files.spec.file.name}: signed by {len(files.keys)} layout key(s); "
        f"{len(verdict.steps)} step(s), {len(verdict.inspections)} inspection(s) verified{expires}"
    )


def layout_rule(
    files: LayoutFiles,
    arts: Sequence[Artifact],
    at: datetime,
    links: Mapping[str, bytes] | None = None,
) -> RuleResult:
    """The layout as one rule row: the chain verifies and every artifact's digest is among its
    final products. A layout signature failure raises (exit 4)."""
    from verify.layout import LayoutError
    from verify.rules import RuleResult

    try:
        verdict = check_layout(files, at, links=links)
    except LayoutError as e:
        return RuleResult(RULE, False, f"{files.spec.file.name}: {e}")
    products = [dict(v) for v in verdict.products.values()]
    stray = [a.name for a in arts if not a.named_by(products)]
    if stray:
        made = ", ".join(sorted(verdict.products)) or "nothing"
        why = f"{', '.join(stray)}: not a final product of the layout (it made {made})"
        return RuleResult(RULE, False, f"{files.spec.file.name}: {why}")
    return RuleResult(RULE, True, _passed(files, verdict) + "; the artifact is a final product")


def _parameters(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {item!r}: give KEY=VALUE")
        out[key] = value
    return out


def _products(paths: Sequence[Path]) -> list[Artifact]:
    """``verify layout``'s ARTIFACTs: files named as the layout's products are (relative to the
    directory the last step ran in, which is where this runs)."""
    from verify.artifact import Artifact

    out = []
    for p in paths:
        digest = hashlib.sha256(_read(p, "artifact")).hexdigest()
        out.append(Artifact(Path(os.path.normpath(p)).as_posix(), {"sha256": digest}))
    return out


def run_layout(
    spec: LayoutSpec, artifacts: Sequence[Path], params: Sequence[str], at: datetime
) -> Outcome:
    """``verify layout``: one rule row, the layout's verdict."""
    from dataclasses import replace

    from verify.layout import LayoutError
    from verify.pipeline import Outcome
    from verify.rules import RuleResult

    spec = replace(spec, parameters=_parameters(params))
    files = read_layout(spec)
    arts = _products(artifacts)
    out = Outcome(arts, at)
    try:
        verdict = check_layout(files, at, {a.name: a.digest["sha256"] for a in arts})
    except LayoutError as e:
        out.rules = [RuleResult(RULE, False, f"{spec.file.name}: {e}")]
        return out
    named = "; the artifact(s) are final products" if arts else ""
    out.rules = [RuleResult(RULE, True, _passed(files, verdict) + named)]
    return out
