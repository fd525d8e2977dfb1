"""DSSE: the spec vector, re-signing byte for byte, DER and raw ECDSA, keyid as a hint only."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attest.dsse import Envelope, EnvelopeSignature, pae, sign_envelope, verify_envelope
from attest.errors import InvalidInput, SignatureError
from attest.keys import public_key_from_crypto, read_public_key
from attest.signers import KeySigner
from tests.conftest import fixture_path

SPEC = ("dsse", "spec")


def spec_key() -> ec.EllipticCurvePrivateKey:
    k = json.loads(fixture_path(*SPEC, "hello-world.key.json").read_text())
    priv = ec.derive_private_key(int(k["d"]), ec.SECP256R1())
    nums = priv.public_key().public_numbers()
    assert (nums.x, nums.y) == (int(k["X"]), int(k["Y"]))
    return priv


def test_pae_is_exactly_the_spec_bytes() -> None:
    k = json.loads(fixture_path(*SPEC, "hello-world.key.json").read_text())
    assert pae(k["payloadType"], k["payload_utf8"].encode()) == k["expected_PAE_utf8"].encode()
    assert pae("", b"") == b"DSSEv1 0  0 "
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"  # byte lengths, not characters


@pytest.mark.parametrize(
    "name", ["hello-world.envelope.json", "hello-world.with-keyid.envelope.json"]
)
def test_spec_vector_verifies_with_spec_key_and_pem(name: str) -> None:
    env = Envelope.from_json(fixture_path(*SPEC, name).read_bytes())
    pem_key = read_public_key(fixture_path(*SPEC, "hello-world.pub.pem"))
    for key in (public_key_from_crypto(spec_key().public_key()), pem_key):
        v = verify_envelope(env, [key])
        assert v.payload == b"hello world"
        assert v.payload_type == "http://example.com/HelloWorld"


def test_deterministic_resign_reproduces_the_spec_vector_byte_for_byte() -> None:
    raw = fixture_path(*SPEC, "hello-world.envelope.json").read_bytes()
    signer = KeySigner(spec_key(), deterministic=True, raw_ecdsa=True)
    ours = sign_envelope(b"hello world", [signer], "http://example.com/HelloWorld")
    theirs = json.loads(raw)
    assert base64.b64encode(ours.signatures[0].sig).decode() == theirs["signatures"][0]["sig"]
    mine = ours.to_dict()
    mine["signatures"][0].pop("keyid")
    assert mine == theirs


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(payload=base64.b64encode(b"hello world!").decode()),
        lambda d: d.update(payloadType="http://example.com/helloworld"),
        lambda d: d["signatures"][0].update(
            sig=base64.b64encode(b"\x00" + base64.b64decode(d["signatures"][0]["sig"])[1:]).decode()
        ),
    ],
    ids=["payload", "payloadType-case", "signature-byte"],
)
def test_tampering_fails(mutate) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(fixture_path(*SPEC, "hello-world.envelope.json").read_bytes())
    mutate(doc)
    with pytest.raises(SignatureError):
        verify_envelope(Envelope.from_dict(doc), [public_key_from_crypto(spec_key().public_key())])


def test_url_safe_and_unpadded_base64_are_accepted() -> None:
    doc = json.loads(fixture_path(*SPEC, "hello-world.envelope.json").read_bytes())
    sig = doc["signatures"][0]["sig"]
    doc["signatures"][0]["sig"] = sig.replace("+", "-").replace("/", "_").rstrip("=")
    doc["payload"] = doc["payload"].rstrip("=")
    verify_envelope(Envelope.from_dict(doc), [public_key_from_crypto(spec_key().public_key())])


def test_der_and_raw_ecdsa_both_verify() -> None:
    key = spec_key()
    pub = public_key_from_crypto(key.public_key())
    for raw in (False, True):
        env = sign_envelope(b"x", [KeySigner(key, raw_ecdsa=raw)], "t")
        assert (len(env.signatures[0].sig) == 64) is raw
        verify_envelope(env, [pub])


def test_vsa_raw_signature_verifies_and_keyid_is_only_a_hint() -> None:
    """Google's VSA: 64-byte r||s and a keyid that names no key of ours."""
    line = fixture_path("slsa-provenance", "vsa", "gce", "v1", "gke-gce-pre.bcid-vsa.jsonl")
    doc = json.loads(line.read_text().splitlines()[0])
    key = read_public_key(line.parent / "vsa_signing_public_key.pem")
    assert len(base64.b64decode(doc["signatures"][0]["sig"])) == 64
    for keyid in ("keystore://76574:prod:vsa_signing_public_key", "", "my_key_id"):
        doc["signatures"][0]["keyid"] = keyid
        v = verify_envelope(Envelope.from_dict(doc), [key])
        assert b"verification_summary/v1" in v.payload


