"""What the story and changes routes derive from records, as pure functions of their bodies.

The server (:mod:`ledger.index.story`) and the client (:mod:`ledger.client_checks`) both call
these, so a client recomputes the derived part of an answer from the proved entries with the
same rules the server used: a record's kind from its predicate type, the decision a VSA
records, the latest status of each vulnerability, the dependency versions of a build and how
they changed. Only :func:`compare` needs ``univers`` (imported when called).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import suppress
from typing import Any

from ledger.index.facts import VulnFact, read_facts

__all__ = [
    "OPEN",
    "PRODUCERS",
    "PRODUCER_PREFIXES",
    "compare",
    "decision",
    "dependency_changes",
    "is_open",
    "kind_of",
    "latest_statuses",
    "packages",
    "vuln_changes",
]

OPEN = ("affected", "under_investigation")
_KINDS = (
    ("https://in-toto.io/attestation/link/", "step"),
    ("https://slsa.dev/provenance/", "build"),
    ("https://in-toto.io/attestation/test-result/", "test"),
    ("https://in-toto.io/attestation/vulns/", "scan"),
    ("https://openvex.dev/ns", "vex"),
    ("https://slsa.dev/verification_summary/", "vsa"),
)
PRODUCERS = ("step", "build")
# the predicate-type prefixes of the producers' kinds (:func:`kind_of`), for the index to search
PRODUCER_PREFIXES = tuple(prefix for prefix, kind in _KINDS if kind in PRODUCERS)


def kind_of(predicate_type: str | None) -> str:
    for prefix, kind in _KINDS:
        if predicate_type and predicate_type.startswith(prefix):
            return kind
    return "other"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def decision(content: bytes) -> dict[str, Any]:
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


def latest_statuses(
    vulns: Iterable[tuple[int, Iterable[VulnFact]]], product: str
) -> dict[str, tuple[int, set[str]]]:
    """For each vulnerability the records say anything about ``product``: the latest record's
    index and every status it gives (``ledger.index.query.vuln_statuses`` keeps one of them,
    an open one if any is open)."""
    out: dict[str, tuple[int, set[str]]] = {}
    for idx, facts in vulns:
        for f in facts:
            if f.product != product:
                continue
            old = out.get(f.vuln)
            if old is None or idx > old[0]:
                out[f.vuln] = (idx, {f.status})
            elif idx == old[0]:
                old[1].add(f.status)
    return out


def is_open(statuses: Iterable[str]) -> bool:
    return any(s in OPEN for s in statuses)


def vuln_changes(
    old: Mapping[str, tuple[str, int]], new: Mapping[str, tuple[str, int]]
) -> dict[str, list[dict[str, Any]]]:
    """Vulnerabilities open in the new build and not the old (``gained``, with the record that
    says so) and open in the old but not the new (``fixed``, with the new status and its record,
    or ``not reported`` and ``None``). ``old``/``new``: vulnerability → (status, index)."""
    open_old = {v for v, (s, _) in old.items() if s in OPEN}
    open_new = {v for v, (s, _) in new.items() if s in OPEN}
    gained = [{"vuln": v, "index": new[v][1]} for v in sorted(open_new - open_old)]
    fixed = []
    for v in sorted(open_old - open_new):
        status, idx = new.get(v, ("not reported", -1))
        fixed.append({"vuln": v, "status": status, "index": idx if idx >= 0 else None})
    return {"gained": gained, "fixed": fixed}


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


def compare(package: str, old: str, new: str) -> str:
    key = _version_key(package)
    a, b = key(old), key(new)
    try:
        if a[0] == b[0] == 1:
            return "upgraded" if b[1] > a[1] else "downgraded" if b[1] < a[1] else "same"
    except TypeError:
        pass
    return "upgraded" if new > old else "downgraded"


def packages(deps: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """package → version, for purl dependencies (the highest text version if several)."""
    out: dict[str, str] = {}
    for p, v, _ in deps:
        if p.startswith("pkg:") and v:
            out[p] = max(out.get(p, v), v)
    return out


def dependency_changes(
    old: Mapping[str, str], new: Mapping[str, str]
) -> dict[str, list[dict[str, str]]]:
    """Packages added, removed, upgraded and downgraded between two builds' ``packages``."""
    deps: dict[str, list[dict[str, str]]] = {
        "added": [],
        "removed": [],
        "upgraded": [],
        "downgraded": [],
    }
    for p in sorted(set(old) | set(new)):
        if p not in old:
            deps["added"].append({"package": p, "version": new[p]})
        elif p not in new:
            deps["removed"].append({"package": p, "version": old[p]})
        elif old[p] != new[p]:
            how = compare(p, old[p], new[p])
            if how in deps:
                deps[how].append({"package": p, "from": old[p], "to": new[p]})
    return deps
