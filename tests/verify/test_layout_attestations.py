"""`verify attestations … --layout FILE --layout-key PUB`: third-party attestations judged by the
policy's rules and by the in-toto demo layout, as the default command's `--layout` does. The
links come with `--bundle` (classic or DSSE link files) or from `--link-dir`; each broken variant
of the demo chain fails where the reference verifier (`in_toto_verify`) fails too."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from attest.dsse import sign_envelope
from attest.signers import read_signer, write_keypair
from tests.conftest import needs_fixtures
from tests.verify.conftest import BUILDER, SLSA, provenance
from tests.verify.test_layout import DEMO, _other_tarball, _reference, demo_chain
from verify.cli import app

pytestmark = needs_fixtures("in-toto-demo")
LINKS = ("write-code.776a00e2.link", "package.2f89b927.link")


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    chain = demo_chain(tmp_path, monkeypatch)
    monkeypatch.chdir(chain)  # where the demo layout's untar inspection runs
    return chain


def _at(layout: Path) -> str:
    expires = json.loads(layout.read_bytes())["signed"]["expires"].replace("Z", "+00:00")
    return (datetime.fromisoformat(expires) - timedelta(days=1)).isoformat()


def _signed_build(work: Path, keys: Path) -> tuple[Path, Path]:
    """(a CI-signed SLSA provenance about foo.tar.gz as it is now, a policy trusting CI)."""
    if not (keys / "ci.pub").exists():
        keys.mkdir(exist_ok=True)
        write_keypair(keys / "ci", "ed25519", None)
    digest = hashlib.sha256((work / "foo.tar.gz").read_bytes()).hexdigest()
    st = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "foo.tar.gz", "digest": {"sha256": digest}}],
        "predicateType": SLSA,
        "predicate": provenance(),
    }
    envelope = keys / f"build-{digest[:8]}.json"
    envelope.write_bytes(
        sign_envelope(json.dumps(st).encode(), [read_signer(keys / "ci")]).to_json()
    )
    policy = keys / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "provenance-ledger.dev/v1",
                "kind": "VerifyPolicy",
                "signers": {"ci": {"key": str(keys / "ci.pub")}},
                "steps": [
                    {
                        "name": "build",
                        "predicateType": SLSA,
                        "signers": ["ci"],
                        "builderId": BUILDER,
                    }
                ],
            }
        )
    )
    return envelope, policy


def _run(
    work: Path, policy: Path, bundles: list[Path], *extra: str | Path, key: str = "alice.pub"
) -> tuple[int, dict[str, Any]]:
    args: list[str | Path] = ["attestations", work / "foo.tar.gz", "--policy", policy]
    for b in bundles:
        args += ["--bundle", b]
    args += [
        "--layout",
        work / "root.layout",
        "--layout-key",
        key,
        "--at",
        _at(work / "root.layout"),
    ]
    r = CliRunner().invoke(app, [str(a) for a in [*args, *extra, "--format", "json"]])
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, json.loads(r.stdout)


def _rule(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in doc["rules"] if r["rule"].startswith(name))


def test_links_given_as_bundles_pass_with_the_policy(work: Path, tmp_path: Path) -> None:
    envelope, policy = _signed_build(work, tmp_path / "keys")
    code, doc = _run(work, policy, [envelope, *(work / n for n in LINKS)])
    assert code == 0, doc
    assert _rule(doc, "in-toto layout")["passed"] and _rule(doc, "step build")["passed"]
    assert "the artifact is a final product" in _rule(doc, "in-toto layout")["reason"]
    assert len(doc["attestations"]) == 1  # the links are the layout's, not attestations
    assert _reference(work, work / "root.layout", ["alice.pub"], work) is None
    # or from a link directory
    code, doc = _run(work, policy, [envelope], "--link-dir", work)
    assert code == 0 and _rule(doc, "in-toto layout")["passed"]


def test_a_missing_link_fails_the_layout_row(work: Path, tmp_path: Path) -> None:
    envelope, policy = _signed_build(work, tmp_path / "keys")
    code, doc = _run(work, policy, [envelope, work / LINKS[1]])
    assert code == 1 and _rule(doc, "step build")["passed"]
    assert "LinkNotFoundError" in _rule(doc, "in-toto layout")["reason"]
    (work / LINKS[0]).unlink()
    assert _reference(work, work / "root.layout", ["alice.pub"], work) == "LinkNotFoundError"


def test_an_edited_link_fails_like_the_reference(work: Path, tmp_path: Path) -> None:
    envelope, policy = _signed_build(work, tmp_path / "keys")
    link = work / LINKS[1]
    edited = json.loads(link.read_bytes())
    edited["signed"]["products"]["foo.tar.gz"]["sha256"] = "0" * 64
    link.write_text(json.dumps(edited))
    code, doc = _run(work, policy, [envelope, *(work / n for n in LINKS)])
    assert code == 1
    assert "ThresholdVerificationError" in _rule(doc, "in-toto layout")["reason"]
    reference = _reference(work, work / "root.layout", ["alice.pub"], work)
    assert reference == "ThresholdVerificationError"


def test_a_wrong_layout_key_is_exit_4(work: Path, tmp_path: Path) -> None:
    envelope, policy = _signed_build(work, tmp_path / "keys")
    code, doc = _run(work, policy, [envelope, *(work / n for n in LINKS)], key="bob.pub")
    assert code == 4 and doc["verdict"] == "ERROR"
    assert _reference(work, work / "root.layout", ["bob.pub"], work) == "SignatureVerificationError"


def test_a_swapped_product_is_not_the_layouts(work: Path, tmp_path: Path) -> None:
    """Another foo.tar.gz with a valid provenance of its own: the policy passes, but the layout
    did not make it (the reference passes it: the demo layout has no DISALLOW rule)."""
    _other_tarball(work / "foo.tar.gz")
    envelope, policy = _signed_build(work, tmp_path / "keys")
    code, doc = _run(work, policy, [envelope, *(work / n for n in LINKS)])
    assert code == 1 and _rule(doc, "step build")["passed"]
    assert "not a final product of the layout" in _rule(doc, "in-toto layout")["reason"]


def test_dsse_links_as_bundles(work: Path, tmp_path: Path) -> None:
    """in-toto 3.x DSSE links and the reference tool's DSSE layout."""
    envelope, policy = _signed_build(work, tmp_path / "keys")
    shutil.copy(DEMO / "generated-by-reference-tool" / "root.dsse.layout", work / "root.layout")
    links = [DEMO / "demo_dsse_files" / n for n in LINKS]

    def run(*bundles: Path) -> tuple[int, dict[str, Any]]:
        args: list[str | Path] = ["attestations", work / "foo.tar.gz", "--policy", policy]
        for b in (envelope, *bundles):
            args += ["--bundle", b]
        args += ["--layout", work / "root.layout", "--layout-key", "alice.pub"]
        args += ["--at", "2040-01-01T00:00:00Z", "--format", "json"]
        r = CliRunner().invoke(app, [str(a) for a in args])
        return r.exit_code, json.loads(r.stdout)

    code, doc = run(*links)
    assert code == 0, doc
    assert _rule(doc, "in-toto layout")["passed"]
    code, doc = run(links[1])
    assert code == 1 and "LinkNotFoundError" in _rule(doc, "in-toto layout")["reason"]


def test_links_alone_do_not_meet_the_policy(work: Path, tmp_path: Path) -> None:
    """The layout row passes, but no attestation by a policy signer: the policy is not met."""
    _, policy = _signed_build(work, tmp_path / "keys")
    code, doc = _run(work, policy, [work / n for n in LINKS])
    assert code == 1 and _rule(doc, "in-toto layout")["passed"]
    assert not _rule(doc, "trusted evidence")["passed"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "needs --layout FILE and at least one --layout-key"),  # no key
        (("--layout-key", "alice.pub", "--bundle", LINKS[0], "--link-dir", "."), "not both"),
        (("--layout-key", "missing.pub"), "cannot read"),
    ],
)
def test_bad_layout_options_are_exit_2(
    work: Path, tmp_path: Path, extra: tuple[str, ...], message: str
) -> None:
    envelope, policy = _signed_build(work, tmp_path / "keys")
    args = ["attestations", str(work / "foo.tar.gz"), "--policy", str(policy)]
    args += ["--bundle", str(envelope), "--layout", str(work / "root.layout")]
    r = CliRunner().invoke(app, [*args, *extra])
    assert r.exit_code == 2 and message in r.stderr, r.stdout + r.stderr
