"""A realistic, deterministic supply chain for the audit benchmark (issue 10): signed DSSE bodies.

Many artifacts (builds of a few thousand projects), each with 3 to 6 attestations, every one an
in-toto Statement v1 signed with Ed25519 through ``attest.dsse.sign_envelope``:

- SLSA Provenance v1 with 20 to 200 ``resolvedDependencies`` (log-uniform, so most builds have
  fewer than 100), purls across PyPI, npm and Maven drawn by Zipf popularity, ~1/3 with a
  digest, plus the ``git+`` source dependency;
- a Test Result (always) and sometimes a second one (integration tests);
- sometimes an in-toto Link for the packaging step;
- a Vulns v0.2 scan (grype-shaped) with 0 to 4 CVEs drawn by Zipf popularity from a pool;
- sometimes an OpenVEX v0.2 document saying one of the scan's CVEs is ``fixed`` or
  ``not_affected`` for this artifact (by hash), with the component as a subcomponent.

Everything comes from a seeded :class:`random.Random`, so the same ``(seed, index)`` gives the same
bytes (bar the signatures' key, which the caller passes and keeps).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from attest.dsse import sign_envelope
from attest.signers import KeySigner

SLSA_V1 = "https://slsa.dev/provenance/v1"
BUILDER = "https://github.com/actions/runner/github-hosted"
N_PROJECTS = 3000
N_CVES = 600

# Packages people actually search for first, then generated ones (popularity falls with rank).
_HEAD = [
    ("maven", "org.apache.logging.log4j/log4j-core"),
    ("pypi", "requests"),
    ("npm", "lodash"),
    ("pypi", "urllib3"),
    ("maven", "com.fasterxml.jackson.core/jackson-databind"),
    ("npm", "express"),
    ("pypi", "cryptography"),
    ("npm", "minimist"),
    ("maven", "org.springframework/spring-core"),
    ("pypi", "django"),
]
_WORDS = [
    "core",
    "util",
    "http",
    "json",
    "yaml",
    "log",
    "test",
    "auth",
    "cli",
    "data",
    "io",
    "net",
    "web",
    "sql",
    "xml",
    "async",
    "crypto",
]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _versions(rng: random.Random, ecosystem: str) -> list[str]:
    """10-24 ascending versions in the ecosystem's style, some pre-releases."""
    out, major, minor, patch = [], rng.randint(0, 4), rng.randint(0, 9), 0
    for _ in range(rng.randint(10, 24)):
        step = rng.random()
        if step < 0.15:
            major, minor, patch = major + 1, 0, 0
        elif step < 0.5:
            minor, patch = minor + 1, 0
        else:
            patch += 1
        v = f"{major}.{minor}.{patch}"
        if rng.random() < 0.08:
            v += {"pypi": "rc1", "npm": "-beta.1", "maven": "-RC1"}[ecosystem]
        out.append(v)
    return out


@dataclass(frozen=True)
class Package:
    purl: str  # pkg:type/namespace/name, no version
    versions: tuple[str, ...]


def _packages(rng: random.Random, count: int) -> list[Package]:
    out = []
    for i in range(count):
        if i < len(_HEAD):
            eco, name = _HEAD[i]
        else:
            eco = ("pypi", "npm", "maven")[i % 3]
            word = f"{rng.choice(_WORDS)}-{rng.choice(_WORDS)}{i}"
            name = f"org.example{i % 97}/{word}" if eco == "maven" else word
        versions = _versions(rng, eco)
        if name == "org.apache.logging.log4j/log4j-core":
            versions = ["2.11.0", "2.13.3", "2.14.1", "2.15.0", "2.16.0", "2.17.0", "2.17.1"]
            versions += ["2.19.0", "2.20.0", "2.21.1", "2.23.1"]
        out.append(Package(f"pkg:{eco}/{name}", tuple(versions)))
    return out


@dataclass(frozen=True)
class World:
    """The shared pools: packages, CVEs and projects (each project a fixed set of packages)."""

    packages: list[Package]
    package_weights: list[float]
    cves: list[str]
    cve_weights: list[float]
    projects: list[list[int]]


def world(seed: int = 10) -> World:
    rng = random.Random(seed)
    packages = _packages(rng, 4000)
    pw = list(accumulate(1.0 / (r + 1) ** 0.9 for r in range(len(packages))))
    cves = [f"CVE-{2019 + i % 6}-{10000 + i * 37}" for i in range(N_CVES)]
    cw = list(accumulate(1.0 / (r + 1) for r in range(N_CVES)))
    projects = []
    for _ in range(N_PROJECTS):
        n = round(math.exp(rng.uniform(math.log(20), math.log(200))))
        chosen: set[int] = set()
        while len(chosen) < n:
            chosen.update(rng.choices(range(len(packages)), cum_weights=pw, k=n - len(chosen)))
        projects.append(sorted(chosen))
    return World(packages, pw, cves, cw, projects)


