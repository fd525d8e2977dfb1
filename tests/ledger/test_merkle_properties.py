"""Property tests: for random trees every proof verifies, and any flipped bit is caught."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.errors import IntegrityError, ProofError
from ledger.tiles import TileBuilder, TileCache, TileTree, edge_tile_keys, integrate


def leaves(n: int) -> list[bytes]:
    return [merkle.hash_leaf(hashlib.sha256(i.to_bytes(8, "big")).digest()) for i in range(n)]


def flip(b: bytes, bit: int) -> bytes:
    i, m = divmod(bit % (len(b) * 8), 8)
    return b[:i] + bytes([b[i] ^ (1 << m)]) + b[i + 1 :]


@settings(max_examples=150, deadline=None)
@given(size=st.integers(1, 600), data=st.data())
def test_inclusion_round_trip_and_bit_flips(size: int, data: st.DataObject) -> None:
    hs = leaves(size)
    root = merkle.root(hs)
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, hs)
    merkle.verify_inclusion(hs[index], index, size, proof, root)
    bit = data.draw(st.integers(0, 255))
    with pytest.raises(ProofError):
        merkle.verify_inclusion(flip(hs[index], bit), index, size, proof, root)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(hs[index], index, size, proof, flip(root, bit))
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:k], flip(proof[k], bit), *proof[k + 1 :]]
        with pytest.raises(ProofError):
            merkle.verify_inclusion(hs[index], index, size, bad, root)
        with pytest.raises(ProofError):
            merkle.verify_inclusion(hs[index], index, size, proof[:-1], root)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(hs[index], index, size, [*proof, root], root)


@settings(max_examples=150, deadline=None)
@given(size2=st.integers(1, 600), data=st.data())
def test_consistency_round_trip_and_bit_flips(size2: int, data: st.DataObject) -> None:
    hs = leaves(size2)
    size1 = data.draw(st.integers(1, size2))
    r1, r2 = merkle.root(hs[:size1]), merkle.root(hs)
    proof = merkle.consistency_proof(size1, hs)
    merkle.verify_consistency(size1, size2, proof, r1, r2)
    bit = data.draw(st.integers(0, 255))
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, proof, flip(r1, bit), r2)
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, proof, r1, flip(r2, bit))
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:k], flip(proof[k], bit), *proof[k + 1 :]]
        with pytest.raises(ProofError):
            merkle.verify_consistency(size1, size2, bad, r1, r2)


@settings(max_examples=40, deadline=None)
@given(batches=st.lists(st.integers(1, 700), min_size=1, max_size=6), data=st.data())
def test_tiles_answer_like_the_in_memory_tree(batches: list[int], data: st.DataObject) -> None:
    """Integrating in arbitrary batches gives the same root and proofs as the plain tree."""
    store: dict[tuple[int, int], bytes] = {}
    all_leaves: list[bytes] = []
    cache = TileCache()
    for n in batches:
        new = leaves(len(all_leaves) + n)[len(all_leaves) :]
        size = len(all_leaves)
        edges = {lv: store[k] for lv, k in edge_tile_keys(size).items()}
        store.update(integrate(size, edges, new))
        all_leaves += new
        tree = TileTree(len(all_leaves), lambda ks: {k: store[k] for k in ks if k in store}, cache)
        assert tree.root() == merkle.root(all_leaves)
    size = len(all_leaves)
    i = data.draw(st.integers(0, size - 1))
    s1 = data.draw(st.integers(1, size))
    assert tree.inclusion_proof(i) == merkle.inclusion_proof(i, all_leaves)
    assert tree.consistency_proof(s1) == merkle.consistency_proof(s1, all_leaves)
    assert tree.leaf_hashes([i]) == [all_leaves[i]]
    got_leaves, got_proofs = tree.leaves_and_proofs([i, 0])
    assert got_leaves == [all_leaves[i], all_leaves[0]]
    assert got_proofs == [
        merkle.inclusion_proof(i, all_leaves),
        merkle.inclusion_proof(0, all_leaves),
    ]


@settings(max_examples=30, deadline=None)
@given(total=st.integers(1, 1500), data=st.data())
def test_many_proofs_at_an_older_size_match_the_in_memory_tree(
    total: int, data: st.DataObject
) -> None:
    """A page's proofs (many leaves, one fetch, shared and right-edge nodes once) against a tree
    smaller than the tiles stored now (an older checkpoint, tiles grown since) are the plain
    tree's proofs at that size."""
    all_leaves = leaves(total)
    builder = TileBuilder()
    builder.extend(all_leaves)
    size = data.draw(st.integers(1, total))
    wanted = data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=40))
    fetched: list[int] = []

    def fetch(keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        fetched.append(len(keys))
        return {k: builder.tiles[k] for k in keys if k in builder.tiles}

    tree = TileTree(size, fetch, TileCache())
    got_leaves, got_proofs = tree.leaves_and_proofs(wanted)
    assert got_leaves == [all_leaves[i] for i in wanted]
    assert got_proofs == [merkle.inclusion_proof(i, all_leaves[:size]) for i in wanted]
    assert len(fetched) == 1  # one read for the whole page


def test_index_outside_tree_is_refused() -> None:
    with pytest.raises(ProofError):
        merkle.inclusion_ranges(5, 5)
    with pytest.raises(ProofError):
        merkle.consistency_ranges(6, 5)


def _rfc_path(m: int, start: int, end: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.3.1 PATH, written as the RFC's recursion (the oracle for the fast version)."""
    n = end - start
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*_rfc_path(m, start, start + k), (start + k, end)]
    return [*_rfc_path(m - k, start + k, end), (start, start + k)]


def _rfc_subproof(m: int, start: int, end: int, complete: bool) -> list[tuple[int, int]]:
    n = end - start
    if m == n:
        return [] if complete else [(start, end)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*_rfc_subproof(m, start, start + k, complete), (start + k, end)]
    return [*_rfc_subproof(m - k, start + k, end, False), (start, start + k)]


def test_proof_shapes_match_the_rfc_recursion() -> None:
    for size in range(1, 140):
        for i in range(size):
            assert merkle.inclusion_ranges(i, size) == _rfc_path(i, 0, size), (i, size)
        for s1 in range(1, size + 1):
            assert merkle.consistency_ranges(s1, size) == _rfc_subproof(s1, 0, size, True), (
                s1,
                size,
            )


@functools.cache
def _big_tree() -> tuple[list[bytes], dict[tuple[int, int], bytes]]:
    """70,000 leaves: three tile levels. Tiles of a smaller tree are prefixes of these."""
    hs = leaves(70_000)
    built = TileBuilder()
    built.extend(hs)
    return hs, built.tiles


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 70_000), data=st.data())
def test_a_proof_reads_at_most_two_tiles_per_level_in_one_fetch(
    size: int, data: st.DataObject
) -> None:
    """O(log n) reads: per tile level the leaf's tile and the right edge's, in a single fetch."""
    hs, tiles = _big_tree()
    calls: list[list[tuple[int, int]]] = []

    def fetch(keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        calls.append(list(keys))
        return {k: tiles[k] for k in keys}

    i = data.draw(st.integers(0, size - 1))
    s1 = data.draw(st.integers(1, size))
    root = merkle.root(hs[:size])
    tree = TileTree(size, fetch, TileCache())
    merkle.verify_inclusion(hs[i], i, size, tree.inclusion_proof(i), root)
    assert len(calls) == (size > 1)  # one fetch for the first proof: nothing is cached yet
    merkle.verify_consistency(s1, size, tree.consistency_proof(s1), merkle.root(hs[:s1]), root)
    assert (
        len(calls) <= 2
    )  # at most one more: tiles cached at the width this size needs are not read
    for keys in calls:
        levels = [level for level, _ in keys]
        assert all(levels.count(lv) <= 2 for lv in levels)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 700), data=st.data())
