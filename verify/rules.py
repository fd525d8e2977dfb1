"""Step 9 of the pipeline: the policy's rules over attestations already proved and signed, pure.

Each rule is a function that raises :class:`~verify.errors.RuleFailed` with the reason, or returns
the reason it passed; :func:`evaluate` runs every rule (a report lists them all, not only the
first failure) and returns one :class:`RuleResult` each. The clock is an argument.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from attest._internal.frozen import Frozen, Value, set_field
from attest.predicates import OpenVEX, SLSAProvenance, TestResult, VulnScan
from verify._internal.build_source import build_source, repo
from verify.artifact import Artifact
from verify.deny import dependency_findings, open_vulnerabilities
from verify.errors import RuleFailed
from verify.expressions import check_expressions
from verify.policy import Policy, StepPolicy
from verify.trust import Attestation

__all__ = ["RuleResult", "evaluate"]

VULNS = "https://in-toto.io/attestation/vulns"  # and every version under it; v0.2 is read
OPENVEX = "https://openvex.dev/ns"  # and every version under it; v0.2.0 is read


def _family(a: Attestation, base: str) -> bool:
    return (a.statement.predicate_type + "/").startswith(base + "/")


def _unreadable(a: Attestation, arts: Sequence[Artifact]) -> bool:
    """Whether ``a`` is a scan or a VEX about one of ``arts`` that the gate cannot read (its
    predicate breaks its schema, or it is a version without a model). About: a subject names the
    artifact, or — for a VEX, whose products name it — its digest is anywhere in the predicate."""
    pred = a.verified.predicate
    scan = _family(a, VULNS) and not isinstance(pred, VulnScan)
    vex = _family(a, OPENVEX) and not isinstance(pred, OpenVEX)
    if not (scan or vex):
        return False
    if any(x.named_by(_digests(a)) for x in arts):
        return True
    text = json.dumps(a.statement.predicate).lower() if vex else ""
    return any(value.lower() in text for x in arts for value in x.digest.values())


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
    if step.source_repo is not None:
        try:
            wanted = repo(step.source_repo)
        except RuleFailed as e:
            return f"the policy's sourceRepo: {e}"
        if src.repo != wanted:
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


class _Tally(Value):
    """The step's signers on one digest ``pair`` (algorithm, value): the accepted attestations
    whose subjects name that pair, their signers, and the distinct keys behind them."""

    _fields = ("pair", "accepted", "signers", "distinct")
    pair: tuple[str, str]
    accepted: list[Attestation]
    signers: set[str]
    distinct: set[str]

    def __init__(
        self,
        pair: tuple[str, str],
        accepted: list[Attestation],
        signers: set[str],
        distinct: set[str],
    ) -> None:
        self.pair = pair
        self.accepted = accepted
        self.signers = signers
        self.distinct = distinct


def _on(a: Attestation, alg: str, value: str) -> bool:
    """Whether a subject of ``a`` is this one digest pair (matched as artifacts are matched)."""
    return Artifact("", {alg: value}).named_by(_digests(a))


def _tally(step: StepPolicy, accepted: Sequence[Attestation], alg: str, value: str) -> _Tally:
    on = [a for a in accepted if _on(a, alg, value)]
    signers = {s for a in on for s in a.signers if s.partition("/")[0] in step.signers}
    distinct = {k for a in on for k in a.distinct(s for s in a.signers if s in signers)}
    return _Tally((alg, value), on, signers, distinct)


def _count(step: StepPolicy, accepted: Sequence[Attestation], digest: dict[str, str]) -> _Tally:
    """The step's signers over ``accepted`` on the one (algorithm, value) pair of ``digest``
    that the most distinct keys attest. A threshold is met by distinct signers of one and the
    same pair: signers matched through different algorithms never add up — a material's digest
    map is its author's word, and may pair one artifact's SHA-256 with another's SHA-512."""
    tallies = [_tally(step, accepted, alg, v) for alg, v in sorted(digest.items())]
    return max(tallies, key=lambda t: len(t.distinct), default=_Tally(("", ""), [], set(), set()))


def _per_digest(step: StepPolicy, accepted: Sequence[Attestation], digest: dict[str, str]) -> str:
    """Who signed which of ``digest``'s pairs, when it lists several (a shortfall's detail)."""
    if len(digest) < 2:
        return ""
    each = [_tally(step, accepted, alg, v) for alg, v in sorted(digest.items())]
    return (
        " (signers per digest, which never add up: "
        + "; ".join(
            f"{t.pair[0]}:{t.pair[1][:12]}… {', '.join(sorted(t.signers)) or 'none'}" for t in each
        )
        + ")"
    )


