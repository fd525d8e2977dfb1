"""`verify layout` (the in-toto-verify equivalent) and the layout rule of the default command.

Every `verify layout` case runs the reference verifier (``in_toto_verify``) on the same working
copy and asserts the exit code stands for its verdict: pass 0, a layout signature failure 4, any
other in-toto failure 1. Fixtures are only read; variants are built in tmp dirs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import needs_fixtures
from tests.verify.conftest import SLSA, TEST_RESULT, DemoLedger, provenance, result_predicate
from tests.verify.test_isolation import _run_guarded
from tests.verify.test_layout import DEMO, _other_tarball, _reference, _sign, demo_chain
from verify._internal.fast import parse_check
from verify.cli import app
from verify.layout import layout_key

pytestmark = needs_fixtures("in-toto-demo")
REFERENCE_LAYOUT = DEMO / "generated-by-reference-tool" / "root.layout"
REFERENCE_EXPIRY = datetime.fromisoformat("2026-12-28T01:18:51+00:00")
VERIFY = str(Path(sys.executable).with_name("verify"))


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """test_layout's demo chain, with the cwd there (where in-toto-verify runs the demo's
    `untar` inspection)."""
    chain = demo_chain(tmp_path, monkeypatch)
    monkeypatch.chdir(chain)
    return chain


def _at(layout: Path) -> str:
    """A time one day before the signed layout expires."""
    expires = json.loads(layout.read_bytes())["signed"]["expires"].replace("Z", "+00:00")
    return (datetime.fromisoformat(expires) - timedelta(days=1)).isoformat()


def cli(*args: str | Path) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def layout_cmd(work: Path, *keys: str, extra: tuple[str | Path, ...] = ()) -> Any:
    key_args = [a for k in keys for a in ("--layout-key", k)]
    layout = work / "root.layout"
    return cli(
        "layout", "--layout", layout, *key_args, "--link-dir", ".", "--at", _at(layout), *extra
    )


EXIT_FOR = {None: 0, "SignatureVerificationError": 4}


def same_verdict(work: Path, keys: list[str], extra: tuple[str | Path, ...] = ()) -> Any:
    """Run both verifiers; the exit code must stand for the reference's verdict."""
    ref = _reference(work, work / "root.layout", keys, work)
    got = layout_cmd(work, *keys, extra=(*extra, "--format", "json"))
    assert got.exit_code == EXIT_FOR.get(ref, 1), (ref, got.stdout, got.stderr)
    doc = json.loads(got.stdout)
    if ref is not None:
        assert ref in (doc.get("error") or doc["rules"][0]["reason"])
    return doc


def test_demo_chain_passes_like_the_reference(work: Path) -> None:
    doc = same_verdict(work, ["alice.pub"])
    assert doc["verdict"] == "PASSED"
    assert doc["rules"][0]["rule"] == "in-toto layout" and doc["rules"][0]["passed"]
    assert (work / "foo.py").exists()  # the untar inspection ran in the cwd, as the reference's


def test_the_final_product_is_checked(work: Path) -> None:
    ok = layout_cmd(work, "alice.pub", extra=("foo.tar.gz",))
    assert ok.exit_code == 0, ok.stdout
    assert "foo.tar.gz (sha256:52947cb7" in ok.stdout and "PASSED" in ok.stdout
    _other_tarball(work / "foo.tar.gz")
    assert _reference(work, work / "root.layout", ["alice.pub"], work) is None  # no DISALLOW
    swapped = layout_cmd(work, "alice.pub", extra=("foo.tar.gz", "--format", "json"))
    assert swapped.exit_code == 1
    assert "ProductMismatch" in json.loads(swapped.stdout)["rules"][0]["reason"]


def test_swapped_product_with_a_disallow_layout_fails_like_the_reference(work: Path) -> None:
    template = json.loads((DEMO / "demo_files" / "demo.layout.template").read_bytes())
    template["signed"]["inspect"][0]["expected_materials"].append(["DISALLOW", "foo.tar.gz"])
    _sign(template, work / "root.layout", "alice")
    same_verdict(work, ["alice.pub"])
    _other_tarball(work / "foo.tar.gz")
    doc = same_verdict(work, ["alice.pub"])
    assert "RuleVerificationError" in doc["rules"][0]["reason"]


