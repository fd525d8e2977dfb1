"""`attest verify` against hostile and unusual documents (issue 7): each failing scenario is in a
test's name, and each of these failed on the code before the fix."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attest.cli import app
from attest.dsse import sign_envelope
from attest.signers import read_signer
from attest.verification import open_statement
from tests.conftest import fixture_path

DEMO = ("in-toto-demo", "demo_files")
DEMO_DSSE = ("in-toto-demo", "demo_dsse_files")
PYPI_PUBLISH = "https://docs.pypi.org/attestations/publish/v1"
WHEEL = b"a wheel"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATTEST_KEY_PASSPHRASE", raising=False)
    assert CliRunner().invoke(app, ["keygen", "-o", "k"]).exit_code == 0
    (tmp_path / "app.whl").write_bytes(WHEEL)
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def one_line_exit_2(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.startswith("attest: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


def signed(work: Path, payload: bytes, name: str = "env.json") -> str:
    """``payload`` exactly as given, in a DSSE envelope signed with the test key."""
    envelope = sign_envelope(payload, [read_signer(work / "k")])
    (work / name).write_bytes(envelope.to_json())
    return name


def statement_text(**extra: object) -> str:
    digest = hashlib.sha256(WHEEL).hexdigest()
    doc = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app.whl", "digest": {"sha256": digest}}],
        "predicateType": PYPI_PUBLISH,
        **extra,
    }
    return json.dumps(doc)


# --- §1: --subject must bind a classic in-toto link to the artifact --------------------------------


@pytest.mark.parametrize("folder", [DEMO, DEMO_DSSE], ids=["metablock", "dsse"])
def test_classic_link_subject_that_is_not_a_product_is_refused(work: Path, folder: tuple) -> None:  # type: ignore[type-arg]
    link = str(fixture_path(*folder, "package.2f89b927.link"))
    carl = str(fixture_path(*DEMO, "carl.pub"))
    code, _, err = invoke("verify", link, "--key", carl, "--subject", "app.whl")
    assert code == 1 and "is not a product of this link" in err, err
    product = str(fixture_path(*DEMO, "foo.tar.gz"))  # the file the link names as its product
    code, out, err = invoke("verify", link, "--key", carl, "--subject", product)
    assert code == 0, err
    assert json.loads(out)["name"] == "package"
    digest = "sha256:52947cb78b91ad01fe81cd6aef42d1f6817e92b9e6936c1e5aabb7c98514f355"
    assert invoke("verify", link, "--key", carl, "--subject", digest)[0] == 0


def test_classic_layout_with_subject_is_refused_as_unmatchable(work: Path) -> None:
    layout = str(fixture_path("in-toto-demo", "generated-by-reference-tool", "root.layout"))
    alice = str(fixture_path(*DEMO, "alice.pub"))
    assert invoke("verify", layout, "--key", alice)[0] == 0
    code, _, err = invoke("verify", layout, "--key", alice, "--subject", "app.whl")
    one_line_exit_2(code, err, "names no artifacts")


# --- §3: hostile JSON is one line, exit 2 ----------------------------------------------------------


def test_deeply_nested_json_document_is_one_line_exit_2(work: Path) -> None:
    (work / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    one_line_exit_2(*invoke("verify", "deep.json", "--key", "k.pub")[::2], "nested deeper")
    (work / "deep2.json").write_text('{"a":' * 500 + "1" + "}" * 500)
    one_line_exit_2(*invoke("verify", "deep2.json", "--key", "k.pub")[::2], "nested deeper")


@pytest.mark.parametrize("keyval", [5, ["x"], {"k": 1}, None])
@pytest.mark.parametrize("keytype", ["ed25519", "ecdsa"])
def test_json_key_whose_keyval_is_not_a_string_is_exit_2(
    work: Path, keytype: str, keyval: object
) -> None:
    key = {"keytype": keytype, "scheme": keytype, "keyval": {"public": keyval}}
    (work / "key.json").write_text(json.dumps(key))
    code, _, err = invoke("verify", signed(work, statement_text().encode()), "--key", "key.json")
    one_line_exit_2(code, err, "key.json")


def test_dev_zero_is_read_only_up_to_the_limit(work: Path) -> None:
    started = time.monotonic()
    code, _, err = invoke("verify", "/dev/zero", "--key", "k.pub")
    one_line_exit_2(code, err, f"larger than {1 << 20} bytes")
    assert time.monotonic() - started < 20  # a hang, not a slow machine
    from attest.verification import MAX_DOCUMENT_BYTES
    from ledger.bodies import MAX_BODY_BYTES

    assert MAX_DOCUMENT_BYTES == MAX_BODY_BYTES  # nothing larger can be in a ledger


# --- §4: what a signed payload may be ---------------------------------------------------------------


def test_duplicate_subject_key_in_signed_payload_is_refused(work: Path) -> None:
    """A first-wins consumer reads ``evil``'s digest, a last-wins one reads ours: refuse both."""
    good = json.loads(statement_text())["subject"][0]["digest"]["sha256"]
    payload = statement_text().replace(
        '"subject": [',
        '"subject": [{"name": "evil", "digest": {"sha256": "' + "0" * 64 + '"}}], "subject": [',
    )
    assert payload.count('"subject"') == 2 and good in payload
    code, _, err = invoke("verify", signed(work, payload.encode()), "--key", "k.pub")
    one_line_exit_2(code, err, "duplicate key 'subject'")


