"""A tlog-tiles client written from https://c2sp.org/tlog-tiles alone (hashlib, no ledger code):
it fetches the checkpoint, every entry bundle and tile, rebuilds the tree and checks the root."""

from __future__ import annotations

import base64
import hashlib

import httpx

from tests.ledger.api.server import Server, signed

WIDTH = 256


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash over already-hashed leaves (recursion on the largest 2^k)."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node(mth(hashes[:k]), mth(hashes[k:]))


def index_path(n: int) -> str:
    digits = f"{n:03d}"
    while len(digits) % 3:
        digits = "0" + digits
    parts = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join(["x" + p for p in parts[:-1]] + [parts[-1]])


def fetch(client: httpx.Client, path: str) -> httpx.Response:
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text)
    assert r.headers["content-type"] == "application/octet-stream"
    return r


def tile_path(prefix: str, n: int, width: int) -> str:
    return f"{prefix}/{index_path(n)}" + ("" if width == WIDTH else f".p/{width}")


def bundle_entries(data: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        size = int.from_bytes(data[i : i + 2], "big")
        out.append(data[i + 2 : i + 2 + size])
        i += 2 + size
    assert i == len(data)
    return out


def level_hashes(client: httpx.Client, level: int, count: int) -> list[bytes]:
    """All ``count`` hashes of tree level 8*level, tile by tile (full tiles immutable)."""
    out: list[bytes] = []
    for n in range(-(-count // WIDTH)):
        width = min(WIDTH, count - n * WIDTH)
        r = fetch(client, tile_path(f"/log/tile/{level}", n, width))
        cache = r.headers["cache-control"]
        assert ("immutable" in cache) == (width == WIDTH), cache
        assert len(r.content) == 32 * width
        out += [r.content[i : i + 32] for i in range(0, len(r.content), 32)]
    return out


def test_a_spec_only_client_rebuilds_the_tree_from_tiles(
    server: Server, tokens: dict[str, str]
) -> None:
    bodies = signed(300)
    r = server.post(
        "/api/v1/entries:batch",
        tokens["append"],
        json={"entries": [base64.b64encode(b).decode() for b in bodies]},
    )
    assert r.status_code == 200 and all("index" in x for x in r.json()["results"])
    with httpx.Client(base_url=server.url, timeout=30) as client:
        cp = client.get("/log/checkpoint")
        assert cp.headers["content-type"] == "text/plain; charset=utf-8"
        assert "immutable" not in cp.headers["cache-control"]
        origin, size_text, root_b64 = cp.text.split("\n")[:3]
        size, root = int(size_text), base64.b64decode(root_b64)
        assert size >= 300

        entries: list[bytes] = []
        for n in range(-(-size // WIDTH)):
            width = min(WIDTH, size - n * WIDTH)
            entries += bundle_entries(
                fetch(client, tile_path("/log/tile/entries", n, width)).content
            )
        assert len(entries) == size
        leaves = [leaf_hash(e) for e in entries]
        assert level_hashes(client, 0, size) == leaves  # bundles hash to the level-0 tiles

        # Level 1 holds the root of every full level-0 tile.
        full = size // WIDTH
        upper = level_hashes(client, 1, full)
        assert upper == [mth(leaves[i * WIDTH : (i + 1) * WIDTH]) for i in range(full)]
        assert mth(leaves) == root
        # The root again, from tiles only: full-tile roots from level 1, the rest from level 0.
        partial = leaves[full * WIDTH :]
        subtrees = upper + ([mth(partial)] if partial else [])
        assert _root_from_subtrees(subtrees, [WIDTH] * full + [len(partial)]) == root

        # Things that must not be served.
        for bad in (
            f"/log/tile/0/{index_path(full + 5)}",
            "/log/tile/0/0",
            "/log/tile/64/000",
            "/log/tile/0/x000/001",
            "/log/tile/0/000.p/0",
            "/log/tile/0/000.p/256",
            f"/log/tile/entries/{index_path(full)}",
        ):
            assert client.get(bad).status_code == 404, bad
        assert origin


def _root_from_subtrees(roots: list[bytes], sizes: list[int]) -> bytes:
    """MTH from left-to-right subtree roots of the given leaf counts (all but the last 256)."""
    level = list(zip(roots, sizes, strict=True))
    while len(level) > 1:  # RFC 6962 splits at the largest power of two: merge equal-size pairs
        merged: list[tuple[bytes, int]] = []
        i = 0
        while i < len(level):
            if i + 1 < len(level) and level[i][1] == level[i + 1][1]:
                merged.append((node(level[i][0], level[i + 1][0]), 2 * level[i][1]))
                i += 2
            else:
                merged.append(level[i])
                i += 1
        if len(merged) == len(level):  # unequal tail: hash right to left
            acc = merged[-1]
            for left in reversed(merged[:-1]):
                acc = (node(left[0], acc[0]), left[1] + acc[1])
            return acc[0]
        level = merged
    return level[0][0]
