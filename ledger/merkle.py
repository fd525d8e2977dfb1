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
from collections.abc import Mapping, Sequence

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

    A proof is folded up its path until it reaches a subtree that an earlier proof already carried
    to ``root``; there the two must agree on the subtree's hash and on every proof hash above it
    (by collision resistance the fold would then reach ``root`` too). Proofs of neighbouring
    leaves, a batch's, so cost one or two hashes each instead of the tree's depth. The first proof
    is also checked with :func:`verify_inclusion` (RFC 9162 §2.1.3.2), so the two algorithms check
    each other. Raises :class:`ProofError` on the first proof that fails.
    """
    if not len(leaf_hashes) == len(indices) == len(proofs):
        raise ProofError("leaf hashes, indices and proofs differ in number")
    if indices:
        verify_inclusion(leaf_hashes[0], indices[0], tree_size, list(proofs[0]), root)
    # A verified path node: its hash, and the proof hashes from it up to the root.
    verified: dict[Range, tuple[bytes, list[bytes]]] = {(0, tree_size): (root, [])}
    for leaf, index, proof in zip(leaf_hashes, indices, proofs, strict=True):
        if index < 0 or index >= tree_size:
            raise ProofError(f"index {index} is not in a tree of size {tree_size}")
        if len(leaf) != HASH_SIZE:
            raise ProofError("leaf hash is not 32 bytes")
        path = list(proof)
        node, acc, step, trail = _fold_to_verified(leaf, index, tree_size, path, verified)
        known = verified.get(node)
        if known is None or known[0] != acc or path[step:] != known[1]:
            raise ProofError(f"the proof for index {index} does not reproduce the root")
        for at, node_hash, k in trail:
            verified[at] = (node_hash, path[k:])


def _fold_to_verified(
    leaf: bytes,
    index: int,
    tree_size: int,
    proof: list[bytes],
    verified: Mapping[Range, object],
) -> tuple[Range, bytes, int, list[tuple[Range, bytes, int]]]:
    """Fold ``proof`` from the leaf up until the node reached is in ``verified`` (or the proof
    ends): that node, its hash, the proof elements used, and each node passed with the index of
    the proof element above it."""
    inner = (index ^ (tree_size - 1)).bit_length()
    top = max(inner, index.bit_length())
    sha256 = hashlib.sha256
    lo, hi, acc, step, h = index, index + 1, leaf, 0, 0
    trail: list[tuple[Range, bytes, int]] = []
    while (lo, hi) not in verified and step < len(proof):
        while inner <= h < top and not (index >> h) & 1:
            h += 1  # above the split only right turns contribute
        if h >= top:
            break
        sibling = proof[step]
        if not isinstance(sibling, bytes | bytearray) or len(sibling) != HASH_SIZE:
            raise ProofError(f"proof element {step} is not a {HASH_SIZE}-byte hash")
        trail.append(((lo, hi), acc, step))
        sib = (index >> h) ^ 1
        if (index >> h) & 1:  # hash_children, inline: this is every batch's hot loop
            acc, lo = sha256(b"\x01" + sibling + acc).digest(), sib << h
        else:
            acc, hi = sha256(b"\x01" + acc + sibling).digest(), min((sib + 1) << h, tree_size)
        step, h = step + 1, h + 1
    return (lo, hi), acc, step, trail


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
