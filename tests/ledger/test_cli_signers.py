"""``ledger append`` admits, ``ledger signers`` manages the registry: through the console script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.conftest import envelope, fixture_path
from tests.ledger.test_cli import run

BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)


@pytest.fixture
def work(tmp_path: Path, signed_samples: list[bytes], sample_pub_pem: bytes) -> Path:
    (tmp_path / "signed.json").write_bytes(signed_samples[0])
    junk = json.loads(signed_samples[1])
    junk["signatures"] = [{"sig": "c2ln"}]  # a valid Statement under a junk signature
    (tmp_path / "junk.json").write_text(json.dumps(junk))
    (tmp_path / "shape.json").write_bytes(envelope(1))  # not even a Statement
    (tmp_path / "sample.pub").write_bytes(sample_pub_pem)
    small_order = Ed25519PublicKey.from_public_bytes(b"\x01" + b"\x00" * 31)  # the identity
    (tmp_path / "small-order.pub").write_bytes(
        small_order.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    run(tmp_path, "init", "--origin", "cli.example/log")
    return tmp_path


def records(work: Path) -> int:
    return int(json.loads(run(work, "check").stdout)["records"])


def test_append_refuses_a_junk_signature_with_exit_5_and_writes_nothing(work: Path) -> None:
    p = run(work, "append", "junk.json", ok=False)
    assert p.returncode == 5, p.stderr
    assert p.stderr.count("\n") == 1 and "junk.json" in p.stderr and p.stdout == ""
    assert "unknown signer" in p.stderr
    p = run(work, "append", "shape.json", ok=False)
    assert p.returncode == 2 and "Statement" in p.stderr
    assert records(work) == 0


def test_signers_add_list_revoke(work: Path) -> None:
    p = run(work, "append", "signed.json", ok=False)
    assert p.returncode == 5 and "unknown signer" in p.stderr
    run(
        work,
        "signers",
        "add",
        "--name",
        "ci",
        "--key",
        "sample.pub",
        "--predicate-type",
        "https://slsa.dev/provenance/v1",
    )
    assert json.loads(run(work, "append", "signed.json").stdout)["index"] == 1
    # an untrusted body among trusted ones: all or none
    p = run(work, "append", "signed.json", "junk.json", ok=False)
    assert p.returncode == 5 and records(work) == 2
    run(work, "signers", "revoke", "ci", "--at", "2020-01-01T00:00:00Z")
    (listed,) = json.loads(run(work, "signers", "list").stdout)
    assert listed["name"] == "ci" and listed["revokedAt"] == "2020-01-01T00:00:00.000000Z"
    assert listed["predicateTypes"] == ["https://slsa.dev/provenance/v1"]
    p = run(work, "append", "signed.json", ok=False)  # a duplicate, but its signer is revoked now
    assert p.returncode == 5 and "revoked at 2020-01-01" in p.stderr
    p = run(work, "signers", "revoke", "nobody", ok=False)
    assert p.returncode == 3
    assert records(work) == 3


def test_signers_add_refuses_bad_input_and_writes_nothing(work: Path) -> None:
    root = fixture_path("sigstore-bundles", "trust-roots", "production", "trusted_root.json")
    for args, code in [
        (["--name", "x"], 2),
        (["--name", "x", "--key", "missing.pub"], 2),
        (["--name", "x", "--key", "junk.json"], 2),
        (["--name", "x", "--sigstore-issuer", "https://i", "--sigstore-identity", "me"], 2),
        (
            [
                "--name",
                "x",
                "--sigstore-issuer",
                "https://i",
                "--sigstore-identity",
                "(",
                "--regex",
                "--trusted-root",
                str(root),
            ],
            2,
        ),
        (
            [
                "--name",
                "x",
                "--sigstore-issuer",
                "https://i",
                "--sigstore-identity",
                "me",
                "--trusted-root",
                "junk.json",
            ],
            2,
        ),
        (["--name", "x", "--key", "sample.pub", "--valid-from", "yesterday"], 2),
        (["--name", "x", "--key", "sample.pub", "--valid-until", "9999-12-31T23:59:59-23:00"], 2),
        (["--name", "bad name", "--key", "sample.pub"], 2),
        (["--name", "x", "--key", "small-order.pub"], 2),  # OpenSSL would verify forgeries
    ]:
        p = run(work, "signers", "add", *args, ok=False)
        assert p.returncode == code, (args, p.stderr)
        assert p.stderr.count("\n") == 1, p.stderr
    assert records(work) == 0
    run(
        work,
        "signers",
        "add",
        "--name",
        "beacon",
        "--sigstore-issuer",
        "https://token.actions.githubusercontent.com",
        "--sigstore-identity",
        BEACON,
        "--trusted-root",
        str(root),
    )
    assert json.loads(run(work, "signers", "list").stdout)[0]["sigstore"]["identity"] == BEACON


def test_a_foreign_admin_key_is_refused(work: Path, tmp_path: Path) -> None:
    run(work, "init", "--origin", "cli.example/log", "--db", "sqlite:///other.db")
    p = run(
        work,
        "signers",
        "add",
        "--name",
        "ci",
        "--key",
        "sample.pub",
        "--admin-key-file",
        "other.db.admin.key",
        ok=False,
    )
    assert p.returncode == 2 and "admin key" in p.stderr
    assert records(work) == 0


def test_init_admin_gives_an_old_ledger_an_admin_key_once(work: Path) -> None:
    p = run(work, "signers", "init-admin", ok=False)
    assert p.returncode == 4 and "already has an admin key" in p.stderr