def test_threshold_counts_distinct_keys() -> None:
    a, b = KeySigner(ec.generate_private_key(ec.SECP256R1())), KeySigner(spec_key())
    env = sign_envelope(b"p", [a, a], "t")  # two signatures, one key
    with pytest.raises(SignatureError, match="2 needed"):
        verify_envelope(env, [a.public_key, b.public_key], threshold=2)
    env2 = sign_envelope(b"p", [a, b], "t")
    assert len(verify_envelope(env2, [a.public_key, b.public_key], threshold=2).signed_by) == 2
    with pytest.raises(InvalidInput, match="at least 1"):
        verify_envelope(env2, [a.public_key], threshold=0)


def test_wrong_key_unsigned_and_payload_type_are_refused() -> None:
    env = sign_envelope(b"p", [KeySigner(spec_key())], "t")
    other = KeySigner(ec.generate_private_key(ec.SECP256R1())).public_key
    with pytest.raises(SignatureError):
        verify_envelope(env, [other])
    with pytest.raises(SignatureError, match="no signatures"):
        verify_envelope(Envelope("t", b"p", ()), [other])
    with pytest.raises(SignatureError, match="payloadType"):
        verify_envelope(env, [KeySigner(spec_key()).public_key], payload_type="other")
    bad_sig = Envelope("t", b"p", (EnvelopeSignature(b"\x30\x00"),))
    with pytest.raises(SignatureError):
        verify_envelope(bad_sig, [KeySigner(spec_key()).public_key])


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "object"),
        (b'{"payload": "aGk=", "signatures": []}', "payloadType"),
        (b'{"payloadType": "t", "payload": "!!", "signatures": []}', "base64"),
        (b'{"payloadType": "t", "payload": "aGk=", "signatures": {}}', "list"),
        (
            b'{"payloadType": "t", "payload": "aGk=", "signatures": [{"keyid": 1, "sig": "aGk="}]}',
            "keyid",
        ),
    ],
)
def test_malformed_envelopes_get_clear_errors(doc: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Envelope.from_json(doc)


def test_intoto_demo_dsse_links_verify_with_layout_keys_and_fail_when_edited() -> None:
    from attest.intoto_classic import layout_keys

    layout = json.loads(
        fixture_path("in-toto-demo", "demo_files", "demo.layout.template").read_text()
    )
    keys = layout_keys(layout["signed"])
    for name, keyid in (
        ("package.2f89b927.link", "2f89b927"),
        ("write-code.776a00e2.link", "776a00e2"),
    ):
        raw = fixture_path("in-toto-demo", "demo_dsse_files", name).read_bytes()
        v = verify_envelope(Envelope.from_json(raw), list(keys.values()))
        assert v.signed_by[0].keyid.startswith(keyid)
        doc = json.loads(raw)
        payload = json.loads(base64.b64decode(doc["payload"]))
        payload["name"] = "evil"
        doc["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
        with pytest.raises(SignatureError):
            verify_envelope(Envelope.from_dict(doc), list(keys.values()))


def test_raw_signature_that_starts_like_der_still_verifies() -> None:
    """About 1 raw r||s signature in 256 begins with 0x30 (a DER SEQUENCE tag)."""
    key = ec.generate_private_key(ec.SECP256R1())
    signer = KeySigner(key, raw_ecdsa=True)
    for _ in range(5000):
        env = sign_envelope(b"payload", [signer], "t")
        if env.signatures[0].sig[0] == 0x30:
            break
    else:
        pytest.fail("no raw signature starting with 0x30 in 5000 tries")
    verify_envelope(env, [signer.public_key])


def test_a_key_listed_twice_counts_once_toward_the_threshold() -> None:
    a = KeySigner(ec.generate_private_key(ec.SECP256R1()))
    env = sign_envelope(b"p", [a, a], "t")
    with pytest.raises(SignatureError, match="2 needed"):
        verify_envelope(env, [a.public_key, a.public_key], threshold=2)
    same_key_other_keyid = public_key_from_crypto(a.private_key.public_key(), keyid="other")
    with pytest.raises(SignatureError, match="2 needed"):
        verify_envelope(env, [a.public_key, same_key_other_keyid], threshold=2)
