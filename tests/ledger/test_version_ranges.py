"""purl + version-range matching (`search?purl=…&versions=…`) with real packages and each
ecosystem's own rules through univers: pre-releases, epochs, `~` / `^` ranges."""

from __future__ import annotations

import pytest

from ledger.errors import BadQuery
from ledger.index.params import parse_versions

CASES = [
    # PyPI (PEP 440): pre-releases sort before the release, epochs before everything
    ("pkg:pypi/requests", "vers:pypi/>=2.0|<2.31.0", "2.30.0", True),
    ("pkg:pypi/requests", "vers:pypi/>=2.0|<2.31.0", "2.31.0", False),
    ("pkg:pypi/requests", "vers:pypi/>=2.0|<2.31.0", "2.31.0rc1", True),
    ("pkg:pypi/requests", "vers:pypi/>=2.0|<2.31.0", "1.2.3", False),
    ("pkg:pypi/django", "vers:pypi/<4.2.8", "4.2.8.dev1", True),
    ("pkg:pypi/pywin32", "vers:pypi/>=1!0", "1!227", True),
    ("pkg:pypi/pywin32", "vers:pypi/>=1!0", "306", False),  # epoch 0 sorts before epoch 1
    ("pkg:pypi/urllib3", ">=2.2.0,<2.3.0", "2.2.9", True),  # PEP 440 native syntax
    ("pkg:pypi/urllib3", ">=2.2.0,<2.3.0", "2.3.0", False),
    # npm (semver): ^ and ~, pre-releases
    ("pkg:npm/lodash", "vers:npm/<4.17.21", "4.17.20", True),
    ("pkg:npm/lodash", "vers:npm/<4.17.21", "4.17.21", False),
    ("pkg:npm/%40angular/core", "^16.0.0", "16.2.12", True),
    ("pkg:npm/%40angular/core", "^16.0.0", "17.0.0", False),
    ("pkg:npm/minimist", "~1.2.0", "1.2.8", True),
    ("pkg:npm/minimist", "~1.2.0", "1.3.0", False),
    ("pkg:npm/next", "vers:npm/<14.0.0", "14.0.0-canary.1", True),
    # Maven: the log4shell question, with qualifiers
    ("pkg:maven/org.apache.logging.log4j/log4j-core", "vers:maven/<2.17.1", "2.14.1", True),
    ("pkg:maven/org.apache.logging.log4j/log4j-core", "vers:maven/<2.17.1", "2.17.1", False),
    ("pkg:maven/org.apache.logging.log4j/log4j-core", "vers:maven/<2.17.1", "2.0-beta9", True),
    ("pkg:maven/org.apache.logging.log4j/log4j-core", "vers:maven/<2.17.1", "2.17.10", False),
    ("pkg:maven/com.google.guava/guava", "vers:maven/>=32.0.0", "32.1.3-jre", True),
    # Go modules (semver with a v prefix)
    ("pkg:golang/golang.org/x/net", "vers:golang/<v0.17.0", "v0.16.0", True),
    ("pkg:golang/golang.org/x/net", "vers:golang/<v0.17.0", "v0.17.0", False),
    ("pkg:golang/golang.org/x/net", "vers:golang/<v0.17.0", "v0.17.0-rc.1", True),
    # Debian: epochs and ~ (sorts before anything, even the end of the string)
    ("pkg:deb/debian/openssl", "vers:deb/<3.0.11-1~deb12u2", "3.0.11-1~deb12u1", True),
    ("pkg:deb/debian/openssl", "vers:deb/<3.0.11-1~deb12u2", "3.0.11-1", False),
    ("pkg:deb/debian/openssl", "vers:deb/<3.0.11-1", "3.0.11-1~deb12u2", True),
    ("pkg:deb/debian/libc6", "vers:deb/>=1:2.0", "2.36-9", False),  # no epoch = epoch 0
    ("pkg:deb/debian/libc6", "vers:deb/>=1:2.0", "1:2.0-1", True),
]


@pytest.mark.parametrize(("purl", "versions", "version", "want"), CASES)
def test_ranges_compare_by_the_ecosystems_rules(
    purl: str, versions: str, version: str, want: bool
) -> None:
    matcher = parse_versions(purl, versions)
    assert matcher is not None
    assert matcher.matches(version) is want


def test_an_exact_purl_matches_only_its_version() -> None:
    m = parse_versions("pkg:pypi/requests@2.31.0", None)
    assert m is not None and m.package == "pkg:pypi/requests"
    assert m.matches("2.31.0") and not m.matches("2.31.1")


@pytest.mark.parametrize(
    ("purl", "versions"),
    [
        ("pkg:pypi/requests", "vers:npm/<1"),  # scheme of another ecosystem
        ("pkg:pypi/requests", "vers:pypi/<<<"),
        ("pkg:pypi/requests", "vers:pypi/"),
        ("pkg:pypi/requests@1", "<2"),
        ("requests", "<2"),
        ("pkg:unknownecosystem/x", "<2"),
    ],
)
def test_bad_ranges_are_bad_queries(purl: str, versions: str) -> None:
    with pytest.raises(BadQuery):
        parse_versions(purl, versions)
