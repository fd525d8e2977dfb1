"""in-toto Vulns v0.2 (``https://in-toto.io/attestation/vulns/v0.2``): one scanner run's findings.

An empty ``result`` list means the scanner found nothing. Each finding keeps the affected package
(purl), installed version and fixed versions as annotations so policy can match fixes later.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from attest._internal import fields as f
from attest._internal.frozen import Frozen, set_field
from attest.errors import InvalidStatement

__all__ = ["Severity", "VulnScan", "Vulnerability"]

_CODE = "ErrVulnsInvalid"


class Severity(Frozen):
    _fields = ("method", "score")
    method: str
    score: str

    def __init__(self, method: str, score: str) -> None:
        set_field(self, "method", method)
        set_field(self, "score", score)


class Vulnerability(Frozen):
    _fields = ("id", "severity", "annotations")
    id: str
    severity: tuple[Severity, ...]
    annotations: tuple[Mapping[str, Any], ...]

    def __init__(
        self,
        id: str,
        severity: tuple[Severity, ...] = (),
        annotations: tuple[Mapping[str, Any], ...] = (),
    ) -> None:
        set_field(self, "id", id)
        set_field(self, "severity", severity)
        set_field(self, "annotations", annotations)

    @classmethod
    def from_dict(cls, doc: Any) -> Vulnerability:
        if not isinstance(doc, dict):
            raise InvalidStatement(_CODE, "each scanner result must be an object")
        sev = doc.get("severity") or []
        ann = doc.get("annotations") or []
        if not isinstance(sev, list) or not isinstance(ann, list):
            raise InvalidStatement(_CODE, "severity and annotations must be lists")
        severities = []
        for s in sev:
            if not isinstance(s, dict):
                raise InvalidStatement(_CODE, "each severity must be an object")
            severities.append(
                Severity(f.text(s, "method", _CODE, required=True), str(s.get("score", "")))
            )
        return cls(f.text(doc, "id", _CODE, required=True), tuple(severities), tuple(ann))

    def to_dict(self) -> dict[str, Any]:
        return f.prune(
            {
                "id": self.id,
                "severity": [{"method": s.method, "score": s.score} for s in self.severity],
                "annotations": [dict(a) for a in self.annotations],
            }
        )


class VulnScan(Frozen):
    PREDICATE_TYPE: ClassVar[str] = "https://in-toto.io/attestation/vulns/v0.2"

    _fields = (
        "scanner_uri",
        "scanner_version",
        "db",
        "result",
        "scan_started_on",
        "scan_finished_on",
    )
    scanner_uri: str
    scanner_version: str
    db: Mapping[str, str]
    result: tuple[Vulnerability, ...]
    scan_started_on: datetime | None
    scan_finished_on: datetime | None

    def __init__(
        self,
        scanner_uri: str,
        scanner_version: str = "",
        db: Mapping[str, str] | None = None,
        result: tuple[Vulnerability, ...] = (),
        scan_started_on: datetime | None = None,
        scan_finished_on: datetime | None = None,
    ) -> None:
        set_field(self, "scanner_uri", scanner_uri)
        set_field(self, "scanner_version", scanner_version)
        set_field(self, "db", {} if db is None else db)
        set_field(self, "result", result)
        set_field(self, "scan_started_on", scan_started_on)
        set_field(self, "scan_finished_on", scan_finished_on)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> VulnScan:
        scanner = f.obj(doc, "scanner", _CODE, required=True)
        results = scanner.get("result")
        if results is None:
            results = []
        if not isinstance(results, list):
            raise InvalidStatement(_CODE, "scanner.result must be a list")
        md = f.obj(doc, "metadata", _CODE)
        return cls(
            scanner_uri=f.text(scanner, "uri", _CODE, required=True),
            scanner_version=f.text(scanner, "version", _CODE),
            db={k: str(v) for k, v in f.obj(scanner, "db", _CODE).items()},
            result=tuple(Vulnerability.from_dict(r) for r in results),
            scan_started_on=f.timestamp(md, "scanStartedOn", _CODE),
            scan_finished_on=f.timestamp(md, "scanFinishedOn", _CODE),
        )

    def to_dict(self) -> dict[str, Any]:
        scanner = f.prune(
            {"uri": self.scanner_uri, "version": self.scanner_version, "db": dict(self.db)}
        )
        scanner["result"] = [r.to_dict() for r in self.result]
        return f.prune(
            {
                "scanner": scanner,
                "metadata": f.prune(
                    {
                        "scanStartedOn": self.scan_started_on
                        and f.format_time(self.scan_started_on),
                        "scanFinishedOn": self.scan_finished_on
                        and f.format_time(self.scan_finished_on),
                    }
                ),
            }
        )
