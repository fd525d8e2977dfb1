"""SLSA provenance from the slsa-github-generator builders, checked as slsa-verifier does.

:func:`verify_github_provenance` takes a Sigstore bundle of provenance and an artifact's SHA-256
and runs, in order (the names in brackets are slsa-verifier's error names, kept as ``code``):

1. the Sigstore bundle: Fulcio chain, SCT, log entry, DSSE signature (sigstore-python, with the
   Rekor ``intoto`` v0.0.2 entries the TRW/BYOB builders wrote; production root, offline), issued
   by GitHub Actions to a GitHub workflow;
2. the certificate's workflow: one of the generator's trusted reusable workflows, or a delegator
   (TRW/BYOB), at a ``refs/tags/vX.Y.Z`` tag [ErrorUntrustedReusableWorkflow, ErrorInvalidRef];
3. the builder ID: for a trusted workflow, the certificate's (``name@refs/tags/vX.Y.Z``) must
   match the expected one and the provenance's ``builder.id`` exactly; for a delegator the real
   builder is the provenance's ``runDetails.builder.id`` (a ``vX.Y.Z`` tag), matched against the
   expected one (name, and version if given) [ErrorUntrustedReusableWorkflow,
   ErrorMismatchBuilderID];
4. the source: the certificate's caller repository and the provenance's trigger and source URIs
   name the expected repository [ErrorMismatchSource, ErrorMalformedURI];
5. the subject: a subject's ``sha256`` equals the artifact's [ErrorMismatchHash];
6. optionally the branch, the exact tag, or a semantic-version tag prefix [ErrorMismatchBranch,
   ErrorMismatchTag, ErrorMismatchVersionedTag, ErrorInvalidRef, ErrorInvalidSemver].

Raises :class:`attest.errors.SignatureError` for step 1, :class:`ProvenanceMismatch` (with
``code``) for the rest, :class:`attest.errors.InvalidInput` for malformed arguments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attest.errors import Error, InvalidInput
from attest.sigstore_bundle import IdentityPolicy, verify_bundle

if TYPE_CHECKING:
    from cryptography import x509
    from sigstore.models import TrustedRoot

__all__ = [
    "GitHubBuildPolicy",
    "ProvenanceMismatch",
    "VerifiedProvenance",
    "bundle_from_jsonl",
    "verify_github_provenance",
]

GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
_GENERATOR = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"
TRUSTED_WORKFLOWS = frozenset(
    _GENERATOR + name
    for name in (
        "generator_generic_slsa3.yml",
        "builder_go_slsa3.yml",
        "builder_docker-based_slsa3.yml",
        "generator_container_slsa3.yml",
    )
)
DELEGATOR_WORKFLOWS = frozenset(
    _GENERATOR + name
    for name in ("delegator_generic_slsa3.yml", "delegator_lowperms-generic_slsa3.yml")
)
SLSA_V02 = "https://slsa.dev/provenance/v0.2"
SLSA_V1 = "https://slsa.dev/provenance/v1"
_CALLER_REPOSITORY = "1.3.6.1.4.1.57264.1.5"  # "owner/repo", raw bytes (Fulcio v1 extension)
_SOURCE_REPOSITORY_URI = "1.3.6.1.4.1.57264.1.12"  # https://github.com/owner/repo, DER UTF8String
_SEMVER = re.compile(
    r"v(0|[1-9]\d*)(?:\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?)?)?"
)
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ProvenanceMismatch(Error):
    """The provenance is validly signed but does not say what the policy requires. ``code`` is
    slsa-verifier's name for the same failure (``ErrorMismatchSource``…)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code


@dataclass(frozen=True)
class GitHubBuildPolicy:
    """What slsa-verifier's ``--builder-id``, ``--source-uri``, ``--source-branch``,
    ``--source-tag`` and ``--source-versioned-tag`` say."""

    builder_id: str
    source_uri: str
    branch: str | None = None
    tag: str | None = None
    versioned_tag: str | None = None

    def __post_init__(self) -> None:
        if not self.builder_id or not self.source_uri:
            raise InvalidInput("a GitHub build policy needs a builder ID and a source URI")
        if self.builder_id.count("@") > 1:
            raise InvalidInput(f"builder ID {self.builder_id!r} has more than one @")
        if self.versioned_tag is not None and _SEMVER.fullmatch(self.versioned_tag) is None:
            raise InvalidInput(f"versioned tag {self.versioned_tag!r} is not vX[.Y[.Z]] semver")


