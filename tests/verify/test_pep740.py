"""PyPI's PEP 740 provenance with `verify attestations --bundle FILE`.

No real PyPI provenance file is among the upstream fixtures, so the PEP 740 documents here are
built from the genuine sigstore-conformance DSSE bundle (the inverse of pypi-attestations'
``Attestation.to_bundle``: certificate, first log entry, statement and signature). Statements
without a predicate (what PyPI's publish attestations are) are checked with a key-signed
envelope: no Sigstore-signed one exists in the fixtures."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from attest.dsse import sign_envelope
from attest.signers import read_signer, write_keypair
from tests.conftest import fixture_path
from tests.verify.forged import forge
from tests.verify.test_third_party import CASES, IDENTITY, ISSUER, SUBJECT, _policy
from verify.cli import app
from verify.pep740 import bundles_from_pep740

PYPI_PUBLISH = "https://docs.pypi.org/attestations/publish/v1"
PUBLISHER = {
    "kind": "GitHub",
    "repository": "sigstore-conformance/extremely-dangerous-public-oidc-beacon",
    "workflow": "extremely-dangerous-oidc-beacon.yml",
    "environment": None,
}


def _bundle() -> bytes:
    return fixture_path(*CASES, "happy-path-intoto-in-dsse-v3", "bundle.sigstore.json").read_bytes()


def attestation(bundle: bytes) -> dict[str, Any]:
    """A Sigstore DSSE bundle as a PEP 740 attestation object."""
    doc = json.loads(bundle)
    env = doc["dsseEnvelope"]
    return {
        "version": 1,
        "verification_material": {
            "certificate": doc["verificationMaterial"]["certificate"]["rawBytes"],
            "transparency_entries": doc["verificationMaterial"]["tlogEntries"],
        },
        "envelope": {"statement": env["payload"], "signature": env["signatures"][0]["sig"]},
    }


def provenance(*atts: dict[str, Any], publisher: dict[str, Any] = PUBLISHER) -> dict[str, Any]:
    return {
        "version": 1,
        "attestation_bundles": [{"publisher": publisher, "attestations": list(atts)}],
    }


def _judge(tmp_path: Path, doc: Any, artifact: str = SUBJECT) -> tuple[int, dict[str, Any], str]:
    policy = _policy(tmp_path, {"identity": IDENTITY})
    path = tmp_path / "provenance.json"
    path.write_text(json.dumps(doc))
    args = ["attestations", artifact, "--policy", str(policy), "--bundle", str(path)]
    r = CliRunner().invoke(app, [*args, "--format", "json"])
    return r.exit_code, json.loads(r.stdout), r.stderr


def test_the_conversion_is_the_sigstore_bundle_back() -> None:
    original = json.loads(_bundle())
    [converted] = bundles_from_pep740(provenance(attestation(_bundle())), "p")
    back = json.loads(converted)
    assert back["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert back["dsseEnvelope"]["payload"] == original["dsseEnvelope"]["payload"]
    assert back["dsseEnvelope"]["payloadType"] == original["dsseEnvelope"]["payloadType"]
    assert back["dsseEnvelope"]["signatures"] == original["dsseEnvelope"]["signatures"]
    assert back["verificationMaterial"] == original["verificationMaterial"]


def test_pypi_provenance_meets_a_keyless_policy(tmp_path: Path) -> None:
    code, doc, _ = _judge(tmp_path, provenance(attestation(_bundle())))
    assert code == 0, doc
    assert doc["attestations"][0]["signers"] == ["gha"]
    # one uploaded attestation object (`*.publish.attestation`) alone
    code, doc, _ = _judge(tmp_path, attestation(_bundle()))
    assert code == 0, doc
    # the publisher object is PyPI's unsigned account: the certificate decides, not it
    other = dict(PUBLISHER, repository="evil/evil")
    code, _, _ = _judge(tmp_path, provenance(attestation(_bundle()), publisher=other))
    assert code == 0
    # another artifact is not the statement's subject
    code, _, _ = _judge(tmp_path, provenance(attestation(_bundle())), "sha256:" + "0" * 64)
    assert code == 3


def test_an_edited_statement_is_exit_4_and_a_forgery_never_counts(tmp_path: Path) -> None:
    att = attestation(_bundle())
    statement = json.loads(base64.b64decode(att["envelope"]["statement"]))
    statement["predicateType"] = PYPI_PUBLISH
    att["envelope"]["statement"] = base64.b64encode(json.dumps(statement).encode()).decode()
    code, doc, _ = _judge(tmp_path, provenance(att))
    assert code == 4 and "DSSE: invalid signature" in doc["error"]
    forged = attestation(forge(_bundle(), IDENTITY, ISSUER))
    code, doc, _ = _judge(tmp_path, provenance(forged))
    assert code == 1 and doc["attestations"] == []
    assert "not proved by the trusted root" in doc["untrusted"][0]["reason"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(version=2), "provenance version 2"),
        (lambda d: d.update(attestation_bundles=[]), "not a non-empty list"),
        (lambda d: d["attestation_bundles"][0].update(attestations=[]), "no attestations"),
        (lambda d: d["attestation_bundles"][0]["attestations"][0].pop("envelope"), "envelope"),
        (
            lambda d: d["attestation_bundles"][0]["attestations"][0]["envelope"].update(
                statement="not base64!"
            ),
            "statement: not base64",
        ),
        (
            lambda d: d["attestation_bundles"][0]["attestations"][0][
                "verification_material"
            ].update(transparency_entries=[]),
            "no transparency_entries",
        ),
    ],
)
def test_malformed_provenance_is_exit_2(tmp_path: Path, edit: Any, message: str) -> None:
    doc = provenance(attestation(_bundle()))
    edit(doc)
    code, out, stderr = _judge(tmp_path, doc)
    assert code == 2 and message in stderr, stderr
    assert out["verdict"] == "ERROR" and message in out["error"]


def test_a_statement_without_a_predicate_is_valid(tmp_path: Path) -> None:
    """in-toto v1 allows a statement with no predicate; PyPI's publish attestations are such."""
    write_keypair(tmp_path / "ci", "ed25519", None)
    st = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "pkg-1.0.tar.gz", "digest": {"sha256": SUBJECT.split(":")[1]}}],
        "predicateType": PYPI_PUBLISH,
    }
    envelope = sign_envelope(json.dumps(st).encode(), [read_signer(tmp_path / "ci")]).to_json()
    (tmp_path / "publish.json").write_bytes(envelope)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "provenance-ledger.dev/v1",
                "kind": "VerifyPolicy",
                "signers": {"ci": {"key": str(tmp_path / "ci.pub")}},
                "steps": [{"name": "publish", "predicateType": PYPI_PUBLISH, "signers": ["ci"]}],
            }
        )
    )
    args = [
        "attestations",
        SUBJECT,
        "--policy",
        str(policy),
        "--bundle",
        str(tmp_path / "publish.json"),
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.stdout + r.stderr


def test_the_docs_pypi_policy_fragment_loads(tmp_path: Path) -> None:
    import re

    from verify.policy import load_policy

    doc = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    blocks = re.findall(r"^```yaml\n(.*?)^```", doc, re.MULTILINE | re.DOTALL)
    [fragment] = [b for b in blocks if PYPI_PUBLISH in b]
    path = tmp_path / "policy.yaml"
    path.write_text("apiVersion: provenance-ledger.dev/v1\nkind: VerifyPolicy\n" + fragment)
    policy = load_policy(path)
    assert policy.steps[0].predicate_type == PYPI_PUBLISH
    assert policy.signers["pypi-release"].sigstore is not None
