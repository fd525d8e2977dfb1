"""What :mod:`ledger.client` checks of a story or a change beyond the proofs: the derived parts
are what the proved entries say, by the rules the server used to index them
(:func:`ledger.index.facts.read_facts`) and to derive them (:mod:`ledger.index.derived`).

Every record a story or a change cites is among the proved entries and says what is claimed
(kind, predicate type, time, subject, materials, the VSA's decision, each vulnerability's latest
status), every upstream step is about a digest the materials lead to from the artifact, each
material's producers are every producer of it in the story, every proved record about the
artifact is in the story, the dependency and vulnerability changes are recomputed and must be
equal, and ``complete`` agrees with ``truncated`` (each cut checked against the story and the
bounds of :mod:`ledger.index.story`). A proved body holding a value the index cannot hold makes
the answer incomplete on the client's side (an ``unindexable`` cut). Any difference is an
:class:`~ledger.errors.IntegrityError` naming the entry; ``complete: true`` stays the server's
claim (see :mod:`ledger.client_checks`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ledger.client_checks import refuse, terms_of
from ledger.index import story as bounds
from ledger.index.derived import (
    OPEN,
    PRODUCERS,
    decision,
    dependency_changes,
    is_open,
    kind_of,
    latest_statuses,
    packages,
    vuln_changes,
)
from ledger.index.facts import read_facts
from ledger.index.rows import indexed, unindexable

if TYPE_CHECKING:
    from ledger.client import Evidence

__all__ = ["check_changes", "check_story"]

_STEP_TERMS = ("step", "builder", "repo", "ref", "commit", "testResult")
_STEP_KEYS = {"index", "about", "kind", "predicateType", "time", "materials", "decision"}
_UNVERIFIED_STEP_KEYS = ("signers", "identity")  # the trust registry's attribution


class _Proved:
    """The proved entries of one answer, each body read once."""

    def __init__(self, ev: Evidence) -> None:
        self.entries = {e.index: e for e in ev.entries}
        read = {e.index: read_facts(e.body) for e in ev.entries}
        self.facts = {i: indexed(f) for i, f in read.items()}
        self.terms = {i: terms_of(f) for i, f in self.facts.items()}
        self.unheld = {i: unindexable(f) for i, f in read.items()}

    def completed(self, complete: bool, cuts: list[dict[str, Any]]) -> bool:
        """``complete`` as the client sees it: false, with an ``unindexable`` cut of its own per
        value, when a proved body holds a value the index could not (a NUL, an overlong
        version or digest): the server derived from the index, which left it out."""
        for i, found in sorted(self.unheld.items()):
            for name, reason in found:
                c = {"part": "unindexable", "index": i, "field": name, "reason": reason}
                if c not in cuts:
                    cuts.append(c)
                complete = False
        return complete

    def cited(self, value: Any, what: str) -> int:
        if type(value) is not int or value not in self.entries:
            raise refuse(f"{what} cites record {value!r}, which the answer does not prove")
        return value

    def about(self, digest: str) -> set[int]:
        return {i for i, t in self.terms.items() if digest in t.get("subject", ())}

    def kind(self, i: int) -> str:
        return kind_of(self.ptype(i))

    def ptype(self, i: int) -> str | None:
        got = sorted(self.terms[i].get("predicateType", ()))
        return got[0] if got else None

    def statuses(self, product: str) -> dict[str, tuple[int, set[str]]]:
        return latest_statuses(((i, self.facts[i].vulns) for i in sorted(self.entries)), product)


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise refuse(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise refuse(f"{what} is not a list")
    return value


def _values(value: Any) -> set[str]:
    if value is None:
        return set()
    return set(value) if isinstance(value, list) else {value}


def _completeness(rest: dict[str, Any]) -> tuple[bool, list[dict[str, Any]]]:
    """The answer's ``complete`` and ``truncated`` (taken out of ``rest``), consistent with each
    other. Completeness is the server's claim: no answer can show a record left out."""
    complete, truncated = rest.pop("complete", None), rest.pop("truncated", None)
    if type(complete) is not bool:
        raise refuse("the answer does not say whether it is complete")
    cuts = [copy.deepcopy(_obj(t, "a truncated part")) for t in _list(truncated, "truncated")]
    if complete == bool(cuts):
        raise refuse(f"the answer says complete is {complete}, and {len(cuts)} parts were cut")
    return complete, cuts


def _levels(p: _Proved, steps: dict[int, dict[str, Any]], digest: str) -> int:
    """How many levels of producers the story's steps reach upstream of ``digest``."""
    by_about: dict[str, list[int]] = {}
    for i, st in steps.items():
        by_about.setdefault(st["about"], []).append(i)
    level, seen, todo = 0, {digest}, [digest]
    while todo:
        nxt: list[str] = []
        for d in todo:
            for i in by_about.get(d, []):
                if p.kind(i) in PRODUCERS:
                    nxt.extend({m.digest for m in p.facts[i].deps if m.digest} - seen)
        seen.update(nxt)
        todo = sorted(set(nxt))
        level += bool(todo)
    return level