def test_edited_link_fails_like_the_reference(work: Path) -> None:
    link = work / "package.2f89b927.link"
    doc = json.loads(link.read_bytes())
    doc["signed"]["products"]["foo.tar.gz"]["sha256"] = "0" * 64
    link.write_text(json.dumps(doc))
    assert "ThresholdVerificationError" in same_verdict(work, ["alice.pub"])["rules"][0]["reason"]


def test_missing_link_fails_like_the_reference(work: Path) -> None:
    (work / "write-code.776a00e2.link").unlink()
    assert "LinkNotFoundError" in same_verdict(work, ["alice.pub"])["rules"][0]["reason"]


def test_wrong_layout_key_is_exit_4_like_the_reference(work: Path) -> None:
    doc = same_verdict(work, ["bob.pub"])
    assert doc["verdict"] == "ERROR" and doc["exitCode"] == 4
    assert not (work / "foo.py").exists()  # refused before any inspection ran


def _danny_signs(layout: Path) -> None:
    """Add danny's signature (an ed25519 key in securesystemslib's legacy JSON format)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from in_toto.models.metadata import Metadata
    from securesystemslib.signer import CryptoSigner, SSlibKey

    danny = json.loads((DEMO / "demo_files" / "danny").read_bytes())
    public = layout_key((DEMO / "demo_files" / "danny.pub").read_bytes())
    key = SSlibKey.from_dict(public.pop("keyid"), public)
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(danny["keyval"]["private"]))
    metadata = Metadata.load(str(layout))
    metadata.create_signature(CryptoSigner(private, key))  # type: ignore[arg-type]
    metadata.dump(str(layout))


def test_securesystemslib_json_keys(work: Path) -> None:
    """danny.pub (legacy sslib JSON, keyid 36a5529f…) and alice's key as sslib JSON work as
    layout keys, beside PEM; the reference agrees given the same key dicts."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from in_toto.models.metadata import Metadata
    from in_toto.verifylib import in_toto_verify
    from securesystemslib.signer import SSlibKey

    assert layout_key((work / "danny.pub").read_bytes())["keyid"].startswith("36a5529f")
    _danny_signs(work / "root.layout")
    keys = [layout_key((work / name).read_bytes()) for name in ("alice.pub", "danny.pub")]
    in_toto_verify(
        Metadata.load("root.layout"),
        {k["keyid"]: k for k in keys},
        ".",
        persist_inspection_links=False,
    )
    assert layout_cmd(work, "alice.pub", "danny.pub").exit_code == 0
    assert layout_cmd(work, "danny.pub").exit_code == 0
    alice = SSlibKey.from_crypto(load_pem_public_key((work / "alice.pub").read_bytes()))
    (work / "alice.json").write_text(json.dumps(alice.to_dict()))
    assert layout_cmd(work, "alice.json", "danny.pub").exit_code == 0
    # a JSON key that did not sign the layout: exit 4, as a wrong PEM key
    other = Ed25519PrivateKey.generate().public_key()
    (work / "other.json").write_text(json.dumps(SSlibKey.from_crypto(other).to_dict()))
    assert layout_cmd(work, "other.json").exit_code == 4


def test_the_reference_tool_layout_expires_at_its_time(work: Path) -> None:
    args = ["layout", "--layout", REFERENCE_LAYOUT, "--layout-key", "alice.pub", "--link-dir", "."]
    before = cli(*args, "--at", (REFERENCE_EXPIRY - timedelta(seconds=1)).isoformat())
    assert before.exit_code == 0, before.stdout
    for at in (REFERENCE_EXPIRY, REFERENCE_EXPIRY + timedelta(days=400)):
        after = cli(*args, "--at", at.isoformat(), "--format", "json")
        assert after.exit_code == 1
        assert "LayoutExpiredError" in json.loads(after.stdout)["rules"][0]["reason"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--layout", "missing.layout"), "cannot read layout"),
        (("--layout", "alice.pub"), "not in-toto metadata"),
        (("--layout-key", "missing.pub"), "cannot read layout key"),
        (("--layout-key", "foo.tar.gz"), "not a usable layout public key"),
        (("--layout-key", "danny"), "private key"),
        (("--link-dir", "no-such-dir"), "not a directory"),
        (("--at", "yesterday"), "RFC 3339"),
        (("--at", "2026-12-01T00:00:00"), "time zone"),
        (("--param", "novalue"), "KEY=VALUE"),
        (("missing.tar.gz",), "cannot read artifact"),
    ],
)
def test_bad_input_is_exit_2_and_runs_nothing(
    work: Path, change: tuple[str, ...], message: str
) -> None:
    args: dict[str, str] = {
        "--layout": "root.layout",
        "--layout-key": "alice.pub",
        "--link-dir": ".",
        "--at": _at(work / "root.layout"),
    }
    rest: list[str] = []
    if len(change) == 2 and change[0] in args:
        args[change[0]] = change[1]
    else:
        rest = list(change)
    r = cli("layout", *[x for kv in args.items() for x in kv], *rest)
    assert r.exit_code == 2, r.stdout
    assert message in r.stderr
    assert not (work / "foo.py").exists()  # the inspection did not run


