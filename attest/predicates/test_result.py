"""in-toto Test Result v0.1 (``https://in-toto.io/attestation/test-result/v0.1``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, cast

from attest._internal import fields as f
from attest._internal.frozen import Frozen, set_field
from attest.errors import InvalidStatement
from attest.statement import ResourceDescriptor

__all__ = ["TestResult"]

Result = Literal["PASSED", "WARNED", "FAILED"]
RESULTS: tuple[Result, ...] = ("PASSED", "WARNED", "FAILED")


class TestResult(Frozen):
    PREDICATE_TYPE: ClassVar[str] = "https://in-toto.io/attestation/test-result/v0.1"
    __test__: ClassVar[bool] = False  # not a pytest test class

    _fields = (
        "result",
        "configuration",
        "url",
        "passed_tests",
        "warned_tests",
        "failed_tests",
    )
    result: Result
    configuration: tuple[ResourceDescriptor, ...]
    url: str
    passed_tests: tuple[str, ...]
    warned_tests: tuple[str, ...]
    failed_tests: tuple[str, ...]

    def __init__(
        self,
        result: Result,
        configuration: tuple[ResourceDescriptor, ...] = (),
        url: str = "",
        passed_tests: tuple[str, ...] = (),
        warned_tests: tuple[str, ...] = (),
        failed_tests: tuple[str, ...] = (),
    ) -> None:
        set_field(self, "result", result)
        set_field(self, "configuration", configuration)
        set_field(self, "url", url)
        set_field(self, "passed_tests", passed_tests)
        set_field(self, "warned_tests", warned_tests)
        set_field(self, "failed_tests", failed_tests)
        self.__post_init__()

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