def _check_cuts(
    p: _Proved, steps: dict[int, dict[str, Any]], digest: str, cuts: list[dict[str, Any]]
) -> None:
    """Each cut of a story is one the server makes, at its bound, about what the story shows: a
    cut switches a check off, so it is taken on nobody's word (h36 F6)."""
    bound = {
        "producers": (bounds.MAX_PRODUCERS, bounds.MAX_PRODUCED_BY),
        "records": (bounds.MAX_RECORDS,),
        "decisions": (bounds.MAX_DECISIONS,),
        "materials": (bounds.MAX_DIGESTS,),
        "depth": (bounds.MAX_DEPTH,),
        "vulnerabilities": (bounds.MAX_VULNS,),
    }
    mats = {m["digest"] for st in steps.values() for m in st.get("materials", []) if m["digest"]}
    mine = [i for i, st in steps.items() if st["about"] == digest]
    vsas = sorted(i for i in mine if p.kind(i) == "vsa")
    for c in cuts:
        part = c.get("part")
        if part not in bound or c.get("limit") not in bound[str(part)]:
            raise refuse(f"the answer says it cut {part!r} at {c.get('limit')!r}: no such bound")
        if part == "producers" and (not _named(c) or not _named(c) <= mats | {digest}):
            raise refuse(f"a producers cut names {sorted(_named(c))}, not digests of the story")
        if part in ("records", "decisions", "vulnerabilities") and c.get("digest") != digest:
            raise refuse(f"a {part} cut names {c.get('digest')!r}, not the artifact")
        others = [i for i in mine if p.kind(i) not in PRODUCERS]
        if part == "records" and len(others) < bounds.MAX_RECORDS:
            raise refuse(f"a records cut, and the story has {len(others)} other records")
        if part == "materials" and len(mats) <= bounds.MAX_DIGESTS:
            raise refuse(f"a materials cut, and the story names {len(mats)} material digests")
        if part == "depth" and _levels(p, steps, digest) < bounds.MAX_DEPTH:
            raise refuse("a depth cut, and the story does not reach that deep")
        oldest = vsas[: max(0, len(vsas) - bounds.MAX_DECISIONS)]
        if part == "decisions" and (not oldest or c.get("steps") != oldest):
            raise refuse(f"a decisions cut of {c.get('steps')!r}, not the oldest of the VSAs")


def _check_step(p: _Proved, st: dict[str, Any], digest: str) -> int:
    i = p.cited(st.get("index"), "a story step")
    unknown = set(st) - _STEP_KEYS - set(_STEP_TERMS) - set(_UNVERIFIED_STEP_KEYS)
    if unknown:
        raise refuse(f"story step {i} carries {sorted(unknown)}, which no record proves", i)
    terms, kind = p.terms[i], p.kind(i)
    about = st.get("about")
    if not isinstance(about, str) or about not in terms.get("subject", ()):
        raise refuse(f"story step {i} is not about {about!r}", i)
    if about != digest and kind not in PRODUCERS:
        raise refuse(f"story step {i} is upstream of the artifact but produced nothing", i)
    if st.get("predicateType") != p.ptype(i) or st.get("kind") != kind:
        raise refuse(f"story step {i} is a {kind} ({p.ptype(i)}), not {st.get('kind')!r}", i)
    if st.get("time") != p.entries[i].record.time:
        raise refuse(f"story step {i} was logged at {p.entries[i].record.time}", i)
    for key in _STEP_TERMS:
        if _values(st.get(key)) != terms.get(key, set()):
            raise refuse(f"story step {i}: its body says another {key}", i)
    if "decision" in st and (kind != "vsa" or st["decision"] != decision(p.entries[i].body)):
        raise refuse(f"story step {i}: its body records another decision", i)
    if kind == "vsa" and "decision" not in st:
        st["decision"] = decision(p.entries[i].body)  # its proved body says it (h36 F6)
    if kind in PRODUCERS:
        _check_materials(p, i, st.get("materials"))
    elif "materials" in st:
        raise refuse(f"story step {i} is a {kind}, which has no materials", i)
    return i