def test_dsse_layout_and_links(work: Path, tmp_path: Path) -> None:
    """The reference tool's DSSE layout (no expires: it never expires, as under in-toto 3.1)."""
    layout = DEMO / "generated-by-reference-tool" / "root.dsse.layout"
    links = tmp_path / "dsse-links"
    shutil.copytree(DEMO / "demo_dsse_files", links)
    args = ("layout", "--layout", layout, "--link-dir", links, "--at", "2040-01-01T00:00:00Z")
    ok = cli(*args, "--layout-key", "alice.pub", "foo.tar.gz")
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    assert cli(*args, "--layout-key", "carl.pub").exit_code == 4
    (links / "write-code.776a00e2.link").unlink()
    missing = cli(*args, "--layout-key", "alice.pub", "--format", "json")
    assert missing.exit_code == 1
    assert "LinkNotFoundError" in json.loads(missing.stdout)["rules"][0]["reason"]


def test_help_lists_the_command() -> None:
    p = subprocess.run([VERIFY, "--help"], capture_output=True, text=True, check=False)
    assert p.returncode == 0 and "layout" in p.stdout
    p = subprocess.run([VERIFY, "layout", "--help"], capture_output=True, text=True, check=False)
    assert p.returncode == 0
    for option in ("--layout-key", "--link-dir", "--at", "--param", "--inspect-in", "--format"):
        assert option in p.stdout, option


def test_the_console_script_runs_it(work: Path) -> None:
    p = subprocess.run(
        [VERIFY, "layout", "--layout", "root.layout", "--layout-key", "alice.pub",
         "--link-dir", ".", "foo.tar.gz"],
        capture_output=True, text=True, check=False, cwd=work, timeout=120,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert "in-toto layout" in p.stdout and "PASSED" in p.stdout


# --- the default command: the layout as one rule row ------------------------------------------


def _record_foo(demo: DemoLedger, work: Path, out: Path) -> Path:
    """Record a build and a test of the demo's foo.tar.gz; export the evidence about it."""
    digest = hashlib.sha256((work / "foo.tar.gz").read_bytes()).hexdigest()
    for predicate_type, predicate in ((SLSA, provenance()), (TEST_RESULT, result_predicate())):
        demo.append(
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "foo.tar.gz", "digest": {"sha256": digest}}],
                "predicateType": predicate_type,
                "predicate": predicate,
            }
        )
    r = cli("export-evidence", work / "foo.tar.gz", "--ledger", demo.server.url, "-o", out)
    assert r.exit_code == 0, r.stdout + r.stderr
    return out


def _policy(demo: DemoLedger, where: Path, layout: dict[str, Any] | None) -> Path:
    path = demo.policy(where / "policy.yaml")
    if layout is not None:
        doc = yaml.safe_load(path.read_text())
        doc["layout"] = layout
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


LAYOUT = {"file": "root.layout", "keys": ["alice.pub"], "linkDir": ".", "inspectIn": "."}


def _rows(r: Any) -> dict[str, dict[str, Any]]:
    return {row["rule"]: row for row in json.loads(r.stdout)["rules"]}


