"""Step 9 of the pipeline: the policy's rules over attestations already proved and signed, pure.

Each rule is a function that raises :class:`~verify.errors.RuleFailed` with the reason, or returns
the reason it passed; :func:`evaluate` runs every rule (a report lists them all, not only the
first failure) and returns one :class:`RuleResult` each. The clock is an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from attest._internal.frozen import Frozen, Value, set_field
from attest.predicates import SLSAProvenance, TestResult, VulnScan
from verify._internal.build_source import build_source, repo
from verify.artifact import Artifact
from verify.deny import dependency_findings, open_vulnerabilities
from verify.errors import RuleFailed
from verify.expressions import check_expressions
from verify.policy import Policy, StepPolicy
from verify.trust import Attestation

__all__ = ["RuleResult", "evaluate"]


class RuleResult(Frozen):
    _fields = ("rule", "passed", "reason", "records")
    rule: str
    passed: bool
    reason: str
    records: tuple[int, ...]

    def __init__(self, rule: str, passed: bool, reason: str, records: tuple[int, ...] = ()) -> None:
        set_field(self, "rule", rule)
        set_field(self, "passed", passed)
        set_field(self, "reason", reason)
        set_field(self, "records", records)


def _digests(a: Attestation) -> list[dict[str, str]]:
    return [dict(s.digest) for s in a.statement.subjects]


def _source_constraints(step: StepPolicy, pred: SLSAProvenance) -> str:
    """``sourceRepo``/``sourceRef`` against the build's own source (never a dependency), the ref
    being that same source's."""
    try:
        src = build_source(pred)
    except RuleFailed as e:
        return f"source unclear: {e}"
    if step.source_repo is not None and src.repo != repo(step.source_repo):
        return f"source repository {src.repo!r} ({src.where}) is not {step.source_repo!r}"
    if step.source_ref is not None and src.ref != step.source_ref:
        got = repr(src.ref) if src.ref else "none"
        return f"source ref {got} (of {src.repo}, {src.where}) is not {step.source_ref!r}"
    return ""


def _slsa_constraints(step: StepPolicy, pred: object) -> str:
    if not isinstance(pred, SLSAProvenance):
        return "builderId/sourceRepo/sourceRef need SLSA provenance"
    if step.builder_id is not None and pred.builder.id != step.builder_id:
        return f"builder {pred.builder.id!r} is not {step.builder_id!r}"
    if step.source_repo is None and step.source_ref is None:
        return ""
    return _source_constraints(step, pred)


def _constraints(step: StepPolicy, a: Attestation) -> str:
    """Why ``a`` does not meet the step's predicate constraints, or ``""``."""
    pred = a.verified.predicate
    if a.verified.predicate_error:
        return f"its predicate breaks its schema: {a.verified.predicate_error}"
    if step.builder_id is not None or step.source_repo is not None or step.source_ref is not None:
        why = _slsa_constraints(step, pred)
        if why:
            return why
    if step.result is not None:
        if not isinstance(pred, TestResult):
            return "result needs a test-result predicate"
        if pred.result != step.result:
            return f"test result is {pred.result}, not {step.result}"
    return check_expressions(step.expressions, a.statement)


class _StepOutcome(Value):
    _fields = ("accepted", "reasons")
    accepted: list[Attestation]
    reasons: list[str]

    def __init__(self, accepted: list[Attestation], reasons: list[str]) -> None:
        self.accepted = accepted
        self.reasons = reasons


def _judge_step(
    policy: Policy, step: StepPolicy, art: Artifact, atts: Sequence[Attestation], now: datetime
) -> _StepOutcome:
    out = _StepOutcome([], [])
    for a in atts:
        if a.statement.predicate_type != step.predicate_type or not art.named_by(_digests(a)):
            continue
        allowed = [s for s in a.signers if s.partition("/")[0] in step.signers]
        if not allowed:
            out.reasons.append(
                f"{a.label}: signed by {list(a.signers) or list(a.refused)}, not {step.signers}"
            )
            continue
        if policy.max_age is not None and now - a.time > policy.max_age:
            out.reasons.append(f"{a.label}: recorded {a.time.isoformat()}, older than maxAge")
            continue
        why = _constraints(step, a)
        if why:
            out.reasons.append(f"{a.label}: {why}")
            continue
        out.accepted.append(a)
    return out


