"""The attest command end to end: every subcommand, delivery, and bad input leaving nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from typer.testing import CliRunner

from attest.cli import app
from attest.dsse import Envelope
from attest.statement import parse_statement

DATA = Path(__file__).parent / "data"
ATTEST = [sys.executable, "-m", "attest.cli"]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("GITHUB_ACTIONS", "GITLAB_CI", "ATTEST_KEY", "LEDGER_URL", "ATTEST_KEY_PASSPHRASE"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "app.whl").write_bytes(b"wheel bytes")
    result = CliRunner().invoke(app, ["keygen", "-o", "k"])
    assert result.exit_code == 0, result.output
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def payload(path: Path) -> dict:  # type: ignore[type-arg]
    env = Envelope.from_json(path.read_bytes())
    return json.loads(env.unverified_payload)


def test_provenance_with_everything(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("CI_JOB_STARTED_AT", "2024-07-01T08:00:00Z")
    monkeypatch.setenv("CI_RUNNER_ID", "7")
    code, _, err = invoke(
        "provenance",
        "--subject",
        "dist/*.whl",
        "--deps",
        str(DATA / "requirements.txt"),
        "--deps",
        str(DATA / "package-lock.json"),
        "--dockerfile",
        str(DATA / "Dockerfile"),
        "--param",
        "target=release",
        "--key",
        "k",
        "--out",
        "prov.json",
    )
    assert code == 0, err
    assert "not pinned by digest" in err
    st = payload(work / "prov.json")
    parse_statement(json.dumps(st))
    assert st["subject"] == [
        {"name": "dist/app.whl", "digest": {"sha256": hashlib.sha256(b"wheel bytes").hexdigest()}}
    ]
    pred = st["predicate"]
    uris = [d.get("uri") for d in pred["buildDefinition"]["resolvedDependencies"]]
    assert "pkg:pypi/requests@2.31.0" in uris and "pkg:npm/lodash@4.17.21" in uris
    assert "pkg:docker/alpine@3.16" in uris
    assert pred["buildDefinition"]["externalParameters"]["parameters"] == {"target": "release"}
    assert pred["runDetails"]["metadata"]["startedOn"] == "2024-07-01T08:00:00Z"
    assert "finishedOn" in pred["runDetails"]["metadata"]
    assert pred["runDetails"]["builder"]["id"].endswith("/-/runners/7")
    code, out, _ = invoke("verify", "prov.json", "--key", "k.pub", "--subject", "dist/app.whl")
    assert code == 0 and json.loads(out)["verified"] is True


def test_run_passes_exit_code_and_records_the_step(work: Path) -> None:
    (work / "src.c").write_text("int main(){}")
    proc = subprocess.run(
        [
            *ATTEST,
            "run",
            "--step",
            "compile",
            "--key",
            "k",
            "-m",
            "*.c",
            "-p",
            "out.bin",
            "-o",
            "link.json",
            "--",
            "sh",
            "-c",
            "cp src.c out.bin; echo compiled; exit 7",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout == "compiled\n"
    st = payload(work / "link.json")
    assert st["predicateType"] == "https://in-toto.io/attestation/link/v0.3"
    link = st["predicate"]
    assert link["name"] == "compile" and link["command"][:2] == ["sh", "-c"]
    assert link["byproducts"]["return-value"] == 7
    assert link["byproducts"]["stdoutDigest"]["sha256"] == hashlib.sha256(b"compiled\n").hexdigest()
    assert link["materials"][0]["name"] == "src.c"
    assert st["subject"][0]["name"] == "out.bin"
    assert "startedOn" in link["environment"]


def test_test_result_scan_vex_and_sign(work: Path) -> None:
    code, _, err = invoke(
        "test-result",
        "--subject",
        "dist/app.whl",
        "--result",
        "passed",
        "--step",
        "unit",
        "--passed",
        "t_a",
        "--key",
        "k",
        "-o",
        "tr.json",
    )
    assert code == 0, err
    pred = payload(work / "tr.json")["predicate"]
    assert pred["result"] == "PASSED" and pred["passedTests"] == ["t_a"]
    assert pred["configuration"][0]["name"] == "step:unit"

    code, _, err = invoke(
        "scan",
        "--report",
        str(DATA / "trivy.json"),
        "--subject",
        "dist/app.whl",
        "--key",
        "k",
        "-o",
        "scan.json",
    )
    assert code == 0, err
    assert "trivy report, 1 findings" in err
    assert payload(work / "scan.json")["predicate"]["scanner"]["result"][0]["id"] == "CVE-2024-5535"

    code, _, err = invoke(
        "vex",
        "--subject",
        "dist/app.whl",
        "--fixed",
        "CVE-2024-9",
        "--previous",
        str(DATA / "grype.json"),
        "--report",
        str(DATA / "grype-after-fix.json"),
        "--author",
        "release-bot",
        "--key",
        "k",
        "-o",
        "vex.json",
    )
    assert code == 0, err
    vex = payload(work / "vex.json")["predicate"]
    assert [s["vulnerability"]["name"] for s in vex["statements"]] == [
        "CVE-2024-9",
        "GHSA-9wx4-h78v-vm56",
    ]
    assert {s["status"] for s in vex["statements"]} == {"fixed"}

    statement = payload(work / "vex.json")
    (work / "st.json").write_text(json.dumps(statement))
    code, out, err = invoke("sign", "st.json", "--key", "k")
    assert code == 0, err
    assert payload_from_text(out) == statement


def payload_from_text(text: str) -> dict:  # type: ignore[type-arg]
    return json.loads(Envelope.from_json(text).unverified_payload)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["provenance", "--subject", "missing.bin", "--key", "k"], "does not exist"),
        (
            ["provenance", "--subject", "dist", "--deps", "nope.lock", "--key", "k"],
            "does not exist",
        ),
        (["provenance", "--subject", "dist", "--key", "nokey"], "cannot read key"),
        (["provenance", "--subject", "dist"], "exactly one of --key"),
        (["provenance", "--subject", "dist", "--key", "k", "--sigstore"], "exactly one of --key"),
        (["provenance", "--subject", "dist", "--key", "k.pub"], "not a PEM private key"),
        (["scan", "--report", "k.pub", "--subject", "dist", "--key", "k"], "not valid JSON"),
        (["test-result", "--result", "MAYBE", "--subject", "dist", "--key", "k"], "result must be"),
        (["vex", "--subject", "dist", "--key", "k"], "no vulnerabilities"),
        (["run", "--step", "x", "--key", "k", "--", "/no/such/cmd"], "command not found"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(
    work: Path, args: list[str], message: str
) -> None:
    code, out, err = invoke(*args, "--out", "result.json")
    assert code == 2, (out, err)
    assert message in err and err.count("\n") == 1 and err.startswith("attest: error: ")
    assert not (work / "result.json").exists()
    assert not list(work.glob(".result.json.*"))


def test_wrong_passphrase_and_unreadable_lock(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTEST_KEY_PASSPHRASE", "right")
    assert invoke("keygen", "-o", "enc", "--encrypt", "--type", "ecdsa-p256")[0] == 0
    monkeypatch.setenv("ATTEST_KEY_PASSPHRASE", "wrong")
    code, _, err = invoke("provenance", "--subject", "dist", "--key", "enc", "-o", "p.json")
    assert code == 2 and "wrong passphrase" in err and not (work / "p.json").exists()
    monkeypatch.setenv("ATTEST_KEY_PASSPHRASE", "right")
    lock = work / "poetry.lock"
    lock.write_text("[[package]]\n")
    lock.chmod(0)
    if os.geteuid() == 0:
        lock.write_text("not = [toml")  # root reads anything: use a broken file instead
        lock.chmod(0o644)
    code, _, err = invoke(
        "provenance", "--subject", "dist", "--key", "enc", "--deps", "poetry.lock", "-o", "p.json"
    )
    assert code == 2 and "poetry.lock" in err and not (work / "p.json").exists()


def test_verify_failures(work: Path) -> None:
    assert invoke("provenance", "--subject", "dist", "--key", "k", "-o", "p.json")[0] == 0
    assert invoke("keygen", "-o", "other")[0] == 0
    code, _, err = invoke("verify", "p.json", "--key", "other.pub")
    assert code == 1 and "signatures verify" in err
    (work / "x.bin").write_bytes(b"not the subject")
    code, _, err = invoke("verify", "p.json", "--key", "k.pub", "--subject", "x.bin")
    assert code == 1 and "is not a subject" in err
    doc = json.loads((work / "p.json").read_text())
    doc["payload"] = base64.b64encode(b'{"_type": "x"}').decode()
    (work / "bad.json").write_text(json.dumps(doc))
    assert invoke("verify", "bad.json", "--key", "k.pub")[0] == 1
    assert invoke("verify", "p.json")[0] == 2  # no key given


class _Ledger(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []
    status = 201

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, self.headers.get("Authorization", ""), body))
        reply = json.dumps(
            {"index": 0, "leafHash": "x"} if self.status < 400 else {"detail": "signer not trusted"}
        ).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ledger_server() -> Iterator[str]:
    _Ledger.received = []
    _Ledger.status = 201
    server = HTTPServer(("127.0.0.1", 0), _Ledger)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_submit_to_a_ledger_over_http(
    work: Path, ledger_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_TOKEN", "tok-123")
    code, _, err = invoke(
        "provenance", "--subject", "dist", "--key", "k", "--ledger", ledger_server, "-o", "p.json"
    )
    assert code == 0, err
    path, auth, body = _Ledger.received[0]
    assert path == "/api/v1/entries" and auth == "Bearer tok-123"
    assert body.rstrip(b"\n") == (work / "p.json").read_bytes().rstrip(b"\n")  # exact bytes
    code, out, _ = invoke(
        "provenance", "--subject", "dist", "--key", "k", "--ledger", ledger_server
    )
    assert code == 0 and json.loads(out) == {"index": 0, "leafHash": "x"}  # only the receipt
    _Ledger.status = 403
    code, _, err = invoke(
        "provenance", "--subject", "dist", "--key", "k", "--ledger", ledger_server, "-o", "q.json"
    )
    assert code == 3 and "HTTP 403" in err and not (work / "q.json").exists()
    code, _, err = invoke(
        "provenance",
        "--subject",
        "dist",
        "--key",
        "k",
        "--ledger",
        "http://127.0.0.1:9",
        "-o",
        "q.json",
    )
    assert code == 3 and "cannot reach the ledger" in err and not (work / "q.json").exists()


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "attest"
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "provenance" in proc.stdout


def test_verify_sigstore_bundles(work: Path) -> None:
    from tests.attest.test_sigstore import CASES, IDENTITY, ISSUER, PRODUCTION_ROOT

    cases, ident, issuer, prod = CASES, IDENTITY, ISSUER, PRODUCTION_ROOT
    happy = str(cases / "happy-path-intoto-in-dsse-v3" / "bundle.sigstore.json")
    a_txt = str(cases / "a.txt")
    base = ["verify", happy, "--trusted-root", str(prod), "--issuer", issuer]
    code, out, err = invoke(*base, "--identity", ident, "--subject", a_txt)
    assert code == 0, err
    result = json.loads(out)
    assert result["predicateValid"] is True and result["signedBy"] == [f"{issuer} {ident}"]
    assert invoke(*base, "--identity", ident + "x")[0] == 1
    assert (
        invoke(*base, "--identity", "https://github.com/sigstore-conformance/.*", "--regex")[0] == 0
    )
    assert invoke("verify", happy, "--identity", ident, "--issuer", issuer)[0] == 2  # no root
    # an upstream-signed SLSA v1 predicate without externalParameters: signature good, predicate
    # reported as breaking its schema, and fatal only with --strict
    rekor2 = cases / "rekor2-dsse-happy-path"
    args = [
        "verify",
        str(rekor2 / "bundle.sigstore.json"),
        "--trusted-root",
        str(rekor2 / "trusted_root.json"),
        "--identity",
        ident,
        "--issuer",
        issuer,
    ]
    code, out, _ = invoke(*args)
    assert code == 0 and json.loads(out)["predicateError"].endswith("(ErrExternalParamsRequired)")
    code, _, err = invoke(*args, "--strict")
    assert code == 2 and "predicate breaks its schema" in err


def test_test_result_from_junit(work: Path) -> None:
    junit = str(DATA / "junit.xml")
    code, _, err = invoke(
        "test-result", "--junit", junit, "--subject", "dist", "--key", "k", "-o", "t.json"
    )
    assert code == 0, err
    pred = payload(work / "t.json")["predicate"]
    assert pred["result"] == "FAILED"
    assert pred["failedTests"] == ["tests.test_app::test_broken"]
    assert pred["passedTests"] == ["tests.test_app::test_hello", "tests.test_app::test_math"]
    code, _, err = invoke(
        "test-result",
        "--junit",
        junit,
        "--result",
        "PASSED",
        "--subject",
        "dist",
        "--key",
        "k",
        "-o",
        "u.json",
    )
    assert code == 2 and "contradicts" in err and not (work / "u.json").exists()
    (work / "bomb.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><testsuite>&b;</testsuite>'
    )
    code, _, err = invoke("test-result", "--junit", "bomb.xml", "--subject", "dist", "--key", "k")
    assert code == 2 and "not a JUnit XML report" in err
    assert (
        invoke("test-result", "--subject", "dist", "--key", "k")[0] == 2
    )  # neither --result nor --junit


def test_run_streams_output_while_the_step_runs(work: Path) -> None:
    """The step waits for a file that the test creates only after it has *read* the step's
    first line from attest's stdout: if attest buffered the output, the step would time out."""
    script = (
        "echo first; "
        "for i in $(seq 100); do [ -f go ] && echo saw-go > seen && exit 0; sleep 0.1; done; "
        "echo timeout > seen"
    )
    proc = subprocess.Popen(
        [
            *ATTEST,
            "run",
            "--step",
            "wait",
            "--key",
            "k",
            "-p",
            "seen",
            "-o",
            "link.json",
            "--",
            "sh",
            "-c",
            script,
        ],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"first\n"
    (work / "go").touch()
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert (work / "seen").read_text() == "saw-go\n"
    assert payload(work / "link.json")["subject"][0]["name"] == "seen"


def test_verify_classic_intoto_links(work: Path) -> None:
    """in-toto 3.x's own `in-toto-sign --verify -k carl.pub` fails on this link because the
    stored keyid is the legacy one (VERIFIED.md); keyids are hints here, so it verifies."""
    from tests.conftest import fixture_path

    link = str(fixture_path("in-toto-demo", "demo_files", "package.2f89b927.link"))
    carl = str(fixture_path("in-toto-demo", "demo_files", "carl.pub"))
    bob = str(fixture_path("in-toto-demo", "demo_files", "bob.pub"))
    code, out, err = invoke("verify", link, "--key", carl)
    assert code == 0, err
    assert json.loads(out)["classic"] == "link" and json.loads(out)["name"] == "package"
    assert invoke("verify", link, "--key", bob)[0] == 1
    assert invoke("verify", link)[0] == 2
    dsse_link = str(fixture_path("in-toto-demo", "demo_dsse_files", "package.2f89b927.link"))
    code, out, err = invoke("verify", dsse_link, "--key", carl)
    assert code == 0, err
    assert json.loads(out)["classic"] == "link"
    assert invoke("verify", dsse_link, "--key", bob)[0] == 1


def test_unsupported_key_type_is_one_line(work: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP521R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (work / "p521").write_bytes(pem)
    for args in (
        ["provenance", "--subject", "dist", "--key", "p521", "-o", "out.json"],
        ["run", "--step", "s", "--key", "p521", "-o", "out.json", "--", "touch", "ran"],
    ):
        code, _, err = invoke(*args)
        assert (
            code == 2
            and err.strip()
            == "attest: error: unsupported ECDSA curve secp521r1 (use P-256 or P-384)"
        )
        assert not (work / "out.json").exists()
    assert not (work / "ran").exists()  # the step never ran with a key that cannot sign
