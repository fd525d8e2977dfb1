"""The deploy policy: a versioned YAML document (``apiVersion: provenance-ledger.dev/v1``,
``kind: VerifyPolicy``) parsed into always-valid pydantic models.

Unknown keys are refused (a misspelt rule must not silently pass), every error names its place in
the document, and paths (signer keys, trusted roots, the state directory) are relative to the
policy file. Key files and ledger verifier keys are read when verification needs them, so a policy
can be checked (``verify policy check``) on a machine that does not hold them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from verify.errors import PolicyFileError

__all__ = [
    "API_VERSION",
    "DenyPolicy",
    "DependencyDeny",
    "LayoutPolicy",
    "LedgerPolicy",
    "Policy",
    "SignerPolicy",
    "SigstoreSigner",
    "StepPolicy",
    "VulnerabilityDeny",
    "load_policy",
    "parse_duration",
    "parse_policy",
]

API_VERSION = "provenance-ledger.dev/v1"
SEVERITIES = ("low", "medium", "high", "critical")
_DURATION = re.compile(r"([0-9]+)([smhdw])")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w`` or a combination such as ``1d12h``."""
    if not isinstance(text, str) or not text or _DURATION.sub("", text):
        raise ValueError(f"{text!r} is not a duration such as 30d, 12h, 90m or 1d12h")
    total = timedelta()
    for amount, unit in _DURATION.findall(text):
        total += timedelta(**{_UNITS[unit]: int(amount)})
    if total <= timedelta():
        raise ValueError("a duration must be longer than zero")
    return total


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LedgerPolicy(_Model):
    """The ledger this verifier trusts: checkpoint verifier key(s) in the C2SP vkey text form
    (``ledger init`` prints it), where it keeps the last checkpoint it trusted, and the
    ledger's admin public key(s) for registry-trusted signers."""

    keys: list[str] = Field(min_length=1)
    state_dir: str | None = Field(default=None, alias="stateDir")
    admin_keys: list[str] = Field(default_factory=list, alias="adminKeys")

    @field_validator("keys")
    @classmethod
    def _one_origin(cls, keys: list[str]) -> list[str]:
        names = {k.split("+", 1)[0] for k in keys}
        if len(names) != 1 or "" in names:
            raise ValueError("every ledger key must name the same log (NAME+HASH+KEY)")
        return keys

    @property
    def origin(self) -> str:
        """The log's origin: the name part of its verifier keys."""
        return self.keys[0].split("+", 1)[0]


class SigstoreSigner(_Model):
    """A keyless signer: the certificate's OIDC issuer (exact) and subject, exact
    (``identity``) or a regular expression matched against the whole subject
    (``identityRegex``), verified against ``trustedRoot`` (default: the Sigstore production
    root shipped inside sigstore-python, read offline)."""

    issuer: str = Field(min_length=1)
    identity: str | None = None
    identity_regex: str | None = Field(default=None, alias="identityRegex")
    trusted_root: str | None = Field(default=None, alias="trustedRoot")

    @model_validator(mode="after")
    def _one_subject(self) -> SigstoreSigner:
        if (self.identity is None) == (self.identity_regex is None):
            raise ValueError("give exactly one of identity or identityRegex")
        if self.identity_regex is not None:
            try:
                re.compile(self.identity_regex)
            except re.error as e:
                raise ValueError(f"identityRegex is not a regular expression: {e}") from e
        return self


class SignerPolicy(_Model):
    """One trusted signer: exactly one of a public key file, a Sigstore identity, or
    ``registry: true`` (whoever the ledger's trust registry allowed at the record's time,
    optionally only the registry ``names`` listed). ``notBefore``/``notAfter`` bound the time
    (the ledger's record time) at which its signatures count."""

    key: str | None = None
    sigstore: SigstoreSigner | None = None
    registry: bool = False
    names: list[str] = Field(default_factory=list)
    not_before: datetime | None = Field(default=None, alias="notBefore")
    not_after: datetime | None = Field(default=None, alias="notAfter")

    @model_validator(mode="after")
    def _exactly_one(self) -> SignerPolicy:
        kinds = [self.key is not None, self.sigstore is not None, self.registry]
        if sum(kinds) != 1:
            raise ValueError("a signer is exactly one of key, sigstore or registry: true")
        if self.names and not self.registry:
            raise ValueError("names applies to registry signers only")
        for t in (self.not_before, self.not_after):
            if t is not None and t.tzinfo is None:
                raise ValueError("notBefore/notAfter need a time zone (e.g. 2026-01-01T00:00:00Z)")
        if self.not_before and self.not_after and self.not_after <= self.not_before:
            raise ValueError("notAfter must be after notBefore")
        return self

    def valid_at(self, t: datetime) -> str:
        """Why this signer does not count at ``t``, or ``""`` if it does."""
        if self.not_before is not None and t < self.not_before:
            return f"not valid before {self.not_before.isoformat()}"
        if self.not_after is not None and t >= self.not_after:
            return f"not valid after {self.not_after.isoformat()}"
        return ""


class StepPolicy(_Model):
    """A required step: attestations of ``predicateType`` about the artifact, signed by at least
    ``threshold`` distinct ``signers``, each meeting the step's constraints."""

    name: str = Field(min_length=1)
    predicate_type: str = Field(alias="predicateType", min_length=1)
    signers: list[str] = Field(min_length=1)
    threshold: int = Field(default=1, ge=1)
    builder_id: str | None = Field(default=None, alias="builderId")
    source_repo: str | None = Field(default=None, alias="sourceRepo")
    source_ref: str | None = Field(default=None, alias="sourceRef")
    result: Literal["PASSED", "WARNED", "FAILED"] | None = None
    materials_from: str | None = Field(default=None, alias="materialsFrom")
    products_of: str | None = Field(default=None, alias="productsOf")
    expressions: list[str] = Field(default_factory=list)


