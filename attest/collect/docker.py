"""Container base images: every ``FROM`` of a Dockerfile (multi-stage included) as a
``pkg:docker`` purl, with its digest when pinned. An image not pinned by digest is recorded with
``annotations.pinned = false`` and reported as a warning: a tag can move, a digest cannot."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packageurl import PackageURL

from attest._internal.files import read_text
from attest.errors import CollectorError
from attest.statement import ResourceDescriptor

__all__ = ["BaseImage", "parse_dockerfile"]

_ARG = re.compile(r"^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$", re.IGNORECASE)
_FROM = re.compile(r"^FROM\s+(.*)$", re.IGNORECASE)
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
# the image reference grammar of distribution/reference (docker, containerd, podman)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,})?"
)
_DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io"}


@dataclass(frozen=True)
class BaseImage:
    reference: str
    stage: str
    descriptor: ResourceDescriptor
    pinned: bool


def _instructions(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        out.append((start, (buf + line).strip()))
        buf = ""
    if buf:
        out.append((start, buf.strip()))
    return out


def _substitute(value: str, args: dict[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        return args.get(name) or (m.group(2) or "")

    return _VAR.sub(repl, value)


def _split_reference(ref: str) -> tuple[str | None, str, str, str | None, str | None]:
    """registry, namespace, name, tag, digest of an image reference."""
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref, tag = ref.rsplit(":", 1)
    parts = ref.split("/")
    registry = None
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry = parts.pop(0)
    if registry in _DOCKER_HUB:
        registry = None
    if registry is None and parts[0] == "library" and len(parts) == 2:
        parts.pop(0)
    return registry, "/".join(parts[:-1]), parts[-1], tag, digest


def _descriptor(ref: str, platform: str | None) -> tuple[ResourceDescriptor, bool]:
    registry, namespace, name, tag, digest = _split_reference(ref)
    pinned = bool(digest and digest.startswith("sha256:") and len(digest) == 71)
    qualifiers = {k: v for k, v in (("repository_url", registry), ("platform", platform)) if v}
    if pinned and tag:
        qualifiers["tag"] = tag
    version = digest if pinned else (tag or "latest")
    p = PackageURL(
        type="docker",
        namespace=namespace or None,
        name=name,
        version=version,
        qualifiers=qualifiers or None,
    )
    annotations: dict[str, object] = {"reference": ref, "pinned": pinned}
    rd = ResourceDescriptor(
        name=ref,
        uri=str(p.to_string()),
        digest={"sha256": digest.split(":", 1)[1]} if pinned and digest else {},
        annotations=annotations,
    )
    return rd, pinned


def parse_dockerfile(path: Path) -> tuple[list[BaseImage], list[str]]:
    """Base images of every stage and the warnings for unpinned ones. ``FROM scratch`` and
    ``FROM <earlier stage>`` are not images and are skipped."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    images: list[BaseImage] = []
    warnings: list[str] = []
    seen_from = False
    for lineno, line in _instructions(read_text(path)):
        arg = _ARG.match(line)
        if arg and not seen_from:
            args[arg.group(1)] = (arg.group(2) or "").strip().strip('"')
            continue
        m = _FROM.match(line)
        if not m:
            continue
        seen_from = True
        tokens = m.group(1).split()
        platform = None
        while tokens and tokens[0].startswith("--"):
            flag = tokens.pop(0)
            if flag.startswith("--platform="):
                platform = _substitute(flag.split("=", 1)[1], args) or None
        if not tokens:
            raise CollectorError(f"{path}:{lineno}: FROM without an image")
        ref = _substitute(tokens[0], args)
        stage = tokens[2] if len(tokens) >= 3 and tokens[1].lower() == "as" else ""
        if ref.lower() != "scratch" and ref not in stages:
            if not ref or "$" in ref:
                raise CollectorError(f"{path}:{lineno}: cannot resolve image {tokens[0]!r}")
            if not _REFERENCE.fullmatch(ref):
                raise CollectorError(f"{path}:{lineno}: {ref!r} is not an image reference")
            rd, pinned = _descriptor(ref, platform)
            images.append(BaseImage(ref, stage, rd, pinned))
            if not pinned:
                warnings.append(
                    f"{path}:{lineno}: base image {ref} is not pinned by digest "
                    f"(use {ref.split('@')[0]}@sha256:…); what it names can change"
                )
        if stage:
            stages.add(stage)
    if not images and not stages:
        raise CollectorError(f"{path}: no FROM instruction")
    return images, warnings
