"""verify.layout against the in-toto reference verifier on the demo supply chain.

Every case runs both ``in_toto.verifylib.in_toto_verify`` (the reference, on a working copy in a
temporary directory) and :func:`verify.layout.verify_layout`, and asserts the same verdict: pass,
or the same in-toto error class. Fixtures are only read; variants are built in tmp dirs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from attest.errors import InvalidInput
from tests.conftest import FIXTURES, needs_fixtures
from verify.layout import LayoutError, LayoutSignatureError, verify_layout

DEMO = FIXTURES / "in-toto-demo"
pytestmark = needs_fixtures("in-toto-demo")

# the demo layout's inspection runs `python ./scripts/tar xfz foo.tar.gz`; upstream's helper is
# code and not part of the fixtures, so the test writes an equivalent one
TAR_HELPER = (
    "import sys, tarfile\nwith tarfile.open(sys.argv[2]) as t:\n    t.extractall(filter='data')\n"
)


def _sign(layout: dict[str, object] | Path, out: Path, *keys: str) -> Path:
    """Sign a layout as in-toto-sign does (classic metablock or DSSE), with demo private keys."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from in_toto.models.metadata import Metadata
    from securesystemslib.signer import CryptoSigner

    doc = json.loads(layout.read_bytes()) if isinstance(layout, Path) else layout
    metadata = Metadata.from_dict(doc)
    for name in keys:
        private = load_pem_private_key((DEMO / "demo_files" / name).read_bytes(), None)
        metadata.create_signature(CryptoSigner(private))  # type: ignore[arg-type]
    metadata.dump(str(out))
    return out


@pytest.fixture
def chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return demo_chain(tmp_path, monkeypatch)


def demo_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working copy of the demo supply chain with a freshly alice-signed layout."""
    work = tmp_path / "work"
    shutil.copytree(DEMO / "demo_files", work)
    (work / "scripts").mkdir()
    (work / "scripts" / "tar").write_text(TAR_HELPER)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    _sign(DEMO / "demo_files" / "demo.layout.template", work / "root.layout", "alice")
    return work


def _reference(work: Path, layout: Path, keys: list[str], link_dir: Path) -> str | None:
    """in_toto_verify's verdict: None or the exception class name."""
    from in_toto.models._signer import load_public_key_from_file
    from in_toto.models.metadata import Metadata
    from in_toto.verifylib import in_toto_verify

    key_dict = {}
    for name in keys:
        key = load_public_key_from_file(str(DEMO / "demo_files" / name))
        key_dict[key["keyid"]] = key
    cwd = Path.cwd()
    os.chdir(work)
    try:
        in_toto_verify(
            Metadata.load(str(layout)), key_dict, str(link_dir), persist_inspection_links=False
        )
    except Exception as e:  # the verdict under test
        return type(e).__name__
    finally:
        os.chdir(cwd)
    return None


def _ours(work: Path, layout: Path, keys: list[str], link_dir: Path, **kw: object) -> str | None:
    links = {p.name: p.read_bytes() for p in link_dir.glob("*.link")}
    pems = [(DEMO / "demo_files" / k).read_bytes() for k in keys]
    try:
        verify_layout(
            layout.read_bytes(),
            pems,
            links,
            at=datetime.now(UTC),
            inspect_in=work,
            **kw,  # type: ignore[arg-type]
        )
    except LayoutError as e:
        return e.code
    return None


def _both(work: Path, keys: list[str] = ["alice.pub"], link_dir: Path | None = None) -> str | None:  # noqa: B006
    link_dir = link_dir or work
    ref = _reference(work, work / "root.layout", keys, link_dir)
    ours = _ours(work, work / "root.layout", keys, link_dir)
    assert ours == ref
    return ours


def test_demo_chain_verifies_like_the_reference(chain: Path) -> None:
    assert _both(chain) is None


def test_double_signed_layout_needs_both_keys(chain: Path) -> None:
    _sign(DEMO / "demo_files" / "demo.layout.template", chain / "root.layout", "alice", "bob")
    assert _both(chain, ["alice.pub", "bob.pub"]) is None


def test_wrong_layout_key_fails_like_the_reference(chain: Path) -> None:
    assert _both(chain, ["bob.pub"]) == "SignatureVerificationError"
    with pytest.raises(LayoutSignatureError):
        verify_layout(
            (chain / "root.layout").read_bytes(),
            [(DEMO / "demo_files" / "carl.pub").read_bytes()],
            chain,
            at=datetime.now(UTC),
            inspect_in=chain,
        )


