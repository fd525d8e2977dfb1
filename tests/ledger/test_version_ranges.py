"""Version ranges of the dependency search (ledger.index.ranges via params.parse_versions): vers
and each ecosystem's native syntax, compared with the ecosystem's own rules (univers), on real
purls and versions; malformed ranges are BadQuery with a reason. Pure: no database."""

from __future__ import annotations

import pytest

from ledger.errors import BadQuery
from ledger.index.params import parse_versions

# (purl, range, versions in it, versions not in it)
CASES = [
    # PyPI, PEP 440: compatible release, wildcards, exclusions, pre-/post-/dev-releases
    (
        "pkg:pypi/requests",
        "~=2.1",
        ["2.1", "2.1.1", "2.31.0", "2.32.0rc1", "2.99.post1"],
        ["2.0.9", "2.1rc1", "3.0", "3.0rc1", "3.0.dev1"],
    ),
    (
        "pkg:pypi/django",
        "~=4.2.0",
        ["4.2", "4.2.11", "4.2.16.post1"],
        ["4.1.13", "4.3", "4.3a1", "5.0"],
    ),
    (
        "pkg:pypi/urllib3",
        "==1.26.*",
        ["1.26", "1.26.0rc1", "1.26.18"],
        ["1.25.11", "1.27", "1.260", "2.0.0a1"],
    ),
    (
        "pkg:pypi/cryptography",
        "~=41.0,!=41.0.5",
        ["41.0.0", "41.0.7"],
        ["41.0.5", "42.0.0", "40.0.2"],
    ),
    (
        "pkg:pypi/requests",
        "vers:pypi/>=2.0|<2.31.0",
        ["2.0", "2.30.0", "2.31.0rc1"],
        ["1.2.3", "2.0.0a1", "2.31.0"],
    ),
    ("pkg:pypi/Jinja2", ">=3.1.3", ["3.1.3", "3.1.4"], ["3.1.2", "3.1.3rc1"]),
    # npm, node-semver: caret, tilde, x-ranges, unions; no pre-release of an exclusive bound
    (
        "pkg:npm/lodash",
        "^4.17.15",
        ["4.17.15", "4.17.21", "4.18.0-beta.1"],
        ["4.17.14", "5.0.0", "5.0.0-rc.1", "5.0.0-0"],
    ),
    ("pkg:npm/minimist", "^0.2.1", ["0.2.1", "0.2.4"], ["0.2.0", "0.3.0", "1.2.8"]),
    (
        "pkg:npm/%40babel/core",
        "~7.22.5",
        ["7.22.5", "7.22.20"],
        ["7.22.4", "7.23.0", "7.23.0-rc.0"],
    ),
    (
        "pkg:npm/express",
        "4.x || >=5.0.0-beta.1",
        ["4.0.0", "4.19.2", "5.0.0-beta.1", "5.0.1"],
        ["3.21.2", "5.0.0-alpha.8"],
    ),
    ("pkg:npm/semver", "1.2.3 - 2.3.4", ["1.2.3", "2.3.4"], ["1.2.2", "2.3.5"]),
    ("pkg:npm/left-pad", "vers:npm/<2.0.0", ["1.3.0", "2.0.0-beta.1"], ["2.0.0"]),
    # Maven: bracket ranges and unions, qualifiers ordered by Maven's rules
    (
        "pkg:maven/org.apache.logging.log4j/log4j-core",
        "[2.0,2.17.1)",
        ["2.0", "2.14.1", "2.17.0", "2.17.1-rc1"],
        ["1.2.17", "2.17.1", "2.20.0", "2.0-beta9"],
    ),
    (
        "pkg:maven/com.fasterxml.jackson.core/jackson-databind",
        "(,2.9.10],[2.10.0,2.10.1)",
        ["2.9.10", "2.6.7", "2.10.0"],
        ["2.9.10.1", "2.10.1", "2.12.7"],
    ),
    (
        "pkg:maven/org.apache.logging.log4j/log4j-core",
        "vers:maven/<2.17.1",
        ["2.3.1", "2.17.0"],
        ["2.17.1", "2.23.1"],
    ),
    # Go: vers with module versions (v prefix, pseudo-versions, pre-releases)
    (
        "pkg:golang/golang.org/x/net",
        "vers:golang/>=v0.17.0|<v0.23.0",
        ["v0.17.0", "v0.22.0", "v0.23.0-rc.1"],
        ["v0.16.0", "v0.23.0", "v0.0.0-20230321023759-10a507213a29"],
    ),
    # Debian: epochs, revisions, tilde before anything
    (
        "pkg:deb/debian/openssl",
        "vers:deb/>=1:1.1.1|<1:3.0.0",
        ["1:1.1.1n-0+deb11u5", "1:2.0"],
        ["1.1.1n-0+deb11u5", "3.0.11-1~deb12u2", "1:3.0.0"],
    ),
    (
        "pkg:deb/debian/openssl",
        "<< 3.0.11-1~deb12u2",
        ["3.0.11-1~deb12u1", "3.0.9-1"],
        ["3.0.11-1~deb12u2", "3.0.11-1", "1:0.9"],
    ),
    ("pkg:deb/debian/curl", ">= 1:7.0", ["1:7.88.1-10+deb12u5", "2:0.1"], ["7.88.1-10+deb12u5"]),
    # other ecosystems univers reads natively
    ("pkg:gem/rails", "~> 7.0.4", ["7.0.4", "7.0.8.4"], ["7.0.3", "7.1.0"]),
    ("pkg:nuget/Newtonsoft.Json", "[12.0,13.0)", ["12.0.3"], ["11.0.2", "13.0.1"]),
]