def _step_rule(
    policy: Policy,
    step: StepPolicy,
    art: Artifact,
    atts: Sequence[Attestation],
    now: datetime,
    via: _StepOutcome | None = None,
) -> tuple[str, tuple[int, ...]]:
    """The step's threshold over its attestations about ``art`` and, for a step another one's
    ``materialsFrom`` names, ``via``: its judgement of those materials' attestations."""
    got = _judge_step(policy, step, art, atts, now)
    if via is not None:
        got.accepted += via.accepted
        got.reasons += via.reasons
    signers = {s for a in got.accepted for s in a.signers if s.partition("/")[0] in step.signers}
    distinct = {k for a in got.accepted for k in a.distinct(s for s in a.signers if s in signers)}
    records = tuple(a.index for a in got.accepted if a.index is not None)
    if len(distinct) < step.threshold:
        found = f"{len(distinct)} of {step.threshold} required distinct signer(s)"
        if got.accepted:  # attestations there are, but too few distinct keys sign them
            detail = f"{len(got.accepted)} accepted attestation(s), signed by " + ", ".join(
                sorted(signers)
            )
            if got.reasons:
                detail += "; " + "; ".join(got.reasons)
        else:
            detail = "; ".join(got.reasons) or f"no {step.predicate_type} attestation names it"
        raise RuleFailed(f"{found}: {detail}")
    return f"signed by {', '.join(sorted(signers))} (threshold {step.threshold})", records


def _material_steps(
    policy: Policy, other: str, materials: Sequence[Attestation], now: datetime
) -> _StepOutcome:
    """Step ``other`` over the attestations about other artifacts (``materials``: records naming
    a material's digest, proved like the rest), each judged for its own subject."""
    step = next(s for s in policy.steps if s.name == other)
    out = _StepOutcome([], [])
    for a in materials:
        for d in _digests(a)[:1]:
            got = _judge_step(policy, step, Artifact(f"material {a.label}", dict(d)), [a], now)
            out.accepted += got.accepted
            out.reasons += [f"{r} (a material)" for r in got.reasons]
    return out


def _chain_rule(
    step: StepPolicy,
    other: str,
    kind: str,
    accepted: dict[str, list[Attestation]],
    via: Sequence[Attestation] = (),
) -> str:
    """``materialsFrom``: the step's link materials include the other step's products (the
    other step's attestations about the artifact, or about a material's own digest);
    ``productsOf``: the step's subjects are among the other step's products."""
    products = {
        (alg, v) for a in accepted.get(other, []) for d in _digests(a) for alg, v in d.items()
    }
    mine = accepted.get(step.name, [])
    if not products or not mine:
        raise RuleFailed(f"no accepted {other!r} or {step.name!r} attestation to chain")
    for a in mine:
        if kind == "materials":
            raw = (a.statement.predicate or {}).get("materials") or []
            named = [d.get("digest", {}) for d in raw if isinstance(d, dict)]
        else:
            named = _digests(a)
        if not any((alg, v) in products for d in named for alg, v in d.items()):
            raise RuleFailed(f"{a.label}: its {kind} name no product of step {other!r}")
    labels = sorted({a.label for a in via})
    where = f" ({', '.join(labels)}, about the materials' own digests)" if labels else ""
    return f"{step.name}'s {kind} are products of {other}{where}"


def _run(rule: str, fn: Callable[[], str | tuple[str, tuple[int, ...]]]) -> RuleResult:
    try:
        got = fn()
    except RuleFailed as e:
        return RuleResult(rule, False, str(e))
    reason, records = got if isinstance(got, tuple) else (got, ())
    return RuleResult(rule, True, reason, records)


