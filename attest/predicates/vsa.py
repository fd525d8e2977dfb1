"""SLSA Verification Summary v1 (``https://slsa.dev/verification_summary/v1``): a deploy decision."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal, cast

from attest._internal import fields as f
from attest._internal.frozen import Frozen, set_field
from attest.errors import InvalidStatement
from attest.statement import ResourceDescriptor

__all__ = ["VerificationSummary"]

_CODE = "ErrVSAInvalid"
Verdict = Literal["PASSED", "FAILED"]


class VerificationSummary(Frozen):
    PREDICATE_TYPE: ClassVar[str] = "https://slsa.dev/verification_summary/v1"

    _fields = (
        "verifier_id",
        "time_verified",
        "resource_uri",
        "verification_result",
        "policy",
        "input_attestations",
        "verified_levels",
        "dependency_levels",
        "slsa_version",
    )
    verifier_id: str
    time_verified: datetime
    resource_uri: str
    verification_result: Verdict
    policy: Mapping[str, Any]
    input_attestations: tuple[ResourceDescriptor, ...]
    verified_levels: tuple[str, ...]
    dependency_levels: Mapping[str, int]
    slsa_version: str

    def __init__(
        self,
        verifier_id: str,
        time_verified: datetime,
        resource_uri: str,
        verification_result: Verdict,
        policy: Mapping[str, Any] | None = None,
        input_attestations: tuple[ResourceDescriptor, ...] = (),
        verified_levels: tuple[str, ...] = (),
        dependency_levels: Mapping[str, int] | None = None,
        slsa_version: str = "",
    ) -> None:
        set_field(self, "verifier_id", verifier_id)
        set_field(self, "time_verified", time_verified)
        set_field(self, "resource_uri", resource_uri)
        set_field(self, "verification_result", verification_result)
        set_field(self, "policy", {} if policy is None else policy)
        set_field(self, "input_attestations", input_attestations)
        set_field(self, "verified_levels", verified_levels)
        set_field(self, "dependency_levels", {} if dependency_levels is None else dependency_levels)
        set_field(self, "slsa_version", slsa_version)
        self.__post_init__()

    def __post_init__(self) -> None:
        if self.verification_result not in ("PASSED", "FAILED"):
            raise InvalidStatement(_CODE, "verificationResult must be PASSED or FAILED")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> VerificationSummary:
        verifier = f.obj(doc, "verifier", _CODE, required=True)
        when = f.timestamp(doc, "timeVerified", _CODE)
        if when is None:
            raise InvalidStatement(_CODE, "timeVerified is required")
        return cls(
            verifier_id=f.text(verifier, "id", _CODE, required=True),
            time_verified=when,
            resource_uri=f.text(doc, "resourceUri", _CODE, required=True),
            verification_result=cast(
                Verdict, f.text(doc, "verificationResult", _CODE, required=True)
            ),
            policy=f.obj(doc, "policy", _CODE),
            input_attestations=f.descriptors(doc, "inputAttestations", _CODE),
            verified_levels=f.strings(doc, "verifiedLevels", _CODE),
            dependency_levels=f.obj(doc, "dependencyLevels", _CODE),
            slsa_version=f.text(doc, "slsaVersion", _CODE),
        )

    def to_dict(self) -> dict[str, Any]:
        return f.prune(
            {
                "verifier": {"id": self.verifier_id},
                "timeVerified": f.format_time(self.time_verified),
                "resourceUri": self.resource_uri,
                "policy": dict(self.policy),
                "inputAttestations": [a.to_dict() for a in self.input_attestations],
                "verificationResult": self.verification_result,
                "verifiedLevels": list(self.verified_levels),
                "dependencyLevels": dict(self.dependency_levels),
                "slsaVersion": self.slsa_version,
            }
        )
