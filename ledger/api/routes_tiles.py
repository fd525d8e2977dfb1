"""The C2SP tlog-tiles layout (https://c2sp.org/tlog-tiles) under ``/log/``.

``/log/checkpoint``, ``/log/tile/<L>/<N>[.p/<W>]`` (hashes) and ``/log/tile/entries/<N>[.p/<W>]``
(entry bundles: each record's leaf bytes behind a big-endian uint16 length). A tile only grows,
so a partial tile of width W is the first W hashes of the stored tile; a full tile or bundle never
changes and is served with immutable caching.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import PlainTextResponse, Response

from ledger.api.auth import OPTIONAL_AUTH, require_read
from ledger.api.models import problem_responses
from ledger.api.routes_read import cache_control, checkpoint_response
from ledger.errors import IntegrityError, NotFound
from ledger.log import Ledger
from ledger.merkle import HASH_SIZE
from ledger.record import MAX_INDEX
from ledger.tiles import TILE_WIDTH
from ledger.tokens import TokenInfo

__all__ = ["TilePath", "parse_tile_path", "router", "tile_index_path"]

router = APIRouter(tags=["tiles"])
Reader = Annotated[TokenInfo | None, Depends(require_read)]
IMMUTABLE = "max-age=31536000, immutable"
PARTIAL = "max-age=60"
_PATH = re.compile(r"(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?")
_OCTETS = "application/octet-stream"
MAX_TILE_INDEX = MAX_INDEX // TILE_WIDTH  # the tile of the last record a ledger can hold
PROBLEMS_401_403 = problem_responses(401, 403)


@dataclass(frozen=True)
class TilePath:
    level: int | None  # None: an entry bundle
    index: int
    width: int | None  # None: a full tile


def tile_index_path(n: int) -> str:
    """``1234067`` → ``x001/x234/067``: zero-padded 3-digit elements, all but the last ``x``-ed."""
    digits = str(n)
    digits = digits.zfill(-(-len(digits) // 3) * 3)
    parts = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*("x" + p for p in parts[:-1]), parts[-1]])


def parse_tile_path(path: str) -> TilePath:
    """Parse ``<L>/<N>[.p/<W>]`` or ``entries/<N>[.p/<W>]``; only the canonical spelling."""
    m = _PATH.fullmatch(path)
    if m is None:
        raise NotFound(f"no tile at {path[:64]!r}")
    level_text, index_text, width_text = m.groups()
    digits = index_text.replace("x", "").replace("/", "")
    # No ledger holds more than MAX_INDEX + 1 records, so no tile lies past MAX_TILE_INDEX; a
    # larger index is 404 before it is parsed (Python refuses int() of > 4300 digits) or sent
    # to a database (SQLite and PostgreSQL integers stop at 2**63 - 1).
    if len(digits) > len(str(MAX_TILE_INDEX)) or int(digits) > MAX_TILE_INDEX:
        raise NotFound(f"no tile at {path[:64]!r}: past the largest tree a ledger can hold")
    index = int(digits)
    width = int(width_text) if width_text else None
    level = None if level_text == "entries" else int(level_text)
    if (level is not None and level > 63) or (width is not None and width >= TILE_WIDTH):
        raise NotFound(f"no tile at {path!r}")
    if tile_index_path(index) != index_text:
        raise NotFound(f"no tile at {path!r} (tile indices are written {tile_index_path(index)})")
    return TilePath(level, index, width)


def _hashes(ledger: Ledger, level: int, index: int, width: int | None) -> bytes:
    # TileTree.fetch is the store's tile reader; the size argument plays no part in it.
    blob = ledger.store.tree(0).fetch([(level, index)]).get((level, index), b"")
    need = (width or TILE_WIDTH) * HASH_SIZE
    if len(blob) < need or (width is None and len(blob) != need):
        raise NotFound(f"tile {level}/{tile_index_path(index)} has no {need // HASH_SIZE} hashes")
    return blob[:need]


def _bundle(ledger: Ledger, index: int, width: int | None) -> bytes:
    count = width or TILE_WIDTH
    start = index * TILE_WIDTH
    records = ledger.store.records(start, start + count)
    if len(records) != count:
        raise NotFound(f"entry bundle {tile_index_path(index)} has no {count} entries yet")
    out = bytearray()
    for rec in records:
        if len(rec.leaf) > 0xFFFF:
            raise IntegrityError(f"record {rec.index} is too long for an entry bundle", rec.index)
        out += struct.pack(">H", len(rec.leaf)) + rec.leaf
    return bytes(out)


@router.get(
    "/log/checkpoint",
    openapi_extra=OPTIONAL_AUTH,
    summary="The latest checkpoint (tlog-tiles)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, **PROBLEMS_401_403},
)
def log_checkpoint(request: Request, _r: Reader) -> PlainTextResponse:
    return checkpoint_response(request)


@router.get(
    "/log/tile/{path:path}",
    openapi_extra=OPTIONAL_AUTH,
    summary="A Merkle tile or an entry bundle (tlog-tiles)",
    response_class=Response,
    responses={
        200: {"content": {_OCTETS: {"schema": {"type": "string", "format": "binary"}}}},
        404: {"description": "No such tile (yet)."},
        **PROBLEMS_401_403,
    },
)
def log_tile(
    request: Request,
    path: Annotated[str, Path(examples=["0/000", "0/000.p/3", "entries/000.p/3"])],
    _r: Reader,
) -> Response:
    tile = parse_tile_path(path)
    ledger: Ledger = request.app.state.ledger
    if tile.level is None:
        data = _bundle(ledger, tile.index, tile.width)
    else:
        data = _hashes(ledger, tile.level, tile.index, tile.width)
    caching = IMMUTABLE if tile.width is None else PARTIAL
    return Response(
        data, media_type=_OCTETS, headers={"Cache-Control": cache_control(request, caching)}
    )
