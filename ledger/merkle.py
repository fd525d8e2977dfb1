"""RFC 9162 (RFC 6962) Merkle tree hashing, proof shapes and proof verification.

Pure functions over bytes and integers: no storage, no clock. Proof *generation* is split in two:
:func:`inclusion_ranges` / :func:`consistency_ranges` say which subtree hashes a proof consists of
(as leaf ranges ``[start, end)``), and a caller that holds the tree (in memory, or tiles in a
database) fills in the hashes. Every range is *aligned*: ``start`` is a multiple of the smallest
power of two not below ``end - start``, so it names one (possibly right-truncated) tree node.

Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 exactly and raises :class:`ProofError`; it
never returns a bool.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ledger.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "consistency_proof",
    "consistency_ranges",
    "hash_children",
    "hash_leaf",
    "inclusion_proof",
    "inclusion_ranges",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Range = tuple[int, int]


def hash_leaf(data: bytes) -> bytes:
    """``SHA-256(0x00 ‖ data)``: the hash of one leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 ‖ left ‖ right)``: the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes, computed with a stack of perfect subtrees (O(n), O(log n) memory)."""
    acc = CompactRange()
    for h in leaf_hashes:
        acc.append(h)
    return acc.root()


class CompactRange:
    """The perfect subtrees covering leaves ``[0, n)``: append in O(1) amortised, root in O(log n)."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def append(self, leaf_hash: bytes) -> None:
        node, height = leaf_hash, 0
        while self._stack and self._stack[-1][0] == height:
            node, height = hash_children(self._stack.pop()[1], node), height + 1
        self._stack.append((height, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        acc = self._stack[-1][1]
        for _, h in reversed(self._stack[:-1]):
            acc = hash_children(h, acc)
        return acc


def _check_size(index: int, size: int) -> None:
    if size < 0 or index < 0:
        raise ProofError("negative index or tree size")


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose hashes form PATH(index, D[0:size]), deepest first (RFC 9162 §2.1.3.1).

    Below level ``inner`` (where the paths to ``index`` and to the last leaf part) each level
    contributes the sibling of the path node, truncated at ``size``; above it, only the levels
    where the path turns right contribute, and their left siblings are always complete.
    """
    _check_size(index, size)
    if index >= size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    inner = (index ^ (size - 1)).bit_length()
    out: list[Range] = []
    for h in range(inner):
        sib = (index >> h) ^ 1
        out.append((sib << h, min((sib + 1) << h, size)))
    for h in range(inner, index.bit_length()):
        if (index >> h) & 1:
            sib = (index >> h) ^ 1
            out.append((sib << h, (sib + 1) << h))
    return out


def consistency_ranges(size1: int, size2: int) -> list[Range]:
    """The subtrees whose hashes form PROOF(size1, D[0:size2]) (RFC 9162 §2.1.4.1)."""
    _check_size(size1, size2)
    if size1 > size2:
        raise ProofError(f"size1 {size1} is larger than size2 {size2}")
    if size1 in (0, size2):
        return []
    out: list[Range] = []
    start, end, m, complete = 0, size2, size1, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        out.append((start, end))
    out.reverse()
    return out


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """An inclusion proof over an in-memory list of leaf hashes (for tests, import and tools)."""
    return [root(leaf_hashes[a:b]) for a, b in inclusion_ranges(index, len(leaf_hashes))]


def consistency_proof(size1: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """A consistency proof over an in-memory list of leaf hashes."""
    return [root(leaf_hashes[a:b]) for a, b in consistency_ranges(size1, len(leaf_hashes))]


def _check_hashes(proof: Sequence[bytes]) -> None:
    for i, p in enumerate(proof):
        if not isinstance(p, bytes | bytearray) or len(p) != HASH_SIZE:
            raise ProofError(f"proof element {i} is not a {HASH_SIZE}-byte hash")


def _fold(fn: int, sn: int, seed: bytes, proof: Sequence[bytes]) -> tuple[int, bytes]:
    """RFC 9162 §2.1.3.2 step 4: hash ``seed`` up the path, returning the final ``sn`` and root."""
    r = seed
    for p in proof:
        if sn == 0:
            raise ProofError("proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hash_children(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn, r


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: list[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` sits at ``index`` of the tree of ``tree_size`` with head ``root``.

    RFC 9162 §2.1.3.2. Raises :class:`ProofError` on any mismatch, including an index outside the
    tree, hashes of the wrong length and extra or missing proof elements.
    """
    if index < 0 or tree_size < 0 or index >= tree_size:
        raise ProofError(f"index {index} is not in a tree of size {tree_size}")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError("leaf hash is not 32 bytes")
    _check_hashes(proof)
    sn, computed = _fold(index, tree_size - 1, leaf_hash, proof)
    if sn != 0:
        raise ProofError("proof is shorter than the tree is deep")
    if computed != root:
        raise ProofError("computed root does not match the expected root")


def verify_inclusions(
    leaf_hashes: Sequence[bytes],
    indices: Sequence[int],
    tree_size: int,
    proofs: Sequence[Sequence[bytes]],
    root: bytes,
) -> None:
    """Check many inclusion proofs against one root, each shared hash computed once.

    Level by level, bottom up: every node some proof passes through holds its hash and its proof
    with the position of the element above it. A node whose sibling is in the batch too must
    name that sibling's hash as its proof element (and the sibling its hash), and the two proofs
    must agree on every element above; then the pair's parent is hashed once and carried on with
    one of the two (identical) remainders, so a run of neighbouring leaves costs about one hash
    per leaf instead of the tree's depth. A node whose sibling is outside the batch is hashed
    with its proof element; a right-edge node with no sibling carries up unchanged (RFC 9162
    §2.1.3.2's step, per node). At the top the one node left must be ``root`` with its proof
    used up. Each folded proof so reproduces the root exactly when RFC 9162's fold of it does;
    the first proof is also checked with :func:`verify_inclusion`, so the two algorithms check
    each other. Raises :class:`ProofError` if any proof fails.
    """
    if not len(leaf_hashes) == len(indices) == len(proofs):
        raise ProofError("leaf hashes, indices and proofs differ in number")
    if not indices:
        return
    verify_inclusion(leaf_hashes[0], indices[0], tree_size, list(proofs[0]), root)
    level = _leaf_level(leaf_hashes, indices, tree_size, proofs)
    top = tree_size - 1  # the last node's index at the current level
    while top:
        level, top = _level_up(level, top), top >> 1
    node, proof, at = level[0]
    if at != len(proof):
        raise ProofError("a proof is longer than the tree is deep")
    if node != root:
        raise ProofError("the proofs do not reproduce the expected root")


# A node some proof passes through -> (its hash, that proof, the position of the element above it)
_Level = dict[int, tuple[bytes, Sequence[bytes], int]]


def _leaf_level(
    leaf_hashes: Sequence[bytes],
    indices: Sequence[int],
    tree_size: int,
    proofs: Sequence[Sequence[bytes]],
) -> _Level:
    level: _Level = {}
    for leaf, index, proof in zip(leaf_hashes, indices, proofs, strict=True):
        if type(index) is not int or not 0 <= index < tree_size:
            raise ProofError(f"index {index} is not in a tree of size {tree_size}")
        if not isinstance(leaf, bytes | bytearray) or len(leaf) != HASH_SIZE:
            raise ProofError("leaf hash is not 32 bytes")
        seen = level.get(index)
        if seen is None:
            level[index] = (leaf, proof, 0)
        elif seen[0] != leaf or list(seen[1]) != list(proof):
            raise ProofError(f"two different leaves or proofs for index {index}")
    return level


def _level_up(level: _Level, top: int) -> _Level:
    """The nodes one level up from ``level``, whose last node (in the tree) is ``top``."""
    sha256 = hashlib.sha256  # hash_children, inline: this is every batch's hot loop
    up: _Level = {}
    nodes = sorted(level)
    k, count = 0, len(nodes)
    while k < count:
        j = nodes[k]
        node, proof, at = level[j]
        k += 1
        if j == top and not j & 1:  # a right-edge node with no sibling carries up
            up[j >> 1] = (node, proof, at)
            continue
        if at >= len(proof):
            raise ProofError(f"a proof through node {j} is shorter than the tree is deep")
        sibling = proof[at]
        if not isinstance(sibling, bytes | bytearray) or len(sibling) != HASH_SIZE:
            raise ProofError(f"proof element {at} is not a {HASH_SIZE}-byte hash")
        if j & 1:
            up[j >> 1] = (sha256(b"\x01" + sibling + node).digest(), proof, at + 1)
            continue
        if k < count and nodes[k] == j + 1:  # the right sibling is in the batch too
            right, rproof, rat = level[j + 1]
            if (
                sibling != right
                or rat >= len(rproof)
                or rproof[rat] != node
                or proof[at + 1 :] != rproof[rat + 1 :]
            ):
                raise ProofError(f"proofs through sibling nodes {j} and {j + 1} do not agree")
            k += 1
        up[j >> 1] = (sha256(b"\x01" + node + sibling).digest(), proof, at + 1)
    return up


def verify_consistency(  # noqa: PLR0912 - RFC 9162 2.1.4.2 step by step
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size1`` with head ``root1`` is a prefix of ``size2`` with ``root2``.

    RFC 9162 §2.1.4.2. Raises :class:`ProofError` on any mismatch.
    """
    if size1 < 0 or size2 < 0:
        raise ProofError("negative tree size")
    if size2 < size1:
        raise ProofError(f"size2 {size2} is smaller than size1 {size1}")
    if size1 == 0:
        # Every tree extends the empty one: such a "proof" proves nothing and is refused, as
        # transparency-dev/merkle does, so a caller cannot mistake it for a check.
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if size1 == size2:
        if proof:
            raise ProofError("sizes are equal but the proof is not empty")
        if root1 != root2:
            raise ProofError("sizes are equal but the roots differ")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    _check_hashes(proof)
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is the first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("proof is longer than the trees are deep")
        if fn & 1 or fn == sn:
            fr, sr = hash_children(c, fr), hash_children(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = hash_children(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("proof is shorter than the trees are deep")
    if fr != root1:
        raise ProofError("proof does not reproduce the first root")
    if sr != root2:
        raise ProofError("proof does not reproduce the second root")
