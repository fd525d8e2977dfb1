"""slsa-github-generator provenance (slsa-verifier testdata, v2.1.0 builders) and the Google VSA.

Every gha_* bundle verifies offline with the production root shipped in sigstore-python, the
builder ID of its kind and source github.com/slsa-framework/example-package, and fails with a
wrong one. The branch / tag / versioned-tag table is upstream's (ORIGIN.md), run for every kind.
Artifacts over 1 MB (gha_generic, gha_go) are not shipped: their digest is the one the upstream
test passes, i.e. the provenance subject's.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from attest.errors import InvalidInput, SignatureError
from tests.conftest import FIXTURES, needs_fixtures
from verify.slsa_github import (
    GitHubBuildPolicy,
    ProvenanceMismatch,
    bundle_from_jsonl,
    verify_github_provenance,
)
from verify.vsa import VsaMismatch, VsaPolicy, verify_vsa

BASE = FIXTURES / "slsa-provenance"
pytestmark = needs_fixtures("slsa-provenance")
GENERATOR = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"
BUILDERS = {
    "gha_generic": GENERATOR + "generator_generic_slsa3.yml",
    "gha_go": GENERATOR + "builder_go_slsa3.yml",
    "gha_maven": GENERATOR + "builder_maven_slsa3.yml",
    "gha_gradle": GENERATOR + "builder_gradle_slsa3.yml",
    "gha_delegator": "https://github.com/slsa-framework/example-trw/.github/workflows/builder_high-perms_slsa3.yml",
}
DELEGATED = {"gha_maven", "gha_gradle", "gha_delegator"}  # certificate SAN is a delegator
SOURCE = "github.com/slsa-framework/example-package"
ARTIFACTS = (
    "binary-linux-amd64-workflow_dispatch",
    "binary-linux-amd64-push-v13.0.30",
    "binary-linux-amd64-push-v14",
    "binary-linux-amd64-push-v14.2",
)


def provenance(kind: str, artifact: str) -> tuple[bytes, str]:
    """The bundle and the artifact's sha256 (the file's, or the subject's when not shipped)."""
    folder = BASE / kind / "v2.1.0"
    path = folder / f"{artifact}.intoto.jsonl"
    if not path.exists():
        path = folder / f"{artifact}.build.slsa"
    bundle = bundle_from_jsonl(path.read_bytes())
    shipped = folder / artifact
    if shipped.exists():
        return bundle, hashlib.sha256(shipped.read_bytes()).hexdigest()
    payload = json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))
    return bundle, payload["subject"][0]["digest"]["sha256"]


def check(kind: str, artifact: str, **policy: str) -> None:
    bundle, digest = provenance(kind, artifact)
    verify_github_provenance(
        bundle, digest, GitHubBuildPolicy(builder_id=BUILDERS[kind], source_uri=SOURCE, **policy)
    )


# (artifact, policy field, value, expected slsa-verifier error or None for PASS)
TABLE = [
    ("binary-linux-amd64-workflow_dispatch", None, None, None),
    ("binary-linux-amd64-workflow_dispatch", "branch", "main", None),
    ("binary-linux-amd64-workflow_dispatch", "branch", "master", "ErrorMismatchBranch"),
    ("binary-linux-amd64-workflow_dispatch", "tag", "v1.2.3", "ErrorInvalidRef"),
    ("binary-linux-amd64-workflow_dispatch", "versioned_tag", "v1", "ErrorInvalidRef"),
    ("binary-linux-amd64-push-v13.0.30", "tag", "v13.0.30", None),
    ("binary-linux-amd64-push-v13.0.30", "branch", "main", None),
    *(("binary-linux-amd64-push-v13.0.30", "versioned_tag", v, None) for v in ("v13.0.30", "v13.0", "v13")),
    *(("binary-linux-amd64-push-v13.0.30", "tag", v, "ErrorMismatchTag") for v in ("v13.0.29", "v13.0", "v13")),
    *(
        ("binary-linux-amd64-push-v13.0.30", "versioned_tag", v, "ErrorMismatchVersionedTag")
        for v in ("v2", "v0", "v13.1", "v12.9", "v13.0.29", "v13.0.31")
    ),
    *(("binary-linux-amd64-push-v14", "versioned_tag", v, None) for v in ("v14", "v14.0")),
    *(
        ("binary-linux-amd64-push-v14", "versioned_tag", v, "ErrorMismatchVersionedTag")
        for v in ("v14.1", "v13", "v15", "v13.2", "v0")
    ),
    *(("binary-linux-amd64-push-v14.2", "versioned_tag", v, None) for v in ("v14.2", "v14")),
    *(
        ("binary-linux-amd64-push-v14.2", "versioned_tag", v, "ErrorMismatchVersionedTag")
        for v in ("v14.2.1", "v14.2.3", "v14.1", "v14.1.1", "v14.3.1", "v13", "v15", "v15.1")
    ),
]  # fmt: skip