@dataclass(frozen=True)
class VerifiedProvenance:
    """A verified provenance statement and what was checked in it."""

    statement: Mapping[str, Any]
    predicate_type: str
    builder_id: str  # name@ref: the certificate's, or for a delegator the provenance's
    source_uri: str  # git+https://github.com/owner/repo@ref (the trigger)
    signer_workflow: str  # the certificate's SAN


def _fail(code: str, message: str) -> ProvenanceMismatch:
    return ProvenanceMismatch(code, message)


def _split_builder(builder_id: str) -> tuple[str, str]:
    name, _, ref = builder_id.partition("@")
    return name, ref


def _builder_tag(ref: str) -> None:
    """A builder pinned at ``refs/tags/vX.Y.Z`` (no pre-release, no build metadata)."""
    tag = _ref_name("tags", ref)
    m = _SEMVER.fullmatch(tag)
    if m is None or m.group(3) is None or m.group(4) or m.group(5):
        raise _fail("ErrorInvalidRef", f"{tag}: not of the form vX.Y.Z")


def _matches_loose(actual: str, expected: str) -> bool:
    """slsa-verifier's MatchesLoose with allowRef: names equal; a given version equal, where
    ``v1.2.3`` also matches ``refs/tags/v1.2.3``."""
    name, ref = _split_builder(actual)
    want_name, want_ref = _split_builder(expected)
    if name != want_name:
        return False
    return want_ref in ("", ref) or ref == f"refs/tags/{want_ref}"


def _ref_name(kind: str, ref: str) -> str:
    parts = ref.split("/", 2)
    if len(parts) < 3 or parts[0] != "refs" or parts[1] != kind or not parts[2]:
        raise _fail("ErrorInvalidRef", f"{ref!r}: not a refs/{kind}/ ref")
    return parts[2]


def _extension(cert: x509.Certificate, oid: str) -> bytes:
    from cryptography import x509
    from cryptography.x509.oid import ObjectIdentifier

    try:
        ext = cert.extensions.get_extension_for_oid(ObjectIdentifier(oid)).value
    except x509.ExtensionNotFound:
        return b""
    return bytes(ext.value)  # type: ignore[attr-defined]


def _caller_repository(cert: x509.Certificate) -> str:
    """The repository whose workflow ran, as ``github.com/owner/repo`` (Fulcio's v1 extension,
    else its v2 SourceRepositoryURI)."""
    from cryptography.hazmat import asn1

    v1 = _extension(cert, _CALLER_REPOSITORY)
    if v1:
        return "github.com/" + v1.decode(errors="replace")
    v2 = _extension(cert, _SOURCE_REPOSITORY_URI)
    try:
        uri = str(asn1.decode_der(str, v2)) if v2 else ""
    except ValueError:
        uri = ""
    return uri.removeprefix("https://")


class _Provenance:
    """Read access to the fields slsa-verifier consults, for SLSA v0.2 and v1 predicates."""

    def __init__(self, statement: Mapping[str, Any]) -> None:
        self.statement = statement
        self.type = str(statement.get("predicateType"))
        pred = statement.get("predicate")
        if self.type not in (SLSA_V02, SLSA_V1) or not isinstance(pred, dict):
            raise _fail("ErrorInvalidDssePayload", f"not SLSA provenance: {self.type}")
        self.pred = pred

    def _get(self, *path: str | int) -> Any:
        node: Any = self.pred
        for key in path:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                raise _fail("ErrorInvalidDssePayload", f"provenance has no {path}") from None
        return node

    def builder_id(self) -> str:
        path = ("builder", "id") if self.type == SLSA_V02 else ("runDetails", "builder", "id")
        return str(self._get(*path))

    def environment(self) -> Mapping[str, Any]:
        """The GitHub context, with lower-case keys (v0.2's spelling)."""
        if self.type == SLSA_V02:
            env = self._get("invocation", "environment")
        else:
            env = self._get("buildDefinition", "internalParameters")
        if not isinstance(env, dict):
            raise _fail("ErrorInvalidDssePayload", "the GitHub context is not an object")
        return {k.lower(): v for k, v in env.items()}

    def trigger_uri(self) -> str:
        if self.type == SLSA_V02:
            return str(self._get("invocation", "configSource", "uri"))
        workflow_ref = self._env_str("github_workflow_ref")
        repo_path, _, ref = workflow_ref.partition("@")
        repo = "/".join(repo_path.split("/")[:2])
        return f"git+https://github.com/{repo}@{ref}"

    def source_uri(self) -> str:
        if self.type == SLSA_V02:
            return str(self._get("materials", 0, "uri"))
        return str(self._get("buildDefinition", "resolvedDependencies", 0, "uri"))

    def subjects_sha256(self) -> list[str]:
        subjects = self.statement.get("subject")
        if not isinstance(subjects, list) or not subjects:
            raise _fail("ErrorInvalidDssePayload", "the statement has no subjects")
        return [str(s.get("digest", {}).get("sha256")) for s in subjects if isinstance(s, dict)]

    def _env_str(self, key: str) -> str:
        value = self.environment().get(key)
        if not isinstance(value, str):
            raise _fail("ErrorInvalidDssePayload", f"the GitHub context has no string {key}")
        return value

    def tag_ref(self) -> str:
        ref_type = self._env_str("github_ref_type")
        if ref_type not in ("branch", "tag"):
            raise _fail("ErrorInvalidDssePayload", f"unknown ref type {ref_type!r}")
        return self._env_str("github_ref") if ref_type == "tag" else ""

    def branch_ref(self) -> str:
        ref_type = self._env_str("github_ref_type")
        if ref_type == "branch":
            return self._env_str("github_ref")
        if ref_type != "tag":
            raise _fail("ErrorInvalidDssePayload", f"unknown ref type {ref_type!r}")
        base = self._env_str("github_base_ref")
        if base:
            return base
        payload = self.environment().get("github_event_payload") or {}
        event = self._env_str("github_event_name")
        if event == "push":
            value = payload.get("base_ref") if isinstance(payload, dict) else None
            return value if isinstance(value, str) else ""
        if event == "release" and isinstance(payload, dict):
            target = (payload.get("release") or {}).get("target_commitish")
            return f"refs/heads/{target}" if isinstance(target, str) else ""
        return ""