def _check_materials(p: _Proved, i: int, materials: Any) -> None:
    claimed = set()
    for item in _list(materials, f"story step {i} materials"):
        m = _obj(item, f"story step {i} material")
        claimed.add((m.get("name"), m.get("version"), m.get("digest")))
        for cited in _list(m.get("producedBy"), f"story step {i} producedBy"):
            j = p.cited(cited, f"story step {i} producedBy")
            if p.kind(j) not in PRODUCERS or m.get("digest") not in p.terms[j].get("subject", ()):
                raise refuse(f"record {j} did not produce material {m.get('digest')}", j)
    if claimed != {(d.package, d.version, d.digest) for d in p.facts[i].deps}:
        raise refuse(f"story step {i}: its body names other materials", i)


_UPSTREAM = ("producers", "materials", "depth")  # cuts that leave producers out


def _named(c: dict[str, Any]) -> set[str]:
    """The digests a cut names: its ``digest``, or a level's ``digests``."""
    if isinstance(c.get("digest"), str):
        return {c["digest"]}
    return {d for d in _list(c.get("digests", []), "a cut's digests") if isinstance(d, str)}


def _upstream_cuts(cuts: list[dict[str, Any]]) -> tuple[bool, set[str]]:
    """(whether a cut left producers out across the story — materials or depth not followed;
    the digests whose producers a cut names)."""
    blanket, named = False, set()
    for c in cuts:
        if c.get("part") == "producers":
            named |= _named(c)
        elif c.get("part") in _UPSTREAM:
            blanket = True
    return blanket, named


def _check_upstream(
    p: _Proved, steps: dict[int, dict[str, Any]], digest: str, cuts: list[dict[str, Any]]
) -> None:
    """Every step is about the artifact or about a digest its producers' materials lead to
    (artifact → its producers' materials → their producers …), and, unless the answer cut
    producers, each material's ``producedBy`` is every producer in the story of that digest —
    some of them when a ``producers`` cut names the digest."""
    by_about: dict[str, list[int]] = {}
    for i, st in steps.items():
        by_about.setdefault(st["about"], []).append(i)
    reached, todo = {digest}, [digest]
    while todo:
        for i in by_about.get(todo.pop(), []):
            if p.kind(i) in PRODUCERS:
                new = {d.digest for d in p.facts[i].deps if d.digest} - reached
                reached |= new
                todo.extend(sorted(new))
    for i, st in steps.items():
        if st["about"] not in reached:
            raise refuse(
                f"story step {i} is about {st['about']}, which no material of the story leads to", i
            )
    _check_produced_by(p, steps, cuts)


def _check_produced_by(
    p: _Proved, steps: dict[int, dict[str, Any]], cuts: list[dict[str, Any]]
) -> None:
    blanket, named = _upstream_cuts(cuts)
    if blanket:
        return
    made: dict[str, set[int]] = {}
    for i in steps:
        if p.kind(i) in PRODUCERS:
            for subject in p.terms[i].get("subject", ()):
                made.setdefault(subject, set()).add(i)
    for i, st in steps.items():
        for m in st.get("materials", []):
            listed, found = set(m["producedBy"]), made.get(m["digest"], set())
            if m["digest"] in named and listed <= found:
                continue  # the answer said it cut this digest's list
            if m["digest"] and listed != found:
                raise refuse(
                    f"story step {i}: material {m['digest']} was produced by "
                    f"{sorted(made.get(m['digest'], ()))} in the story, not {m['producedBy']}",
                    i,
                )


def _vuln_bound(cuts: list[dict[str, Any]], digest: str) -> int | None:
    """The bound of a ``vulnerabilities`` cut of ``digest``, when the answer says it made one."""
    for c in cuts:
        if c.get("part") == "vulnerabilities" and c.get("digest") == digest:
            limit = c.get("limit")
            if type(limit) is not int or limit < 1:
                raise refuse(f"the vulnerabilities cut has no bound: {limit!r}")
            return limit
    return None


def _check_vulnerabilities(
    p: _Proved, claimed: Any, digest: str, cuts: list[dict[str, Any]]
) -> None:
    claimed = _obj(claimed, "the artifact's vulnerabilities")
    latest = p.statuses(digest)
    bound = _vuln_bound(cuts, digest)
    if bound is not None:  # the first ``bound`` by id: every proved one before the last listed
        last = max(claimed, default="")
        latest = {v: x for v, x in latest.items() if v <= last}
        if len(claimed) != bound:
            raise refuse(f"the vulnerabilities cut at {bound}, and {len(claimed)} are listed")
    if set(claimed) != set(latest):
        raise refuse(
            f"the vulnerabilities of {digest} are {sorted(claimed)}, the proved records say "
            f"{sorted(latest)}"
        )
    for v, item in claimed.items():
        c = _obj(item, f"vulnerability {v}")
        idx, statuses = latest[v]
        status = c.get("status")
        if c.get("index") != idx or not _status_fits(status, statuses):
            raise refuse(
                f"{v}: the latest proved record about {digest} is {idx} ({sorted(statuses)}), "
                f"not {c.get('index')!r} ({status!r})",
                idx,
            )