class DependencyDeny(_Model):
    """No dependency of this package (a purl without version) inside ``versions`` (a vers range,
    compared by the ecosystem's rules with ``univers``; omitted: every version)."""

    purl: str = Field(pattern=r"^pkg:[A-Za-z.+-]+/.+")
    versions: str | None = Field(default=None, pattern=r"^vers:[a-z0-9.+-]+/.+")

    @field_validator("purl")
    @classmethod
    def _no_version(cls, purl: str) -> str:
        if "@" in purl.rsplit("/", 1)[-1]:
            raise ValueError("give the package without @version; use versions for a range")
        return purl


class VulnerabilityDeny(_Model):
    severity_at_least: Literal["low", "medium", "high", "critical"] = Field(alias="severityAtLeast")
    # No scan is no evidence of no vulnerability: with requireScan a trusted scan must name the
    # artifact; without it, the rule passes and its reason says that no scan was found.
    require_scan: bool = Field(default=False, alias="requireScan")


class DenyPolicy(_Model):
    dependencies: list[DependencyDeny] = Field(default_factory=list)
    vulnerabilities: VulnerabilityDeny | None = None


class LayoutPolicy(_Model):
    """A classic in-toto layout the artifact's supply chain must satisfy (``verify layout``):
    the signed layout file, the public keys that must each have signed it (SPKI PEM or
    securesystemslib JSON), the directory of its link files, and where its inspections run
    (default: the current directory, as ``in-toto-verify``). Paths are relative to the policy."""

    file: str = Field(min_length=1)
    keys: list[str] = Field(min_length=1)
    link_dir: str = Field(alias="linkDir", min_length=1)
    inspect_in: str | None = Field(default=None, alias="inspectIn")
    parameters: dict[str, str] = Field(default_factory=dict)


class Policy(_Model):
    """A whole policy file. ``base`` is the directory relative paths are read from."""

    api_version: Literal["provenance-ledger.dev/v1"] = Field(alias="apiVersion")
    kind: Literal["VerifyPolicy"]
    ledger: LedgerPolicy | None = None
    signers: dict[str, SignerPolicy] = Field(default_factory=dict)
    steps: list[StepPolicy] = Field(default_factory=list)
    deny: DenyPolicy = Field(default_factory=DenyPolicy)
    max_age: timedelta | None = Field(default=None, alias="maxAge")
    layout: LayoutPolicy | None = None
    base: Path = Field(default=Path("."), exclude=True)

    @field_validator("max_age", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("signers")
    @classmethod
    def _signer_names(cls, signers: dict[str, SignerPolicy]) -> dict[str, SignerPolicy]:
        for name in signers:
            if not _NAME.fullmatch(name):
                raise ValueError(f"signer name {name!r} must match {_NAME.pattern}")
        return signers

    @model_validator(mode="after")
    def _references(self) -> Policy:
        if not self.steps and self.layout is None:
            raise ValueError(
                "the policy requires nothing: give at least one step (or a layout); deny rules "
                "alone would pass an artifact no trusted signer attested"
            )
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError("step names must be unique")
        for i, step in enumerate(self.steps):
            unknown = [s for s in step.signers if s not in self.signers]
            if unknown:
                raise ValueError(f"steps[{i}] ({step.name}): unknown signer {unknown[0]!r}")
            registry = any(self.signers[s].registry for s in step.signers)
            if not registry and step.threshold > len(set(step.signers)):
                raise ValueError(
                    f"steps[{i}] ({step.name}): threshold {step.threshold} is more than its "
                    f"{len(set(step.signers))} signer(s)"
                )
            for ref in (step.materials_from, step.products_of):
                if ref is not None and ref not in names:
                    raise ValueError(f"steps[{i}] ({step.name}): no step named {ref!r}")
        if any(s.registry for s in self.signers.values()) and (
            self.ledger is None or not self.ledger.admin_keys
        ):
            raise ValueError("a registry signer needs ledger.adminKeys (the ledger's admin key)")
        return self

    def path(self, relative: str) -> Path:
        """A path from the policy, relative to the policy file's directory."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.base / p


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_policy(doc: Any, *, base: Path = Path("."), source: str = "policy") -> Policy:
    """A policy from its parsed YAML; :class:`PolicyFileError` listing every problem."""
    if not isinstance(doc, dict):
        raise PolicyFileError(f"{source}: a policy is a YAML mapping (apiVersion, kind, …)")
    if doc.get("apiVersion") != API_VERSION:
        raise PolicyFileError(
            f"{source}: apiVersion must be {API_VERSION!r}, got {doc.get('apiVersion')!r}"
        )
    try:
        return Policy.model_validate({**doc, "base": base})
    except ValidationError as e:
        lines = [f"{_where(err['loc'])}: {err['msg']}" for err in e.errors()]
        raise PolicyFileError(f"{source}: invalid policy:\n  " + "\n  ".join(lines)) from None


def _strict_loader() -> Any:
    """A YAML ``SafeLoader`` that refuses a mapping with the same key twice (PyYAML keeps the
    last one silently: a second ``steps:`` would replace the reviewed first one)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) or key is None:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            "while constructing a mapping",
                            node.start_mark,
                            f"duplicate key {key!r}",
                            key_node.start_mark,
                        )
                    seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file."""
    import yaml

    from verify._internal.files import read_limited

    data = read_limited(path, "policy", error=PolicyFileError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PolicyFileError(f"cannot read policy {path}: {e}") from e
    try:
        doc = yaml.load(text, Loader=_strict_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise PolicyFileError(f"{path}: not YAML: {e}") from e
    return parse_policy(doc, base=path.resolve().parent, source=str(path))