@pytest.mark.parametrize(("purl", "text", "inside", "outside"), CASES)
def test_ranges_follow_the_ecosystem(
    purl: str, text: str, inside: list[str], outside: list[str]
) -> None:
    m = parse_versions(purl, text)
    assert m is not None
    assert [v for v in inside if not m.matches(v)] == []
    assert [v for v in outside if m.matches(v)] == []


def test_an_exact_version_and_no_range() -> None:
    exact = parse_versions("pkg:pypi/requests@2.31.0", None)
    assert exact is not None and exact.matches("2.31.0") and not exact.matches("2.31.1")
    every = parse_versions("pkg:npm/lodash", None)
    assert every is not None and every.matches("0.0.1")
    star = parse_versions("pkg:npm/lodash", "*")
    assert star is not None and star.matches("4.17.21")


def test_a_version_the_ecosystem_cannot_read_is_not_in_any_range() -> None:
    m = parse_versions("pkg:pypi/requests", "~=2.1")
    assert m is not None and not m.matches("not a version")


BAD = [
    ("pkg:pypi/requests", "~=2", "two parts"),
    ("pkg:pypi/requests", "~=2.x", "PEP 440"),
    ("pkg:pypi/requests", "==2.*.1", "Invalid specifier"),
    ("pkg:pypi/requests", "garbage!", "Invalid specifier"),
    ("pkg:pypi/requests", "vers:pypi/", "no version range"),
    ("pkg:pypi/requests", "vers:pypi/<<<", "pypi"),
    ("pkg:pypi/requests", "vers:npm/<1", "does not match"),
    ("pkg:npm/lodash", "^^1", "node-semver"),
    ("pkg:npm/lodash", "^1.2.3 junk", "node-semver"),
    ("pkg:npm/lodash", "latest", "node-semver"),
    ("pkg:maven/a/b", "[1.0,2.0", "Unbounded"),
    ("pkg:maven/a/b", "1.0", "constrains nothing"),
    ("pkg:deb/debian/openssl", "<<", "deb"),
    ("pkg:golang/golang.org/x/net", "^0.17.0", "vers:golang/"),
    ("pkg:cargo/serde", "^1.0", "vers:cargo/"),
    ("pkg:nosuchtype/x", ">1", "no version rules"),
    ("pkg:pypi/requests@2.0", "<3", "without @version"),
]


@pytest.mark.parametrize(("purl", "text", "why"), BAD)
def test_a_bad_range_is_bad_query_with_a_reason(purl: str, text: str, why: str) -> None:
    with pytest.raises(BadQuery, match=r"^(versions|purl):") as err:
        parse_versions(purl, text)
    assert why in str(err.value)
