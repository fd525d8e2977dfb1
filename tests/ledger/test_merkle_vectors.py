"""Every RFC 6962 vector of transparency-dev/merkle gives its upstream verdict."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ledger import merkle
from ledger.errors import Error, ProofError
from tests.conftest import FIXTURES, fixture_cases, fixture_path

TRANSPARENCY_DEV = ("merkle-vectors", "transparency-dev-merkle")


def _b(x: str | None) -> bytes:
    return base64.b64decode(x) if x else b""


def _cases(kind: str) -> list[Any]:
    def files(vectors: Path) -> list[Path]:
        found = sorted((vectors / kind).rglob("*.json"))
        assert found, f"no {kind} vectors found"
        return found

    base = FIXTURES.joinpath(*TRANSPARENCY_DEV)
    return fixture_cases(TRANSPARENCY_DEV, files, ids=lambda p: str(p.relative_to(base)))


@pytest.mark.parametrize("path", _cases("inclusion"))
def test_inclusion_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    proof = [_b(p) for p in v["proof"] or []]
    args = (_b(v["leafHash"]), v["leafIdx"], v["treeSize"], proof, _b(v["root"]))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*args)
    else:
        assert merkle.verify_inclusion(*args) is None


@pytest.mark.parametrize("path", _cases("consistency"))
def test_consistency_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    proof = [_b(p) for p in v["proof"] or []]
    args = (v["size1"], v["size2"], proof, _b(v["root1"]), _b(v["root2"]))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*args)
    else:
        assert merkle.verify_consistency(*args) is None


def test_proof_error_is_under_the_one_root() -> None:
    assert issubclass(ProofError, Error)


def test_reference_tree_roots_and_nodes() -> None:
    ref = json.loads(fixture_path("merkle-vectors", "rfc6962-reference-tree.json").read_text())
    leaves = [merkle.hash_leaf(bytes.fromhex(h)) for h in ref["leaf_inputs_hex"]]
    roots = ref["root_hash_by_tree_size_hex"]
    assert len(roots) == 9
    for size, want in roots.items():
        assert merkle.root(leaves[: int(size)]).hex() == want
    level = leaves
    for want_level in ref["node_hashes_by_level_hex"]:
        assert [h.hex() for h in level] == want_level
        level = [merkle.hash_children(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]


def test_hasher_vectors() -> None:
    ref = json.loads(fixture_path("merkle-vectors", "rfc6962-reference-tree.json").read_text())
    for v in ref["hasher_vectors"]:
        if v["op"] == "empty_root":
            got = merkle.EMPTY_ROOT
        elif v["op"] == "hash_leaf":
            data = (
                v["input_ascii"].encode() if "input_ascii" in v else bytes.fromhex(v["input_hex"])
            )
            got = merkle.hash_leaf(data)
        else:
            got = merkle.hash_children(v["left_ascii"].encode(), v["right_ascii"].encode())
        assert got.hex() == v["want_hex"], v["desc"]
