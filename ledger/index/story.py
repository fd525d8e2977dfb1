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

Every answer is bounded, and says where it was cut: the producers of a digest (builds and links)
are read apart from its other records, so no number of tests or scans crowds them out; past a
bound (:data:`MAX_PRODUCERS`, :data:`MAX_RECORDS`, :data:`MAX_DECISIONS`, :data:`MAX_DIGESTS`,
:data:`MAX_DEPTH`) the newest are kept and :attr:`Story.truncated` names the part that was cut
(``complete`` is false); ``GET /api/v1/search?subject=`` pages through every record of a digest.
A story reads the records about all the digests of one level in one query and describes each
record once, so its cost grows with the records it returns, not with their subjects times their
materials.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from ledger.index import query as q
from ledger.index.derived import (
    PRODUCER_PREFIXES,
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
MAX_RECORDS = 1000  # other records of the artifact (or of a build) than its producers, newest kept
MAX_PRODUCERS = 2000  # (producer, digest) pairs read for the digests of one level, newest kept
MAX_DIGESTS = 2000  # material digests followed upstream, per answer
MAX_DECISIONS = 100  # VSA steps whose body is read for the decision it records, newest kept
MAX_VULNS = 1000  # vulnerabilities of the artifact listed (with their latest-status records)
MAX_PRODUCED_BY = 100  # producers listed in one material's producedBy, newest kept
MAX_PRODUCED_BY_TOTAL = 10_000  # producedBy entries of all materials of one answer
PAGE_HINT = "GET /api/v1/search?subject={digest} pages through every record about it"


def cut(part: str, limit: int, digest: str | None = None, **more: Any) -> dict[str, Any]:
    """One entry of ``truncated``: which part of the answer stopped at which bound."""
    out: dict[str, Any] = {"part": part, "limit": limit, "digest": digest, **more}
    if digest is not None:
        out["page"] = PAGE_HINT.format(digest=digest)
    return out


@dataclass
class Story:
    artifact: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    truncated: list[dict[str, Any]] = field(default_factory=list)


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
    """The story of ``digest`` as the first ``size`` records tell it; each of the newest
    :data:`MAX_DECISIONS` VSA steps carries the decision its body records
    (:func:`~ledger.index.derived.decision`), the older ones are named in ``truncated``."""
    with reader.store._conn() as conn:
        told = _story(conn, digest, size)
    vsas = [st for st in told.steps if st["kind"] == "vsa"]
    if len(vsas) > MAX_DECISIONS:
        told.truncated.append(
            cut(
                "decisions",
                MAX_DECISIONS,
                digest,
                steps=[st["index"] for st in vsas[:-MAX_DECISIONS]],
            )
        )
        vsas = vsas[-MAX_DECISIONS:]
    if vsas:
        records = {st["index"]: reader.store.record(st["index"]) for st in vsas}
        wanted = [bytes.fromhex(r.body.partition(":")[2]) for r in records.values()]
        bodies = reader.store.bodies(wanted)
        for st in vsas:
            body = bodies.get(bytes.fromhex(records[st["index"]].body.partition(":")[2]))
            if body is not None:
                st["decision"] = decision(body[1])
    return told


class _Described:
    """Each record's terms and materials, read once per answer."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.terms: dict[int, dict[str, list[str]]] = {}
        self.deps: dict[int, list[tuple[str, str, str]]] = {}

    def read(self, idxs: Sequence[int]) -> None:
        new = sorted({i for i in idxs if i not in self.terms})
        if new:
            self.terms.update(q.terms_of(self.conn, new))
            self.deps.update(q.dependencies_of(self.conn, new))

    def kind(self, idx: int) -> str:
        return kind_of(_one(self.terms[idx], "predicateType"))

    def step(self, idx: int, about: str) -> dict[str, Any]:
        return _describe(idx, about, self.terms[idx], self.deps[idx])


def _records_about(
    conn: Connection, digest: str, size: int, truncated: list[dict[str, Any]]
) -> list[int]:
    """Every producer of ``digest`` (to :data:`MAX_PRODUCERS`) and its newest
    :data:`MAX_RECORDS` other records, ascending; each bound hit is added to ``truncated``."""
    made = q.about(conn, (digest,), size, MAX_PRODUCERS + 1, PRODUCER_PREFIXES)
    if len(made) > MAX_PRODUCERS:
        truncated.append(cut("producers", MAX_PRODUCERS, digest))
    found = q.about(conn, (digest,), size, MAX_RECORDS + 1, PRODUCER_PREFIXES, without=True)
    if len(found) > MAX_RECORDS:
        truncated.append(cut("records", MAX_RECORDS, digest))
    keep = {i for i, _ in made[-MAX_PRODUCERS:]} | {i for i, _ in found[-MAX_RECORDS:]}
    return sorted(keep)


class _Walk:
    """The steps found so far, level by level, and the material digests still to follow."""

    def __init__(self, digest: str, described: _Described) -> None:
        self.described = described
        self.steps: dict[int, dict[str, Any]] = {}
        self.producers: dict[str, list[int]] = {}
        self.seen, self.followed, self.dropped = {digest}, 0, 0

    def level(self, found: list[tuple[int, str]], depth: int) -> list[str]:
        """Take one level's records; the material digests of the next level."""
        nxt: list[str] = []
        for i, d in found:
            step = self.steps.get(i)
            if step is None:  # described and followed once, however many digests it is about
                if depth and self.described.kind(i) not in PRODUCERS:
                    continue  # upstream: only what produced the materials
                step = self.steps[i] = self.described.step(i, d)
                if step["kind"] in PRODUCERS:
                    nxt.extend(self._follow(step["materials"]))
            if step["kind"] in PRODUCERS:
                self.producers.setdefault(d, []).append(i)
        return nxt

    def _follow(self, materials: list[dict[str, Any]]) -> list[str]:
        out = []
        for m in materials:
            if m["digest"] and m["digest"] not in self.seen:
                self.seen.add(m["digest"])
                if self.followed < MAX_DIGESTS:
                    self.followed += 1
                    out.append(m["digest"])
                else:
                    self.dropped += 1
        return out


def _story(conn: Connection, digest: str, size: int) -> Story:
    told = Story({})
    described = _Described(conn)
    walk = _Walk(digest, described)
    idxs = _records_about(conn, digest, size, told.truncated)
    described.read(idxs)
    found = [(i, digest) for i in idxs]
    for depth in range(MAX_DEPTH + 1):
        nxt = walk.level(found, depth)
        if not nxt:
            break
        if depth == MAX_DEPTH:
            told.truncated.append(cut("depth", MAX_DEPTH, digests=len(nxt)))
            break
        found = _producers_of(conn, nxt, size, depth + 1, told.truncated)
        described.read([i for i, _ in found])
    if walk.dropped:
        told.truncated.append(cut("materials", MAX_DIGESTS, digests=walk.dropped))
    steps, producers = walk.steps, walk.producers
    _produced_by(steps, producers, told.truncated)
    statuses = _vulnerabilities(conn, digest, size, told.truncated)
    cited = {i for _, i in statuses.values()}  # a VEX naming the digest as a product, too
    described.read(sorted(cited - set(steps)))
    for i in sorted(cited - set(steps)):
        if digest in described.terms[i].get("subject", ()):
            steps[i] = described.step(i, digest)  # its latest status, past the records read
    _uncut_records(conn, digest, size, steps, told.truncated)
    told.artifact = {
        "digest": digest,
        "producedBy": producers.get(digest, []),
        "vulnerabilities": {v: {"status": s, "index": i} for v, (s, i) in sorted(statuses.items())},
    }
    told.steps = [steps[i] for i in sorted(steps)]
    told.indices = sorted(set(steps) | cited)
    return told


def _vulnerabilities(
    conn: Connection, digest: str, size: int, truncated: list[dict[str, Any]]
) -> dict[str, tuple[str, int]]:
    """The latest status of each vulnerability recorded about ``digest``: the first
    :data:`MAX_VULNS` by vulnerability id, and a ``vulnerabilities`` cut past them."""
    statuses = q.vuln_statuses(conn, [digest], size)
    if len(statuses) <= MAX_VULNS:
        return statuses
    truncated.append(cut("vulnerabilities", MAX_VULNS, digest, vulnerabilities=len(statuses)))
    return {v: statuses[v] for v in sorted(statuses)[:MAX_VULNS]}


def _uncut_records(
    conn: Connection,
    digest: str,
    size: int,
    steps: dict[int, dict[str, Any]],
    truncated: list[dict[str, Any]],
) -> None:
    """Take back the ``records`` cut of ``digest`` when the latest-status records brought every
    record about it into the story after all (the cut said records were left out)."""
    said = [t for t in truncated if t["part"] == "records" and t["digest"] == digest]
    if not said:
        return
    bound = MAX_RECORDS + MAX_VULNS
    rows = q.about(conn, (digest,), size, bound + 1, PRODUCER_PREFIXES, without=True)
    if len(rows) <= bound and all(i in steps for i, _ in rows):
        truncated.remove(said[0])


def _produced_by(
    steps: dict[int, dict[str, Any]],
    producers: dict[str, list[int]],
    truncated: list[dict[str, Any]],
) -> None:
    """Each material's ``producedBy``: the newest :data:`MAX_PRODUCED_BY` producers of its digest
    in the story, and no more than :data:`MAX_PRODUCED_BY_TOTAL` in the whole answer (in step
    order); a digest whose list was shortened anywhere is named by a ``producers`` cut
    (``material: true``). Its producers are steps of the story either way."""
    budget, short = MAX_PRODUCED_BY_TOTAL, set()
    for i in sorted(steps):
        for m in steps[i].get("materials", []):
            made = producers.get(m["digest"], []) if m["digest"] else []
            keep = min(len(made), MAX_PRODUCED_BY, budget)
            if keep < len(made):
                short.add(m["digest"])
            m["producedBy"] = made[len(made) - keep :]
            budget -= keep
    truncated.extend(cut("producers", MAX_PRODUCED_BY, d, material=True) for d in sorted(short))


def _producers_of(
    conn: Connection, digests: list[str], size: int, depth: int, truncated: list[dict[str, Any]]
) -> list[tuple[int, str]]:
    """``(index, digest)`` of the producers of any of ``digests`` (one level), ascending, each
    record under the first of ``digests`` it produced; at most :data:`MAX_PRODUCERS` pairs."""
    rows = q.about(conn, digests, size, MAX_PRODUCERS + 1, PRODUCER_PREFIXES)
    if len(rows) > MAX_PRODUCERS:
        if len(digests) == 1:
            truncated.append(cut("producers", MAX_PRODUCERS, digests[0], depth=depth))
        else:  # the level's digests together: each is named, with the route that pages them
            truncated.append(
                cut(
                    "producers", MAX_PRODUCERS, depth=depth, digests=sorted(digests), page=PAGE_HINT
                )
            )
        rows = rows[-MAX_PRODUCERS:]  # the newest
    order = {d: k for k, d in enumerate(digests)}
    return sorted(rows, key=lambda r: (r[0], order[r[1]]))


@dataclass
class Changes:
    summary: dict[str, Any]
    indices: list[int]
    truncated: list[dict[str, Any]] = field(default_factory=list)


def _build_deps(
    conn: Connection, digest: str, size: int, truncated: list[dict[str, Any]]
) -> tuple[list[int], dict[str, str]]:
    idxs = _records_about(conn, digest, size, truncated)
    terms, deps = q.terms_of(conn, idxs), q.dependencies_of(conn, idxs)
    found = [
        d for i in idxs if kind_of(_one(terms[i], "predicateType")) in PRODUCERS for d in deps[i]
    ]
    return idxs, packages(found)


def _with_proved(conn: Connection, idxs: list[int], digest: str, proved: set[int]) -> list[int]:
    """``idxs`` and every record of ``proved`` about ``digest`` (one read past a bound): a build's
    records are every proved record about it."""
    more = sorted(proved - set(idxs))
    terms = q.terms_of(conn, more)
    return sorted([*idxs, *(i for i in more if digest in terms[i].get("subject", ()))])


def changes(reader: AuditReader, old: str, new: str, size: int) -> Changes:
    truncated: list[dict[str, Any]] = []
    with reader.store._conn() as conn:
        old_idx, old_deps = _build_deps(conn, old, size, truncated)
        new_idx, new_deps = _build_deps(conn, new, size, truncated)
        old_status = q.vuln_statuses(conn, [old], size)
        new_status = q.vuln_statuses(conn, [new], size)
        cited = {i for _, i in (*old_status.values(), *new_status.values())}
        proved = set(old_idx) | set(new_idx) | cited
        old_idx = _with_proved(conn, old_idx, old, proved)
        new_idx = _with_proved(conn, new_idx, new, proved)
    summary = {
        "from": {"digest": old, "records": old_idx},
        "to": {"digest": new, "records": new_idx},
        "dependencies": dependency_changes(old_deps, new_deps),
        "vulnerabilities": vuln_changes(old_status, new_status),
    }
    return Changes(summary, sorted(proved), truncated)
