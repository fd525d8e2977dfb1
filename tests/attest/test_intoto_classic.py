"""Classic in-toto demo metadata loads and verifies with this project's code."""

from __future__ import annotations

import json

import pytest

from attest.errors import InvalidInput, SignatureError
from attest.intoto_classic import layout_keys, verify_metablock
from attest.keys import read_public_key
from tests.conftest import fixture_path

DEMO = ("in-toto-demo", "demo_files")


def functionaries():  # type: ignore[no-untyped-def]
    layout = json.loads(fixture_path(*DEMO, "demo.layout.template").read_text())
    return layout_keys(layout["signed"])


def test_layout_declares_the_legacy_keyids() -> None:
    keys = functionaries()
    assert sorted(k[:8] for k in keys) == ["2f89b927", "776a00e2"]
    assert all(k.keyid == kid for kid, k in keys.items())


@pytest.mark.parametrize(
    ("name", "step"),
    [("package.2f89b927.link", "package"), ("write-code.776a00e2.link", "write-code")],
)
def test_demo_links_verify(name: str, step: str) -> None:
    keys = functionaries()
    v = verify_metablock(fixture_path(*DEMO, name).read_bytes(), list(keys.values()))
    assert v.signed["name"] == step
    assert v.signed_by[0].keyid == name.split(".")[1] + v.signed_by[0].keyid[8:]


def test_edited_link_fails() -> None:
    doc = json.loads(fixture_path(*DEMO, "package.2f89b927.link").read_text())
    first = next(iter(doc["signed"]["products"]))
    doc["signed"]["products"][first]["sha256"] = "0" * 64
    with pytest.raises(SignatureError):
        verify_metablock(json.dumps(doc).encode(), list(functionaries().values()))


def test_signed_layout_verifies_with_alice_only() -> None:
    raw = fixture_path("in-toto-demo", "generated-by-reference-tool", "root.layout").read_bytes()
    v = verify_metablock(raw, [read_public_key(fixture_path(*DEMO, "alice.pub"))])
    assert v.signed["_type"] == "layout"
    with pytest.raises(SignatureError):
        verify_metablock(raw, [read_public_key(fixture_path(*DEMO, "bob.pub"))])


def test_not_a_metablock() -> None:
    with pytest.raises(InvalidInput):
        verify_metablock(b'{"payload": "x"}', [])
