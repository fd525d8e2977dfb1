"""JUnit XML test reports (pytest ``--junitxml``, Maven Surefire, Go's gotestsum, Jest…) → the
names of passed, failed and skipped tests. Parsed with defusedxml: a report is input."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from attest.errors import CollectorError

__all__ = ["JUnitSummary", "parse_junit"]


@dataclass(frozen=True)
class JUnitSummary:
    passed: tuple[str, ...]
    failed: tuple[str, ...]
    skipped: tuple[str, ...]

    @property
    def result(self) -> str:
        return "FAILED" if self.failed else "PASSED"


def _name(case: Element) -> str:
    cls, name = case.get("classname", ""), case.get("name", "")
    return f"{cls}::{name}" if cls else name


def parse_junit(paths: list[Path]) -> JUnitSummary:
    passed: list[str] = []
    failed: list[str] = []
    skipped: list[str] = []
    for path in paths:
        try:
            root = ElementTree.parse(path).getroot()
        except OSError as e:
            raise CollectorError(f"cannot read {path}: {e.strerror}") from e
        except (ElementTree.ParseError, DefusedXmlException) as e:
            raise CollectorError(f"{path} is not a JUnit XML report: {e}") from e
        if root is None or root.tag not in ("testsuites", "testsuite"):
            raise CollectorError(
                f"{path} is not a JUnit XML report (root <{getattr(root, 'tag', '')}>)"
            )
        for case in root.iter("testcase"):
            kinds = {child.tag for child in case}
            if kinds & {"failure", "error"}:
                failed.append(_name(case))
            elif "skipped" in kinds:
                skipped.append(_name(case))
            else:
                passed.append(_name(case))
    return JUnitSummary(tuple(passed), tuple(failed), tuple(skipped))