def _status_fits(status: Any, statuses: set[str]) -> bool:
    """The server keeps one status of the latest record: an open one if any is open."""
    return status in statuses and (status in OPEN or not is_open(statuses))


def check_story(ev: Evidence, digest: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the story and artifact, checked; what the client cannot check: the signer names)."""
    rest = dict(ev.unverified)
    complete, cuts = _completeness(rest)
    story = copy.deepcopy(_list(rest.pop("story", None), "story"))
    artifact = copy.deepcopy(_obj(rest.pop("artifact", None), "artifact"))
    p = _Proved(ev)
    if artifact.get("digest") != digest or set(artifact) != {
        "digest",
        "producedBy",
        "vulnerabilities",
    }:
        raise refuse(
            f"the story is about {artifact.get('digest')!r}, not {digest} asked (an answer to "
            "another question)"
        )
    steps: dict[int, dict[str, Any]] = {}
    for st in story:
        i = _check_step(p, _obj(st, "a story step"), digest)
        if i in steps:
            raise refuse(f"story step {i} is listed twice", i)
        steps[i] = st
    missing = p.about(digest) - set(steps)
    if missing:
        raise refuse(f"the story leaves out proved records about {digest}: {sorted(missing)}")
    _check_cuts(p, steps, digest, cuts)
    _check_upstream(p, steps, digest, cuts)
    producers = {i for i, st in steps.items() if st["about"] == digest and p.kind(i) in PRODUCERS}
    cited = {p.cited(j, "producedBy") for j in _list(artifact.get("producedBy"), "producedBy")}
    if cited != producers:
        raise refuse(f"{digest} was produced by {sorted(producers)}, not {sorted(cited)}")
    _check_vulnerabilities(p, artifact["vulnerabilities"], digest, cuts)
    for key in _UNVERIFIED_STEP_KEYS:
        found = {i: st.pop(key) for i, st in steps.items() if key in st}
        if found:
            rest[key] = found
    complete = p.completed(complete, cuts)
    checked = {"story": story, "artifact": artifact, "complete": complete, "truncated": cuts}
    return checked, rest


def _build(p: _Proved, side: Any, digest: str, what: str) -> dict[str, str]:
    side = _obj(side, what)
    if side.get("digest") != digest:
        raise refuse(f"{what} is not {digest} as asked")
    records = {p.cited(i, what) for i in _list(side.get("records"), f"{what} records")}
    about = p.about(digest)
    if records != about:
        raise refuse(f"{what}: the proved records about {digest} are {sorted(about)}")
    deps = [
        (d.package, d.version, d.digest)
        for i in sorted(records)
        if p.kind(i) in PRODUCERS
        for d in p.facts[i].deps
    ]
    return packages(deps)


def _pick(latest: Mapping[str, tuple[int, set[str]]]) -> dict[str, tuple[str, int]]:
    return {v: (min([s for s in st if s in OPEN] or st), idx) for v, (idx, st) in latest.items()}


def check_changes(ev: Evidence, old: str, new: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the changes, recomputed and equal to the server's; the members left unchecked)."""
    rest = dict(ev.unverified)
    complete, cuts = _completeness(rest)
    c = copy.deepcopy(_obj(rest.pop("changes", None), "changes"))
    if set(c) != {"from", "to", "dependencies", "vulnerabilities"}:
        raise refuse(f"changes has members {sorted(c)}")
    p = _Proved(ev)
    old_deps = _build(p, c["from"], old, "from")
    new_deps = _build(p, c["to"], new, "to")
    if c["dependencies"] != dependency_changes(old_deps, new_deps):
        raise refuse("the dependency changes are not what the proved builds say")
    new_latest = p.statuses(new)
    want = vuln_changes(_pick(p.statuses(old)), _pick(new_latest))
    got = _obj(c["vulnerabilities"], "vulnerabilities")
    fixed = _list(got.get("fixed"), "fixed")
    if got.get("gained") != want["gained"] or set(got) != {"gained", "fixed"}:
        raise refuse("the vulnerabilities gained are not what the proved records say")
    keys = [(_obj(f, "fixed").get("vuln"), f.get("index")) for f in fixed]
    if keys != [(f["vuln"], f["index"]) for f in want["fixed"]]:
        raise refuse("the vulnerabilities fixed are not what the proved records say")
    for f in fixed:
        statuses = new_latest.get(f["vuln"], (-1, {"not reported"}))[1]
        if not _status_fits(f.get("status"), statuses) or set(f) != {"vuln", "status", "index"}:
            raise refuse(f"{f['vuln']}: the proved records give another status")
    complete = p.completed(complete, cuts)
    return {"changes": c, "complete": complete, "truncated": cuts}, rest
