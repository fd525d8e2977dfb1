"""The policy model: issue 11's example (the very block in docs/deploy.md) loads as written, and
every kind of mistake is a clear PolicyFileError (exit 2) naming its place."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from verify.errors import PolicyFileError
from verify.policy import load_policy, parse_duration, parse_policy

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def doc_policy_text() -> str:
    """The first ``yaml`` block of docs/deploy.md that is a VerifyPolicy."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", DOC.read_text(), re.MULTILINE | re.DOTALL)
    return next(b for b in blocks if "kind: VerifyPolicy" in b)


def base() -> dict[str, Any]:
    return yaml.safe_load(doc_policy_text())


def test_the_issue_example_in_the_docs_loads_as_written(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(doc_policy_text())
    p = load_policy(path)
    assert p.ledger is not None and p.ledger.origin == "example.com/ledger"
    assert p.signers["ci"].key == "keys/ci.pub"
    assert p.path("keys/ci.pub") == tmp_path / "keys" / "ci.pub"
    sig = p.signers["release-workflow"].sigstore
    assert sig is not None and sig.identity_regex is not None
    assert re.fullmatch(
        sig.identity_regex,
        "https://github.com/example/app/.github/workflows/release.yml@refs/tags/v1.2.0",
    )
    assert [s.name for s in p.steps] == ["build", "unit-tests"]
    assert p.steps[0].builder_id == "https://ci.example/builder@v1"
    assert p.steps[1].result == "PASSED"
    assert p.deny.dependencies[0].versions == "vers:maven/<2.17.1"
    assert p.deny.vulnerabilities is not None
    assert p.deny.vulnerabilities.severity_at_least == "high"
    assert p.max_age == timedelta(days=30)


def _error(doc: Any) -> str:
    with pytest.raises(PolicyFileError) as e:
        parse_policy(doc, source="p.yaml")
    assert e.value.exit_code == 2
    return str(e.value)


def test_an_unknown_key_is_refused_with_its_place() -> None:
    doc = base()
    doc["steps"][0]["treshold"] = 2
    assert "steps[0].treshold: Extra inputs are not permitted" in _error(doc)
    doc = base()
    doc["denyy"] = {}
    assert "denyy" in _error(doc)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(apiVersion="v2"), "apiVersion must be"),
        (lambda d: d.update(kind="Policy"), "kind"),
        (lambda d: d["steps"][0].update(signers=["nobody"]), "unknown signer 'nobody'"),
        (lambda d: d["steps"][0].update(threshold=2), "threshold 2 is more than its 1 signer"),
        (lambda d: d["steps"][0].update(threshold=0), "threshold"),
        # h35 #5c: a boolean is no count (Python's True is 1)
        (
            lambda d: d["steps"][0].update(threshold=True),
            "threshold: Input should be a valid integer",
        ),
        (
            lambda d: d["steps"][0].update(threshold=False),
            "threshold: Input should be a valid integer",
        ),
        (lambda d: d.update(maxAge="30 days"), "not a duration"),
        (lambda d: d.update(maxAge=2592000000), "not a number"),  # ms or s? a guess
        (lambda d: d.update(maxAge=True), "not a number"),
        (
            lambda d: d["signers"]["ci"].update(sigstore={"issuer": "x", "identity": "y"}),
            "exactly one",
        ),
        (
            lambda d: d["signers"]["release-workflow"]["sigstore"].update(identity="x"),
            "exactly one of identity",
        ),
        (
            lambda d: d["signers"]["release-workflow"]["sigstore"].update(identityRegex="("),
            "regular expression",
        ),
        (
            lambda d: d["deny"]["dependencies"][0].update(purl="pkg:maven/a/b@1.0"),
            "without @version",
        ),
        (lambda d: d["deny"]["dependencies"][0].update(versions="<2.0"), "versions"),
        (
            lambda d: d["deny"]["vulnerabilities"].update(severityAtLeast="severe"),
            "severityAtLeast",
        ),
        (lambda d: d["signers"].update(reg={"registry": True}), "adminKeys"),
        (lambda d: d["signers"]["ci"].update(notBefore="2026-01-01T00:00:00"), "time zone"),
        (lambda d: d.update(steps=[d["steps"][0], d["steps"][0]]), "unique"),
        (lambda d: d["steps"][1].update(productsOf="nope"), "no step named 'nope'"),
        (lambda d: d["ledger"].update(keys=["a+1+x", "b+2+y"]), "same log"),
        # hostile findings of 2026-11-30: never read as weaker than written, never a traceback
        (lambda d: d["signers"]["ci"].update(notAfter=99999999999), "not a number"),
        (lambda d: d["signers"]["ci"].update(notAfter=1700000000000), "not a number"),
        (lambda d: d["signers"]["ci"].update(notAfter="1700000000"), "not a number"),
        (lambda d: d["signers"]["ci"].update(notAfter=float("inf")), "not a number"),
        (lambda d: d["signers"]["ci"].update(notAfter="99999-01-01T00:00:00Z"), "datetime"),
        (
            lambda d: d["signers"]["ci"].update(
                notAfter="2099-01-01T00:00:00Z", not_after="2020-01-01T00:00:00Z"
            ),
            "give notAfter or not_after, not both",
        ),
        (
            lambda d: d["steps"][0].update(predicate_type="https://example.com/x"),
            "give predicateType or predicate_type, not both",
        ),
        (
            lambda d: d["signers"].update(reg={"registry": True, "names": []}),
            "an empty list allows no registry signer",
        ),
        # hostile findings, second round: a key left empty never drops its rule
        (lambda d: d["deny"].update(vulnerabilities=None), "vulnerabilities: has no value"),
        (lambda d: d.update(ledger=None), "ledger: has no value"),
        (lambda d: d["steps"][0].update(sourceRef=""), "sourceRef: is empty"),
        (lambda d: d["steps"][0].update(builderId=""), "builderId: is empty"),
        (lambda d: d["signers"]["ci"].update(key=""), "key: is empty"),
        (lambda d: d.update(base="/etc"), "base: Extra inputs are not permitted"),
    ],
)
def test_mistakes_are_named(change: Any, message: str) -> None:
    doc = base()
    change(doc)
    assert message in _error(doc)


