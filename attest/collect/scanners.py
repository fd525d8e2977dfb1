"""Vulnerability scanner reports → the in-toto Vulns v0.2 predicate.

Grype, Trivy, Snyk (``snyk test --json``) and OSV-Scanner JSON are recognised by their shape.
Each finding keeps its id, severities (method = the scanner's source) and, as annotations, the
affected package (purl where the scanner gives one), the installed version and the fixed
versions — what a fix/VEX record and a deploy policy need later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from attest._internal import fields as f
from attest._internal.files import read_json
from attest.collect.deps._common import checked_purl, purl
from attest.errors import CollectorError
from attest.predicates import Severity, Vulnerability, VulnScan

__all__ = ["detect_format", "parse_scan_report"]


def _strings(value: Any, what: str) -> list[str]:
    """A list of strings, where a scanner may give one string, a list, or nothing."""
    if value in (None, ""):
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise ValueError(f"{what} must be a string or a list of strings, not {value!r}")
    return items


_PURL_TYPES = {"pip": "pypi", "PyPI": "pypi", "Go": "golang", "crates.io": "cargo"}


def _package(kind: str, name: Any, version: Any) -> str:
    """A purl for an ecosystem's package name (``@scope/x``, ``group:artifact``, a Go path)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a finding names no package (name {name!r})")
    kind = _PURL_TYPES.get(kind, kind)
    namespace, bare = None, name
    if kind == "maven" and ":" in name:
        namespace, _, bare = name.partition(":")
    elif kind in ("npm", "golang") and "/" in name:
        namespace, _, bare = name.rpartition("/")
    return purl(kind, bare, version, namespace)


def _package_name(text: str) -> str:
    """A report's package as recorded: a purl that passes the lock-file collectors' name checks,
    or a bare name that is no path (no empty, ``.``-led or backslashed part, no control
    character). ``ValueError`` otherwise: the report is refused, never signed as it came."""
    if text.startswith("pkg:"):
        return checked_purl(text)
    parts = text.split("/")
    if any(not p or p.startswith(".") or "\\" in p for p in parts) or not text.isprintable():
        raise ValueError(f"package name {text!r} is not a package name")
    return text


def _finding(
    vid: Any,
    severities: Iterable[tuple[str, Any]],
    package: Any,
    installed: str | None,
    fixed: Iterable[str],
    aliases: Iterable[str] = (),
) -> Vulnerability:
    if not isinstance(vid, str) or not vid:
        raise ValueError(f"a finding's id must be a non-empty string, not {vid!r}")
    if not isinstance(package, str) or not package:
        raise ValueError(f"finding {vid} names no package")
    annotation: dict[str, Any] = {"package": _package_name(package)}
    if installed:
        annotation["installedVersion"] = installed
    fixed_list = sorted({v for v in fixed if v})
    if fixed_list:
        annotation["fixedIn"] = fixed_list
    alias_list = sorted({a for a in aliases if a and a != vid})
    if alias_list:
        annotation["aliases"] = alias_list
    sev = tuple(Severity(m, str(s)) for m, s in severities if s not in (None, ""))
    return Vulnerability(id=vid, severity=sev, annotations=(annotation,))


