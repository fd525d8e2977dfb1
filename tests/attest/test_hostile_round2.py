"""The second hostile tester's findings against ``attest``: each test names the scenario and
failed before its fix."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from typer.testing import CliRunner

from attest._internal.canonical import canonical_json
from attest._internal.fields import format_time, parse_rfc3339
from attest._internal.jsontext import loads
from attest.cli import app
from attest.collect.deps.python import parse_requirements
from attest.collect.subjects import resolve_subjects
from attest.dsse import Envelope, sign_envelope
from attest.errors import CollectorError, InvalidInput, InvalidStatement
from attest.signers import read_signer
from attest.statement import ResourceDescriptor

DIGEST = "a" * 64
STATEMENT = (
    '{"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "a", "digest": '
    '{"sha256": "' + DIGEST + '"}}], "predicateType": "https://example.com/custom/v1", '
    '"predicate": {"x": %s}}'
)


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("GITHUB_ACTIONS", "GITLAB_CI", "ATTEST_KEY", "LEDGER_URL", "ATTEST_KEY_PASSPHRASE"):
        monkeypatch.delenv(var, raising=False)
    assert CliRunner().invoke(app, ["keygen", "-o", "k"]).exit_code == 0
    (tmp_path / "app.whl").write_bytes(b"wheel")
    return tmp_path


def refused(work: Path, *args: str, message: str = "", key: bool = True) -> str:
    """``attest ARGS [--key k] --out out.json``: exit 2, one line, nothing written."""
    extra = ["--key", "k", "--out", "out.json"] if key else []
    r = CliRunner().invoke(app, [*args, *extra])
    assert r.exit_code == 2, (r.stdout, r.stderr, r.exception)
    assert r.stderr.startswith("attest: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr, r.stderr
    assert not (work / "out.json").exists()
    assert not list(work.glob(".out.json.*"))
    return r.stderr


# --- 1, 2: lone surrogates and numbers that overflow to infinity ---------------------------------


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        ('"\\ud800"', "lone surrogate"),
        ('"\\uDFFF"', "lone surrogate"),
        ("1e400", "infinity"),
        ("-1E+999", "infinity"),
    ],
    ids=["high-surrogate", "low-surrogate", "1e400", "minus-1e999"],
)
def test_sign_statement_with_lone_surrogate_or_overflowing_number_is_one_line_exit_2(
    work: Path, literal: str, message: str
) -> None:
    (work / "st.json").write_text(STATEMENT % literal)
    refused(work, "sign", "st.json", message=message)


def test_lone_surrogate_as_an_object_key_or_in_a_list_is_refused() -> None:
    for text in ('{"\\ud800": 1}', '["ok", ["\\udc00"]]', '"\\ud800"'):
        with pytest.raises(InvalidInput, match="lone surrogate"):
            loads(text, "doc")


def test_surrogate_pair_and_escaped_backslash_still_parse() -> None:
    assert loads('["\\ud83d\\ude00", "\\\\ud800"]', "doc") == ["\U0001f600", "\\ud800"]
    assert loads("[1e308, 1.5]", "doc") == [1e308, 1.5]


def test_raw_lone_surrogate_in_text_input_is_refused() -> None:
    with pytest.raises(InvalidInput, match="lone surrogate"):
        loads('["\ud800"]', "doc")


def test_canonicaliser_turns_unrepresentable_values_into_invalid_input() -> None:
    for value in ({"x": "\ud800", "y": 1.5}, {"x": float("inf")}, {"x": float("nan")}):
        with pytest.raises(InvalidInput, match="RFC 8785"):
            canonical_json(value)


def test_scan_grype_finding_id_with_lone_surrogate_is_one_line_exit_2(work: Path) -> None:
    report = (
        '{"descriptor":{"name":"grype","version":"1"},"matches":[{"vulnerability":'
        '{"id":"CVE-\\ud800","severity":"High"},"artifact":{"name":"a","version":"1","type":"npm"}}]}'
    )
    (work / "g.json").write_text(report)
    refused(work, "scan", "-s", "app.whl", "--report", "g.json", message="lone surrogate")


def test_verify_document_holding_1e400_is_refused_not_verified(work: Path) -> None:
    """Docs say Infinity is refused: a properly signed payload holding ``1e400`` verified before."""
    signer = read_signer(work / "k")
    envelope = sign_envelope((STATEMENT % "1e400").encode(), [signer])
    (work / "inf.json").write_bytes(envelope.to_json())
    r = CliRunner().invoke(app, ["verify", "inf.json", "--key", "k.pub"])
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert "infinity" in r.stderr and r.stderr.count("\n") == 1, r.stderr


# --- 3: a trailing newline slipped past ``$`` ------------------------------------------------------


@pytest.mark.parametrize("value", ["a" * 63 + "\n", "A" * 63 + "\n"])
def test_digest_with_trailing_newline_is_not_hex(value: str) -> None:
    with pytest.raises(InvalidStatement, match="hex"):
        ResourceDescriptor(name="x", digest={"sha256": value})


def test_sign_statement_whose_digest_ends_in_newline_is_exit_2(work: Path) -> None:
    text = (STATEMENT % "1").replace(DIGEST, "a" * 63 + "\\n")
    (work / "st.json").write_text(text)
    refused(work, "sign", "st.json", message="hex")


# --- 4: step names are file names ----------------------------------------------------------------


@pytest.mark.parametrize(
    "step",
    ["../../evilstep", "", ".hidden", "..", "a/b", "a\\b", "line\nbreak", "nul\x00", "del\x7f"],
    ids=["traversal", "empty", "hidden", "dotdot", "slash", "backslash", "newline", "nul", "del"],
)
@pytest.mark.parametrize("fmt", ["link", "statement"])
def test_run_step_name_that_is_not_one_file_name_component_is_refused_before_running(
    work: Path, step: str, fmt: str
) -> None:
    r = CliRunner().invoke(
        app, ["run", "--step", step, "--format", fmt, "--key", "k", "--", "touch", "ran"]
    )
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith("attest: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "step name" in r.stderr
    assert not (work / "ran").exists()  # refused before the command ran
    assert not list(work.glob("*.link")) and not list(work.parent.parent.glob("evilstep*"))


@pytest.mark.parametrize("step", ["../x", "", "a\nb"])
def test_test_result_step_name_follows_the_same_rule(work: Path, step: str) -> None:
    refused(work, "test-result", "--step", step, "--result", "PASSED", "-s", "app.whl")


def test_ordinary_step_names_still_write_their_link(work: Path) -> None:
    r = CliRunner().invoke(
        app, ["run", "--step", "build-1.2_x", "--format", "link", "--key", "k", "--", "true"]
    )
    assert r.exit_code == 0, r.stderr
    assert len(list(work.glob("build-1.2_x.*.link"))) == 1


# --- 5: a recorded name names the file that was hashed --------------------------------------------


def test_dotdot_through_a_symlinked_directory_is_recorded_as_given_not_collapsed(
    work: Path,
) -> None:
    elsewhere = work / "elsewhere"
    (elsewhere / "sub").mkdir(parents=True)
    (elsewhere / "a.txt").write_bytes(b"other file")
    (work / "a.txt").write_bytes(b"the real a.txt")
    (work / "x").symlink_to(elsewhere / "sub")
    subjects = resolve_subjects(["x/../a.txt", ".//a.txt"], work)
    names = {s.name: s.digest["sha256"] for s in subjects}
    # x/../a.txt is elsewhere/a.txt to the OS: never recorded under the name a.txt
    assert names["x/../a.txt"] == hashlib.sha256(b"other file").hexdigest()
    assert names["a.txt"] == hashlib.sha256(b"the real a.txt").hexdigest()


def test_subject_outside_the_working_directory_keeps_its_relative_spelling(work: Path) -> None:
    (work / "d").mkdir()
    names = [s.name for s in resolve_subjects(["../app.whl", str(work / "app.whl")], work / "d")]
    assert names == ["../app.whl", str(work / "app.whl")]


# --- 6: a private key is never hashed as a subject -------------------------------------------------


@pytest.mark.parametrize("how", ["dotdot", "symlink", "copy", "encrypted"])
def test_private_key_as_subject_is_refused(work: Path, how: str) -> None:
    (work / "d").mkdir()
    if how == "dotdot":
        spec, cwd = "../k", work / "d"
    elif how == "symlink":
        (work / "innocent.txt").symlink_to(work / "k")
        spec, cwd = "innocent.txt", work
    elif how == "copy":
        (work / "key.bak").write_bytes(b"# saved\n" + (work / "k").read_bytes())
        spec, cwd = "key.bak", work
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
        (work / "enc").write_bytes(pem)
        spec, cwd = "enc", work
    os.chdir(cwd)
    args = ["test-result", "--result", "PASSED", "-s", spec, "--key", str(work / "k")]
    r = CliRunner().invoke(app, [*args, "-o", "out.json"])
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert "private key" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (cwd / "out.json").exists()


def test_public_key_and_certificate_are_still_subjects(work: Path) -> None:
    assert resolve_subjects(["k.pub"], work)[0].name == "k.pub"


# --- 7: a scanner's package names pass the lock-file collectors' checks ----------------------------


def grype_match(artifact: dict) -> str:  # type: ignore[type-arg]
    return json.dumps(
        {
            "descriptor": {"name": "grype", "version": "1"},
            "matches": [
                {"vulnerability": {"id": "CVE-1", "severity": "High"}, "artifact": artifact}
            ],
        }
    )


@pytest.mark.parametrize(
    "artifact",
    [
        {"purl": "pkg:npm/../../x@1", "name": "a", "version": "1", "type": "npm"},
        {"purl": "pkg:npm/%2e%2e@1", "name": "a", "version": "1"},
        {"purl": "pkg:cargo/a%2Fb@1", "name": "a"},
        {"purl": "pkg:no-slash", "name": "a"},
        {"name": "../../x", "version": "1", "type": "npm"},
        {"name": "a/./b", "version": "1"},
        {"name": "a\nb", "version": "1"},
    ],
    ids=[
        "purl-traversal",
        "purl-dotdot-name",
        "purl-cargo-slash",
        "purl-malformed",
        "bare-traversal",
        "bare-dot",
        "bare-newline",
    ],
)
def test_scan_report_with_path_like_package_is_refused_not_signed(
    work: Path,
    artifact: dict,  # type: ignore[type-arg]
) -> None:
    (work / "g.json").write_text(grype_match(artifact))
    refused(work, "scan", "-s", "app.whl", "--report", "g.json", message="g.json")


@pytest.mark.parametrize(
    ("artifact", "recorded"),
    [
        ({"purl": "pkg:npm/%40scope/x@1", "name": "x"}, "pkg:npm/%40scope/x@1"),
        ({"purl": "pkg:pypi/zope.interface@5", "name": "x"}, "pkg:pypi/zope.interface@5"),
        ({"purl": "pkg:golang/github.com/a/b@v1", "name": "b"}, "pkg:golang/github.com/a/b@v1"),
        (
            {"purl": "pkg:deb/debian/libc6@2.31?arch=amd64&distro=debian-11", "name": "libc6"},
            "pkg:deb/debian/libc6@2.31?arch=amd64&distro=debian-11",
        ),
        ({"name": "libstdc++6"}, "libstdc++6"),
        ({"name": "github.com/a/b"}, "github.com/a/b"),
    ],
)
def test_scan_report_ordinary_packages_still_recorded(
    work: Path,
    artifact: dict,
    recorded: str,  # type: ignore[type-arg]
) -> None:
    (work / "g.json").write_text(grype_match(artifact))
    r = CliRunner().invoke(
        app, ["scan", "-s", "app.whl", "--report", "g.json", "--key", "k", "-o", "out.json"]
    )
    assert r.exit_code == 0, r.stderr
    payload = Envelope.from_json((work / "out.json").read_bytes()).unverified_payload
    result = json.loads(payload)["predicate"]["scanner"]["result"]
    assert result[0]["annotations"][0]["package"] == recorded


# --- 8: one-line messages, four-digit years --------------------------------------------------------


def test_requirements_parse_error_is_one_line(work: Path) -> None:
    (work / "requirements.txt").write_text("requests==2.31.0\nfoo bar baz ===\n")
    with pytest.raises(CollectorError) as e:
        parse_requirements(work / "requirements.txt")
    assert "\n" not in str(e.value) and "requirements.txt:2: not a requirement" in str(e.value)


@pytest.mark.parametrize(
    ("when", "shown"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00Z"),
        (datetime(99, 12, 31, 23, 59, 59, 5, tzinfo=UTC), "0099-12-31T23:59:59.000005Z"),
        (datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), "2024-05-06T07:08:09Z"),
    ],
)
def test_times_are_written_with_four_digit_years(when: datetime, shown: str) -> None:
    assert format_time(when) == shown
    assert parse_rfc3339(shown) == when


def test_scan_report_from_year_1_is_signed_with_a_readable_time(work: Path) -> None:
    doc = {"descriptor": {"version": "1", "timestamp": "0001-01-01T00:00:00Z"}, "matches": []}
    (work / "g.json").write_text(json.dumps(doc))
    r = CliRunner().invoke(
        app, ["scan", "-s", "app.whl", "--report", "g.json", "--key", "k", "-o", "out.json"]
    )
    assert r.exit_code == 0, r.stderr
    payload = json.loads(Envelope.from_json((work / "out.json").read_bytes()).unverified_payload)
    assert payload["predicate"]["metadata"]["scanStartedOn"] == "0001-01-01T00:00:00Z"
