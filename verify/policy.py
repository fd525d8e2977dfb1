"""The deploy policy: a versioned YAML document (``apiVersion: provenance-ledger.dev/v1``,
``kind: VerifyPolicy``) parsed into always-valid named tuples
(immutable, and cheap to define: a deploy gate defines them on every start).

Unknown keys are refused (a misspelt rule must not silently pass), every error names its place in
the document, and paths (signer keys, trusted roots, the state directory) are relative to the
policy file. Key files and ledger verifier keys are read when verification needs them, so a policy
can be checked (``verify policy check``) on a machine that does not hold them.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from attest._internal.frozen import Frozen, set_field
from verify._internal.reader import CLASH, EMPTY_RULES, MISSING, NO_VALUE, Fields, Loc, Problems
from verify.errors import PolicyFileError
from verify.policy_signers import LedgerPolicy, SignerPolicy, SigstoreSigner

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
RESULTS = ("PASSED", "WARNED", "FAILED")
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


class StepPolicy(Frozen):
    """A required step: attestations of ``predicateType`` about the artifact, signed by at least
    ``threshold`` distinct ``signers``, each meeting the step's constraints."""

    _fields = (
        "name",
        "predicate_type",
        "signers",
        "threshold",
        "builder_id",
        "source_repo",
        "source_ref",
        "result",
        "materials_from",
        "products_of",
        "expressions",
    )
    name: str
    predicate_type: str
    signers: list[str]
    threshold: int
    builder_id: str | None
    source_repo: str | None
    source_ref: str | None
    result: Literal["PASSED", "WARNED", "FAILED"] | None
    materials_from: str | None
    products_of: str | None
    expressions: list[str]

    def __init__(
        self,
        name: str,
        predicate_type: str,
        signers: list[str],
        threshold: int,
        builder_id: str | None,
        source_repo: str | None,
        source_ref: str | None,
        result: Literal["PASSED", "WARNED", "FAILED"] | None,
        materials_from: str | None,
        products_of: str | None,
        expressions: list[str],
    ) -> None:
        set_field(self, "name", name)
        set_field(self, "predicate_type", predicate_type)
        set_field(self, "signers", signers)
        set_field(self, "threshold", threshold)
        set_field(self, "builder_id", builder_id)
        set_field(self, "source_repo", source_repo)
        set_field(self, "source_ref", source_ref)
        set_field(self, "result", result)
        set_field(self, "materials_from", materials_from)
        set_field(self, "products_of", products_of)
        set_field(self, "expressions", expressions)

    @classmethod
    def read(cls, value: Any, loc: Loc, problems: Problems) -> StepPolicy | None:
        f = Fields.of(value, loc, problems, cls.__name__)
        if f is None:
            return None
        out = cls(
            f.text("name", required=True, min_length=1),
            f.text("predicateType", name="predicate_type", required=True, min_length=1),
            f.texts("signers", min_items=1),
            f.integer("threshold", 1, ge=1),
            f.text("builderId", name="builder_id"),
            f.text("sourceRepo", name="source_repo"),
            f.text("sourceRef", name="source_ref"),
            f.optional_choice("result", RESULTS),
            f.text("materialsFrom", name="materials_from"),
            f.text("productsOf", name="products_of"),
            f.texts("expressions", rules=True),
        )
        return out if f.done() else None


class DependencyDeny(Frozen):
    """No dependency of this package (a purl without version) inside ``versions`` (a vers range,
    compared by the ecosystem's rules with ``univers``; omitted: every version)."""

    _fields = ("purl", "versions")
    purl: str
    versions: str | None

    def __init__(self, purl: str, versions: str | None) -> None:
        set_field(self, "purl", purl)
        set_field(self, "versions", versions)

    @classmethod
    def read(cls, value: Any, loc: Loc, problems: Problems) -> DependencyDeny | None:
        f = Fields.of(value, loc, problems, cls.__name__)
        if f is None:
            return None
        purl = f.text("purl", required=True, pattern=r"^pkg:[A-Za-z.+-]+/.+")
        if purl is not None and f.ok and "@" in purl.rsplit("/", 1)[-1]:
            f.fail(
                "Value error, give the package without @version; use versions for a range",
                key="purl",
            )
        out = cls(purl, f.text("versions", pattern=r"^vers:[a-z0-9.+-]+/.+"))
        return out if f.done() else None


