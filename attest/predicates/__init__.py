"""Typed predicate models, keyed by ``predicateType``; unknown types are carried as opaque JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attest.predicates.link import Link
from attest.predicates.openvex import OpenVEX, VexStatement
from attest.predicates.slsa import Builder, BuildMetadata, SLSAProvenance
from attest.predicates.test_result import TestResult
from attest.predicates.vsa import VerificationSummary
from attest.predicates.vulns import Severity, Vulnerability, VulnScan

__all__ = [
    "PREDICATE_MODELS",
    "BuildMetadata",
    "Builder",
    "Link",
    "OpaquePredicate",
    "OpenVEX",
    "Predicate",
    "SLSAProvenance",
    "Severity",
    "TestResult",
    "VerificationSummary",
    "VexStatement",
    "VulnScan",
    "Vulnerability",
    "parse_predicate",
]


@dataclass(frozen=True)
class OpaquePredicate:
    """A predicate type this library has no model for: kept as given, never rejected."""

    predicate_type: str
    value: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.value)


Predicate = (
    SLSAProvenance | Link | TestResult | VulnScan | OpenVEX | VerificationSummary | OpaquePredicate
)

PREDICATE_MODELS: dict[str, Any] = {
    m.PREDICATE_TYPE: m
    for m in (SLSAProvenance, Link, TestResult, VulnScan, OpenVEX, VerificationSummary)
}


def parse_predicate(predicate_type: str, value: Mapping[str, Any]) -> Predicate:
    """The typed model for ``predicate_type``, or :class:`OpaquePredicate` when unknown."""
    model = PREDICATE_MODELS.get(predicate_type)
    if model is None:
        return OpaquePredicate(predicate_type, value)
    parsed: Predicate = model.from_dict(value)
    return parsed
