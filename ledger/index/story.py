"""An artifact's story and the changes between two builds, read from the audit indexes.

Story: every record about the artifact (its subject digest), in log order, classified by
predicate type — the step or build that produced it, with its materials; tests, scans, VEX fixes
and VSAs about it — and, for each material with a digest, the steps that produced *that* (matching
products to materials across links), up to :data:`MAX_DEPTH` levels. Changes: dependency versions
added, removed, upgraded and downgraded (compared with the ecosystem's rules through ``univers``)
and vulnerabilities gained and fixed, between two builds. The route proves every record named.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from ledger.index import query as q
from ledger.index.evidence import AuditReader
from ledger.index.facts import read_facts

__all__ = ["MAX_DEPTH", "Changes", "Story", "artifact_story", "changes", "kind_of"]

MAX_DEPTH = 8
MAX_RECORDS = 1000  # per artifact digest
MAX_DECISIONS = 100  # VSA steps whose body is read for the decision it records
_KINDS = (
    ("https://in-toto.io/attestation/link/", "step"),
    ("https://slsa.dev/provenance/", "build"),
    ("https://in-toto.io/attestation/test-result/", "test"),
    ("https://in-toto.io/attestation/vulns/", "scan"),
    ("https://openvex.dev/ns", "vex"),
    ("https://slsa.dev/verification_summary/", "vsa"),
)
PRODUCERS = ("step", "build")


def kind_of(predicate_type: str | None) -> str:
    for prefix, kind in _KINDS:
        if predicate_type and predicate_type.startswith(prefix):
            return kind
    return "other"


@dataclass
class Story:
    artifact: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)


def _one(terms: dict[str, list[str]], kind: str) -> str | None:
    values = terms.get(kind)
    return values[0] if values else None


def _describe(
    idx: int, about: str, terms: dict[str, list[str]], deps: list[tuple[str, str, str]]
) -> dict[str, Any]:
    ptype = _one(terms, "predicateType")
    kind = kind_of(ptype)
    step: dict[str, Any] = {
        "index": idx,
        "about": about,
        "kind": kind,
        "predicateType": ptype,
        "time": _one(terms, "time"),
        "signers": terms.get("signer", []),
    }
    for key in ("identity", "step", "builder", "repo", "ref", "commit", "testResult"):
        if key in terms:
            step[key] = terms[key] if len(terms[key]) > 1 else terms[key][0]
    if kind in PRODUCERS:
        step["materials"] = [
            {"name": p, "version": v, "digest": d, "producedBy": []} for p, v, d in deps
        ]
    return step


def artifact_story(reader: AuditReader, digest: str, size: int) -> Story:
    """The story of ``digest`` as the first ``size`` records tell it; each VSA step carries the
    decision its body records (:func:`_decision`)."""
    with reader.store._conn() as conn:
        told = _story(conn, digest, size)
    vsas = [st for st in told.steps if st["kind"] == "vsa"][:MAX_DECISIONS]
    if vsas:
        records = {st["index"]: reader.store.record(st["index"]) for st in vsas}
        wanted = [bytes.fromhex(r.body.partition(":")[2]) for r in records.values()]
        bodies = reader.store.bodies(wanted)
        for st in vsas:
            body = bodies.get(bytes.fromhex(records[st["index"]].body.partition(":")[2]))
            if body is not None:
                st["decision"] = _decision(body[1])
    return told


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _decision(content: bytes) -> dict[str, Any]:
    """What a SLSA VSA (v1 or v0.2) decided, read from the stored body: the result, the verifier,
    the policy, the levels verified and when. Fields the body lacks are left out; the entry's
    exact body and proof are in the same answer for anyone who wants the rest."""
    pred = _dict((read_facts(content).statement or {}).get("predicate"))
    out: dict[str, Any] = {}
    fields = (
        ("result", pred.get("verificationResult")),
        ("verifier", _dict(pred.get("verifier")).get("id")),
        ("policy", _dict(pred.get("policy")).get("uri")),
        ("levels", pred.get("verifiedLevels")),
        ("timeVerified", pred.get("timeVerified")),
        ("resourceUri", pred.get("resourceUri")),
    )
    for name, value in fields:
        if isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            out[name] = value
    return out


def _story(conn: Connection, digest: str, size: int) -> Story:
    steps: dict[int, dict[str, Any]] = {}
    producers: dict[str, list[int]] = {}
    frontier, seen = [digest], {digest}
    for depth in range(MAX_DEPTH + 1):
        nxt: list[str] = []
        for d in frontier:
            idxs = q.search(conn, q.Filters(subjects=(d,)), size, -1, MAX_RECORDS)
            terms, deps = q.terms_of(conn, idxs), q.dependencies_of(conn, idxs)
            for i in idxs:
                step = _describe(i, d, terms[i], deps[i])
                if depth and step["kind"] not in PRODUCERS:
                    continue  # upstream: only what produced the materials
                steps.setdefault(i, step)
                if step["kind"] in PRODUCERS:
                    producers.setdefault(d, []).append(i)
                    for m in step.get("materials", []):
                        if m["digest"] and m["digest"] not in seen:
                            seen.add(m["digest"])
                            nxt.append(m["digest"])
        frontier = nxt
        if not frontier:
            break
    for step in steps.values():
        for m in step.get("materials", []):
            m["producedBy"] = producers.get(m["digest"], []) if m["digest"] else []
    statuses = q.vuln_statuses(conn, [digest], size)
    artifact = {
        "digest": digest,
        "producedBy": producers.get(digest, []),
        "vulnerabilities": {v: {"status": s, "index": i} for v, (s, i) in sorted(statuses.items())},
    }
    ordered = [steps[i] for i in sorted(steps)]
    return Story(artifact, ordered, sorted(steps))


@dataclass
class Changes:
    summary: dict[str, Any]
    indices: list[int]


def _version_key(package: str) -> Any:
    """A sort key for versions of ``package`` by its ecosystem's rules (univers), else text."""
    from univers.version_range import RANGE_CLASS_BY_SCHEMES

    purl_type = package[4:].split("/", 1)[0] if package.startswith("pkg:") else ""
    version_class: Any = getattr(RANGE_CLASS_BY_SCHEMES.get(purl_type), "version_class", None)

    def key(version: str) -> Any:
        with suppress(Exception):  # univers raises many types for an odd version: compare text
            if version_class is not None:
                return (1, version_class(version), "")
        return (0, None, version)

    return key