@pytest.mark.parametrize(("artifact", "field", "value", "error"), TABLE)
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_upstream_ref_table(
    kind: str, artifact: str, field: str | None, value: str | None, error: str | None
) -> None:
    policy = {field: value} if field and value else {}
    if error is None:
        check(kind, artifact, **policy)
    else:
        with pytest.raises(ProvenanceMismatch) as e:
            check(kind, artifact, **policy)
        assert e.value.code == error


@pytest.mark.parametrize("artifact", ARTIFACTS)
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_every_bundle_names_its_builder_and_source(kind: str, artifact: str) -> None:
    bundle, digest = provenance(kind, artifact)
    v = verify_github_provenance(bundle, digest, GitHubBuildPolicy(BUILDERS[kind], SOURCE))
    assert v.builder_id == BUILDERS[kind] + "@refs/tags/v2.1.0"
    assert v.source_uri.startswith("git+https://github.com/slsa-framework/example-package@refs/")
    assert ("delegator" in v.signer_workflow) == (kind in DELEGATED)
    assert v.statement["subject"][0]["digest"]["sha256"] == digest


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_a_wrong_builder_fails(kind: str) -> None:
    other = BUILDERS["gha_go" if kind == "gha_generic" else "gha_generic"]
    bundle, digest = provenance(kind, ARTIFACTS[0])
    with pytest.raises(ProvenanceMismatch) as e:
        verify_github_provenance(bundle, digest, GitHubBuildPolicy(other, SOURCE))
    expected = "ErrorMismatchBuilderID" if kind in DELEGATED else "ErrorUntrustedReusableWorkflow"
    assert e.value.code == expected


@pytest.mark.parametrize(
    ("suffix", "ok"), [("@v2.1.0", True), ("@refs/tags/v2.1.0", True), ("@v2.0.0", False)]
)
@pytest.mark.parametrize("kind", ["gha_generic", "gha_maven"])
def test_builder_version_when_given(kind: str, suffix: str, ok: bool) -> None:
    bundle, digest = provenance(kind, ARTIFACTS[1])
    policy = GitHubBuildPolicy(BUILDERS[kind] + suffix, SOURCE)
    if ok:
        verify_github_provenance(bundle, digest, policy)
    else:
        with pytest.raises(ProvenanceMismatch):
            verify_github_provenance(bundle, digest, policy)


@pytest.mark.parametrize(
    "source",
    [
        "github.com/laurentsimon/slsa-verifier-test-gen",
        "github.com/slsa-framework/example-package-2",
        "https://github.com/slsa-framework/other",
    ],
)
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_a_wrong_source_fails(kind: str, source: str) -> None:
    bundle, digest = provenance(kind, ARTIFACTS[0])
    with pytest.raises(ProvenanceMismatch) as e:
        verify_github_provenance(bundle, digest, GitHubBuildPolicy(BUILDERS[kind], source))
    assert e.value.code == "ErrorMismatchSource"


@pytest.mark.parametrize("source", [SOURCE, f"https://{SOURCE}", f"git+https://{SOURCE}"])
def test_source_uri_spellings(source: str) -> None:
    bundle, digest = provenance("gha_go", ARTIFACTS[0])
    verify_github_provenance(bundle, digest, GitHubBuildPolicy(BUILDERS["gha_go"], source))


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_the_artifact_must_be_the_subject(kind: str) -> None:
    bundle, _ = provenance(kind, ARTIFACTS[0])
    with pytest.raises(ProvenanceMismatch) as e:
        verify_github_provenance(
            bundle, hashlib.sha256(b"other").hexdigest(), GitHubBuildPolicy(BUILDERS[kind], SOURCE)
        )
    assert e.value.code == "ErrorMismatchHash"


@pytest.mark.parametrize("kind", ["gha_generic", "gha_maven"])
def test_a_tampered_payload_fails_the_signature(kind: str) -> None:
    bundle, digest = provenance(kind, ARTIFACTS[0])
    doc = json.loads(bundle)
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["predicate"]["tampered"] = True
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(SignatureError):
        verify_github_provenance(
            json.dumps(doc).encode(), digest, GitHubBuildPolicy(BUILDERS[kind], SOURCE)
        )


