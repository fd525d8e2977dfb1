"""RFC 8785 canonical JSON, fast for the values attestations are made of.

For JSON built from ASCII keys, strings without lone surrogates, integers within ±(2^53 - 1),
booleans and null, Python's ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` produces exactly the RFC 8785 bytes: the same escapes (``\\b \\f \\n \\r \\t``
short forms, other controls as lowercase ``\\u00xx``), non-ASCII emitted raw, keys in code-point
order (= UTF-16 order for ASCII keys). Anything else — floats, huge integers, non-ASCII keys —
goes through the ``rfc8785`` library. A hypothesis test holds the two paths equal.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from attest.errors import InvalidInput

__all__ = ["canonical_json"]

_MAX_SAFE = 2**53 - 1


def _simple(value: Any) -> bool:
    stack = [value]
    while stack:
        x = stack.pop()
        t = type(x)
        if t is str:
            if not x.isascii():
                try:
                    x.encode("utf-8")
                except UnicodeEncodeError:
                    return False
        elif t is dict:
            for k, v in x.items():
                if type(k) is not str or not k.isascii():
                    return False
                stack.append(v)
        elif t is list or t is tuple:
            stack.extend(x)
        elif t is int:
            if not -_MAX_SAFE <= x <= _MAX_SAFE:
                return False
        elif not (t is bool or x is None):
            return False
    return True


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical serialisation of ``value``; :class:`~attest.errors.InvalidInput`
    for a value RFC 8785 has no form for (a lone surrogate, NaN, infinity, an integer beyond
    ±(2^53 - 1) written as a float, …)."""
    if _simple(value):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8"
        )
    try:
        return bytes(rfc8785.dumps(value))
    except rfc8785.CanonicalizationError as e:
        raise InvalidInput(f"value cannot be canonicalised (RFC 8785): {e}") from e