def test_not_a_mapping_and_not_yaml(tmp_path: Path) -> None:
    assert "YAML mapping" in _error(["a"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: [unclosed\n")
    with pytest.raises(PolicyFileError, match="not YAML"):
        load_policy(bad)
    with pytest.raises(PolicyFileError, match="cannot read policy"):
        load_policy(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("1d12h", timedelta(hours=36)),
        ("2w", timedelta(weeks=2)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_durations(text: str, want: timedelta) -> None:
    assert parse_duration(text) == want


@pytest.mark.parametrize("text", ["", "0d", "30", "d", "1.5d", "-1d", "30 d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_every_problem_is_listed_with_its_place() -> None:
    """The policy is read without pydantic (a deploy gate's start-up): its messages and places
    stay pydantic's, every problem in one error."""
    doc = base()
    doc["steps"][0]["threshold"] = "many"
    doc["steps"][1]["signers"] = []
    doc["deny"]["vulnerabilities"]["severityAtLeast"] = "severe"
    doc["signers"]["ci"]["registry"] = "perhaps"
    doc["ledger"] = {"keys": [1]}
    lines = _error(doc).splitlines()[1:]
    assert [line.strip() for line in lines] == [
        "ledger.keys[0]: Input should be a valid string",
        "signers.ci.registry: Input should be a valid boolean, unable to interpret input",
        "steps[0].threshold: Input should be a valid integer, unable to parse string as an integer",
        "steps[1].signers: List should have at least 1 item after validation, not 0",
        "deny.vulnerabilities.severityAtLeast: Input should be 'low', 'medium', 'high' or "
        "'critical'",
    ]


def test_values_convert_as_they_did() -> None:
    """Lax conversions, as the pydantic models made them: a quoted number, yes/no, a quoted
    time, the Python name of a field."""
    doc = base()
    doc["steps"][0].update(threshold="1")
    doc["deny"]["vulnerabilities"]["requireScan"] = "yes"
    doc["signers"]["ci"]["notBefore"] = "2026-01-01T00:00:00Z"
    doc["ledger"]["state_dir"] = "state"
    p = parse_policy(doc)
    assert p.steps[0].threshold == 1
    assert p.deny.vulnerabilities is not None and p.deny.vulnerabilities.require_scan is True
    assert p.signers["ci"].not_before is not None and p.signers["ci"].not_before.year == 2026
    assert p.ledger is not None and p.ledger.state_dir == "state"
    with pytest.raises(AttributeError):
        p.steps[0].threshold = 2  # type: ignore[misc]


def test_a_yaml_merge_key_is_refused_by_name(tmp_path: Path) -> None:
    """``<<: *anchor`` lets a key beside it override the merged value silently, like a duplicate
    key: refused with a message that says so, not PyYAML's 'no constructor for tag'."""
    text = doc_policy_text().replace(
        "kind: VerifyPolicy", "kind: VerifyPolicy\nx-defaults: &d {maxAge: 30d}", 1
    )
    text += "\nsteps2:\n  <<: *d\n"
    path = tmp_path / "merge.yaml"
    path.write_text(text)
    with pytest.raises(PolicyFileError) as e:
        load_policy(path)
    assert e.value.exit_code == 2 and "merge key (<<) is not allowed" in str(e.value)


# hostile finding F1 (third round): every optional key left with no value was read as absent,
# so ``builderId:`` alone dropped the builder rule and a build by anyone passed (exit 0)
@pytest.mark.parametrize(
    ("change", "place"),
    [
        (lambda d: d["steps"][0].update(builderId=None), "steps[0].builderId"),
        (lambda d: d["steps"][0].update(sourceRepo=None), "steps[0].sourceRepo"),
        (lambda d: d["steps"][0].update(sourceRef=None), "steps[0].sourceRef"),
        (lambda d: d["steps"][0].update(materialsFrom=None), "steps[0].materialsFrom"),
        (lambda d: d["steps"][1].update(result=None), "steps[1].result"),
        (lambda d: d["steps"][1].update(expressions=None), "steps[1].expressions"),
        (lambda d: d.update(maxAge=None), "maxAge"),
        (lambda d: d.update(deny=None), "deny"),
        (lambda d: d["deny"].update(dependencies=None), "deny.dependencies"),
        (lambda d: d["deny"]["dependencies"][0].update(versions=None), "versions"),
        (lambda d: d["signers"]["ci"].update(notAfter=None), "signers.ci.notAfter"),
        (lambda d: d["signers"]["ci"].update(notBefore=None), "signers.ci.notBefore"),
        (lambda d: d["ledger"].update(stateDir=None), "ledger.stateDir"),
        (
            lambda d: d["signers"]["release-workflow"]["sigstore"].update(identityRegex=None),
            "identityRegex",
        ),
    ],
)
def test_a_key_with_no_value_is_refused_by_name(change: Any, place: str) -> None:
    doc = base()
    change(doc)
    assert f"{place}: has no value (null)" in _error(doc)


def test_null_keys_written_in_yaml_are_refused_not_dropped(tmp_path: Path) -> None:
    """The tester's policy as YAML text: each key left empty is named, exit 2."""
    text = doc_policy_text()
    text = text.replace("builderId: https://ci.example/builder@v1", "builderId:\n    sourceRepo:")
    text = text.replace("result: PASSED", "result:")
    text = text.replace("maxAge: 30d", "maxAge:")
    assert text.count(":\n") > doc_policy_text().count(":\n")
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyFileError) as e:
        load_policy(path)
    assert e.value.exit_code == 2
    for place in ("steps[0].builderId", "steps[0].sourceRepo", "steps[1].result", "maxAge"):
        assert f"{place}: has no value" in str(e.value)


# hostile finding h35 #3: ``deny: ~`` was refused, but ``deny: {}`` and
# ``deny: {dependencies: []}`` read as "no deny rule" and a log4j build passed (exit 0)
@pytest.mark.parametrize(
    ("change", "place"),
    [
        (lambda d: d.update(deny={}), "deny"),
        (lambda d: d.update(deny={"dependencies": []}), "deny.dependencies"),
        (lambda d: d["deny"].update(dependencies=[]), "deny.dependencies"),
        (
            lambda d: d.update(steps=[], layout={"file": "l", "keys": ["k"], "linkDir": "."}),
            "steps",
        ),
        (lambda d: d["steps"][1].update(expressions=[]), "steps[1].expressions"),
    ],
)
def test_an_empty_rule_list_or_mapping_is_refused_by_name(change: Any, place: str) -> None:
    doc = base()
    change(doc)
    assert f"{place}: is empty: it would silently drop the rule" in _error(doc)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # already refused, each for its own reason: none of these weakens the gate silently
        (lambda d: d.update(signers={}), "unknown signer 'ci'"),
        (lambda d: d["steps"][0].update(signers=[]), "steps[0].signers: List should have"),
        (lambda d: d["deny"].update(vulnerabilities={}), "severityAtLeast: Field required"),
        (lambda d: d["deny"]["vulnerabilities"].update(requireScan={}), "valid boolean"),
        (lambda d: d["deny"]["vulnerabilities"].update(requireScan=[]), "valid boolean"),
        (lambda d: d["deny"]["vulnerabilities"].update(requireScan=""), "valid boolean"),
        (lambda d: d["deny"]["vulnerabilities"].update(requireScan=None), "has no value"),
        (lambda d: d.update(ledger={}), "ledger.keys: Field required"),
        (lambda d: d["ledger"].update(keys=[]), "ledger.keys: List should have"),
        (lambda d: d.update(deny=[]), "deny: Input should be a valid dictionary"),
    ],
)
def test_other_empty_settings_are_refused(change: Any, message: str) -> None:
    doc = base()
    change(doc)
    assert message in _error(doc)


def test_an_empty_deny_in_yaml_exits_2(tmp_path: Path) -> None:
    """The tester's spellings, as YAML text."""
    for deny in ("deny: {}", "deny: {dependencies: []}", "deny:\n  dependencies: []"):
        text = re.sub(r"^deny:\n(  .*\n)+", deny + "\n", doc_policy_text(), flags=re.MULTILINE)
        assert deny in text
        path = tmp_path / "policy.yaml"
        path.write_text(text)
        with pytest.raises(PolicyFileError) as e:
            load_policy(path)
        assert e.value.exit_code == 2 and "is empty" in str(e.value)