def _steps(
    policy: Policy,
    arts: Sequence[Artifact],
    atts: Sequence[Attestation],
    now: datetime,
    materials: Sequence[Attestation] = (),
) -> Iterable[RuleResult]:
    targets = {s.materials_from for s in policy.steps if s.materials_from is not None}
    via = {t: _material_steps(policy, t, materials, now) for t in targets} if materials else {}
    accepted: dict[str, list[Attestation]] = {}
    for step in policy.steps:
        extra = via.get(step.name)
        for art in arts:
            name = f"step {step.name}" + (f" [{art.name}]" if len(arts) > 1 else "")
            yield _run(name, lambda s=step, a=art, x=extra: _step_rule(policy, s, a, atts, now, x))  # type: ignore[misc]
            accepted.setdefault(step.name, []).extend(
                _judge_step(policy, step, art, atts, now).accepted
            )
        accepted.setdefault(step.name, []).extend(extra.accepted if extra else [])
    for step in policy.steps:
        for other, kind in ((step.materials_from, "materials"), (step.products_of, "subjects")):
            if other is not None:
                m = via.get(other) if kind == "materials" else None
                x = m.accepted if m is not None else []
                yield _run(
                    f"step {step.name} {kind} from {other}",
                    lambda s=step, o=other, k=kind, x=x: _chain_rule(s, o, k, accepted, x),  # type: ignore[misc]
                )


def _deny_dependencies(policy: Policy, atts: Sequence[Attestation]) -> str:
    bad = dependency_findings(policy.deny.dependencies, atts)
    if bad:
        raise RuleFailed("; ".join(bad))
    n = len(policy.deny.dependencies)
    return f"no dependency in the {n} denied range(s)"


def _deny_vulnerabilities(
    policy: Policy, arts: Sequence[Artifact], atts: Sequence[Attestation]
) -> str:
    assert policy.deny.vulnerabilities is not None
    level = policy.deny.vulnerabilities.severity_at_least
    scans = [a for a in atts if isinstance(a.verified.predicate, VulnScan)]
    unscanned = [x.name for x in arts if not any(x.named_by(_digests(s)) for s in scans)]
    if unscanned and policy.deny.vulnerabilities.require_scan:
        raise RuleFailed(f"no vulnerability scan by a policy signer names {', '.join(unscanned)}")
    open_, covered = open_vulnerabilities(level, atts, arts)
    if open_:
        raise RuleFailed(f"open at or above {level}: " + "; ".join(open_))
    extra = f" ({len(covered)} covered by VEX: {', '.join(covered)})" if covered else ""
    if unscanned:
        extra += f"; but no scan names {', '.join(unscanned)} (requireScan: true fails this)"
    return f"no open vulnerability at or above {level}{extra}"


TRUSTED_EVIDENCE = "trusted evidence"


def _trusted_evidence(arts: Sequence[Artifact], trusted: Sequence[Attestation]) -> str:
    """At least one attestation by a signer the policy trusts names each artifact, whatever the
    other rules: deny rules over nothing trusted must not pass."""
    missing = [a.name for a in arts if not any(a.named_by(_digests(t)) for t in trusted)]
    if missing:
        raise RuleFailed(
            f"no attestation signed by a signer the policy trusts names {', '.join(missing)}"
        )
    return f"{len(trusted)} attestation(s) by policy signers name the artifact"


def evaluate(
    policy: Policy,
    arts: Sequence[Artifact],
    atts: Sequence[Attestation],
    now: datetime,
    materials: Sequence[Attestation] = (),
) -> list[RuleResult]:
    """Every rule of ``policy`` over the trusted attestations ``atts`` about ``arts``;
    ``materials``: attestations about the materials ``materialsFrom`` follows (only that rule
    reads them)."""
    trusted = [a for a in atts if a.signers]
    chained = [a for a in materials if a.signers]
    results = list(_steps(policy, arts, trusted, now, chained))
    if policy.deny.dependencies:
        results.append(_run("deny dependencies", lambda: _deny_dependencies(policy, trusted)))
    if policy.deny.vulnerabilities is not None:
        results.append(
            _run("deny vulnerabilities", lambda: _deny_vulnerabilities(policy, arts, trusted))
        )
    results.append(_run(TRUSTED_EVIDENCE, lambda: _trusted_evidence(arts, trusted)))
    return results