def test_the_staging_root_does_not_verify_production_bundles() -> None:
    bundle, digest = provenance("gha_maven", ARTIFACTS[0])
    staging = FIXTURES / "sigstore-bundles" / "trust-roots" / "staging" / "trusted_root.json"
    with pytest.raises(SignatureError):
        verify_github_provenance(
            bundle, digest, GitHubBuildPolicy(BUILDERS["gha_maven"], SOURCE), trusted_root=staging
        )


@pytest.mark.parametrize(
    "kwargs",
    [{"builder_id": "", "source_uri": SOURCE}, {"builder_id": "a@b@c", "source_uri": SOURCE},
     {"builder_id": "x", "source_uri": SOURCE, "versioned_tag": "13"}],
)  # fmt: skip
def test_bad_policy_is_invalid_input(kwargs: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        GitHubBuildPolicy(**kwargs)


def test_bad_digest_is_invalid_input() -> None:
    bundle, digest = provenance("gha_go", ARTIFACTS[0])
    with pytest.raises(InvalidInput):
        verify_github_provenance(
            bundle, digest.upper(), GitHubBuildPolicy(BUILDERS["gha_go"], SOURCE)
        )


# --- the VSA --------------------------------------------------------------------------------

VSA = BASE / "vsa" / "gce" / "v1"
VSA_POLICY = VsaPolicy(
    key_id="keystore://76574:prod:vsa_signing_public_key",
    subject_digests={"gce_image_id": "8970095005306000053"},
    verifier_id="https://bcid.corp.google.com/verifier/bcid_package_enforcer/v0.1",
    resource_uri="gce_image://gke-node-images:gke-12615-gke1418000-cos-101-17162-463-29-c-cgpv1-pre",
    verified_levels=("BCID_L1", "SLSA_BUILD_LEVEL_2"),
)


def _vsa(policy: VsaPolicy = VSA_POLICY, envelope: bytes | None = None) -> dict[str, object]:
    data = envelope or (VSA / "gke-gce-pre.bcid-vsa.jsonl").read_bytes()
    return verify_vsa(data, (VSA / "vsa_signing_public_key.pem").read_bytes(), policy)


def test_the_vsa_verifies_with_its_key() -> None:
    statement = _vsa()
    assert statement["predicateType"] == "https://slsa.dev/verification_summary/v1"
    _vsa(VsaPolicy(**{**VSA_POLICY.__dict__, "verified_levels": ("SLSA_BUILD_LEVEL_1",)}))


@pytest.mark.parametrize("key_id", ["my_key_id", "keystore://76574:prod:other"])
def test_the_vsa_needs_its_key_id(key_id: str) -> None:
    with pytest.raises(SignatureError, match="ErrorNoValidSignature"):
        _vsa(VsaPolicy(**{**VSA_POLICY.__dict__, "key_id": key_id}))


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"subject_digests": {"gce_image_id": "1"}}, "ErrorMismatchHash"),
        ({"verifier_id": "https://example.com/v"}, "ErrorMismatchVerifierID"),
        ({"resource_uri": "gce_image://other"}, "ErrorMismatchResourceURI"),
        ({"verified_levels": ("SLSA_BUILD_LEVEL_3",)}, "ErrorMismatchVerifiedLevels"),
    ],
)
def test_the_vsa_policy_fields(change: dict[str, object], code: str) -> None:
    with pytest.raises(VsaMismatch) as e:
        _vsa(VsaPolicy(**{**VSA_POLICY.__dict__, **change}))  # type: ignore[arg-type]
    assert e.value.code == code


def test_a_tampered_vsa_fails() -> None:
    doc = json.loads((VSA / "gke-gce-pre.bcid-vsa.jsonl").read_bytes())
    statement = json.loads(base64.b64decode(doc["payload"]))
    statement["predicate"]["verificationResult"] = "FAILED"
    doc["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(SignatureError):
        _vsa(envelope=json.dumps(doc).encode())


def test_vsa_with_another_key_fails(tmp_path: Path) -> None:
    other = FIXTURES / "in-toto-demo" / "pems" / "ecdsa_public.pem"
    with pytest.raises(SignatureError):
        verify_vsa(
            (VSA / "gke-gce-pre.bcid-vsa.jsonl").read_bytes(), other.read_bytes(), VSA_POLICY
        )