# --- the steps ------------------------------------------------------------------------------


def _signed_statement(
    bundle: bytes, trusted_root: Path | TrustedRoot | None
) -> tuple[_Provenance, x509.Certificate, str]:
    """(1) The Sigstore bundle, signed by a GitHub Actions workflow; its in-toto statement."""
    identity = IdentityPolicy(
        issuer=GITHUB_ACTIONS_ISSUER, subject=r"https://github\.com/[^@]+@.+", subject_regex=True
    )
    verified = verify_bundle(bundle, trusted_root=trusted_root, identity=identity)
    assert verified.certificate is not None
    workflows = [i for i in verified.identities if i.startswith("https://github.com/")]
    if len(workflows) != 1:
        raise _fail("ErrorMalformedURI", f"certificate names {len(workflows)} workflows")
    if verified.payload_type != "application/vnd.in-toto+json":
        raise _fail("ErrorInvalidDssePayload", f"payload type {verified.payload_type}")
    try:
        statement = json.loads(verified.payload)
    except ValueError as e:
        raise _fail("ErrorInvalidDssePayload", f"payload is not JSON: {e}") from e
    if not isinstance(statement, dict):
        raise _fail("ErrorInvalidDssePayload", "payload is not a statement")
    return _Provenance(statement), verified.certificate, workflows[0]


def _check_builder(prov: _Provenance, signer: str, expected: str) -> str:
    """(2)+(3) The signing workflow is trusted; the builder ID is the expected one."""
    workflow, ref = _split_builder(signer)
    if workflow in DELEGATOR_WORKFLOWS:
        _builder_tag(ref)
        builder = prov.builder_id()
        name, builder_ref = _split_builder(builder)
        if not name or not builder_ref or builder.count("@") != 1:
            raise _fail("ErrorInvalidBuilderID", f"provenance builder ID {builder!r}")
        _builder_tag(builder_ref)
        if not _matches_loose(builder, expected):
            raise _fail("ErrorMismatchBuilderID", f"builder {builder}, expected {expected}")
        return builder
    if workflow not in TRUSTED_WORKFLOWS or not _matches_loose(signer, expected):
        raise _fail("ErrorUntrustedReusableWorkflow", f"signed by {signer}, expected {expected}")
    _builder_tag(ref)
    if prov.builder_id() != signer:
        raise _fail("ErrorMismatchBuilderID", f"provenance builder {prov.builder_id()} != {signer}")
    return signer


def _normalize_source(source_uri: str) -> str:
    if source_uri.startswith("git+"):
        return source_uri
    return f"git+{source_uri}" if "://" in source_uri else f"git+https://{source_uri}"