def test_proofs_of_a_batch_just_appended_are_the_rfc_proofs(size: int, data: st.DataObject) -> None:
    """The writer's one-pass proofs for the last ``count`` leaves (``TileTree.proofs_of_last``,
    ``batch_proofs`` with duplicates anywhere before them) equal the RFC 9162 proofs, and read
    only tiles the tree has; odd and even batch starts, batches across tile edges included."""
    from ledger.tiles import batch_proofs

    hs = leaves(size)
    count = data.draw(st.integers(1, min(size, 300)))
    built = TileBuilder()
    built.extend(hs)
    tree = TileTree(size, lambda keys: {k: built.tiles[k] for k in keys}, TileCache())
    start = size - count
    assert tree.proofs_of_last(hs[start:]) == [
        merkle.inclusion_proof(i, hs) for i in range(start, size)
    ]
    dups = data.draw(st.lists(st.integers(0, size - 1), max_size=5))
    indices = [*dups, *range(start, size)]
    got_leaves, got_proofs = batch_proofs(tree, indices, hs[start:])
    assert got_leaves == [hs[i] for i in indices]
    assert got_proofs == [merkle.inclusion_proof(i, hs) for i in indices]
    merkle.verify_inclusions(got_leaves, indices, size, got_proofs, merkle.root(hs))


def test_proofs_of_last_refuses_more_leaves_than_the_tree_holds() -> None:
    tree = TileTree(2, lambda keys: {}, TileCache())
    with pytest.raises(IntegrityError, match="do not fit"):
        tree.proofs_of_last(leaves(3))


