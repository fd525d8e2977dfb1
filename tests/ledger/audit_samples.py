"""A small supply chain written with the standard predicates (not only what `attest` writes), for
the audit index tests: statements by hand, each signed with a given Ed25519 key."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from attest.dsse import sign_envelope
from attest.signers import KeySigner


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


SRC = sha("src/app.py")
APP1 = sha("app-1.zip")
APP2 = sha("app-2.zip")
COMMIT = "a" * 40
REPO = "https://git.example.com/app"
BUILDER = "https://ci.example.com/runners/linux"
PAYLOAD = "application/vnd.in-toto+json"


def statement(subjects: list[tuple[str, str]], ptype: str, pred: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": n, "digest": {"sha256": d}} for n, d in subjects],
            "predicateType": ptype,
            "predicate": pred,
        }
    ).encode()


def sign(payload: bytes, key: ed25519.Ed25519PrivateKey) -> bytes:
    return sign_envelope(payload, [KeySigner(key)]).to_json()


def provenance_v1(app: str, deps: list[tuple[str, str]]) -> bytes:
    resolved: list[dict[str, Any]] = [
        {"uri": f"pkg:pypi/{n}@{v}", "digest": {"sha256": sha(n + v)}} for n, v in deps
    ]
    resolved.append({"uri": f"git+{REPO}@refs/heads/main", "digest": {"gitCommit": COMMIT}})
    resolved.append(  # a dependency named, with its purl in an annotation
        {"name": "left-pad", "annotations": {"purl": "pkg:npm/left-pad@1.3.0"}}
    )
    return statement(
        [("app.zip", app)],
        "https://slsa.dev/provenance/v1",
        {
            "buildDefinition": {
                "buildType": "https://example.com/build@v1",
                "externalParameters": {"repository": REPO, "ref": "refs/heads/main"},
                "resolvedDependencies": resolved,
            },
            "runDetails": {"builder": {"id": BUILDER}},
        },
    )


def provenance_v02(app: str) -> bytes:
    return statement(
        [("app.zip", app)],
        "https://slsa.dev/provenance/v0.2",
        {
            "builder": {"id": "https://github.com/slsa-framework/slsa-github-generator"},
            "buildType": "https://example.com/v0.2",
            "invocation": {
                "configSource": {
                    "uri": f"git+{REPO}@refs/tags/v1",
                    "digest": {"sha1": COMMIT},
                    "entryPoint": "release.yml",
                }
            },
            "materials": [
                {"uri": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"},
                {"uri": "pkg:golang/golang.org/x/net@v0.17.0", "digest": {"sha256": sha("net")}},
            ],
        },
    )


def link(step: str, materials: dict[str, str], products: list[tuple[str, str]]) -> bytes:
    return statement(
        products,
        "https://in-toto.io/attestation/link/v0.3",
        {
            "name": step,
            "command": ["make"],
            "materials": [{"name": n, "digest": {"sha256": d}} for n, d in materials.items()],
        },
    )


def test_result(app: str, result: str) -> bytes:
    return statement(
        [("app.zip", app)],
        "https://in-toto.io/attestation/test-result/v0.1",
        {"result": result, "configuration": [{"name": "unit"}], "passedTests": ["t1"]},
    )


def vulns(app: str, cves: list[str]) -> bytes:
    return statement(
        [("app.zip", app)],
        "https://in-toto.io/attestation/vulns/v0.2",
        {
            "scanner": {
                "uri": "pkg:github/anchore/grype@0.79.3",
                "result": [
                    {
                        "id": c,
                        "annotations": [{"package": "requests", "aliases": [f"GHSA-{c[-4:]}"]}],
                    }
                    for c in cves
                ],
            }
        },
    )


def vex(app: str, cve: str, status: str) -> bytes:
    extra = {"justification": "component_not_present"} if status == "not_affected" else {}
    return statement(
        [("app.zip", app)],
        "https://openvex.dev/ns/v0.2.0",
        {
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": "urn:example:vex",
            "author": "ci",
            "timestamp": "2026-11-01T10:00:00Z",
            "version": 1,
            "statements": [
                {
                    "vulnerability": {"name": cve},
                    "products": [
                        {
                            "@id": "pkg:generic/app@2",
                            "hashes": {"sha-256": app},
                            "subcomponents": [{"@id": "pkg:pypi/requests@2.32.3"}],
                        }
                    ],
                    "status": status,
                    **extra,
                }
            ],
        },
    )


def pipeline(key: ed25519.Ed25519PrivateKey) -> list[bytes]:
    """Build 1 (link from source, provenance with requests 2.31.0, tests, a scan with two CVEs),
    build 2 (requests 2.32.3), and a VEX saying CVE-2024-35195 is fixed in build 2."""
    payloads = [
        link("build", {"src/app.py": SRC}, [("app.zip", APP1)]),
        provenance_v1(APP1, [("requests", "2.31.0"), ("urllib3", "2.2.1")]),
        test_result(APP1, "PASSED"),
        vulns(APP1, ["CVE-2024-35195", "CVE-2024-37891"]),
        provenance_v1(APP2, [("requests", "2.32.3"), ("urllib3", "2.2.1")]),
        vulns(APP2, ["CVE-2024-35195", "CVE-2024-37891"]),
        vex(APP2, "CVE-2024-35195", "fixed"),
        provenance_v02(APP1),
    ]
    return [sign(p, key) for p in payloads]
