"""A private key file that its group or others can read is loaded with one warning on stderr."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from attest.signers import read_signer, write_keypair


@pytest.fixture
def key(tmp_path: Path) -> Path:
    write_keypair(tmp_path / "k", "ed25519", None)
    return tmp_path / "k"


def test_world_readable_key_loads_with_a_one_line_warning(
    key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.chmod(key, 0o644)
    signer = read_signer(key)
    assert signer.public_key.scheme == "ed25519"
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"attest: warning: private key {key} is accessible to group or others")
    assert "0644" in err


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660], ids=lambda m: f"{m:04o}")
def test_group_or_other_access_is_reported(key: Path, mode: int) -> None:
    os.chmod(key, mode)
    seen: list[str] = []
    read_signer(key, warn=seen.append)
    assert len(seen) == 1 and f"{mode:04o}" in seen[0]


def test_owner_only_key_loads_silently(key: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (key.stat().st_mode & 0o777) == 0o600  # as keygen writes it
    read_signer(key)
    os.chmod(key, 0o400)
    read_signer(key)
    assert capsys.readouterr().err == ""


def test_a_file_that_is_no_usable_key_gets_only_the_error(
    key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from attest.errors import KeyFileError

    public = key.with_name("k.pub")
    os.chmod(public, 0o644)
    with pytest.raises(KeyFileError, match="not a PEM private key"):
        read_signer(public)
    assert capsys.readouterr().err == ""
