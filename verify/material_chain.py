"""``materialsFrom`` across artifacts: a step's materials made by another step under another digest.

A ``package`` step whose subject is the artifact lists the build's output among its materials;
the build's attestation names that output, not the artifact, so the artifact's evidence does not
hold it. After steps 1-10 on the artifact's evidence, :func:`follow_materials` asks the same
source for the records about those materials' digests (only for steps with ``materialsFrom``,
only digests named by trusted attestations of such a step's predicate type, at most
:data:`MAX_MATERIALS`), as of the same checkpoint (``asOf=SIZE``), and proves them exactly as the
artifact's: the checkpoint must be the one already verified (same size and root: another is exit
4), every inclusion proof, every body digest, every signature and signer window (steps 4-7),
records written after ``--at`` dropped. The rules are then judged again with those attestations
given to the ``materialsFrom`` rule only (:func:`verify.rules.evaluate`'s ``materials``): every
material the step lists must be a product of the step ``materialsFrom`` names, that step's
threshold met by distinct signers of the material's own digest. Nothing else reads them (the deny rules, the
trusted-evidence row and the report's attestation list stay about the artifact).

``verify attestations`` finds the materials' attestations among the documents given
(:func:`follow_given_materials`). ``verify export-evidence`` adds the materials' records to the file (:func:`add_material_evidence`:
every material named by the artifact's records, one level, same checkpoint), so
``verify --evidence`` follows them with no network.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ledger.checkpoint import SignedCheckpoint
from verify.errors import ConsistencyFailure
from verify.pipeline import REGISTRY_PAYLOAD_TYPE, Outcome
from verify.policy import Policy
from verify.proofs import check_bodies, check_inclusions, open_signed_checkpoint
from verify.trust import Attestation, Trust

__all__ = [
    "MAX_MATERIALS",
    "add_material_evidence",
    "follow_given_materials",
    "follow_materials",
    "material_keys",
]

MAX_MATERIALS = 256  # material digests followed for one verdict (each is a lookup)

Fetch = Callable[[list[str], int], dict[str, Any]]  # (ALG:HEX digests, tree size) -> evidence


def _keys(descriptors: Any) -> list[str]:
    """``ALG:HEX`` of every digest in a list of resource descriptors."""
    out = []
    for d in descriptors if isinstance(descriptors, list) else []:
        digest = d.get("digest") if isinstance(d, dict) else None
        if isinstance(digest, dict):
            out += [f"{alg}:{v}" for alg, v in digest.items() if isinstance(v, str)]
    return out


def material_keys(policy: Policy, out: Outcome) -> list[str]:
    """The material digests to follow: named by a trusted attestation of a ``materialsFrom``
    step's predicate type, not already the artifact's own."""
    types = {s.predicate_type for s in policy.steps if s.materials_from is not None}
    own = {k for a in out.artifacts for k in a.digest_keys()}
    found: list[str] = []
    for a in out.attestations:
        if a.signers and a.statement.predicate_type in types:
            materials = (a.statement.predicate or {}).get("materials")
            found += [k for k in _keys(materials) if k not in own and k not in found]
    return found[:MAX_MATERIALS]


def _same_checkpoint(doc: dict[str, Any], policy: Policy, cp: SignedCheckpoint) -> None:
    assert policy.ledger is not None
    got = open_signed_checkpoint(doc.get("checkpoint"), policy.ledger.keys, policy.ledger.origin)
    if (got.checkpoint.size, got.checkpoint.root_hash) != (
        cp.checkpoint.size,
        cp.checkpoint.root_hash,
    ):
        raise ConsistencyFailure(
            f"the materials' evidence is from checkpoint size {got.checkpoint.size}, not the "
            f"artifact's (size {cp.checkpoint.size}, the same root): refused"
        )


def _attestations(
    doc: dict[str, Any], trust: Trust, cp: SignedCheckpoint, keys: Sequence[str], at: datetime
) -> list[Attestation]:
    """Steps 4-8 on the materials' records: those naming one of ``keys``."""
    from ledger.record import parse_time
    from verify.pipeline import _payload_type

    wanted = {tuple(k.split(":", 1)) for k in keys}
    out = []
    for e in check_bodies(check_inclusions(doc.get("entries"), cp)):
        if _payload_type(e.body) == REGISTRY_PAYLOAD_TYPE:
            continue
        when = parse_time(e.record.time)
        if when > at:
            continue
        got = trust.open(e.body, e.index, when)
        if isinstance(got, Attestation) and any(
            (alg, v) in wanted for s in got.statement.subjects for alg, v in s.digest.items()
        ):
            out.append(got)
    return out