def _shortfall(step: StepPolicy, got: _StepOutcome, tally: _Tally, digest: dict[str, str]) -> str:
    found = f"{len(tally.distinct)} of {step.threshold} required distinct signer(s)"
    if got.accepted:  # attestations there are, but too few distinct keys sign one digest
        signers = {
            s for a in got.accepted for s in a.signers if s.partition("/")[0] in step.signers
        }
        detail = f"{len(got.accepted)} accepted attestation(s), signed by " + ", ".join(
            sorted(signers)
        )
        detail += _per_digest(step, got.accepted, digest)
        if got.reasons:
            detail += "; " + "; ".join(got.reasons)
    else:
        detail = "; ".join(got.reasons) or f"no {step.predicate_type} attestation names it"
    return f"{found}: {detail}"


def _records(accepted: Iterable[Attestation]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(a.index for a in accepted if a.index is not None))


class _Material(Artifact):
    """One entry of a link's ``predicate.materials``: a display name and its digests (empty when
    it names none: such a material is the product of no step)."""

    def judged(
        self, policy: Policy, step: StepPolicy, pool: Sequence[Attestation], now: datetime
    ) -> tuple[_Tally, str]:
        """``step`` over the attestations about this material's own digests: the tally of the
        one (algorithm, value) pair most distinct signers attest, and why the threshold is not
        met there, or ``""``. A material whose digests an accepted subject contradicts (it
        names one of its pairs and another value for another of its algorithms) names two
        different artifacts, and fails whatever its tally."""
        got = _judge_step(policy, step, Artifact(f"material {self.name}", self.digest), pool, now)
        tally = _count(step, got.accepted, self.digest)
        clash = self._contradiction(got.accepted)
        if clash:
            return tally, clash
        if len(tally.distinct) >= step.threshold:
            return tally, ""
        return tally, _shortfall(step, got, tally, self.digest)

    def _contradiction(self, accepted: Sequence[Attestation]) -> str:
        for a in accepted:
            for d in _digests(a):
                same = sorted(alg for alg, v in self.digest.items() if d.get(alg) == v)
                other = sorted(alg for alg, v in self.digest.items() if d.get(alg) not in (None, v))
                if same and other:
                    return (
                        f"its digests name two different artifacts: {a.label}'s subject with its "
                        f"{same[0]} has another {other[0]} than the material lists"
                    )
        return ""


def _materials_of(a: Attestation) -> list[_Material]:
    """Every entry of ``a``'s ``predicate.materials``; a malformed one (not an object, no digest)
    is kept with no digest, so it is a product of nothing and fails the rules that need one."""
    raw = (a.statement.predicate or {}).get("materials") or []
    out = []
    for i, entry in enumerate(raw if isinstance(raw, list) else [raw]):
        d: dict[str, Any] = entry if isinstance(entry, dict) else {}
        name = next((d[k] for k in ("uri", "name") if isinstance(d.get(k), str) and d[k]), "")
        digest = d.get("digest")
        pairs = digest.items() if isinstance(digest, dict) else []
        clean = {k: v for k, v in pairs if isinstance(k, str) and isinstance(v, str)}
        out.append(_Material(name or f"materials[{i}]", clean))
    return out


