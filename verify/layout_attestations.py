"""``verify attestations … --layout FILE --layout-key PUB… [--link-dir DIR]``: third-party
attestations judged by the policy's rules and, as the default command's ``--layout`` does, by an
in-toto layout (:func:`verify.layout_gate.layout_rule`: the supply chain verifies as
``in-toto-verify`` says, and the artifact is one of its final products).

The layout's links are the link files given with ``--bundle`` — classic in-toto link metablocks
(``{"signed": {"_type": "link", …}, "signatures": […]}``) or in-toto 3.x's DSSE links (a DSSE
envelope whose payload is a link) — taken out of the attestations and named as in-toto names
them on disk (``STEP.KEYID8.link``, one per signature's key id: in-toto then checks each
signature with the layout's functionary keys, so a wrong key id only loses the link), or the
files of ``--link-dir DIR``; else the policy's ``layout:`` section. Every other document is an
attestation for the policy's rules, as without a layout.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from verify.artifact import Artifact
from verify.errors import UsageError
from verify.pipeline import Outcome, verify_attestations
from verify.policy import Policy
from verify.trust import Trust

__all__ = ["split_links", "verify_with_layout"]

_FILENAME = "{step}.{keyid:.8}.link"


def _link_payload(doc: Any) -> Any:
    """The link a document carries (classic metablock or DSSE envelope), or ``None``."""
    if not isinstance(doc, dict):
        return None
    if "signed" in doc and "signatures" in doc:
        signed = doc["signed"]
    elif "payloadType" in doc and "payload" in doc and "signatures" in doc:
        try:
            signed = json.loads(base64.b64decode(str(doc["payload"]), validate=True))
        except (ValueError, binascii.Error, RecursionError):
            return None
    else:
        return None
    return signed if isinstance(signed, dict) and signed.get("_type") == "link" else None


def split_links(bodies: Sequence[bytes]) -> tuple[dict[str, bytes], list[bytes]]:
    """(in-toto links by their on-disk name, every other document)."""
    links: dict[str, bytes] = {}
    rest: list[bytes] = []
    for body in bodies:
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            rest.append(body)
            continue
        link = _link_payload(doc)
        if link is None:
            rest.append(body)
            continue
        step = link.get("name")
        sigs = [s for s in doc.get("signatures") or [] if isinstance(s, dict)]
        keyids = [s.get("keyid") for s in sigs if isinstance(s.get("keyid"), str)]
        if not isinstance(step, str) or not step or not keyids:
            raise UsageError("an in-toto link without a step name or a signature key id")
        for keyid in keyids:
            name = _FILENAME.format(step=step, keyid=keyid)
            if name in links and links[name] != body:
                raise UsageError(f"two different links are {name}")
            links[name] = body
    return links, rest


def verify_with_layout(
    policy: Policy,
    trust: Trust,
    arts: Sequence[Artifact],
    bodies: Sequence[bytes],
    at: datetime,
    layout: Path | None,
    layout_keys: Sequence[Path],
    link_dir: Path | None,
) -> Outcome:
    """The policy's rules over the attestations, then the layout's row over the links."""
    from verify.layout_gate import LayoutSpec, layout_rule, read_layout, spec_from
    from verify.rules import evaluate

    if layout is not None or layout_keys:
        if layout is None or not layout_keys:
            raise UsageError("a layout needs --layout FILE and at least one --layout-key PUB")
        spec: LayoutSpec | None = LayoutSpec(layout, tuple(layout_keys), link_dir)
    elif link_dir is not None:
        raise UsageError("--link-dir needs --layout FILE and --layout-key PUB")
    else:
        spec = spec_from(None, (), None, policy)
    links, rest = split_links(bodies)
    if spec is None:  # no layout after all: the links are just documents
        return verify_attestations(policy, trust, arts, bodies, at)
    files = read_layout(spec)  # unreadable: exit 2 before anything is verified
    if rest:
        out = verify_attestations(policy, trust, arts, rest, at)
    else:  # only links: the policy's rules see no attestation (and say so)
        out = Outcome(list(arts), at)
        out.rules = evaluate(policy, arts, [], at)
    out.rules.append(layout_rule(files, arts, at, links=_given(links, spec.link_dir)))
    return out


def _given(links: Mapping[str, bytes], link_dir: Path | None) -> Mapping[str, bytes] | None:
    if link_dir is not None and links:
        raise UsageError("give the links either with --bundle or in --link-dir, not both")
    return links if link_dir is None else None
