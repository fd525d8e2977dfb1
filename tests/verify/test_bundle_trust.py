"""Hostile Sigstore bundles against `verify attestations`: a bundle counts for a trusted identity
only once sigstore verified all of it (chain to the policy's root, SCT, log entry, signature).
A certificate the root did not issue never counts, whatever identity it names; a genuine
certificate of a trusted signer on a bundle that does not verify is exit 4, saying what failed."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from typer.testing import CliRunner

from attest.sigstore_bundle import MAX_IDENTITY_CHARS, IdentityPolicy
from tests.conftest import fixture_path
from tests.verify.conftest import DemoLedger
from tests.verify.forged import corrupted_log_proof, forge, forged_certificate, tampered
from tests.verify.gate import report
from tests.verify.test_third_party import CASES, IDENTITY, ISSUER, SUBJECT, _policy
from verify.cli import app

HAPPY = "happy-path-intoto-in-dsse-v3"


def _genuine() -> bytes:
    return fixture_path(*CASES, HAPPY, "bundle.sigstore.json").read_bytes()


def _judge(tmp_path: Path, *bundles: bytes, **sigstore: str) -> tuple[int, dict[str, Any], str]:
    policy = _policy(tmp_path, sigstore or {"identity": IDENTITY})
    args = ["attestations", SUBJECT, "--policy", str(policy), "--format", "json"]
    for i, b in enumerate(bundles):
        (tmp_path / f"b{i}.json").write_bytes(b)
        args += ["--bundle", str(tmp_path / f"b{i}.json")]
    r = CliRunner().invoke(app, args)
    return r.exit_code, json.loads(r.stdout), r.stderr


def test_a_forged_certificate_naming_the_trusted_identity_never_counts(tmp_path: Path) -> None:
    """Self-made certificate with the trusted SAN and Fulcio's issuer extensions, over the genuine
    statement (which meets the policy if it counted): not trusted, the step unmet, exit 1."""
    forged = forge(_genuine(), IDENTITY, ISSUER)
    code, doc, _ = _judge(tmp_path, forged)
    assert code == 1 and doc["verdict"] == "FAILED"
    assert doc["attestations"] == []
    [untrusted] = doc["untrusted"]
    assert (
        "claims this signer's identity but is not proved by the trusted root" in untrusted["reason"]
    )
    assert "certificate chain" in untrusted["reason"]
    build = next(r for r in doc["rules"] if r["rule"].startswith("step build"))
    assert not build["passed"]
    # with a regular expression for the identity: the same
    code, doc, _ = _judge(tmp_path, forged, identityRegex=r"https://github\.com/.*")
    assert code == 1 and doc["attestations"] == []


def test_a_forgery_beside_a_genuine_bundle_neither_counts_nor_blocks(tmp_path: Path) -> None:
    """Anyone can mint the forgery, so it must not block a deploy (exit 4) either: the genuine
    bundle counts once, the forgery is listed as not trusted."""
    genuine = _genuine()
    code, doc, _ = _judge(tmp_path, forge(genuine, IDENTITY, ISSUER), genuine)
    assert code == 0, doc
    assert len(doc["attestations"]) == 1 and doc["attestations"][0]["signers"] == ["gha"]
    assert len(doc["untrusted"]) == 1


def test_a_genuine_bundle_with_a_tampered_payload_is_exit_4(tmp_path: Path) -> None:
    """The certificate is the root's and names the trusted signer; the statement was edited after
    signing: a signature check failed (exit 4), and the message says which."""
    edited = tampered(_genuine(), {"predicateType": "https://slsa.dev/provenance/v1#edited"})
    code, doc, stderr = _judge(tmp_path, edited)
    assert code == 4 and doc["verdict"] == "ERROR"
    assert "trusted root issued to trusted signer 'gha'" in doc["error"]
    assert "DSSE: invalid signature" in doc["error"]
    assert "SignatureFailure" in stderr


def test_a_corrupted_log_proof_on_a_genuine_certificate_is_exit_4(tmp_path: Path) -> None:
    code, doc, _ = _judge(tmp_path, corrupted_log_proof(_genuine()))
    assert code == 4
    assert "invalid log entry" in doc["error"], doc["error"]


def test_a_log_entry_for_other_signatures_is_exit_4(tmp_path: Path) -> None:
    """The conformance case whose intoto log entry records other signatures than the bundle's
    (its own trusted root): the certificate is genuine, the entry does not match — exit 4."""
    case = fixture_path(*CASES, "intoto-log-entry-mismatch_fail")
    identity = {"identity": IDENTITY, "trustedRoot": str(case / "trusted_root.json")}
    code, doc, _ = _judge(tmp_path, (case / "bundle.sigstore.json").read_bytes(), **identity)
    assert code == 4
    assert "log entry signatures do not match bundle" in doc["error"], doc["error"]


def test_the_right_issuer_and_another_identity_is_not_trusted(tmp_path: Path) -> None:
    """A genuine certificate, from the trusted issuer, for another workflow: not counted (exit
    1), and the reason names the identities that did not match."""
    code, doc, _ = _judge(tmp_path, _genuine(), identity=IDENTITY.replace("main", "release"))
    assert code == 1 and doc["attestations"] == []
    [untrusted] = doc["untrusted"]
    assert "do not match" in untrusted["reason"] and "claims" not in untrusted["reason"]
    # and a forgery of that other identity is not counted either, for the same policy
    forged = forge(_genuine(), IDENTITY.replace("main", "release"), ISSUER)
    code, doc, _ = _judge(tmp_path, forged, identity=IDENTITY.replace("main", "release"))
    assert code == 1 and doc["attestations"] == []
    assert "not proved by the trusted root" in doc["untrusted"][0]["reason"]


def test_a_forgery_under_another_trusted_root_is_not_the_policy_roots(tmp_path: Path) -> None:
    """A genuine production bundle judged against another trusted root (the conformance custom
    root): its certificate is not that root's, so it is not counted — not exit 4."""
    root = fixture_path(*CASES, "intoto-with-custom-trust-root", "trusted_root.json")
    code, doc, _ = _judge(tmp_path, _genuine(), identity=IDENTITY, trustedRoot=str(root))
    assert code == 1 and doc["attestations"] == []
    assert "not proved by the trusted root" in doc["untrusted"][0]["reason"]