def _listed(
    policy: Policy, step: StepPolicy, art: Artifact, atts: Sequence[Attestation], now: datetime
) -> list[_Material]:
    """The materials the accepted attestations about ``art`` of every step whose
    ``materialsFrom`` names ``step`` list (each once)."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], _Material] = {}
    for other in policy.steps:
        if other.materials_from == step.name:
            for a in _judge_step(policy, other, art, atts, now).accepted:
                for m in _materials_of(a):
                    found.setdefault((m.name, tuple(sorted(m.digest.items()))), m)
    return list(found.values())


def _step_rule(
    policy: Policy,
    step: StepPolicy,
    art: Artifact,
    atts: Sequence[Attestation],
    now: datetime,
    listed: Sequence[_Material] = (),
    pool: Sequence[Attestation] = (),
) -> tuple[str, tuple[int, ...]]:
    """The step's threshold, met by distinct signers attesting one and the same digest: the
    artifact's own, or — for a step another one's ``materialsFrom`` names — each of the
    materials ``listed`` (every one of them, each over its own digest's attestations in
    ``pool``). Attestations about different materials never add up."""
    got = _judge_step(policy, step, art, atts, now)
    tally = _count(step, got.accepted, art.digest)
    if len(tally.distinct) >= step.threshold:
        return f"signed by {', '.join(sorted(tally.signers))} (threshold {step.threshold})", (
            _records(tally.accepted)
        )
    own = _shortfall(step, got, tally, art.digest)
    if not listed:
        raise RuleFailed(own)
    judged = [(m, *m.judged(policy, step, pool, now)) for m in listed]
    short = [f"material {m.name}: {why}" for m, _, why in judged if why]
    if short:
        raise RuleFailed(
            f"{own}; and not each of the {len(listed)} material(s) its materialsFrom link "
            "lists meets it: " + "; ".join(short)
        )
    signers = {s for _, t, _ in judged for s in t.signers}
    return (
        f"signed by {', '.join(sorted(signers))} (threshold {step.threshold}) on each of "
        f"its {len(listed)} material(s)",
        _records(a for _, t, _ in judged for a in t.accepted),
    )


def _materials_rule(
    policy: Policy,
    step: StepPolicy,
    other: StepPolicy,
    accepted: dict[str, list[Attestation]],
    pool: Sequence[Attestation],
    now: datetime,
) -> str:
    """``materialsFrom``: every material each accepted attestation of ``step`` lists is a product
    of ``other`` — ``other``'s threshold met by distinct signers attesting that material's own
    digest (the artifact's evidence or the material's own records) — as in-toto's
    ``MATCH * WITH PRODUCTS FROM other`` followed by ``DISALLOW *``."""
    mine = accepted.get(step.name, [])
    if not mine:
        raise RuleFailed(f"no accepted {step.name!r} attestation to chain")
    short, labels = [], set()
    for a in mine:
        listed = _materials_of(a)
        if not listed:
            short.append(f"{a.label}: lists no material")
        for m in listed:
            tally, why = m.judged(policy, other, pool, now)
            if why:
                short.append(f"{a.label}: material {m.name} is no product of step {other.name!r}")
                short[-1] += f" ({why})"
            labels |= {b.label for b in tally.accepted if b not in accepted.get(other.name, [])}
    if short:
        raise RuleFailed("; ".join(short))
    where = f" ({', '.join(sorted(labels))}, about the materials' own digests)" if labels else ""
    return f"{step.name}'s materials are products of {other.name}{where}"


def _products_rule(step: StepPolicy, other: str, accepted: dict[str, list[Attestation]]) -> str:
    """``productsOf``: the step's subjects are among the other step's products."""
    products = {
        (alg, v) for a in accepted.get(other, []) for d in _digests(a) for alg, v in d.items()
    }
    mine = accepted.get(step.name, [])
    if not products or not mine:
        raise RuleFailed(f"no accepted {other!r} or {step.name!r} attestation to chain")
    for a in mine:
        if not any((alg, v) in products for d in _digests(a) for alg, v in d.items()):
            raise RuleFailed(f"{a.label}: its subjects name no product of step {other!r}")
    return f"{step.name}'s subjects are products of {other}"


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
    # a material's attestations: its own records (followed), or the artifact's naming it too
    pool = list({(a.index, a.body_sha256, a.label): a for a in [*atts, *materials]}.values())
    accepted: dict[str, list[Attestation]] = {}
    for step in policy.steps:
        for art in arts:
            name = f"step {step.name}" + (f" [{art.name}]" if len(arts) > 1 else "")
            listed = _listed(policy, step, art, atts, now)
            yield _run(
                name,
                lambda s=step, a=art, m=listed: _step_rule(policy, s, a, atts, now, m, pool),  # type: ignore[misc]
            )
            accepted.setdefault(step.name, []).extend(
                _judge_step(policy, step, art, atts, now).accepted
            )
    by_name = {s.name: s for s in policy.steps}
    for step in policy.steps:
        if step.materials_from is not None:
            other = by_name[step.materials_from]
            yield _run(
                f"step {step.name} materials from {other.name}",
                lambda s=step, o=other: _materials_rule(policy, s, o, accepted, pool, now),  # type: ignore[misc]
            )
        if step.products_of is not None:
            yield _run(
                f"step {step.name} subjects from {step.products_of}",
                lambda s=step, o=step.products_of: _products_rule(s, o, accepted),  # type: ignore[misc]
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
    unread = [a for a in atts if _unreadable(a, arts)]
    if unread:  # a scan or VEX the gate cannot read may hide a finding or reopen one
        a = unread[0]
        what = "scan" if _family(a, VULNS) else "VEX"
        why = a.verified.predicate_error or (
            f"{a.statement.predicate_type} is not a version the gate reads "
            f"({'vulns/v0.2' if what == 'scan' else 'OpenVEX v0.2.0'})"
        )
        raise RuleFailed(f"a trusted {what} cannot be read ({a.label}): {why}")
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