class VulnerabilityDeny(Frozen):
    _fields = ("severity_at_least", "require_scan")
    severity_at_least: Literal["low", "medium", "high", "critical"]
    # No scan is no evidence of no vulnerability: with requireScan a trusted scan must name the
    # artifact; without it, the rule passes and its reason says that no scan was found.
    require_scan: bool

    def __init__(
        self, severity_at_least: Literal["low", "medium", "high", "critical"], require_scan: bool
    ) -> None:
        set_field(self, "severity_at_least", severity_at_least)
        set_field(self, "require_scan", require_scan)

    @classmethod
    def read(cls, value: Any, loc: Loc, problems: Problems) -> VulnerabilityDeny | None:
        f = Fields.of(value, loc, problems, cls.__name__)
        if f is None:
            return None
        level = f.choice("severityAtLeast", SEVERITIES, name="severity_at_least")
        out = cls(level, f.flag("requireScan", name="require_scan"))
        return out if f.done() else None


class DenyPolicy(Frozen):
    _fields = ("dependencies", "vulnerabilities")
    dependencies: list[DependencyDeny]
    vulnerabilities: VulnerabilityDeny | None

    def __init__(
        self, dependencies: list[DependencyDeny], vulnerabilities: VulnerabilityDeny | None
    ) -> None:
        set_field(self, "dependencies", dependencies)
        set_field(self, "vulnerabilities", vulnerabilities)

    @classmethod
    def read(cls, value: Any, loc: Loc, problems: Problems) -> DenyPolicy | None:
        f = Fields.of(value, loc, problems, cls.__name__)
        if f is None:
            return None
        if not value:  # ``deny: {}`` denies nothing, as ``deny: ~`` would have
            f.fail(EMPTY_RULES)
        out = cls(
            f.models("dependencies", DependencyDeny.read) or [],
            f.model("vulnerabilities", VulnerabilityDeny.read),
        )
        return out if f.done() else None


class LayoutPolicy(Frozen):
    """A classic in-toto layout the artifact's supply chain must satisfy (``verify layout``):
    the signed layout file, the public keys that must each have signed it (SPKI PEM or
    securesystemslib JSON), the directory of its link files, and where its inspections run
    (default: the current directory, as ``in-toto-verify``). Paths are relative to the policy."""

    _fields = ("file", "keys", "link_dir", "inspect_in", "parameters")
    file: str
    keys: list[str]
    link_dir: str
    inspect_in: str | None
    parameters: dict[str, str]

    def __init__(
        self,
        file: str,
        keys: list[str],
        link_dir: str,
        inspect_in: str | None,
        parameters: dict[str, str],
    ) -> None:
        set_field(self, "file", file)
        set_field(self, "keys", keys)
        set_field(self, "link_dir", link_dir)
        set_field(self, "inspect_in", inspect_in)
        set_field(self, "parameters", parameters)

    @classmethod
    def read(cls, value: Any, loc: Loc, problems: Problems) -> LayoutPolicy | None:
        f = Fields.of(value, loc, problems, cls.__name__)
        if f is None:
            return None
        out = cls(
            f.text("file", required=True, min_length=1),
            f.texts("keys", min_items=1),
            f.text("linkDir", name="link_dir", required=True, min_length=1),
            f.text("inspectIn", name="inspect_in"),
            f.string_map("parameters"),
        )
        return out if f.done() else None