def _check_source(prov: _Provenance, cert: x509.Certificate, expected: str) -> str:
    """(4) Certificate caller repository, trigger URI and source URI name the repository."""
    source = _normalize_source(expected)
    if not source.startswith("git+https://github.com/"):
        raise _fail("ErrorMalformedURI", f"expected a github.com repository, got {expected!r}")
    caller = _caller_repository(cert)
    if f"git+https://{caller}" != source:
        raise _fail("ErrorMismatchSource", f"certificate caller {caller!r}, expected {expected!r}")
    trigger = prov.trigger_uri()
    trigger_repo, _, trigger_ref = trigger.partition("@")
    if trigger_repo != source:
        raise _fail("ErrorMismatchSource", f"trigger {trigger!r}, expected {source!r}")
    if not trigger_ref:
        raise _fail("ErrorMalformedURI", f"trigger {trigger!r} has no ref")
    material = prov.source_uri()
    material_repo, _, material_ref = material.partition("@")
    if material_repo != source:
        raise _fail("ErrorMismatchSource", f"source {material!r}, expected {source!r}")
    if material_ref and material != trigger:
        raise _fail("ErrorInvalidDssePayload", f"source {material!r} != trigger {trigger!r}")
    return trigger


def _check_subject(prov: _Provenance, sha256: str) -> None:
    """(5) A subject is the artifact."""
    if sha256 not in prov.subjects_sha256():
        raise _fail("ErrorMismatchHash", f"no subject has sha256 {sha256}")


def _canonical(version: str) -> str:
    """``golang.org/x/mod/semver.Canonical``: vMAJOR.MINOR.PATCH[-pre], build metadata dropped."""
    m = _SEMVER.fullmatch(version)
    if m is None:
        raise _fail("ErrorInvalidSemver", f"{version}: not a semantic version")
    return f"v{m.group(1)}.{m.group(2) or 0}.{m.group(3) or 0}{m.group(4) or ''}"


def _check_versioned_tag(tag: str, expected: str) -> None:
    """slsa-verifier's VerifyVersionedTag: the components the policy gives (major, then minor,
    then patch with any pre-release) equal the tag's, the tag read as ``vX`` = ``vX.0.0``."""
    have = _canonical(tag).removeprefix("v").split(".")
    want = expected.split("+", maxsplit=1)[0].removeprefix("v").split(".")
    for i, label in enumerate(("major", "minor", "patch")[: len(want)]):
        if have[i] != want[i]:
            raise _fail(
                "ErrorMismatchVersionedTag",
                f"{label} version expected {want[i]!r}, got {have[i]!r}",
            )


def _check_ref(prov: _Provenance, policy: GitHubBuildPolicy) -> None:
    """(6) Branch, exact tag, semantic-version tag, each only when the policy names it."""
    if policy.branch is not None:
        branch = _ref_name("heads", prov.branch_ref())
        if branch != policy.branch:
            raise _fail("ErrorMismatchBranch", f"branch {branch!r}, expected {policy.branch!r}")
    if policy.tag is not None:
        tag = _ref_name("tags", prov.tag_ref())
        if tag != policy.tag:
            raise _fail("ErrorMismatchTag", f"tag {tag!r}, expected {policy.tag!r}")
    if policy.versioned_tag is not None:
        _check_versioned_tag(_ref_name("tags", prov.tag_ref()), policy.versioned_tag)


def verify_github_provenance(
    bundle: bytes,
    sha256: str,
    policy: GitHubBuildPolicy,
    *,
    trusted_root: Path | TrustedRoot | None = None,
) -> VerifiedProvenance:
    """Verify slsa-github-generator provenance (a Sigstore bundle) for an artifact's SHA-256
    (lowercase hex) against ``policy``; ``trusted_root`` defaults to the Sigstore production
    root shipped with sigstore-python, read offline."""
    if _SHA256_HEX.fullmatch(sha256) is None:
        raise InvalidInput(f"{sha256!r} is not a lowercase hex SHA-256")
    prov, cert, signer = _signed_statement(bundle, trusted_root)  # (1)
    builder = _check_builder(prov, signer, policy.builder_id)  # (2), (3)
    trigger = _check_source(prov, cert, policy.source_uri)  # (4)
    _check_subject(prov, sha256)  # (5)
    _check_ref(prov, policy)  # (6)
    return VerifiedProvenance(
        statement=prov.statement,
        predicate_type=prov.type,
        builder_id=builder,
        source_uri=trigger,
        signer_workflow=signer,
    )


def bundle_from_jsonl(data: bytes) -> bytes:
    """The one Sigstore bundle in a ``.intoto.jsonl`` / ``.build.slsa`` file (one JSON line)."""
    lines = [line for line in data.splitlines() if line.strip()]
    if len(lines) != 1:
        raise InvalidInput(f"expected one bundle, found {len(lines)} lines")
    return lines[0]
