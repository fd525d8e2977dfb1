"""A real ledger seeded like the demo (`make run`): `ledger serve` on SQLite, the demo pipeline
appended through `attest … --ledger URL`, then more statements signed in-process for the rules the
demo does not exercise. One per test session: starting uvicorn and the attest CLI cost seconds."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from attest.dsse import sign_envelope
from attest.signers import KeySigner, read_signer, write_keypair
from tests.ledger.api.server import Server, add_signer, init_ledger, serve, token

BUILDER = "https://ci.example/builder@v1"
SLSA = "https://slsa.dev/provenance/v1"
TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
VULNS = "https://in-toto.io/attestation/vulns/v0.2"
OPENVEX = "https://openvex.dev/ns/v0.2.0"
ISSUE_POLICY_DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


@dataclass
class DemoLedger:
    server: Server
    work: Path
    vkey: str
    append_token: str
    ci: KeySigner
    ci_pub: Path
    other: KeySigner
    other_pub: Path
    app_zip: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def db(self) -> str:
        return self.server.db

    def append(self, statement: dict[str, Any], *signers: KeySigner) -> int:
        body = sign_envelope(json.dumps(statement).encode(), list(signers or [self.ci])).to_json()
        r = self.server.post("/api/v1/entries", self.append_token, content=body)
        assert r.status_code in (200, 201), r.text
        return int(r.json()["index"])

    def policy(self, path: Path, **changes: Any) -> Path:
        """A policy file for this ledger (keys by absolute path), with top-level ``changes``."""
        doc: dict[str, Any] = {
            "apiVersion": "provenance-ledger.dev/v1",
            "kind": "VerifyPolicy",
            "ledger": {"keys": [self.vkey]},
            "signers": {"ci": {"key": str(self.ci_pub)}, "other": {"key": str(self.other_pub)}},
            "steps": [
                {
                    "name": "build",
                    "predicateType": SLSA,
                    "signers": ["ci"],
                    "builderId": BUILDER,
                },
                {
                    "name": "unit-tests",
                    "predicateType": TEST_RESULT,
                    "signers": ["ci"],
                    "result": "PASSED",
                },
            ],
        }
        doc.update(changes)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path


def digest_of(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def statement(name: str, predicate_type: str, predicate: dict[str, Any]) -> dict[str, Any]:
    """An in-toto Statement about the artifact whose bytes are ``name`` encoded."""
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": digest_of(name)}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def provenance(builder: str = BUILDER, deps: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "buildDefinition": {
            "buildType": "https://example.com/build/v1",
            "externalParameters": {
                "source": {"uri": "git+https://github.com/example/app@abc", "ref": "refs/tags/v1"}
            },
            "resolvedDependencies": [{"uri": d, "digest": {"sha256": "ab" * 32}} for d in deps],
        },
        "runDetails": {"builder": {"id": builder}},
    }


def result_predicate(result: str = "PASSED") -> dict[str, Any]:
    return {"result": result, "passedTests": ["t"] if result == "PASSED" else []}


def scan(cve: str, severity: str) -> dict[str, Any]:
    return {
        "scanner": {
            "uri": "https://github.com/anchore/grype",
            "version": "0.79.3",
            "result": [{"id": cve, "severity": [{"method": "grype", "score": severity}]}],
        },
        "metadata": {
            "scanStartedOn": "2026-11-01T10:00:00Z",
            "scanFinishedOn": "2026-11-01T10:00:01Z",
        },
    }


def vex(cve: str, product: str, status: str = "fixed") -> dict[str, Any]:
    return {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": f"https://example.com/vex/{cve}",
        "author": "ci",
        "timestamp": "2026-11-02T10:00:00Z",
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": cve},
                "products": [{"@id": product}],
                "status": status,
                **({"justification": "component_not_present"} if status == "not_affected" else {}),
            }
        ],
    }


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoLedger]:
    from ledger._internal.demo import seed
    from ledger.storage import LedgerStore

    work = tmp_path_factory.mktemp("verify-demo")
    db = f"sqlite:///{work / 'ledger.db'}"
    key = init_ledger(db, work, register_samples=False)
    write_keypair(work / "ci-key", "ed25519", None)
    write_keypair(work / "other-key", "ed25519", None)
    add_signer(db, key, "ci", key=(work / "ci-key.pub").read_bytes())
    add_signer(db, key, "other", key=(work / "other-key.pub").read_bytes())
    append = token(db, work, "append", "append")
    store = LedgerStore.open(db)
    vkey = store.meta()["vkey"]
    store.close()
    with serve(db, work, key) as srv:
        old = os.environ.get("ATTEST_BUILDER_ID")
        os.environ["ATTEST_BUILDER_ID"] = BUILDER  # only while the seed's `attest` runs: the
        try:  # fixture lives for the whole session, and attest's own tests read this variable
            seed(work, srv.url, append)
        finally:
            if old is None:
                os.environ.pop("ATTEST_BUILDER_ID", None)
            else:
                os.environ["ATTEST_BUILDER_ID"] = old
        yield DemoLedger(
            srv,
            work,
            vkey,
            append,
            read_signer(work / "ci-key"),
            work / "ci-key.pub",
            read_signer(work / "other-key"),
            work / "other-key.pub",
            work / "dist" / "app.zip",
        )
