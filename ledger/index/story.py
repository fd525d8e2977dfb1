"""An artifact's story and the changes between two builds, read from the audit indexes.

Story: every record about the artifact (its subject digest), in log order, classified by
predicate type — the step or build that produced it, with its materials; tests, scans, VEX fixes
and VSAs about it — and, for each material with a digest, the steps that produced *that* (matching
products to materials across links), up to :data:`MAX_DEPTH` levels. Changes: dependency versions
added, removed, upgraded and downgraded (compared with the ecosystem's rules through ``univers``)
and vulnerabilities gained and fixed, between two builds.

The route proves every record it names, and the records each derived part is computed from: the
steps, the record of each vulnerability's latest status (for the story's artifact, and for both
builds of a change — also the ones that did not change, so a client can recompute what changed),
each build's records. The rules are :mod:`ledger.index.derived`'s, which a client runs again on
the proved bodies (:mod:`ledger.client_checks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from ledger.index import query as q
from ledger.index.derived import (
    PRODUCERS,
    decision,
    dependency_changes,
    kind_of,
    packages,
    vuln_changes,
)
from ledger.index.evidence import AuditReader

__all__ = ["MAX_DEPTH", "Changes", "Story", "artifact_story", "changes", "kind_of"]


MAX_DEPTH = 8
MAX_RECORDS = 1000  # per artifact digest
MAX_DECISIONS = 100  # VSA steps whose body is read for the decision it records


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
    decision its body records (:func:`~ledger.index.derived.decision`)."""
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
                st["decision"] = decision(body[1])
    return told


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
    cited = {i for _, i in statuses.values()}  # a VEX naming the digest as a product, too
    return Story(artifact, ordered, sorted(set(steps) | cited))


@dataclass
class Changes:
    summary: dict[str, Any]
    indices: list[int]


def _build_deps(conn: Connection, digest: str, size: int) -> tuple[list[int], dict[str, str]]:
    idxs = q.search(conn, q.Filters(subjects=(digest,)), size, -1, MAX_RECORDS)
    terms, deps = q.terms_of(conn, idxs), q.dependencies_of(conn, idxs)
    found = [
        d for i in idxs if kind_of(_one(terms[i], "predicateType")) in PRODUCERS for d in deps[i]
    ]
    return idxs, packages(found)


def changes(reader: AuditReader, old: str, new: str, size: int) -> Changes:
    with reader.store._conn() as conn:
        old_idx, old_deps = _build_deps(conn, old, size)
        new_idx, new_deps = _build_deps(conn, new, size)
        old_status = q.vuln_statuses(conn, [old], size)
        new_status = q.vuln_statuses(conn, [new], size)
    summary = {
        "from": {"digest": old, "records": old_idx},
        "to": {"digest": new, "records": new_idx},
        "dependencies": dependency_changes(old_deps, new_deps),
        "vulnerabilities": vuln_changes(old_status, new_status),
    }
    cited = {i for _, i in (*old_status.values(), *new_status.values())}
    return Changes(summary, sorted(set(old_idx) | set(new_idx) | cited))