def test_a_forged_bundle_in_the_ledger_is_not_counted_nor_blocks(
    demo: DemoLedger, tmp_path: Path
) -> None:
    """The same order for ledger evidence: a forged bundle stored through the raw append path
    (admission would refuse it) is listed as not trusted; the genuine one beside it counts; a
    genuine certificate on an edited statement is exit 4."""
    import sqlite3

    from ledger.log import Ledger

    copy = tmp_path / "ledger.db"
    src, dst = sqlite3.connect(demo.db.removeprefix("sqlite:///")), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    db = f"sqlite:///{copy}"
    policy = _policy(tmp_path, {"identity": IDENTITY})
    doc = yaml.safe_load(policy.read_text())
    doc["ledger"] = {"keys": [demo.vkey]}
    policy.write_text(yaml.safe_dump(doc))
    with Ledger.open(db, demo.server.key) as lg:
        forged = lg.append(forge(_genuine(), IDENTITY, ISSUER)).index
    code, out = report(SUBJECT, "--policy", policy, "--db", db)
    assert code == 1 and out["attestations"] == []
    [untrusted] = out["untrusted"]
    assert untrusted["index"] == forged and "not proved by the trusted root" in untrusted["reason"]
    with Ledger.open(db, demo.server.key) as lg:
        genuine = lg.append(_genuine()).index
    code, out = report(SUBJECT, "--policy", policy, "--db", db)
    assert code == 0, out["rules"]
    assert [a["index"] for a in out["attestations"]] == [genuine]
    with Ledger.open(db, demo.server.key) as lg:
        lg.append(tampered(_genuine(), {"predicateType": "https://example.com/edited"}))
    code, out = report(SUBJECT, "--policy", policy, "--db", db)
    assert code == 4 and "DSSE: invalid signature" in out["error"]


def test_a_trusted_root_that_does_not_load_is_the_policys_error(tmp_path: Path) -> None:
    """A policy whose trustedRoot is no root (``{}``) is exit 2 naming the setting, not a run in
    which every bundle is quietly listed as untrusted (hostile finding, low)."""
    bad = tmp_path / "root.json"
    bad.write_text("{}")
    code, doc, _ = _judge(tmp_path, _genuine(), identity=IDENTITY, trustedRoot=str(bad))
    assert code == 2, doc
    assert "trustedRoot" in doc["error"], doc


# hostile finding F7: to word its reason, the policy's identityRegex ran (re.fullmatch,
# backtracking) on a self-made certificate's SAN; a 22 KB SAN took 14 s, a longer one hours
REDOS_REGEX = r"https://github\.com/.*/.*/\.github/workflows/.*@refs/tags/v.*"


def test_no_policy_regex_runs_on_an_unverified_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    real = IdentityPolicy._matches

    def spy(pattern: str, value: str, regex: bool) -> bool:
        ran.append(value)
        return real(pattern, value, regex)

    monkeypatch.setattr(IdentityPolicy, "_matches", staticmethod(spy))
    hostile = "https://github.com/" + "/.github/workflows/" * 1200
    code, doc, _ = _judge(tmp_path, forge(_genuine(), hostile, ISSUER), identityRegex=REDOS_REGEX)
    assert code == 1 and doc["attestations"] == []
    assert ran == []  # sigstore refused the chain first; nothing matched the forged SAN
    [untrusted] = doc["untrusted"]
    assert "claims this signer's identity" not in untrusted["reason"]


def test_a_huge_forged_san_is_refused_quickly(tmp_path: Path) -> None:
    hostile = "https://github.com/" + "/.github/workflows/" * 10_000  # 200 KB
    start = time.monotonic()
    code, doc, _ = _judge(tmp_path, forge(_genuine(), hostile, ISSUER), identityRegex=REDOS_REGEX)
    assert time.monotonic() - start < 2
    assert code == 1 and doc["attestations"] == []


def test_an_identity_over_the_bound_never_reaches_a_regex() -> None:
    """Even on a certificate the root did issue, a SAN longer than MAX_IDENTITY_CHARS is refused
    before a regular expression sees it (one that would match it is never run)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from sigstore.errors import VerificationError

    genuine = json.loads(_genuine())["verificationMaterial"]["certificate"]["rawBytes"]
    like = x509.load_der_x509_certificate(base64.b64decode(genuine))
    key = ec.generate_private_key(ec.SECP256R1())
    when = dt.datetime(2024, 12, 16, tzinfo=dt.UTC)
    fits = "https://github.com/" + "a" * 100
    long = "https://github.com/" + "a" * MAX_IDENTITY_CHARS
    policy = IdentityPolicy(ISSUER, r"https://github\.com/.*", subject_regex=True)
    policy.verify(forged_certificate(key, fits, ISSUER, when, like))
    with pytest.raises(VerificationError, match="never matched"):
        policy.verify(forged_certificate(key, long, ISSUER, when, like))
