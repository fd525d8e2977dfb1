"""The Merkle tree kept in tiles, as C2SP tlog-tiles lays it out, and proofs read from them.

A tile at tile level ``L`` and index ``i`` holds up to 256 consecutive node hashes of tree level
``8·L``: level-0 tiles hold leaf hashes, and entry ``e`` of level ``L+1`` is the root of the full
tile ``(L, e)``. Any complete subtree is then the root of a run of 2^k entries inside one tile, so a
proof touches at most two tiles per tile level (the leaf's and the right edge's): O(log n)
stored rows, never O(n) leaves.

This module is pure: :func:`integrate` turns the right-edge tiles plus new leaf hashes into the
tiles to write, and :class:`TileTree` answers roots and proofs from tiles a caller fetches.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ledger.errors import IntegrityError
from ledger.merkle import EMPTY_ROOT, HASH_SIZE, consistency_ranges, hash_children, inclusion_ranges

__all__ = [
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "StoredLevels",
    "TileBuilder",
    "TileCache",
    "TileKey",
    "TileTree",
    "batch_proofs",
    "edge_tile_keys",
    "integrate",
    "perfect_root",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE

TileKey = tuple[int, int]  # (tile level, tile index)
TileFetcher = Callable[[Sequence[TileKey]], Mapping[TileKey, bytes]]


def _split_hashes(blob: bytes) -> list[bytes]:
    return [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree whose 2^k bottom hashes are given left to right."""
    level = list(hashes)
    while len(level) > 1:
        level = [hash_children(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def edge_tile_keys(size: int) -> dict[int, TileKey]:
    """For a tree of ``size`` leaves, the partially filled right-edge tile at each tile level."""
    out: dict[int, TileKey] = {}
    level, count = 0, size
    while count:
        if count % TILE_WIDTH:
            out[level] = (level, count // TILE_WIDTH)
        level, count = level + 1, count // TILE_WIDTH
    return out


def integrate(
    size: int, edges: Mapping[int, bytes], leaf_hashes: Sequence[bytes]
) -> dict[TileKey, bytes]:
    """Append ``leaf_hashes`` to a tree of ``size`` leaves; return every tile that changes.

    ``edges`` maps tile level to the current content of that level's partial right-edge tile
    (see :func:`edge_tile_keys`). Returned tiles hold their whole new content.
    """
    changed: dict[TileKey, bytes] = {}
    new, level, count = list(leaf_hashes), 0, size
    while new:
        index = count // TILE_WIDTH
        buf = bytearray(edges.get(level, b""))
        if len(buf) != (count % TILE_WIDTH) * HASH_SIZE:
            raise IntegrityError(
                f"edge tile at level {level} has {len(buf)} bytes, tree size says otherwise"
            )
        promoted: list[bytes] = []
        for h in new:
            buf += h
            if len(buf) == FULL_TILE_BYTES:
                changed[(level, index)] = bytes(buf)
                promoted.append(perfect_root(_split_hashes(bytes(buf))))
                index, buf = index + 1, bytearray()
        if buf:
            changed[(level, index)] = bytes(buf)
        new, level, count = promoted, level + 1, count // TILE_WIDTH
    return changed


class TileBuilder:
    """Every tile of a tree grown in memory from leaf hashes in order (``ledger check``, tools)."""

    def __init__(self) -> None:
        self.size = 0
        self.tiles: dict[TileKey, bytes] = {}
        self._edges: dict[int, bytes] = {}

    def extend(self, leaf_hashes: Sequence[bytes]) -> None:
        changed = integrate(self.size, self._edges, leaf_hashes)
        self.tiles.update(changed)
        self.size += len(leaf_hashes)
        for (level, _), blob in changed.items():  # per level, the last changed tile is the edge
            self._edges[level] = blob if len(blob) < FULL_TILE_BYTES else b""


class TileCache:
    r"""Interior levels of tiles, keyed by tile *and width* (bounded LRU).

    A tile only ever grows — the database refuses any other change — so once committed, a tile's
    content at a given width never changes, and neither do its levels. Only committed tiles may
    enter: a writer computes in a :meth:`scratch` cache and :meth:`absorb`\ s it after commit.
    """

    def __init__(self, capacity: int = 4096, parent: TileCache | None = None) -> None:
        self._capacity = capacity
        self._parent = parent
        self._levels: OrderedDict[tuple[TileKey, int], list[list[bytes]]] = OrderedDict()

    def scratch(self) -> TileCache:
        """A cache that reads through this one but keeps what it computes to itself."""
        return TileCache(self._capacity, parent=self)

    def absorb(self, other: TileCache) -> None:
        """Take what ``other`` computed (call only once its tiles are committed)."""
        for k, v in other._levels.items():
            self._put(k, v)

    def _put(self, k: tuple[TileKey, int], levels: list[list[bytes]]) -> None:
        self._levels[k] = levels
        self._levels.move_to_end(k)
        if len(self._levels) > self._capacity:
            self._levels.popitem(last=False)

    def hold(self, key: TileKey, levels: list[list[bytes]]) -> None:
        """Keep ``levels``, computed elsewhere (:class:`StoredLevels`), as tile ``key``'s at the
        width of their bottom level."""
        self._put((key, len(levels[0])), levels)

    def cached(self, key: TileKey, width: int) -> list[list[bytes]] | None:
        """The levels of ``key`` at ``width`` if this cache (or its parent) holds them."""
        hit = self._levels.get((key, width))
        if hit is not None:
            self._levels.move_to_end((key, width))
            return hit
        return self._parent.cached(key, width) if self._parent is not None else None

    def levels(self, key: TileKey, blob: bytes) -> list[list[bytes]]:
        k = (key, len(blob) // HASH_SIZE)
        hit = self._levels.get(k)
        if hit is not None:
            self._levels.move_to_end(k)
            return hit
        if self._parent is not None and (hit := self._parent._levels.get(k)) is not None:
            return hit
        levels = [_split_hashes(blob)]
        while len(levels[-1]) > 1:  # an odd last entry has no parent inside this tile yet
            prev = levels[-1]
            levels.append([hash_children(prev[i], prev[i + 1]) for i in range(0, len(prev) - 1, 2)])
        self._put(k, levels)
        return levels


class StoredLevels(TileCache):
    """Levels of tiles exactly as they are stored now, for the writer's head check
    (:func:`~ledger.writer_checks.check_head_is_signed`): it never stands in for a tile
    (:meth:`cached` is always ``None``, so every tile is read from the database), but remembers,
    per tile, the last bytes it hashed and their levels. A tile read again whose bytes begin
    with those bytes (compared in full) has only its new entries hashed: the right-edge tiles a
    writer reads every batch grow by the batch's leaves. Anything else is hashed afresh."""

    _KEEP = 64  # tiles remembered (a head check reads one per level)

    def __init__(self) -> None:
        super().__init__(capacity=0)
        self._last: dict[TileKey, tuple[bytes, list[list[bytes]]]] = {}

    def cached(self, key: TileKey, width: int) -> list[list[bytes]] | None:
        return None

    def levels(self, key: TileKey, blob: bytes) -> list[list[bytes]]:
        prior = self._last.get(key)
        old = prior[1] if prior is not None and blob.startswith(prior[0]) else [[]]
        levels = [old[0] + _split_hashes(blob[len(old[0]) * HASH_SIZE :])]
        while len(levels[-1]) > 1:
            below, r = levels[-1], len(levels)
            kept = old[r] if r < len(old) else []  # parents of an unchanged prefix: unchanged
            levels.append(
                kept
                + [
                    hash_children(below[i], below[i + 1])
                    for i in range(2 * len(kept), len(below) - 1, 2)
                ]
            )
        if len(self._last) >= self._KEEP:
            self._last = {}
        self._last[key] = (bytes(blob), levels)
        return levels


Node = tuple[int, int]  # a perfect subtree: (height, index at that height)


def _complete_nodes(start: int, end: int) -> list[Node]:
    """Split ``[start, end)`` into maximal perfect subtrees ``(height, index)``, left to right."""
    out: list[Node] = []
    while start < end:
        height = (start & -start).bit_length() - 1 if start else 64
        while start + (1 << height) > end:
            height -= 1
        out.append((height, start >> height))
        start += 1 << height
    return out


def _node_tile(height: int, index: int) -> tuple[TileKey, int, int]:
    """Where a complete node's bottom entries live: tile, first entry, and height inside it."""
    level, k = divmod(height, TILE_HEIGHT)
    first = index << k
    return (level, first // TILE_WIDTH), first % TILE_WIDTH, k


@dataclass
class TileTree:
    """Roots and proofs of the tree of ``size`` leaves, read from tiles through ``fetch``.

    Each call gathers every tile it needs and asks ``fetch`` for all of them at once.
    """

    size: int
    fetch: TileFetcher
    cache: TileCache

    def _hashes(self, ranges: Iterable[tuple[int, int]]) -> list[bytes]:
        ranges = list(ranges)
        for _, end in ranges:
            if end > self.size:
                raise IntegrityError(f"range ends at {end}, beyond tree size {self.size}")
        plan = [_complete_nodes(a, b) for a, b in ranges]
        levels = self._levels({_node_tile(h, i)[0] for nodes in plan for h, i in nodes})
        return [self._fold(levels, nodes) for nodes in plan]

    def _levels(self, wanted: Iterable[TileKey]) -> dict[TileKey, list[list[bytes]]]:
        """The levels of every tile in ``wanted``: from the cache, the rest in one fetch."""
        keys = sorted(wanted)
        # A committed tile never changes at a given width, and the width this tree needs of
        # each tile follows from its size: a tile cached at that width is not read again.
        levels: dict[TileKey, list[list[bytes]]] = {}
        for key in keys:
            hit = self.cache.cached(key, self._width(key))
            if hit is not None:
                levels[key] = hit
        missing = [key for key in keys if key not in levels]
        if missing:
            tiles = self.fetch(missing)
            levels.update({key: self.cache.levels(key, blob) for key, blob in tiles.items()})
        return levels

    def _fold(self, levels: Mapping[TileKey, list[list[bytes]]], nodes: list[Node]) -> bytes:
        """The hash of the range that ``nodes`` (its maximal perfect subtrees) cover."""
        hashes = [self._node(levels, h, i) for h, i in nodes]
        acc = hashes[-1]
        for left in reversed(hashes[:-1]):
            acc = hash_children(left, acc)
        return acc

    def _width(self, key: TileKey) -> int:
        """How many entries of tile ``key`` the tree of ``self.size`` leaves has."""
        level, idx = key
        return max(0, min(TILE_WIDTH, (self.size >> (TILE_HEIGHT * level)) - idx * TILE_WIDTH))

    @staticmethod
    def _node(levels: Mapping[TileKey, list[list[bytes]]], height: int, index: int) -> bytes:
        key, first, k = _node_tile(height, index)
        tile = levels.get(key)
        if tile is None or k >= len(tile) or (first >> k) >= len(tile[k]):
            raise IntegrityError(f"tile {key} is missing or too short for node ({height}, {index})")
        return tile[k][first >> k]

    def root(self) -> bytes:
        if self.size == 0:
            return EMPTY_ROOT
        return self._hashes([(0, self.size)])[0]

    def leaf_hashes(self, indices: Sequence[int]) -> list[bytes]:
        return self._hashes([(i, i + 1) for i in indices])

    def inclusion_proof(self, index: int) -> list[bytes]:
        return self._hashes(inclusion_ranges(index, self.size))

    def consistency_proof(self, size1: int) -> list[bytes]:
        return self._hashes(consistency_ranges(size1, self.size))

    def leaves_and_proofs(self, indices: Sequence[int]) -> tuple[list[bytes], list[list[bytes]]]:
        """Leaf hashes and inclusion proofs for many leaves with one fetch, shared nodes once.

        A proof (RFC 9162 §2.1.3.1, deepest first) takes at each height the sibling of the
        leaf's path node: a perfect subtree, read straight from the tile the path crosses at
        that tile level; a sibling cut by the tree's right edge (the same few for every leaf),
        folded once from its perfect parts; none where the sibling starts past the tree."""
        size = self.size
        for i in indices:
            if not 0 <= i < size:
                inclusion_ranges(i, size)  # refuses it, as one proof would
        height = (size - 1).bit_length()
        tile_levels = range(max(1, -(-height // TILE_HEIGHT)))  # the leaf's tile, and up
        keys = {(lv, i >> (TILE_HEIGHT * (lv + 1))) for i in indices for lv in tile_levels}
        edges: dict[int, list[Node]] = {}
        for i in indices:
            for h in range(height):
                start = ((i >> h) ^ 1) << h
                if start < size < start + (1 << h) and start not in edges:
                    edges[start] = _complete_nodes(start, size)
        keys.update(_node_tile(h, k)[0] for parts in edges.values() for h, k in parts)
        levels = self._levels(keys)
        edge = {start: self._fold(levels, parts) for start, parts in edges.items()}
        hashes, proofs = [], []
        path: list[bytes | None] = [None] * height  # the sibling at each height, if any
        prev = None
        for i in indices:
            # Above the height where i and the previous leaf part, their siblings are the same.
            part = height if prev is None else min(height, (i ^ prev).bit_length())
            for h in range(part):
                sib = (i >> h) ^ 1
                start = sib << h
                if start >= size:
                    path[h] = None
                elif start + (1 << h) > size:
                    path[h] = edge[start]
                else:
                    level, r = divmod(h, TILE_HEIGHT)
                    key = (level, i >> (TILE_HEIGHT * (level + 1)))
                    path[h] = self._entry(levels, key, r, sib)
            hashes.append(self._entry(levels, (0, i >> TILE_HEIGHT), 0, i))
            proofs.append([x for x in path if x is not None])
            prev = i
        return hashes, proofs

    @staticmethod
    def _entry(
        levels: Mapping[TileKey, list[list[bytes]]], key: TileKey, r: int, node: int
    ) -> bytes:
        """Node ``node`` of height ``r`` inside tile ``key`` (which holds it)."""
        tile = levels.get(key)
        pos = node & ((TILE_WIDTH >> r) - 1)
        if tile is None or r >= len(tile) or pos >= len(tile[r]):
            raise IntegrityError(f"tile {key} is missing or too short for node ({r}, {node})")
        return tile[r][pos]

    def proofs_of_last(self, leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
        """Inclusion proofs for the last ``len(leaf_hashes)`` leaves of the tree, whose hashes are
        given: a batch just appended. The tree above them is computed once, level by level, from
        those hashes and at most one stored node per level (the complete subtree left of the
        batch where the batch starts at an odd position), instead of path by path; each proof is
        its leaf's sibling followed by its parent's proof, so shared upper parts are built once.
        The same hashes as :meth:`leaves_and_proofs` (RFC 9162 §2.1.3.1): at level ``h`` a node
        contributes its sibling ``j ^ 1`` when that sibling has any leaf below the tree's size."""
        n, count = self.size, len(leaf_hashes)
        if not count:
            return []
        start = n - count
        if start < 0:
            raise IntegrityError(f"{count} leaves do not fit a tree of size {n}")
        # Which stored left nodes the levels need: one where a level's first node is odd.
        need: list[tuple[int, int]] = []
        s, h = start, 0
        while (n - 1) >> h:
            if s & 1:
                need.append((h, s - 1))
                s -= 1
            s, h = s >> 1, h + 1
        stored = dict(
            zip(need, self._hashes([(j << h, (j + 1) << h) for h, j in need]), strict=True)
        )
        sha256 = hashlib.sha256  # hash_children, inline
        levels: list[tuple[int, list[bytes]]] = []  # (first node index, nodes to the edge)
        s, nodes, h = start, list(leaf_hashes), 0
        while True:
            if (h, s - 1) in stored:
                s, nodes = s - 1, [stored[(h, s - 1)], *nodes]
            levels.append((s, nodes))
            if not (n - 1) >> h:
                break
            pairs = range(0, len(nodes) - 1, 2)
            up = [sha256(b"\x01" + nodes[k] + nodes[k + 1]).digest() for k in pairs]
            if len(nodes) & 1:
                up.append(nodes[-1])  # a right-edge node with no right sibling carries up
            s, nodes, h = s >> 1, up, h + 1
        # Proof suffixes, top down: the proof of node j at level h from there to the root.
        above: list[list[bytes]] = [[]]
        for h in range(len(levels) - 2, -1, -1):
            s, nodes = levels[h]
            first, first_up = start >> h, start >> (h + 1)
            here: list[list[bytes]] = []
            for j in range(first, ((n - 1) >> h) + 1):
                k = (j ^ 1) - s
                up = above[(j >> 1) - first_up]
                here.append([nodes[k], *up] if k < len(nodes) else up)
            above = here
        return above


def batch_proofs(
    tree: TileTree, indices: Sequence[int], new_hashes: list[bytes]
) -> tuple[list[bytes], list[list[bytes]]]:
    """Leaf hashes and proofs of ``indices`` in ``tree``, whose last leaves are the batch's new
    records (``new_hashes``): theirs in one pass over the levels above them
    (:meth:`TileTree.proofs_of_last`), a duplicate's read from the tiles. The caller verifies
    every one against the checkpoint before any leaves the ledger."""
    start = tree.size - len(new_hashes)
    new_proofs = tree.proofs_of_last(new_hashes)
    old = [i for i in indices if i < start]
    old_leaves, old_proofs = tree.leaves_and_proofs(old) if old else ([], [])
    by_old = dict(zip(old, zip(old_leaves, old_proofs, strict=True), strict=True))
    leaves: list[bytes] = []
    proofs: list[list[bytes]] = []
    for i in indices:
        if i >= start:
            leaves.append(new_hashes[i - start])
            proofs.append(new_proofs[i - start])
        else:
            leaf, proof = by_old[i]
            leaves.append(leaf)
            proofs.append(proof)
    return leaves, proofs
