"""``json.loads`` of stored bytes, faster: the audit index's lenient reader of bodies and payloads.

:func:`loads` returns exactly what ``json.loads(data)`` returns, or raises what it raises. It
asks orjson first (a C parser, 5-6 times faster on a kilobyte envelope) and takes its answer only
where the two are known to agree; anything orjson refuses goes to ``json.loads`` itself:

- orjson refuses NaN / Infinity, lone surrogates (escaped or as raw UTF-8), a UTF-8 BOM, UTF-16
  or UTF-32 text, floats that overflow, nesting deeper than 1024 — all of which ``json.loads``
  may accept, so they go to it;
- duplicate keys: both keep the last value at the first key's place;
- integers: orjson reads one beyond 64 bits as a float, where ``json.loads`` gives the exact
  ``int``. An integer that big has at least 19 digits, so any input holding a run of 19 decimal
  digits (anywhere, also inside a string: a cheap, conservative test) goes to ``json.loads``.

tests/ledger/test_lenient_json.py compares both on the upstream fixtures, crafted edge cases and
generated documents. The index derivation (:mod:`ledger.index.facts`) is shared by the append
path and ``ledger check``, so both get the same values they got from ``json.loads``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["OBJECT_FIRST_BYTES", "loads", "loads_object"]

# The first byte of any input json.loads reads as an object: JSON whitespace or "{" (UTF-8, and
# UTF-16/32-LE without a BOM), 0x00 (UTF-16/32-BE), or the first byte of a BOM (EF, FE, FF).
OBJECT_FIRST_BYTES = frozenset(b" \t\n\r{\x00\xef\xfe\xff")

_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x2E for b in range(256))  # digit -> "0", else "."
_LONG_RUN = b"0" * 19  # the shortest integer orjson may read as a float: |n| >= 2**63


def loads(data: bytes) -> Any:
    """``json.loads(data)``: the same value, or the same exception."""
    if type(data) is bytes and _LONG_RUN not in data.translate(_DIGITS):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def loads_object(data: bytes) -> dict[str, Any] | None:
    """``json.loads(data)`` if that is an object (a ``dict``); ``None`` if it is anything else or
    ``json.loads`` raises ``ValueError`` or ``RecursionError``. Input whose first byte cannot
    start an object is not parsed at all."""
    if not data[:1] or data[0] not in OBJECT_FIRST_BYTES:
        return None
    try:
        value = loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return value if isinstance(value, dict) else None
