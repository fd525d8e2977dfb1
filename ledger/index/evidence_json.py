"""An evidence document written straight to its JSON bytes, for the hot audit routes.

The same document as :meth:`ledger.index.evidence.AuditReader.document` validated through
:class:`ledger.api.audit_models.EvidenceDoc` and serialised by FastAPI (same fields, same order,
``consistency`` and ``next`` always present), without building a dict of 100 entries and then
validating it: base64 goes straight from the bytes (:func:`binascii.b2a_base64`, which never needs
a JSON escape) into the output, and an entry's ``record`` is its leaf itself — the record's RFC
8785 canonical JSON, the same object :meth:`ledger.record.Record.to_json` gives, keys sorted.
"""

from __future__ import annotations

import json
from binascii import b2a_base64
from collections.abc import Sequence
from typing import Any

from ledger.checkpoint import SignedCheckpoint
from ledger.index.evidence import MEDIA_TYPE, Proved

__all__ = ["document_json", "entry_json"]

_MEDIA = b'{"mediaType":' + json.dumps(MEDIA_TYPE).encode()


def _json(value: Any) -> bytes:
    """Compact JSON, UTF-8 as is (what FastAPI's serialiser writes)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _b64(b: bytes) -> bytes:
    return b2a_base64(b, newline=False)


def _b64_list(items: list[bytes]) -> bytes:
    """``"b64","b64",…`` (each item's own base64, a newline after each, made the separator)."""
    if not items:
        return b""
    return b'"' + b"".join(map(b2a_base64, items))[:-1].replace(b"\n", b'","') + b'"'


def _entry_parts(p: Proved, out: list[bytes]) -> None:
    """Append the pieces of one entry's JSON to ``out`` (joined once, for the whole document)."""
    out += (
        b'{"index":',
        str(p.index).encode(),
        b',"leaf":"',
        _b64(p.leaf),
        b'","body":"',
        _b64(p.body),
        b'","inclusionProof":[',
        _b64_list(p.proof),
        b'],"record":',
        p.leaf,
        b"}",
    )


def _entries(entries: Sequence[Proved], out: list[bytes]) -> None:
    for k, p in enumerate(entries):
        if k:
            out.append(b",")
        _entry_parts(p, out)


def entry_json(p: Proved) -> bytes:
    """``{"index", "leaf", "body", "inclusionProof", "record"}`` of one proved record."""
    out: list[bytes] = []
    _entry_parts(p, out)
    return b"".join(out)


def document_json(
    entries: Sequence[Proved],
    cp: SignedCheckpoint,
    consistency: dict[str, Any] | None,
    next: str | None,
    registry: Sequence[Proved] | None = None,
) -> bytes:
    """The evidence document of ``entries`` proved against ``cp``; ``registry`` adds the
    trust registry's records (``registry=true``). Written as one list of pieces joined once: a
    page of 100 is ~1.5 MB, copied a single time."""
    out = [
        _MEDIA,
        b',"checkpoint":',
        _json(cp.note),
        b',"treeSize":',
        str(cp.checkpoint.size).encode(),
        b',"entries":[',
    ]
    _entries(entries, out)
    out += (b'],"consistency":', _json(consistency), b',"next":', _json(next))
    if registry is not None:
        out.append(b',"registry":[')
        _entries(registry, out)
        out.append(b"]")
    out.append(b"}")
    return b"".join(out)