def follow_materials(out: Outcome, policy: Policy, trust: Trust, fetch: Fetch) -> None:
    """Judge ``out``'s rules again with the materials' proved attestations (see the module)."""
    keys = material_keys(policy, out)
    if not keys or out.checkpoint is None:
        return
    cp = out.checkpoint
    doc = fetch(keys, cp.checkpoint.size)
    _same_checkpoint(doc, policy, cp)
    materials = _attestations(doc, trust, cp, keys, out.at)
    _rejudge(out, policy, materials)


def follow_given_materials(
    out: Outcome, policy: Policy, trust: Trust, bodies: Sequence[bytes]
) -> None:
    """``verify attestations``: the materials' attestations are among the documents given
    (those naming a material's digest instead of the artifact), verified like the others."""
    keys = material_keys(policy, out)
    if not keys:
        return
    wanted = {tuple(k.split(":", 1)) for k in keys}
    materials = []
    for body in bodies:
        got = trust.open(body, None, out.at)
        if isinstance(got, Attestation) and any(
            (alg, v) in wanted for s in got.statement.subjects for alg, v in s.digest.items()
        ):
            materials.append(got)
    _rejudge(out, policy, materials)


def _statement(body_b64: Any) -> Any:
    """An evidence entry's in-toto statement, unverified (to find material digests only)."""
    try:
        doc = json.loads(base64.b64decode(str(body_b64), validate=True))
        env = doc.get("dsseEnvelope", doc) if isinstance(doc, dict) else {}
        return json.loads(base64.b64decode(str(env.get("payload")), validate=True))
    except (ValueError, binascii.Error, RecursionError, AttributeError):
        return None


def add_material_evidence(doc: dict[str, Any], own: Sequence[str], fetch: Fetch) -> dict[str, Any]:
    """``doc`` (the evidence about the digests ``own``) with the records about every material
    its entries name (one level, as of its own checkpoint). The entries are only read here:
    ``verify`` proves them when it judges."""
    keys: list[str] = []
    for e in doc.get("entries") or []:
        st = _statement(e.get("body") if isinstance(e, dict) else None)
        pred = st.get("predicate") if isinstance(st, dict) else None
        if isinstance(pred, dict):
            keys += [k for k in _keys(pred.get("materials")) if k not in own and k not in keys]
    if not keys or not isinstance(doc.get("treeSize"), int):
        return doc
    more = fetch(keys[:MAX_MATERIALS], doc["treeSize"])
    if _note_body(more.get("checkpoint")) != _note_body(doc.get("checkpoint")):
        raise ConsistencyFailure("the ledger answered the materials from another checkpoint")
    seen = {e.get("index") for e in doc["entries"] if isinstance(e, dict)}
    extra = [e for e in more.get("entries") or [] if e.get("index") not in seen]
    return {**doc, "entries": [*doc["entries"], *extra]}


def _note_body(note: Any) -> str | None:
    """A checkpoint note's signed text (origin, size, root): the same tree whoever re-signed it."""
    return note.split("\n\n", 1)[0] if isinstance(note, str) else None


def _rejudge(out: Outcome, policy: Policy, materials: Sequence[Attestation]) -> None:
    """The policy's rows again, with the materials; rows of other origin (the layout's) kept."""
    from verify.rules import evaluate

    rows = evaluate(policy, out.artifacts, out.attestations, out.at, materials=materials)
    names = {r.rule for r in rows}
    out.rules = rows + [r for r in out.rules if r.rule not in names]