def _one_by_one(
    leaves_: Sequence[bytes],
    indices: Sequence[int],
    size: int,
    proofs: list[list[bytes]],
    root: bytes,
) -> bool:
    try:
        for leaf, i, proof in zip(leaves_, indices, proofs, strict=True):
            merkle.verify_inclusion(leaf, i, size, proof, root)
    except ProofError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_batch_verification_accepts_exactly_what_rfc_verification_accepts(
    size: int, data: st.DataObject
) -> None:
    """``verify_inclusions`` (level by level, shared nodes hashed once) accepts a batch exactly
    when every proof passes RFC 9162's ``verify_inclusion``: runs of neighbours, scattered
    indices and repeats, each with one thing broken — a proof element flipped, dropped, added or
    swapped with its neighbour's, a leaf flipped or swapped, an index moved, a wrong root."""
    hs = leaves(size)
    root = merkle.root(hs)
    start = data.draw(st.integers(0, size - 1))
    run = list(range(start, data.draw(st.integers(start + 1, size))))
    scattered = data.draw(st.lists(st.integers(0, size - 1), max_size=6))
    indices = data.draw(st.permutations([*run, *scattered]))
    got = [hs[i] for i in indices]
    proofs = [merkle.inclusion_proof(i, hs) for i in indices]
    merkle.verify_inclusions(got, indices, size, proofs, root)
    k = data.draw(st.integers(0, len(indices) - 1))
    bit = data.draw(st.integers(0, 255))
    how = data.draw(
        st.sampled_from(["flip", "drop", "add", "swap_proof", "leaf", "swap_leaf", "index", "root"])
    )
    leaves_, idx, bad, r = list(got), list(indices), [list(p) for p in proofs], root
    if how == "flip" and bad[k]:
        e = data.draw(st.integers(0, len(bad[k]) - 1))
        bad[k][e] = flip(bad[k][e], bit)
    elif how == "drop" and bad[k]:
        bad[k].pop(data.draw(st.integers(0, len(bad[k]) - 1)))
    elif how == "add":
        bad[k].insert(data.draw(st.integers(0, len(bad[k]))), hs[bit % size])
    elif how == "swap_proof" and len(idx) > 1:
        other = (k + 1) % len(idx)
        bad[k], bad[other] = bad[other], bad[k]
    elif how == "leaf":
        leaves_[k] = flip(leaves_[k], bit)
    elif how == "swap_leaf" and len(idx) > 1:
        other = (k + 1) % len(idx)
        leaves_[k], leaves_[other] = leaves_[other], leaves_[k]
    elif how == "index":
        idx[k] = bit % size
    elif how == "root":
        r = flip(root, bit)
    expected = _one_by_one(leaves_, idx, size, bad, r)
    if expected:
        merkle.verify_inclusions(leaves_, idx, size, bad, r)
    else:
        with pytest.raises(ProofError):
            merkle.verify_inclusions(leaves_, idx, size, bad, r)


def test_batch_verification_refuses_malformed_elements_and_counts() -> None:
    hs = leaves(10)
    root = merkle.root(hs)
    proofs = [merkle.inclusion_proof(i, hs) for i in range(10)]
    merkle.verify_inclusions(hs, list(range(10)), 10, proofs, root)
    short = [list(p) for p in proofs]
    short[4][0] = short[4][0][:31]
    with pytest.raises(ProofError):
        merkle.verify_inclusions(hs, list(range(10)), 10, short, root)
    with pytest.raises(ProofError, match="differ in number"):
        merkle.verify_inclusions(hs[:9], list(range(10)), 10, proofs, root)
    with pytest.raises(ProofError, match="not in a tree"):
        merkle.verify_inclusions(hs, [*range(9), 10], 10, proofs, root)
    with pytest.raises(ProofError, match="32 bytes"):
        merkle.verify_inclusions([*hs[:9], hs[9][:31]], list(range(10)), 10, proofs, root)
    for k in (1, 2):  # a proof longer or shorter than the tree is deep, not the first one
        apart = [proofs[0], proofs[5], proofs[9]]
        apart[k] = [*apart[k], hs[0]]
        with pytest.raises(ProofError, match=r"longer|agree"):
            merkle.verify_inclusions([hs[0], hs[5], hs[9]], [0, 5, 9], 10, apart, root)
        apart[k] = apart[k][:-2]
        with pytest.raises(ProofError):
            merkle.verify_inclusions([hs[0], hs[5], hs[9]], [0, 5, 9], 10, apart, root)


@settings(max_examples=100, deadline=None)
@given(widths=st.lists(st.integers(1, 256), min_size=1, max_size=6), data=st.data())
def test_stored_levels_equal_fresh_levels_of_the_bytes_read(
    widths: list[int], data: st.DataObject
) -> None:
    """The head check's ``StoredLevels`` hashes only what a tile gained since its remembered
    beginning, and gives exactly the levels a fresh cache computes from the bytes it is handed —
    also when a remembered entry was changed, the tile shrank, or another tile was read between."""
    from ledger.tiles import StoredLevels

    hs = leaves(256)
    stored = StoredLevels()
    assert stored.cached((0, 0), 256) is None
    for width in widths:
        blob = b"".join(hs[:width])
        if data.draw(st.booleans()):  # a changed entry somewhere: never served from memory
            hs[data.draw(st.integers(0, width - 1))] = hashlib.sha256(blob).digest()
            blob = b"".join(hs[:width])
        if data.draw(st.booleans()):
            stored.levels((1, 0), b"".join(leaves(3)))
        assert stored.levels((0, 0), blob) == TileCache().levels((0, 0), blob)
        assert stored.cached((0, 0), width) is None
