"""Key-file signers: every key type, encrypted PEMs, clear errors, and interop with
securesystemslib and the in-toto reference library."""

from __future__ import annotations

import copy
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from attest.dsse import Envelope, sign_envelope, verify_envelope
from attest.errors import InvalidInput, KeyFileError, SignatureError
from attest.keys import load_public_key, read_public_key
from attest.signers import KEY_TYPES, load_signer, read_signer, write_keypair
from tests.conftest import fixture_path

PEMS = ("in-toto-demo", "pems")


def sslib_key(pem: bytes):  # type: ignore[no-untyped-def]
    from securesystemslib.signer import SSlibKey

    return SSlibKey.from_crypto(serialization.load_pem_public_key(pem))


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_keygen_sign_verify_each_type(tmp_path: Path, key_type: str) -> None:
    name = tmp_path / "k"
    public = write_keypair(name, key_type, None)
    assert stat.S_IMODE(name.stat().st_mode) == 0o600
    signer = read_signer(name)
    assert read_public_key(Path(f"{name}.pub")) == public
    env = sign_envelope(b"{}", [signer])
    assert env.signatures[0].keyid == public.keyid
    assert verify_envelope(env, [public]).payload == b"{}"
    with pytest.raises(KeyFileError, match="already exists"):
        write_keypair(name, key_type, None)


def test_encrypted_keygen_needs_the_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_keypair(tmp_path / "k", "ecdsa-p384", b"s3cret")
    assert b"ENCRYPTED" in (tmp_path / "k").read_bytes()
    monkeypatch.delenv("ATTEST_KEY_PASSPHRASE", raising=False)
    with pytest.raises(KeyFileError, match="ATTEST_KEY_PASSPHRASE"):
        read_signer(tmp_path / "k")
    monkeypatch.setenv("ATTEST_KEY_PASSPHRASE", "wrong")
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        read_signer(tmp_path / "k")
    monkeypatch.setenv("ATTEST_KEY_PASSPHRASE", "s3cret")
    assert read_signer(tmp_path / "k").public_key.scheme == "ecdsa-sha2-nistp384"


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_upstream_pem_vectors_load_plain_and_encrypted(kind: str) -> None:
    public = read_public_key(fixture_path(*PEMS, f"{kind}_public.pem"))
    plain = load_signer(fixture_path(*PEMS, f"{kind}_private_unencrypted.pem").read_bytes())
    enc = load_signer(
        fixture_path(*PEMS, f"{kind}_private_encrypted.pem").read_bytes(), passphrase=b"hunter2"
    )
    assert plain.public_key == enc.public_key == public
    verify_envelope(sign_envelope(b"x", [enc]), [public])
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_signer(
            fixture_path(*PEMS, f"{kind}_private_encrypted.pem").read_bytes(), passphrase=b"hunter3"
        )


def test_unsupported_and_broken_keys_get_one_clear_error(tmp_path: Path) -> None:
    p521 = ec.generate_private_key(ec.SECP521R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFileError, match="curve"):
        load_signer(p521)
    dsa_pem = dsa.generate_private_key(2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFileError, match="unsupported key type"):
        load_signer(dsa_pem)
    small = rsa.generate_private_key(65537, 1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFileError, match="too small"):
        load_signer(small)
    with pytest.raises(KeyFileError, match="not a PEM private key"):
        load_signer(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyFileError, match="cannot read"):
        read_signer(tmp_path / "missing")
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        load_public_key(b"garbage")
    with pytest.raises(KeyFileError, match="unknown key type"):
        write_keypair(tmp_path / "x", "dsa", None)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_our_envelopes_verify_with_securesystemslib(tmp_path: Path, key_type: str) -> None:
    from securesystemslib.dsse import Envelope as SslibEnvelope

    public = write_keypair(tmp_path / "k", key_type, None)
    env = sign_envelope(b'{"a":1}', [read_signer(tmp_path / "k")])
    key = sslib_key(public.spki_pem())
    assert key.keyid == public.keyid
    theirs = SslibEnvelope.from_dict(copy.deepcopy(env.to_dict()))
    assert key.keyid in theirs.verify([key], 1)
    # and tampering is caught by them too
    bad = copy.deepcopy(env.to_dict())
    bad["payloadType"] = "x"
    from securesystemslib.exceptions import VerificationError

    with pytest.raises(VerificationError):
        SslibEnvelope.from_dict(bad).verify([key], 1)


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa-p256", "rsa"])
def test_our_envelopes_verify_with_the_intoto_reference(tmp_path: Path, key_type: str) -> None:
    from in_toto.models.metadata import Envelope as InTotoEnvelope

    public = write_keypair(tmp_path / "k", key_type, None)
    env = sign_envelope(b'{"_type":"link"}', [read_signer(tmp_path / "k")])
    theirs = InTotoEnvelope.from_dict(copy.deepcopy(env.to_dict()))
    theirs.verify([sslib_key(public.spki_pem())], 1)


def test_securesystemslib_envelopes_verify_with_us() -> None:
    """The other direction: securesystemslib's CryptoSigner output checks out here."""
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.signer import CryptoSigner

    signer = CryptoSigner(ec.generate_private_key(ec.SECP256R1()))
    theirs = SslibEnvelope(payload=b"hi", payload_type="t", signatures={})
    theirs.sign(signer)
    ours = Envelope.from_dict(theirs.to_dict())
    public = load_public_key(
        signer.public_key.to_dict()["keyval"]["public"].encode()  # type: ignore[attr-defined]
    )
    assert verify_envelope(ours, [public]).payload == b"hi"
    with pytest.raises(SignatureError):
        verify_envelope(Envelope(ours.payload_type, b"ho", ours.signatures), [public])


def test_sslib_json_keys_load_with_their_keyid() -> None:
    danny = read_public_key(fixture_path("in-toto-demo", "demo_files", "danny.pub"))
    assert danny.scheme == "ed25519"
    doc = json.loads(fixture_path("in-toto-demo", "demo_files", "danny.pub").read_text())
    assert danny.to_sslib_dict()["keyval"]["public"] == doc["keyval"]["public"]


def test_passphrase_for_an_unencrypted_key_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_keypair(tmp_path / "k", "ed25519", None)
    monkeypatch.setenv("ATTEST_KEY_PASSPHRASE", "set-for-every-step")
    assert read_signer(tmp_path / "k").public_key.scheme == "ed25519"


def test_keygen_into_a_missing_or_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        write_keypair(tmp_path / "nodir" / "k", "ed25519", None)
    # /proc takes no new files, not even from root (CI runs as root, so a chmod'ed dir won't do)
    with pytest.raises(InvalidInput, match="cannot write /proc/attest-key"):
        write_keypair(Path("/proc/attest-key"), "ed25519", None)


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_the_default_keyid_is_securesystemslibs(tmp_path: Path, key_type: str) -> None:
    """attest computes securesystemslib's default keyid itself (importing its signer package
    costs every deploy gate's start ~20 ms): it must stay the keyid securesystemslib computes."""
    from securesystemslib.signer import SSlibKey

    public = write_keypair(tmp_path / "k", key_type, None)
    theirs = SSlibKey.from_crypto(public.key, scheme=public.scheme)
    assert public.keyid == theirs.keyid
    pem = (tmp_path / "k.pub").read_bytes()
    assert load_public_key(pem).keyid == sslib_key(pem).keyid
