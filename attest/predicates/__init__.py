"""Typed predicate models, keyed by ``predicateType``; unknown types are carried as opaque JSON.

Each model's module is imported the first time it is needed (a statement of its type is parsed,
or its class is named): a deploy gate that reads SLSA provenance and test results does not pay
for the VSA, link and OpenVEX models at every start.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any

from attest._internal.frozen import Frozen, set_field

if TYPE_CHECKING:
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

# predicateType -> (module under attest.predicates, model class); each class's PREDICATE_TYPE
# is its key here (tests/attest/test_predicates.py holds them equal)
_MODELS: dict[str, tuple[str, str]] = {
    "https://slsa.dev/provenance/v1": ("slsa", "SLSAProvenance"),
    "https://in-toto.io/attestation/link/v0.3": ("link", "Link"),
    "https://in-toto.io/attestation/test-result/v0.1": ("test_result", "TestResult"),
    "https://in-toto.io/attestation/vulns/v0.2": ("vulns", "VulnScan"),
    "https://openvex.dev/ns/v0.2.0": ("openvex", "OpenVEX"),
    "https://slsa.dev/verification_summary/v1": ("vsa", "VerificationSummary"),
}
_HOMES: dict[str, str] = {  # every exported model class -> its module
    "Builder": "slsa",
    "BuildMetadata": "slsa",
    "SLSAProvenance": "slsa",
    "Link": "link",
    "TestResult": "test_result",
    "Severity": "vulns",
    "Vulnerability": "vulns",
    "VulnScan": "vulns",
    "OpenVEX": "openvex",
    "VexStatement": "openvex",
    "VerificationSummary": "vsa",
}


_LOADED: dict[tuple[str, str], Any] = {}  # each class once: import_module per call was ~3 µs


def _load(module: str, name: str) -> Any:
    found = _LOADED.get((module, name))
    if found is None:
        found = _LOADED[module, name] = getattr(import_module(f"attest.predicates.{module}"), name)
    return found


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return _load(_HOMES[name], name)
    if name == "Predicate":
        classes = [_load(m, c) for m, c in _MODELS.values()]
        union: Any = OpaquePredicate
        for c in classes:
            union = c | union
        return union
    raise AttributeError(f"module 'attest.predicates' has no attribute {name!r}")


class OpaquePredicate(Frozen):
    """A predicate type this library has no model for: kept as given, never rejected."""

    _fields = ("predicate_type", "value")
    predicate_type: str
    value: Mapping[str, Any]

    def __init__(self, predicate_type: str, value: Mapping[str, Any]) -> None:
        set_field(self, "predicate_type", predicate_type)
        set_field(self, "value", value)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.value)


if TYPE_CHECKING:
    Predicate = (
        SLSAProvenance
        | Link
        | TestResult
        | VulnScan
        | OpenVEX
        | VerificationSummary
        | OpaquePredicate
    )


class _Models(Mapping[str, Any]):
    """``predicateType`` -> model class, the class's module imported on first lookup."""

    def __getitem__(self, predicate_type: str) -> Any:
        return _load(*_MODELS[predicate_type])

    def __iter__(self) -> Iterator[str]:
        return iter(_MODELS)

    def __len__(self) -> int:
        return len(_MODELS)


PREDICATE_MODELS: Mapping[str, Any] = _Models()


def parse_predicate(predicate_type: str, value: Mapping[str, Any]) -> Predicate:
    """The typed model for ``predicate_type``, or :class:`OpaquePredicate` when unknown."""
    if predicate_type not in _MODELS:
        return OpaquePredicate(predicate_type, value)
    parsed: Predicate = PREDICATE_MODELS[predicate_type].from_dict(value)
    return parsed
