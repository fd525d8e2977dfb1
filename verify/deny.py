"""The deny rules, pure: dependencies inside a denied purl + vers range (compared by the
ecosystem's own rules, ``univers``), and vulnerabilities at or above a severity that no VEX record
(``fixed`` / ``not_affected``, the latest about that artifact: :mod:`verify.vex`) covers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from attest.predicates import Severity, SLSAProvenance, VulnScan
from verify.artifact import Artifact
from verify.errors import PolicyFileError
from verify.policy import SEVERITIES, DependencyDeny
from verify.trust import Attestation
from verify.vex import cleared_for, package

__all__ = ["dependency_findings", "open_vulnerabilities", "severity_rank"]

# vendors' own words, by the rank they mean: Red Hat's Low/Moderate/Important/Critical, GitHub's
# and Red Hat's "moderate", and the words below low (Grype's "Negligible")
_VENDOR_WORDS = {"moderate": 2, "important": 3, "none": 0, "negligible": 0}
# CVSS v4.0's base metrics, in the specification's order (Table 23 of the v4.0 spec)
_V4_BASE_METRICS = ("AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA")


@lru_cache(maxsize=4096)
def _package(purl: str) -> tuple[str, str | None] | None:
    """``(pkg:type/namespace/name, version)`` of a purl, normalised as VEX products are
    (:func:`verify.vex.package`: case folded where the purl type is case-insensitive, PEP 503 for
    pypi), or ``None`` if it is not one (remembered: the same dependency recurs across a build's
    attestations, and parsing a purl costs more than checking a signature)."""
    from packageurl import PackageURL

    found = package(purl)
    if found is None:
        return None
    kind, namespace, name, version, _ = found
    return PackageURL(type=kind, namespace=namespace or None, name=name).to_string(), version


def _purls(entry: Any) -> Iterable[str]:
    """Every purl a resolved dependency or link material names — in its ``uri``, its
    ``annotations.purl`` or its ``name`` (the fields the audit index reads; ``pkg:`` in any
    case) — a purl without a version given the version the entry states (``annotations.version``
    or ``version``), if any."""
    if not isinstance(entry, dict):
        return
    notes = entry.get("annotations")
    notes = notes if isinstance(notes, dict) else {}
    version = notes.get("version") or entry.get("version")
    named = (entry.get("uri"), notes.get("purl"), entry.get("name"))
    for value in dict.fromkeys(v for v in named if isinstance(v, str)):
        if value[:4].lower() != "pkg:":
            continue
        value = "pkg:" + value[4:]  # noqa: PLW2901 - the scheme is case-insensitive
        found = _package(value)
        if found is not None and found[1] is None and isinstance(version, str) and version:
            yield f"{found[0]}@{version}"
        else:
            yield value


def _dependencies(atts: Sequence[Attestation]) -> Iterable[tuple[str, Attestation]]:
    for a in atts:
        pred = a.verified.predicate
        if isinstance(pred, SLSAProvenance):
            for d in pred.resolved_dependencies:
                yield from ((purl, a) for purl in _purls(d.to_dict()))
        raw = (a.statement.predicate or {}).get("materials")
        if a.statement.predicate_type.startswith("https://in-toto.io/attestation/link/"):
            for m in raw if isinstance(raw, list) else []:
                yield from ((purl, a) for purl in _purls(m))


def _in_range(rule: DependencyDeny, version: str | None) -> bool:
    if rule.versions is None:
        return True
    if version is None:
        return True  # an unknown version may be a denied one
    from univers.version_range import VersionRange

    try:
        vr: Any = VersionRange.from_string(rule.versions)  # type: ignore[no-untyped-call]
    except Exception as e:  # univers raises many types for a bad range
        raise PolicyFileError(f"deny.dependencies: {rule.versions!r}: {e}") from e
    try:
        return bool(vr.version_class(version) in vr)
    except Exception:
        return True  # a version the ecosystem cannot read is not proved outside the range


def dependency_findings(rules: Sequence[DependencyDeny], atts: Sequence[Attestation]) -> list[str]:
    """One line per dependency inside a denied range."""
    denied: dict[str, list[DependencyDeny]] = {}
    for rule in rules:
        parsed = _package(rule.purl)
        if parsed is None:
            raise PolicyFileError(f"deny.dependencies: {rule.purl!r} is not a purl")
        denied.setdefault(parsed[0], []).append(rule)
    out = []
    for uri, a in _dependencies(atts):
        parsed = _package(uri)
        if parsed is None:  # the audit index may read a package in it: fail closed
            out.append(f"{a.label} depends on {uri!r}, which cannot be read as a purl")
            continue
        if parsed[0] not in denied:
            continue
        for rule in denied[parsed[0]]:
            if _in_range(rule, parsed[1]):
                out.append(f"{a.label} depends on {uri} (denied: {rule.versions or 'any'})")
    return out


def severity_rank(score: str) -> int | None:
    """0 (none) to 4 (critical), from a word, a CVSS base score, or a CVSS vector (v2, v3.x,
    v4.0: its base score, never lowered by threat or environmental metrics); ``None`` when it
    cannot be ranked (the caller fails closed: so does ``unknown``, Grype's and Trivy's word)."""
    text = score.strip().lower()
    if text in SEVERITIES:
        return SEVERITIES.index(text) + 1
    if text in _VENDOR_WORDS:
        return _VENDOR_WORDS[text]
    value = _base_score(score.strip())
    if value is None or not 0.0 <= value <= 10.0:  # nan, inf and 11 are no CVSS score
        return None
    return next((r for r, low in ((4, 9.0), (3, 7.0), (2, 4.0), (1, 0.1)) if value >= low), 0)


def _base_score(text: str) -> float | None:
    """A number, or a CVSS vector's base score (the ``cvss`` library, FIRST's formulas)."""
    try:
        return float(text)
    except ValueError:
        pass
    if len(text) > 200:  # the longest CVSS vector (v4.0, every metric) is about 160 characters
        return None
    from cvss import CVSS2, CVSS3, CVSS4
    from cvss.exceptions import CVSSError

    if text.startswith("(") and text.endswith(")") and "Au:" in text:
        text = text[1:-1]  # NVD showed v2 vectors in parentheses: (AV:N/AC:L/Au:N/C:P/I:P/A:P)
    kind = CVSS4 if text.startswith("CVSS:4.") else CVSS3 if text.startswith("CVSS:3.") else None
    if kind is None and "Au:" in text and not text.startswith("CVSS:"):
        kind = CVSS2  # v2 vectors have no prefix (OSV's CVSS_V2: AV:N/AC:L/Au:N/C:P/I:P/A:P)
    if kind is None:
        return None
    try:
        vector = kind(text)  # the whole vector must be well formed, its other metrics too
        if isinstance(vector, CVSS4):
            # v4's score folds in the threat and environmental metrics (E:U, MVC:N…): the
            # vector's author could lower a base-critical finding below any threshold
            base = "/".join(f"{k}:{vector.metrics[k]}" for k in _V4_BASE_METRICS)
            vector = CVSS4(f"CVSS:4.0/{base}")
        # v2 and v3.x keep the base score apart from the temporal and environmental ones
        return float(vector.base_score)
    except (CVSSError, ValueError, ArithmeticError, KeyError):
        return None


def open_vulnerabilities(
    level: str, atts: Sequence[Attestation], arts: Sequence[Artifact]
) -> tuple[list[str], list[str]]:
    """(open findings at or above ``level``, vulnerability ids a VEX record covers): a finding
    is covered when, for every artifact the scan names, the latest trusted VEX statement about
    that vulnerability and that artifact (:mod:`verify.vex`) says ``fixed`` or ``not_affected``."""
    floor = SEVERITIES.index(level) + 1
    cleared = cleared_for(atts, arts)
    found, covered = [], []
    for a in atts:
        if not isinstance(a.verified.predicate, VulnScan):
            continue
        subjects = [dict(s.digest) for s in a.statement.subjects]
        scanned = [art.name for art in arts if art.named_by(subjects)]
        for v in a.verified.predicate.result:
            said = _severity(v.severity, floor)
            if said is None:
                continue
            packages = [n["package"] for n in v.annotations if isinstance(n.get("package"), str)]
            if scanned and all(cleared.clears(v.id, name, packages) for name in scanned):
                covered.append(v.id)
            else:
                found.append(f"{v.id} ({said}) in {a.label}")
    return sorted(set(found)), sorted(set(covered))


def _severity(severities: Sequence[Severity], floor: int) -> str | None:
    """How a finding meets the threshold ``floor`` (its severity word), or ``None`` if it is
    below. Fails closed: a finding with no severity, or one that cannot be ranked (an unknown
    word, a malformed vector), may be critical, so it meets any threshold, and says so."""
    ranks = [severity_rank(s.score) for s in severities]
    known = [r for r in ranks if r is not None]
    if known and max(known) >= floor:
        return SEVERITIES[max(known) - 1]
    unranked = [s.score for s, r in zip(severities, ranks, strict=True) if r is None]
    if not severities:
        return "no severity given: it could not be ranked, so it counts as meeting the threshold"
    if unranked:
        return (
            f"severity {unranked[0][:80]!r} could not be ranked, so it counts as meeting "
            "the threshold"
        )
    return None