def test_edited_link_fails_like_the_reference(chain: Path) -> None:
    link = chain / "package.2f89b927.link"
    doc = json.loads(link.read_bytes())
    doc["signed"]["products"]["foo.tar.gz"]["sha256"] = "0" * 64
    link.write_text(json.dumps(doc))
    assert _both(chain) == "ThresholdVerificationError"


def test_missing_link_fails_like_the_reference(chain: Path) -> None:
    (chain / "write-code.776a00e2.link").unlink()
    assert _both(chain) == "LinkNotFoundError"


def test_empty_link_dir_fails_like_the_reference(chain: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-links"
    empty.mkdir()
    assert _both(chain, link_dir=empty) == "LinkNotFoundError"


def _other_tarball(path: Path) -> None:
    data = b"print('not the reviewed foo')\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("foo.py")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())


def test_swapped_product(chain: Path) -> None:
    """The reference passes a swapped foo.tar.gz (the demo layout has no DISALLOW rule); so do
    we, unless the artifact is named: then it must be what the package step made."""
    _other_tarball(chain / "foo.tar.gz")
    assert _both(chain) is None
    swapped = hashlib.sha256((chain / "foo.tar.gz").read_bytes()).hexdigest()
    code = _ours(
        chain, chain / "root.layout", ["alice.pub"], chain, artifacts={"foo.tar.gz": swapped}
    )
    assert code == "ProductMismatch"


def test_swapped_product_with_disallow_rule_fails_like_the_reference(chain: Path) -> None:
    template = json.loads((DEMO / "demo_files" / "demo.layout.template").read_bytes())
    template["signed"]["inspect"][0]["expected_materials"].append(["DISALLOW", "foo.tar.gz"])
    _sign(template, chain / "root.layout", "alice")
    assert _both(chain) is None
    _other_tarball(chain / "foo.tar.gz")
    assert _both(chain) == "RuleVerificationError"


def test_named_artifact_matches_the_last_step(chain: Path) -> None:
    good = hashlib.sha256((chain / "foo.tar.gz").read_bytes()).hexdigest()
    assert (
        _ours(chain, chain / "root.layout", ["alice.pub"], chain, artifacts={"foo.tar.gz": good})
        is None
    )
    code = _ours(chain, chain / "root.layout", ["alice.pub"], chain, artifacts={"bar.tar.gz": good})
    assert code == "ProductMismatch"


def test_verification_time_is_an_argument(chain: Path) -> None:
    """The reference-tool layout expires 2026-12-28T01:18:51Z: before it passes, at or after it
    fails, whatever today's date."""
    layout = (DEMO / "generated-by-reference-tool" / "root.layout").read_bytes()
    alice = [(DEMO / "demo_files" / "alice.pub").read_bytes()]
    expiry = datetime(2026, 12, 28, 1, 18, 51, tzinfo=UTC)
    verdict = verify_layout(
        layout, alice, chain, at=expiry - timedelta(seconds=1), inspect_in=chain
    )
    assert verdict.expires == expiry
    assert verdict.products["foo.tar.gz"]["sha256"].startswith("52947cb7")
    for at in (expiry, expiry + timedelta(days=400)):
        with pytest.raises(LayoutError) as e:
            verify_layout(layout, alice, chain, at=at, inspect_in=chain)
        assert e.value.code == "LayoutExpiredError"


def test_dsse_layout_and_links(chain: Path) -> None:
    """The reference tool's DSSE layout has no expires: it never expires, as under in-toto 3.1."""
    layout = (DEMO / "generated-by-reference-tool" / "root.dsse.layout").read_bytes()
    links = {p.name: p.read_bytes() for p in (DEMO / "demo_dsse_files").glob("*.link")}
    alice = [(DEMO / "demo_files" / "alice.pub").read_bytes()]
    verdict = verify_layout(
        layout, alice, links, at=datetime(2040, 1, 1, tzinfo=UTC), inspect_in=chain
    )
    assert verdict.expires is None
    assert verdict.steps == ("write-code", "package")
    with pytest.raises(LayoutSignatureError):
        verify_layout(
            layout,
            [(DEMO / "demo_files" / "bob.pub").read_bytes()],
            links,
            at=datetime.now(UTC),
            inspect_in=chain,
        )
    del links["write-code.776a00e2.link"]
    with pytest.raises(LayoutError) as e:
        verify_layout(layout, alice, links, at=datetime.now(UTC), inspect_in=chain)
    assert e.value.code == "LinkNotFoundError"


def test_dsse_variant_verifies_like_the_reference(chain: Path, tmp_path: Path) -> None:
    _sign(DEMO / "demo_dsse_files" / "demo.layout.template", chain / "root.layout", "alice")
    dsse_links = tmp_path / "dsse-links"
    shutil.copytree(DEMO / "demo_dsse_files", dsse_links)
    assert _both(chain, link_dir=dsse_links) is None
    assert _both(chain, ["carl.pub"], link_dir=dsse_links) == "SignatureVerificationError"


def test_inspections_run_only_where_told(chain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A layout with inspections and no directory to run them in fails closed: nothing runs."""
    assert not (chain / "foo.py").exists()
    monkeypatch.chdir(chain)
    with pytest.raises(InvalidInput, match="inspections"):
        verify_layout(
            (chain / "root.layout").read_bytes(),
            [(DEMO / "demo_files" / "alice.pub").read_bytes()],
            chain,
            at=datetime.now(UTC),
        )
    assert not (chain / "foo.py").exists()  # the untar inspection did not run


@pytest.mark.parametrize(
    ("layout", "keys", "message"),
    [
        (b"not json", [b"alice"], "not in-toto metadata"),
        (b'{"signed": {"_type": "layout"}, "signatures": []}', [b"alice"], "not in-toto metadata"),
        (b"{}", [b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"], "public key"),
        (b"{}", [], "at least one layout key"),
    ],
)
def test_bad_input_is_invalid_input(layout: bytes, keys: list[bytes], message: str) -> None:
    if keys == [b"alice"]:
        keys = [(DEMO / "demo_files" / "alice.pub").read_bytes()]
    with pytest.raises(InvalidInput, match=message):
        verify_layout(layout, keys, {}, at=datetime.now(UTC))


def test_naive_time_is_refused() -> None:
    with pytest.raises(InvalidInput, match="time zone"):
        verify_layout(b"{}", [b"k"], {}, at=datetime(2026, 1, 1))


def test_sublayouts_need_a_link_directory(chain: Path) -> None:
    """A step whose 'link' is a layout (signed by its functionary) is a sublayout: its own links
    live in a subdirectory, so links from memory fail closed rather than read the cwd."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from in_toto.models.metadata import Metadata
    from securesystemslib.signer import CryptoSigner, SSlibKey

    template = json.loads((DEMO / "demo_files" / "demo.layout.template").read_bytes())
    keyid = next(k for k in template["signed"]["keys"] if k.startswith("776a00e2"))
    bob = SSlibKey.from_dict(keyid, dict(template["signed"]["keys"][keyid]))  # legacy keyid
    sub = Metadata.from_dict(template)
    private = load_pem_private_key((DEMO / "demo_files" / "bob").read_bytes(), None)
    sub.create_signature(CryptoSigner(private, bob))  # type: ignore[arg-type]
    links = {p.name: p.read_bytes() for p in chain.glob("*.link")}
    links["write-code.776a00e2.link"] = json.dumps(sub.to_dict()).encode()
    with pytest.raises(InvalidInput, match="sublayout"):
        verify_layout(
            (chain / "root.layout").read_bytes(),
            [(DEMO / "demo_files" / "alice.pub").read_bytes()],
            links,
            at=datetime.now(UTC),
            inspect_in=chain,
        )


def test_two_layout_keys_claiming_one_keyid_are_refused(chain: Path) -> None:
    """bob's key in a securesystemslib JSON file that claims alice's keyid, required beside
    alice's: the two used to merge into one, so alice alone met "alice AND bob" (hostile round 2,
    high). Each required key must be distinct."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from verify.layout import layout_key

    alice = (DEMO / "demo_files" / "alice.pub").read_bytes()
    bob = load_pem_public_key((DEMO / "demo_files" / "bob.pub").read_bytes())
    pem = bob.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    claim = {
        "keytype": "rsa",
        "scheme": "rsassa-pss-sha256",
        "keyid": layout_key(alice)["keyid"],
        "keyval": {"public": pem},
    }
    with pytest.raises(InvalidInput, match="two layout keys have the keyid"):
        verify_layout(
            (chain / "root.layout").read_bytes(),
            [json.dumps(claim).encode(), alice],
            chain,
            at=datetime.now(UTC),
            inspect_in=chain,
        )
