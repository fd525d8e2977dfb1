"""`sourceRepo`/`sourceRef` read the build's own source as its build type defines it — never a
`resolvedDependencies` entry — and the ref checked is that same source's. A provenance whose
source cannot be told (none, or two that disagree) fails the step with the reason.

Regression (h33 r02): a build of `evil/fork` that merely depends on `example/app` by git URL
(`helper @ git+https://github.com/example/app@main` in requirements.txt) passed a policy
requiring `sourceRepo: https://github.com/example/app`, `sourceRef: refs/heads/main`."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from attest.build import BUILD_TYPE, provenance_statement
from attest.collect.ci import detect_ci
from attest.predicates import SLSAProvenance
from attest.statement import ResourceDescriptor
from tests.conftest import fixture_path
from tests.verify.conftest import BUILDER, SLSA, DemoLedger, statement
from tests.verify.gate import fresh, report, sha
from verify._internal.build_source import build_source
from verify.errors import RuleFailed

APP = "https://github.com/example/app"
EVIL = "https://github.com/evil/fork"
GHA = "https://actions.github.io/buildtypes/workflow/v1"


def _predicate(
    build_type: str, external: dict[str, Any], deps: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "buildDefinition": {
            "buildType": build_type,
            "externalParameters": external,
            "resolvedDependencies": [{"name": "dep", "uri": d} for d in deps],
        },
        "runDetails": {"builder": {"id": BUILDER}},
    }


def _source(build_type: str, external: dict[str, Any], deps: tuple[str, ...] = ()) -> Any:
    return build_source(SLSAProvenance.from_dict(_predicate(build_type, external, deps)))


def _policy(demo: DemoLedger, where: Path, **step: str) -> Path:
    build = {"name": "build", "predicateType": SLSA, "signers": ["ci"], "builderId": BUILDER}
    return demo.policy(where / "policy.yaml", steps=[{**build, **step}])


def _gate(demo: DemoLedger, tmp_path: Path, pred: dict[str, Any], **step: str) -> tuple[int, str]:
    name = fresh()
    demo.append(statement(name, SLSA, pred))
    code, doc = report(sha(name), "--policy", _policy(demo, tmp_path, **step), "--db", demo.db)
    return code, next(r for r in doc["rules"] if r["rule"] == "step build")["reason"]


def test_a_git_dependency_is_not_the_source(demo: DemoLedger, tmp_path: Path) -> None:
    """The r02 attack: the source is evil/fork; a dependency names example/app@main."""
    evil = {"uri": f"git+{EVIL}@deadbeef", "ref": "refs/heads/main"}
    pred = _predicate("https://example.com/build/v1", {"source": evil}, (f"git+{APP}@main",))
    code, reason = _gate(demo, tmp_path, pred, sourceRepo=APP, sourceRef="refs/heads/main")
    assert code == 1 and EVIL in reason and "is not" in reason, reason
    # the same build, sourceRepo evil/fork: met (the constraint reads the build's own source)
    code, reason = _gate(demo, tmp_path, pred, sourceRepo=EVIL, sourceRef="refs/heads/main")
    assert code == 0, reason


def test_the_repository_and_ref_of_one_source(demo: DemoLedger, tmp_path: Path) -> None:
    """The ref checked is the source's: another part's ref (workflow) does not lend it one."""
    external = {
        "source": {"uri": f"git+{APP}@abc", "ref": "refs/heads/evil"},
        "workflow": {"repository": EVIL, "ref": "refs/heads/main"},
    }
    pred = _predicate(BUILD_TYPE, external)
    code, reason = _gate(demo, tmp_path, pred, sourceRepo=APP, sourceRef="refs/heads/main")
    assert code == 1 and "refs/heads/evil" in reason, reason
    # under a build type that does not say which one is the source: unclear, fails closed
    pred = _predicate("https://example.com/build/v1", external)
    code, reason = _gate(demo, tmp_path, pred, sourceRepo=APP)
    assert code == 1 and "source unclear" in reason, reason


def test_attest_provenance_names_its_source(demo: DemoLedger, tmp_path: Path) -> None:
    """What `attest` writes on GitHub Actions, with a requirement fetched by git URL."""
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": "evil/fork",
        "GITHUB_SHA": "de" * 20,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_WORKFLOW_REF": "evil/fork/.github/workflows/build.yml@refs/heads/main",
    }
    helper = ResourceDescriptor(name="helper", uri=f"git+{APP}@main")
    for repo, passes in ((EVIL, False), (APP, True)):
        ci = detect_ci({**env, "GITHUB_REPOSITORY": repo.removeprefix("https://github.com/")})
        st = provenance_statement(
            subjects=[ResourceDescriptor(name="x", digest={"sha256": "ab" * 32})],
            ci=ci,
            git=None,
            dependencies=[helper],
            started_on=None,
            finished_on=datetime(2026, 11, 1, tzinfo=UTC),
        )
        pred = json.loads(st.to_json())["predicate"]
        pred["runDetails"]["builder"]["id"] = BUILDER
        code, reason = _gate(demo, tmp_path, pred, sourceRepo=APP, sourceRef="refs/heads/main")
        assert (code == 0) is passes, reason


def test_each_build_type_names_its_source() -> None:
    src = _source(GHA, {"workflow": {"repository": APP, "ref": "refs/heads/main", "path": "x"}})
    assert (src.repo, src.ref, src.where) == (APP, "refs/heads/main", "workflow")
    # attest's own: externalParameters.source, not its workflow (GITHUB_WORKFLOW_REF)
    external = {
        "source": {"uri": f"git+{APP}.git@abc", "ref": "refs/tags/v1"},
        "workflow": {"repository": APP, "ref": "example/app/.github/workflows/b.yml@refs/x"},
    }
    src = _source(BUILD_TYPE, external)
    assert (src.repo, src.ref, src.where) == (APP, "refs/tags/v1", "source")
    # another build type: whichever names a repository; a ref in the URI counts as its ref
    src = _source("t", {"source": {"uri": f"git+{APP}@refs/heads/main"}})
    assert (src.repo, src.ref) == (APP, "refs/heads/main")
    src = _source("t", {"source": {"uri": f"git+{APP}@abc", "ref": "refs/tags/v1"}, "x": 1})
    assert (src.repo, src.ref) == (APP, "refs/tags/v1")


@pytest.mark.parametrize(
    ("build_type", "external", "why"),
    [
        ("t", {"x": 1}, "no source repository"),
        (GHA, {"source": {"uri": f"git+{APP}@main"}}, "no source repository"),  # GHA: workflow
        (BUILD_TYPE, {"workflow": {"repository": APP}}, "no source repository"),  # attest: source
        ("t", {"source": {"uri": f"git+{EVIL}@a"}, "workflow": {"repository": APP}}, "differ"),
        ("t", {"source": {"uri": f"git+{APP}@a", "repository": EVIL}}, "more than one"),
        ("t", {"source": {"uri": f"git+{APP}@refs/heads/x", "ref": "refs/heads/y"}}, "one ref"),
    ],
)
def test_an_unclear_source_fails_closed(build_type: str, external: Any, why: str) -> None:
    with pytest.raises(RuleFailed, match=why):
        _source(build_type, external, (f"git+{APP}@main",))


def test_github_provenance_from_the_conformance_suite() -> None:
    """A real GitHub Actions provenance (actions/attest-build-provenance)."""
    bundle = fixture_path(
        "conformance",
        "assets",
        "bundle-verify",
        "happy-path-intoto-in-dsse-v3",
        "bundle.sigstore.json",
    )
    doc = json.loads(bundle.read_text())
    pred = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))["predicate"]
    src = build_source(SLSAProvenance.from_dict(pred))
    assert (src.repo, src.ref) == ("https://github.com/loosebazooka/aa-test", "refs/heads/main")


# Regression (h35 a02): the repository was cut at its last `@` as if a revision followed, the
# policy's own `sourceRepo` too: `ssh://git@github.com/example/app` became `ssh://git`, and any
# `ssh://git@…` source passed; `git@github.com:example/app` became `git`; `https://tok@…`,
# `https://tok`. Only a `git+REPO@REV` source URI carries a revision, after the path.
@pytest.mark.parametrize(
    ("build_type", "external", "policy_repo"),
    [
        ("t", {"source": {"repository": "ssh://git@github.com/evil/fork"}}, f"ssh://git@{APP[8:]}"),
        ("t", {"source": {"repository": "git@gitlab.com:evil/fork"}}, "git@github.com:example/app"),
        (
            BUILD_TYPE,
            {"source": {"uri": "git+git@evil.com:evil/fork@abc"}},
            "git@github.com:example/app",
        ),
        (GHA, {"workflow": {"repository": "ssh://git@evil.example/x"}}, f"ssh://git@{APP[8:]}.git"),
        (
            "t",
            {"source": {"repository": "https://tok@evil.com/evil/fork"}},
            "https://tok@github.com/example/app",
        ),
    ],
)
def test_a_user_at_host_is_no_revision(
    demo: DemoLedger, tmp_path: Path, build_type: str, external: Any, policy_repo: str
) -> None:
    code, reason = _gate(demo, tmp_path, _predicate(build_type, external), sourceRepo=policy_repo)
    assert code == 1 and "is not" in reason, reason


@pytest.mark.parametrize(
    ("value", "normal"),
    [
        ("https://github.com/example/app", APP),
        ("git+https://github.com/example/app.git/", APP),
        ("ssh://git@GitHub.com/example/app.git", APP),
        ("git@github.com:example/app.git", APP),
        ("git@github.com:example/app/", APP),
        ("https://tok@github.com/example/app", APP),
        ("https://github.com/example/app/.git", APP),  # slashes, .git, slashes: in that order
        ("https://github.com/Example/App", "https://github.com/Example/App"),  # path case kept
        ("ssh://git@git.example:2222/o/r", "https://git.example:2222/o/r"),
        ("https://github.com:443/example/app", APP),  # the scheme's own port says nothing
        ("ssh://git@github.com:22/example/app", APP),
        ("https://github.com./example/app", APP),  # the root's trailing dot
        ("https://[2001:db8::5]:443/org/app", "https://[2001:db8::5]/org/app"),
        ("https://[2001:db8::5]:8443/org/app", "https://[2001:db8::5]:8443/org/app"),
        # another host, not host ::5 on port 443 (hostile round 3: both read the same)
        ("https://[2001:db8::5:443]/org/app", "https://[2001:db8::5:443]/org/app"),
    ],
)
def test_repositories_are_compared_by_host_and_path(value: str, normal: str) -> None:
    from verify._internal.build_source import repo

    assert repo(value) == normal


@pytest.mark.parametrize(
    "value",
    [
        "example/app",  # no host
        "https://github.com",  # no path
        "https://github.com/example/app@evil.com/x",
        "https://github.com/example/app/../../evil/fork",
        "https://github.com/example//app",
        "https://github.com/example/app#x",
        "https://github.com/example/app?x=1",
        "https://github.com/example/ap p",
        "https://github.com/exa\tmple/app",  # urlsplit would drop the tab
        "file:///srv/example/app",
        "ssh://git@github.com:example/app",  # not a port
        "git@[::1]:org/app",  # an IPv6 host in scp form: ssh://[::1]/org/app says it
    ],
)
def test_a_repository_without_host_and_path_fails_closed(value: str) -> None:
    from verify._internal.build_source import repo

    with pytest.raises(RuleFailed, match="cannot be read as a repository"):
        repo(value)


def test_a_source_uri_revision_follows_the_path() -> None:
    from verify._internal.build_source import source_uri

    assert source_uri(f"git+{APP}@refs/heads/main") == (APP, "refs/heads/main")
    assert source_uri("git+git@github.com:example/app.git@abc") == (APP, "abc")
    assert source_uri("git+ssh://git@github.com/example/app@abc") == (APP, "abc")
    assert source_uri(APP) == (APP, "")  # no git+: no revision
    with pytest.raises(RuleFailed):  # `app@evil.com/evil/fork` is a path, not a revision
        source_uri("git+https://github.com/example/app@evil.com/evil/fork@abc")


def test_an_scp_remote_source_matches_every_spelling(demo: DemoLedger, tmp_path: Path) -> None:
    """h35 a02b: `attest provenance` in a clone whose remote is `git@github.com:example/app.git`
    writes `git+git@github.com:example/app.git@COMMIT`; the repository it names is example/app,
    however the policy spells it, and never another."""
    from attest.collect.git import GitInfo, Person

    who = Person("a", "a@b", "2026-11-01T00:00:00Z")
    git = GitInfo("ab" * 20, "main", (), who, who, "git@github.com:example/app.git", False)
    st = provenance_statement(
        subjects=[ResourceDescriptor(name="x", digest={"sha256": "ab" * 32})],
        ci=detect_ci({}),
        git=git,
        dependencies=[],
        started_on=None,
        finished_on=datetime(2026, 11, 1, tzinfo=UTC),
    )
    pred = json.loads(st.to_json())["predicate"]
    assert pred["buildDefinition"]["externalParameters"]["source"]["uri"].startswith("git+git@")
    pred["runDetails"]["builder"]["id"] = BUILDER
    for spelling in (APP, "git@github.com:example/app.git", "ssh://git@github.com/example/app"):
        code, reason = _gate(demo, tmp_path, pred, sourceRepo=spelling, sourceRef="refs/heads/main")
        assert code == 0, (spelling, reason)
    code, reason = _gate(demo, tmp_path, pred, sourceRepo="git@github.com:evil/app.git")
    assert code == 1 and "is not" in reason, reason
    code, reason = _gate(demo, tmp_path, pred, sourceRepo="example/app")
    assert code == 1 and "the policy's sourceRepo" in reason, reason
