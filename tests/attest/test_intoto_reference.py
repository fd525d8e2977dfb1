"""What `attest run --format link|link-dsse` writes passes the in-toto reference implementation's
own supply-chain verification (in_toto.verifylib.in_toto_verify) against a layout signed with
in-toto's API — and fails it when the link is edited or signed by a key the layout does not name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from in_toto.models.layout import Layout, Step
from in_toto.models.metadata import Envelope as InTotoEnvelope
from in_toto.models.metadata import Metablock
from in_toto.verifylib import in_toto_verify
from securesystemslib.signer import CryptoSigner

from attest.keys import read_public_key
from attest.signers import read_signer, write_keypair

ATTEST = [sys.executable, "-m", "attest.cli"]


def key_dict(pub_path: Path) -> dict[str, Any]:
    pub = read_public_key(pub_path)
    return {**pub.to_sslib_dict(), "keyid": pub.keyid}


def build(work: Path, fmt: str, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *ATTEST,
            "run",
            "--step",
            "build",
            "--format",
            fmt,
            "--key",
            key,
            "-m",
            "src/app.py",
            "-p",
            "dist/app.zip",
            "--",
            sys.executable,
            "-m",
            "zipfile",
            "-c",
            "dist/app.zip",
            "src/app.py",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )


def signed_layout(work: Path, functionary: dict[str, Any], dsse: bool):  # type: ignore[no-untyped-def]
    layout = Layout()
    layout.add_functionary_key(functionary)
    step = Step(name="build")
    step.pubkeys = [functionary["keyid"]]
    step.expected_materials = [["ALLOW", "src/app.py"], ["DISALLOW", "*"]]
    step.expected_products = [["CREATE", "dist/app.zip"], ["DISALLOW", "*"]]
    layout.steps = [step]
    layout.set_relative_expiration(days=1)
    owner = CryptoSigner(read_signer(work / "owner").private_key)
    meta = InTotoEnvelope.from_signable(layout) if dsse else Metablock(signed=layout)
    meta.create_signature(owner)
    owner_key = {**owner.public_key.to_dict(), "keyid": owner.public_key.keyid}
    return meta, {owner.public_key.keyid: owner_key}


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "dist").mkdir()
    (tmp_path / "src" / "app.py").write_text("print('hi')\n")
    write_keypair(tmp_path / "owner", "ed25519", None)
    return tmp_path


@pytest.mark.parametrize(
    ("fmt", "key_type"), [("link", "rsa"), ("link-dsse", "ed25519"), ("link", "ecdsa-p256")]
)
def test_in_toto_verify_accepts_our_links(work: Path, fmt: str, key_type: str) -> None:
    func = write_keypair(work / "func", key_type, None)
    proc = build(work, fmt, "func")
    assert proc.returncode == 0, proc.stderr
    link_file = work / f"build.{func.keyid[:8]}.link"
    assert link_file.exists()
    meta, layout_keys = signed_layout(work, key_dict(work / "func.pub"), dsse=fmt == "link-dsse")
    summary = in_toto_verify(meta, layout_keys, link_dir_path=str(work))
    assert summary is not None

    # our own verifier agrees
    from typer.testing import CliRunner

    from attest.cli import app

    r = CliRunner().invoke(app, ["verify", str(link_file), "--key", str(work / "func.pub")])
    assert r.exit_code == 0, r.stderr


def test_in_toto_verify_refuses_an_edited_link(work: Path) -> None:
    func = write_keypair(work / "func", "ed25519", None)
    assert build(work, "link", "func").returncode == 0
    link_file = work / f"build.{func.keyid[:8]}.link"
    doc = json.loads(link_file.read_text())
    doc["signed"]["products"]["dist/app.zip"]["sha256"] = "0" * 64
    link_file.write_text(json.dumps(doc))
    meta, layout_keys = signed_layout(work, key_dict(work / "func.pub"), dsse=False)
    with pytest.raises(Exception, match=r"validly signed by different authorized functionaries"):
        in_toto_verify(meta, layout_keys, link_dir_path=str(work))


def test_in_toto_verify_refuses_a_functionary_the_layout_does_not_name(work: Path) -> None:
    write_keypair(work / "func", "ed25519", None)
    mallory = write_keypair(work / "mallory", "ed25519", None)
    assert build(work, "link", "mallory").returncode == 0
    assert (work / f"build.{mallory.keyid[:8]}.link").exists()
    meta, layout_keys = signed_layout(work, key_dict(work / "func.pub"), dsse=False)
    with pytest.raises(Exception, match=r"(?i)link"):
        in_toto_verify(meta, layout_keys, link_dir_path=str(work))


def test_classic_links_need_a_key(work: Path) -> None:
    proc = subprocess.run(
        [*ATTEST, "run", "--step", "x", "--format", "link", "--sigstore", "--", "true"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "signed with --key" in proc.stderr
    proc = subprocess.run(
        [*ATTEST, "run", "--step", "x", "--format", "yaml", "--key", "owner", "--", "true"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "--format must be" in proc.stderr