def _statement(subject: tuple[str, str], ptype: str, pred: dict[str, Any]) -> bytes:
    doc = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": subject[0], "digest": {"sha256": subject[1]}}],
        "predicateType": ptype,
        "predicate": pred,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _provenance(w: World, rng: random.Random, art: tuple[str, str], project: int) -> bytes:
    deps: list[dict[str, Any]] = []
    for p in w.projects[project]:
        pkg = w.packages[p]
        # builds drift upwards through each package's versions over the project's life
        v = pkg.versions[min(len(pkg.versions) - 1, int(rng.triangular(0, len(pkg.versions))))]
        dep: dict[str, Any] = {"uri": f"{pkg.purl}@{v}"}
        if rng.random() < 0.33:
            dep["digest"] = {"sha256": _sha(dep["uri"])}
        deps.append(dep)
    repo = f"https://github.com/example-org/project-{project}"
    commit = hashlib.sha1(art[1].encode(), usedforsecurity=False).hexdigest()
    deps.append({"uri": f"git+{repo}@refs/heads/main", "digest": {"gitCommit": commit}})
    pred = {
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {
                "workflow": {"ref": "refs/heads/main", "repository": repo, "path": "ci.yml"}
            },
            "resolvedDependencies": deps,
        },
        "runDetails": {"builder": {"id": BUILDER}, "metadata": {"invocationId": art[1][:16]}},
    }
    return _statement(art, SLSA_V1, pred)


def _test(art: tuple[str, str], name: str, passed: bool) -> bytes:
    pred = {
        "result": "PASSED" if passed else "FAILED",
        "configuration": [{"name": name}],
        "passedTests": [f"{name}::t{i}" for i in range(3)],
    }
    return _statement(art, "https://in-toto.io/attestation/test-result/v0.1", pred)


def _link(art: tuple[str, str]) -> bytes:
    pred = {
        "name": "package",
        "command": ["make", "dist"],
        "materials": [{"name": "build/out.bin", "digest": {"sha256": _sha(art[1] + "bin")}}],
    }
    return _statement(art, "https://in-toto.io/attestation/link/v0.3", pred)


def _scan(art: tuple[str, str], found: list[tuple[str, str]]) -> bytes:
    results = [{"id": c, "annotations": [{"package": purl}]} for c, purl in found]
    pred = {"scanner": {"uri": "pkg:github/anchore/grype@0.79.3", "result": results}}
    return _statement(art, "https://in-toto.io/attestation/vulns/v0.2", pred)


def _vex(art: tuple[str, str], cve: str, component: str, status: str) -> bytes:
    statement: dict[str, Any] = {
        "vulnerability": {"name": cve},
        "products": [{"hashes": {"sha-256": art[1]}, "subcomponents": [{"@id": component}]}],
        "status": status,
    }
    if status == "not_affected":
        statement["justification"] = "vulnerable_code_not_in_execute_path"
    pred = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": f"urn:example:vex:{art[1][:12]}",
        "author": "security@example.com",
        "timestamp": "2026-11-01T10:00:00Z",
        "version": 1,
        "statements": [statement],
    }
    return _statement(art, "https://openvex.dev/ns/v0.2.0", pred)


def artifact_statements(w: World, seed: int, n: int) -> tuple[str, list[bytes]]:
    """Artifact ``n``'s digest and its 3-6 statements (provenance first)."""
    rng = random.Random(seed * 1_000_003 + n)
    project = rng.randrange(N_PROJECTS)
    art = (f"project-{project}-{n}.tar.gz", _sha(f"artifact-{seed}-{n}"))
    out = [_provenance(w, rng, art, project), _test(art, "unit", rng.random() < 0.95)]
    if rng.random() < 0.5:
        out.append(_link(art))
    if rng.random() < 0.3:
        out.append(_test(art, "integration", rng.random() < 0.9))
    deps = w.projects[project]
    found = []
    for cve in set(rng.choices(w.cves, cum_weights=w.cve_weights, k=rng.randint(0, 4))):
        found.append((cve, w.packages[deps[rng.randrange(len(deps))]].purl))
    out.append(_scan(art, sorted(found)))
    if found and rng.random() < 0.4:
        cve, component = found[0]
        out.append(_vex(art, cve, component, "fixed" if rng.random() < 0.7 else "not_affected"))
    return art[1], out


def bodies(
    key: KeySigner, seed: int, limit: int, subjects: list[str] | None = None
) -> Iterator[bytes]:
    """Signed envelopes of artifacts 0, 1, ... until ``limit`` bodies (``subjects`` collects each
    artifact's digest)."""
    w = world(seed)
    done, n = 0, 0
    while done < limit:
        digest, statements = artifact_statements(w, seed, n)
        if subjects is not None:
            subjects.append(digest)
        for st in statements[: limit - done]:
            yield sign_envelope(st, [key]).to_json()
            done += 1
        n += 1