def _compare(package: str, old: str, new: str) -> str:
    key = _version_key(package)
    a, b = key(old), key(new)
    try:
        if a[0] == b[0] == 1:
            return "upgraded" if b[1] > a[1] else "downgraded" if b[1] < a[1] else "same"
    except TypeError:
        pass
    return "upgraded" if new > old else "downgraded"


def _packages(deps: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """package → version, for purl dependencies (the highest text version if several)."""
    out: dict[str, str] = {}
    for p, v, _ in deps:
        if p.startswith("pkg:") and v:
            out[p] = max(out.get(p, v), v)
    return out


def _build_deps(conn: Connection, digest: str, size: int) -> tuple[list[int], dict[str, str]]:
    idxs = q.search(conn, q.Filters(subjects=(digest,)), size, -1, MAX_RECORDS)
    terms, deps = q.terms_of(conn, idxs), q.dependencies_of(conn, idxs)
    found = [
        d for i in idxs if kind_of(_one(terms[i], "predicateType")) in PRODUCERS for d in deps[i]
    ]
    return idxs, _packages(found)


def changes(reader: AuditReader, old: str, new: str, size: int) -> Changes:
    with reader.store._conn() as conn:
        old_idx, old_deps = _build_deps(conn, old, size)
        new_idx, new_deps = _build_deps(conn, new, size)
        old_status = q.vuln_statuses(conn, [old], size)
        new_status = q.vuln_statuses(conn, [new], size)
    deps: dict[str, list[dict[str, str]]] = {
        "added": [],
        "removed": [],
        "upgraded": [],
        "downgraded": [],
    }
    for p in sorted(set(old_deps) | set(new_deps)):
        if p not in old_deps:
            deps["added"].append({"package": p, "version": new_deps[p]})
        elif p not in new_deps:
            deps["removed"].append({"package": p, "version": old_deps[p]})
        elif old_deps[p] != new_deps[p]:
            how = _compare(p, old_deps[p], new_deps[p])
            if how in deps:
                deps[how].append({"package": p, "from": old_deps[p], "to": new_deps[p]})
    open_old = {v for v, (s, _) in old_status.items() if s in q.OPEN}
    open_new = {v for v, (s, _) in new_status.items() if s in q.OPEN}
    gained = [{"vuln": v, "index": new_status[v][1]} for v in sorted(open_new - open_old)]
    fixed = []
    for v in sorted(open_old - open_new):
        status, idx = new_status.get(v, ("not reported", -1))
        fixed.append({"vuln": v, "status": status, "index": idx if idx >= 0 else None})
    summary = {
        "from": {"digest": old, "records": old_idx},
        "to": {"digest": new, "records": new_idx},
        "dependencies": deps,
        "vulnerabilities": {"gained": gained, "fixed": fixed},
    }
    return Changes(summary, sorted(set(old_idx) | set(new_idx)))
