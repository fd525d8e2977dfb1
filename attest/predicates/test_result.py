"""in-toto Test Result v0.1 (``https://in-toto.io/attestation/test-result/v0.1``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

from attest._internal import fields as f
from attest.errors import InvalidStatement
from attest.statement import ResourceDescriptor

__all__ = ["TestResult"]

Result = Literal["PASSED", "WARNED", "FAILED"]
RESULTS: tuple[Result, ...] = ("PASSED", "WARNED", "FAILED")


@dataclass(frozen=True)
class TestResult:
    PREDICATE_TYPE: ClassVar[str] = "https://in-toto.io/attestation/test-result/v0.1"
    __test__: ClassVar[bool] = False  # not a pytest test class

    result: Result
    configuration: tuple[ResourceDescriptor, ...] = ()
    url: str = ""
    passed_tests: tuple[str, ...] = ()
    warned_tests: tuple[str, ...] = ()
    failed_tests: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.result not in RESULTS:
            raise InvalidStatement(
                "ErrTestResultInvalid", f"result must be one of {', '.join(RESULTS)}"
            )

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> TestResult:
        code = "ErrTestResultInvalid"
        return cls(
            result=cast(Result, f.text(doc, "result", code, required=True)),
            configuration=f.descriptors(doc, "configuration", code),
            url=f.text(doc, "url", code),
            passed_tests=f.strings(doc, "passedTests", code),
            warned_tests=f.strings(doc, "warnedTests", code),
            failed_tests=f.strings(doc, "failedTests", code),
        )

    def to_dict(self) -> dict[str, Any]:
        return f.prune(
            {
                "result": self.result,
                "configuration": [c.to_dict() for c in self.configuration],
                "url": self.url,
                "passedTests": list(self.passed_tests),
                "warnedTests": list(self.warned_tests),
                "failedTests": list(self.failed_tests),
            }
        )