def _time(value: Any) -> datetime | None:
    """A report's own time, when it gives one; ``ValueError`` when it is not a time."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"report time {value!r} is not a string")
    try:
        return f.parse_rfc3339(value)
    except ValueError as e:
        raise ValueError(f"report time {value!r} {e}") from e


def _grype(doc: dict[str, Any]) -> VulnScan:
    desc = doc.get("descriptor", {})
    db = desc.get("db", {}) or {}
    status = db.get("status", db) if isinstance(db, dict) else {}
    results = []
    for m in doc.get("matches", []):
        v, art = m["vulnerability"], m.get("artifact", {})
        sev = [(v.get("namespace") or "grype", v.get("severity"))]
        sev += [
            (c.get("source") or "cvss", c.get("metrics", {}).get("baseScore"))
            for c in v.get("cvss", [])
        ]
        related = [r.get("id", "") for r in m.get("relatedVulnerabilities", [])]
        results.append(
            _finding(
                v["id"],
                sev,
                art.get("purl") or art.get("name", ""),
                art.get("version"),
                v.get("fix", {}).get("versions", []),
                related,
            )
        )
    when = _time(desc.get("timestamp"))
    return VulnScan(
        scanner_uri=f"pkg:github/anchore/grype@{desc.get('version', '')}".rstrip("@"),
        scanner_version=str(desc.get("version", "")),
        db={
            k: str(v)
            for k, v in {
                "uri": status.get("from") or status.get("location", ""),
                "version": status.get("schemaVersion") or status.get("version", ""),
                "lastUpdate": status.get("built", ""),
            }.items()
            if v
        },
        result=tuple(results),
        scan_started_on=when,
        scan_finished_on=when,
    )


def _trivy(doc: dict[str, Any]) -> VulnScan:
    results = []
    for target in doc.get("Results") or []:
        for v in target.get("Vulnerabilities") or []:
            sev = [("trivy", v.get("Severity"))]
            for source, c in sorted((v.get("CVSS") or {}).items()):
                sev.append((f"{source}_cvss_v3", c.get("V3Score")))
            package = v.get("PkgIdentifier", {}).get("PURL") or v.get("PkgName", "")
            fixed = [x.strip() for x in str(v.get("FixedVersion") or "").split(",")]
            results.append(
                _finding(v["VulnerabilityID"], sev, package, v.get("InstalledVersion"), fixed)
            )
    version = str((doc.get("Trivy") or {}).get("Version", ""))
    when = _time(doc.get("CreatedAt"))
    return VulnScan(
        scanner_uri=f"pkg:github/aquasecurity/trivy@{version}".rstrip("@"),
        scanner_version=version,
        result=tuple(results),
        scan_started_on=when,
        scan_finished_on=when,
    )


def _snyk(doc: dict[str, Any] | list[dict[str, Any]]) -> VulnScan:
    projects = doc if isinstance(doc, list) else [doc]
    results = []
    for project in projects:
        manager = project.get("packageManager", "")
        for v in project.get("vulnerabilities", []):
            cves = _strings(v.get("identifiers", {}).get("CVE"), f"{v.get('id')} CVE")
            sev = [("snyk", v.get("severity")), ("cvss_score", v.get("cvssScore"))]
            package = v.get("packageName")
            if manager in ("pip", "npm", "cargo", "golang", "maven", "nuget", "gem"):
                package = _package(manager, package, v.get("version"))
            results.append(
                _finding(
                    v["id"],
                    sev,
                    package,
                    v.get("version"),
                    _strings(v.get("fixedIn"), f"{v.get('id')} fixedIn"),
                    cves,
                )
            )
    return VulnScan(scanner_uri="pkg:npm/snyk", result=tuple(results))


def _osv(doc: dict[str, Any]) -> VulnScan:
    results = []
    for source in doc.get("results", []):
        for pkg in source.get("packages", []):
            p = pkg.get("package", {})
            ecosystem = p.get("ecosystem", "")
            package = (
                _package(ecosystem, p.get("name"), p.get("version"))
                if ecosystem in ("PyPI", "npm", "Go", "crates.io")
                else p.get("name")
            )
            group_severity = {
                i: g.get("max_severity") for g in pkg.get("groups", []) for i in g.get("ids", [])
            }
            for v in pkg.get("vulnerabilities", []):
                sev = [(s.get("type", "cvss"), s.get("score")) for s in v.get("severity", [])]
                sev.append(("osv_max_severity", group_severity.get(v["id"])))
                sev.append(
                    ("database_specific", (v.get("database_specific") or {}).get("severity"))
                )
                fixed = [
                    e.get("fixed", "")
                    for a in v.get("affected", [])
                    for r in a.get("ranges", [])
                    for e in r.get("events", [])
                ]
                aliases = _strings(v.get("aliases"), f"{v.get('id')} aliases")
                results.append(_finding(v["id"], sev, package, p.get("version"), fixed, aliases))
    return VulnScan(scanner_uri="pkg:golang/github.com/google/osv-scanner", result=tuple(results))


def detect_format(doc: Any) -> str:  # noqa: PLR0911 - one return per scanner shape
    if (
        isinstance(doc, list)
        and doc
        and all(isinstance(d, dict) and "vulnerabilities" in d for d in doc)
    ):
        return "snyk"
    if not isinstance(doc, dict):
        return "unknown"
    if "matches" in doc and "descriptor" in doc:
        return "grype"
    if "SchemaVersion" in doc and ("Results" in doc or "ArtifactName" in doc):
        return "trivy"
    if "vulnerabilities" in doc and ("packageManager" in doc or "projectName" in doc):
        return "snyk"
    results = doc.get("results")
    if isinstance(results, list) and all(isinstance(r, dict) and "packages" in r for r in results):
        return "osv-scanner"
    return "unknown"


_PARSERS: dict[str, Callable[[Any], VulnScan]] = {
    "grype": _grype,
    "trivy": _trivy,
    "snyk": _snyk,
    "osv-scanner": _osv,
}


def parse_scan_report(path: Path, *, now: datetime) -> tuple[str, VulnScan]:
    """The scanner name and its findings. A report without scan times gets ``now``."""
    doc = read_json(path)
    kind = detect_format(doc)
    if kind == "unknown":
        raise CollectorError(f"{path}: not a Grype, Trivy, Snyk or OSV-Scanner JSON report")
    try:
        scan = _PARSERS[kind](doc)
    except (KeyError, TypeError, AttributeError) as e:
        raise CollectorError(
            f"{path}: malformed {kind} report ({e.__class__.__name__}: {e})"
        ) from e
    except ValueError as e:  # a finding or time that is not what the report format says
        raise CollectorError(f"{path}: malformed {kind} report: {e}") from e
    if scan.scan_finished_on is None:
        scan = VulnScan(
            scanner_uri=scan.scanner_uri,
            scanner_version=scan.scanner_version,
            db=scan.db,
            result=scan.result,
            scan_started_on=scan.scan_started_on or now,
            scan_finished_on=now,
        )
    return kind, scan