def test_policy_layout_section_passes_and_fails_on_its_row(
    demo: DemoLedger, work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evidence = _record_foo(demo, work, tmp_path / "evidence.json")
    monkeypatch.chdir(tmp_path)  # paths in the policy are relative to the policy file
    policy = _policy(demo, work, LAYOUT)
    r = cli(work / "foo.tar.gz", "--policy", policy, "--evidence", evidence, "--format", "json")
    assert r.exit_code == 0, r.stdout + r.stderr
    rows = _rows(r)
    assert rows["in-toto layout"]["passed"] and "final product" in rows["in-toto layout"]["reason"]
    assert rows["step build"]["passed"]
    text = cli(work / "foo.tar.gz", "--policy", policy, "--evidence", evidence)
    assert "in-toto layout" in text.stdout and "PASSED" in text.stdout

    # an artifact the ledger vouches for, but that the layout's chain did not make
    app_evidence = tmp_path / "app.json"
    r = cli("export-evidence", demo.app_zip, "--ledger", demo.server.url, "-o", app_evidence)
    assert r.exit_code == 0
    r = cli(demo.app_zip, "--policy", policy, "--evidence", app_evidence, "--format", "json")
    assert r.exit_code == 1
    row = _rows(r)["in-toto layout"]
    assert not row["passed"] and "not a final product" in row["reason"]
    assert _rows(r)["step build"]["passed"]  # only the layout row fails

    link = work / "package.2f89b927.link"
    doc = json.loads(link.read_bytes())
    doc["signed"]["products"]["foo.tar.gz"]["sha256"] = "0" * 64
    link.write_text(json.dumps(doc))
    r = cli(work / "foo.tar.gz", "--policy", policy, "--evidence", evidence, "--format", "json")
    assert r.exit_code == 1
    assert "ThresholdVerificationError" in _rows(r)["in-toto layout"]["reason"]

    policy = _policy(demo, work, {**LAYOUT, "keys": ["bob.pub"]})
    r = cli(work / "foo.tar.gz", "--policy", policy, "--evidence", evidence, "--format", "json")
    assert r.exit_code == 4 and "SignatureVerificationError" in json.loads(r.stdout)["error"]


def test_layout_options_on_the_fast_path(demo: DemoLedger, work: Path, tmp_path: Path) -> None:
    """`verify ARTIFACT … --layout --layout-key --link-dir` through the argparse fast path, in a
    fresh process with the network guard: it passes, and in-toto loads only then."""
    evidence = _record_foo(demo, work, tmp_path / "evidence.json")
    policy = _policy(demo, tmp_path, None)
    ns = parse_check(["a", "-p", "p", "--layout-key", "k1", "--layout-key", "k2"])
    assert ns is not None and ns.layout_key == [Path("k1"), Path("k2")]
    assert Path.cwd() == work  # inspections run in the cwd (the fixture's)
    base = (work / "foo.tar.gz", "--policy", policy, "--evidence", evidence)
    plain = _run_guarded(tmp_path, *base)
    assert plain["code"] == 0 and "in_toto" not in plain["modules"]
    opts = ("--layout", "root.layout", "--layout-key", "alice.pub", "--link-dir", ".")
    got = _run_guarded(tmp_path, *base, *opts)
    assert got["code"] == 0, got["stdout"] + got["stderr"]
    assert "in-toto layout" in got["stdout"] and "in_toto" in got["modules"]
    bad = _run_guarded(tmp_path, *base, *opts[:4])  # no --link-dir
    assert bad["code"] == 2 and "--link-dir" in bad["stderr"]


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"file": "root.layout", "linkDir": "."}, "layout.keys: Field required"),
        ({**LAYOUT, "keys": []}, "layout.keys"),
        ({**LAYOUT, "linkdir": "."}, "layout.linkdir: Extra inputs are not permitted"),
        ({**LAYOUT, "file": "gone.layout"}, "cannot read layout"),
        ({**LAYOUT, "linkDir": "nowhere"}, "not a directory"),
    ],
)
def test_a_bad_layout_section_is_exit_2(
    demo: DemoLedger, work: Path, tmp_path: Path, layout: dict[str, Any], message: str
) -> None:
    """Refused before the evidence is read: no state saved, no inspection run."""
    evidence = tmp_path / "evidence.json"
    r = cli("export-evidence", demo.app_zip, "--ledger", demo.server.url, "-o", evidence)
    assert r.exit_code == 0
    policy = _policy(demo, work, layout)
    doc = yaml.safe_load(policy.read_text())
    doc["ledger"]["stateDir"] = "verify-state"
    policy.write_text(yaml.safe_dump(doc, sort_keys=False))
    r = cli(demo.app_zip, "--policy", policy, "--evidence", evidence)
    assert r.exit_code == 2, r.stdout
    assert message in r.stderr
    assert not (work / "verify-state").exists()
    assert not (work / "foo.py").exists()
    # the same policy without the bad section passes and saves its state
    del doc["layout"]
    policy.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert cli(demo.app_zip, "--policy", policy, "--evidence", evidence).exit_code == 0
    assert (work / "verify-state").is_dir()