def test_duplicate_key_in_the_envelope_itself_is_refused(work: Path) -> None:
    name = signed(work, statement_text().encode())
    text = (work / name).read_text()
    other = base64.b64encode(b'{"_type": "other"}').decode()
    (work / "dup.json").write_text(text[:-1] + f',"payload":"{other}"}}')
    one_line_exit_2(*invoke("verify", "dup.json", "--key", "k.pub")[::2], "duplicate key")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_or_infinity_in_signed_payload_is_refused(work: Path, constant: str) -> None:
    payload = statement_text(predicate={"score": "X"}).replace('"X"', constant).encode()
    code, _, err = invoke("verify", signed(work, payload), "--key", "k.pub")
    one_line_exit_2(code, err, f"{constant} is not a JSON number")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "utf-8-sig"])
def test_non_utf8_or_bom_payload_is_refused(work: Path, encoding: str) -> None:
    payload = statement_text().encode(encoding)
    code, _, err = invoke("verify", signed(work, payload), "--key", "k.pub")
    assert code == 2, err
    assert "UTF-8" in err or "byte order mark" in err or "not valid JSON" in err, err


def test_utf16_envelope_is_refused(work: Path) -> None:
    name = signed(work, statement_text().encode())
    (work / "u16.json").write_bytes((work / name).read_text().encode("utf-16"))
    one_line_exit_2(*invoke("verify", "u16.json", "--key", "k.pub")[::2], "not UTF-8")


@pytest.mark.parametrize("extra", [{}, {"predicate": None}], ids=["no-predicate", "null-predicate"])
def test_pypi_publish_statement_without_predicate_verifies(work: Path, extra: dict) -> None:  # type: ignore[type-arg]
    """PEP 740's publish attestation has a predicateType and no predicate: valid Statement v1."""
    name = signed(work, statement_text(**extra).encode())
    code, out, err = invoke("verify", name, "--key", "k.pub", "--subject", "app.whl", "--strict")
    assert code == 0, err
    report = json.loads(out)
    assert report["predicateType"] == PYPI_PUBLISH and report["predicateValid"] is True
    verified = open_statement((work / name).read_bytes(), keys=[read_signer(work / "k").public_key])
    assert verified.statement.predicate is None and verified.predicate is None
    assert verified.predicate_error is None


def test_known_predicate_type_without_predicate_is_read_as_empty(work: Path) -> None:
    """Unset is the same as empty: an SLSA statement without a predicate breaks the SLSA model."""
    text = statement_text().replace(PYPI_PUBLISH, "https://slsa.dev/provenance/v1")
    code, out, err = invoke("verify", signed(work, text.encode()), "--key", "k.pub")
    assert code == 0, err
    assert json.loads(out)["predicateValid"] is False
    code, _, err = invoke("verify", "env.json", "--key", "k.pub", "--strict")
    assert code == 2 and "predicate breaks its schema" in err


MESSAGE_SIGNATURE_BUNDLES = [
    ("sigstore-bundles", "sigstore-python-assets", "bundle_v3.txt.sigstore"),
    ("sigstore-bundles", "sigstore-python-assets", "bundle.txt.sigstore"),
    ("conformance", "assets", "bundle-verify", "invalid-ct-key_fail", "bundle.sigstore.json"),
]


@pytest.mark.parametrize("parts", MESSAGE_SIGNATURE_BUNDLES, ids=lambda p: p[-1])
@pytest.mark.parametrize("with_key", [True, False], ids=["with-key", "no-key"])
def test_message_signature_bundle_is_named_not_asked_for_a_key(
    work: Path, parts: tuple[str, ...], with_key: bool
) -> None:
    bundle = fixture_path(*parts)
    assert "messageSignature" in json.loads(bundle.read_text())
    args = ["verify", str(bundle), *(["--key", "k.pub"] if with_key else [])]
    code, _, err = invoke(*args)
    one_line_exit_2(code, err, "message signature", "DSSE envelope", "classic in-toto")
    assert "needs at least one trusted --key" not in err