class Policy(Frozen):
    """A whole policy file. ``base`` is the directory relative paths are read from."""

    _fields = (
        "api_version",
        "kind",
        "ledger",
        "signers",
        "steps",
        "deny",
        "max_age",
        "layout",
        "base",
    )
    api_version: Literal["provenance-ledger.dev/v1"]
    kind: Literal["VerifyPolicy"]
    ledger: LedgerPolicy | None
    signers: dict[str, SignerPolicy]
    steps: list[StepPolicy]
    deny: DenyPolicy
    max_age: timedelta | None
    layout: LayoutPolicy | None
    base: Path

    def __init__(
        self,
        api_version: Literal["provenance-ledger.dev/v1"],
        kind: Literal["VerifyPolicy"],
        ledger: LedgerPolicy | None,
        signers: dict[str, SignerPolicy],
        steps: list[StepPolicy],
        deny: DenyPolicy,
        max_age: timedelta | None,
        layout: LayoutPolicy | None,
        base: Path,
    ) -> None:
        set_field(self, "api_version", api_version)
        set_field(self, "kind", kind)
        set_field(self, "ledger", ledger)
        set_field(self, "signers", signers)
        set_field(self, "steps", steps)
        set_field(self, "deny", deny)
        set_field(self, "max_age", max_age)
        set_field(self, "layout", layout)
        set_field(self, "base", base)

    def path(self, relative: str) -> Path:
        """A path from the policy, relative to the policy file's directory."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.base / p

    @classmethod
    def read(cls, doc: dict[str, Any], base: Path, problems: Problems) -> Policy | None:
        f = Fields(doc, (), problems)
        api_version = f.choice("apiVersion", (API_VERSION,), name="api_version")
        kind = f.choice("kind", ("VerifyPolicy",))
        ledger = f.model("ledger", LedgerPolicy.read)
        signers = f.model_map("signers", SignerPolicy.read)
        bad = [name for name in signers or {} if not _NAME.fullmatch(name)]
        if bad:
            f.fail(f"Value error, signer name {bad[0]!r} must match {_NAME.pattern}", key="signers")
        steps = f.models("steps", StepPolicy.read)
        deny = f.raw("deny")
        if deny is None:
            f.fail(NO_VALUE, key="deny")
        read_deny = (
            DenyPolicy([], None)
            if deny is MISSING or deny is None
            else DenyPolicy.read(deny, ("deny",), problems)
        )
        max_age = _max_age(f)
        policy = cls(
            api_version,
            kind,
            ledger,
            signers or {},
            steps or [],
            read_deny or DenyPolicy([], None),
            max_age,
            f.model("layout", LayoutPolicy.read),
            base,
        )
        if not f.done():
            return None
        why = policy._unmet_reference()
        if why:
            f.fail(f"Value error, {why}")
            return None
        return policy

    def _unmet_reference(self) -> str:
        if not self.steps and self.layout is None:
            return (
                "the policy requires nothing: give at least one step (or a layout); deny rules "
                "alone would pass an artifact no trusted signer attested"
            )
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            return "step names must be unique"
        for i, step in enumerate(self.steps):
            why = self._unmet_step_reference(step, names)
            if why:
                return f"steps[{i}] ({step.name}): {why}"
        if any(s.registry for s in self.signers.values()) and (
            self.ledger is None or not self.ledger.admin_keys
        ):
            return "a registry signer needs ledger.adminKeys (the ledger's admin key)"
        return ""

    def _unmet_step_reference(self, step: StepPolicy, names: list[str]) -> str:
        unknown = [s for s in step.signers if s not in self.signers]
        if unknown:
            return f"unknown signer {unknown[0]!r}"
        registry = any(self.signers[s].registry for s in step.signers)
        if not registry and step.threshold > len(set(step.signers)):
            return f"threshold {step.threshold} is more than its {len(set(step.signers))} signer(s)"
        for ref in (step.materials_from, step.products_of):
            if ref is not None and ref not in names:
                return f"no step named {ref!r}"
        return ""


def _max_age(f: Fields) -> timedelta | None:
    """``maxAge``: a duration such as ``30d`` (:func:`parse_duration`). A bare number is refused:
    seconds or milliseconds would be a guess, and a guess too large lets stale evidence pass."""
    value = f.raw("maxAge", "max_age")
    if value is MISSING or value is CLASH:
        return None
    if value is None:  # ``maxAge:`` with nothing after it: read as absent, no record would expire
        f.fail(NO_VALUE, key="maxAge")
        return None
    if isinstance(value, int | float):
        f.fail("give a duration with its unit, such as 30d or 12h, not a number", key="maxAge")
        return None
    try:
        if isinstance(value, str):
            return parse_duration(value)
    except (ValueError, OverflowError) as e:
        f.fail(f"Value error, {e}", key="maxAge")
        return None
    f.fail("Input should be a valid timedelta", key="maxAge")
    return None


def parse_policy(doc: Any, *, base: Path = Path("."), source: str = "policy") -> Policy:
    """A policy from its parsed YAML; :class:`PolicyFileError` listing every problem."""
    if not isinstance(doc, dict):
        raise PolicyFileError(f"{source}: a policy is a YAML mapping (apiVersion, kind, …)")
    if doc.get("apiVersion") != API_VERSION:
        raise PolicyFileError(
            f"{source}: apiVersion must be {API_VERSION!r}, got {doc.get('apiVersion')!r}"
        )
    problems = Problems()
    policy = Policy.read(doc, base, problems)
    if policy is None or problems:
        raise PolicyFileError(f"{source}: invalid policy:\n  " + "\n  ".join(problems))
    return policy


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file."""
    import yaml

    from verify._internal.files import read_limited
    from verify._internal.strict_yaml import load_strict

    data = read_limited(path, "policy", error=PolicyFileError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PolicyFileError(f"cannot read policy {path}: {e}") from e
    try:
        doc = load_strict(text)
    except yaml.YAMLError as e:
        raise PolicyFileError(f"{path}: not YAML: {e}") from e
    policy = parse_policy(doc, base=path.resolve().parent, source=str(path))
    texts = [t for step in policy.steps for t in step.expressions]
    if texts:  # a broken expression is the policy's error now, not once a statement reaches it
        from verify.expressions import compile_expression

        for t in texts:
            compile_expression(t)
    return policy
