"""JSON as a signed document needs it: the one place :mod:`attest` turns JSON text into values.

- **UTF-8 only** (RFC 8259 §8.1). ``json.loads`` on bytes would also guess UTF-16 and UTF-32 and
  skip a UTF-8 byte order mark; here anything but plain UTF-8 is refused, a leading BOM included
  (RFC 8259 forbids adding one; a signed payload is read as the exact bytes it is).
- **No duplicate object keys.** RFC 8259 leaves their meaning open: a first-wins and a last-wins
  consumer of the same signed bytes would read different subjects.
- **No NaN or Infinity**: they are not JSON, and RFC 8785 cannot canonicalise them. A number
  literal too large for a double (``1e400``) would become infinity: refused the same way.
- **No lone surrogates** (``"\\ud800"``): such a string has no UTF-8 form, so it can be neither
  hashed nor canonicalised (RFC 8785 §3.2.2.2 refuses it).
- **Bounded nesting** (:data:`MAX_DEPTH`): a document nested deeper is refused with one line,
  never a ``RecursionError`` somewhere later.

Every failure is one ``error(message)`` (:class:`~attest.errors.InvalidInput` by default), so a
caller picks its own error type and the CLI prints one line.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from attest.errors import Error, InvalidInput

__all__ = ["MAX_DEPTH", "loads"]

MAX_DEPTH = 100


class _Refused(ValueError):
    """Raised inside the decoder's hooks; :func:`loads` turns it into the caller's error."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"duplicate key {key!r}")
            seen.add(key)
    return obj


# a surrogate can enter a decoded string only through a \\uD800 to \\uDFFF escape
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _lone_surrogate(value: Any) -> bool:
    """Whether any string (key or value) in ``value`` has no UTF-8 form; without recursion."""
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is dict:
            stack.extend(node)
            stack.extend(node.values())
        elif kind is list:
            stack.extend(node)
        elif kind is str:
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise _Refused(f"number {literal[:40]} is too large (it would be infinity)")
    return value


# stateless, so one serves every call (``json.loads`` with hooks builds a decoder per call)
_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant, parse_float=_float)


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Level by level, without recursion (three times faster than a stack of pairs)."""
    level, depth = [value], 1
    while level:
        if depth > limit:
            return True
        deeper = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                kind = type(child)
                if kind is dict or kind is list:
                    deeper.append(child)
        level, depth = deeper, depth + 1
    return False


def loads(
    data: bytes | str,
    what: str,
    *,
    error: Callable[[str], Error] = InvalidInput,
) -> Any:
    """Parse ``data`` (``what`` names it in the message) or raise ``error(message)``."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise error(f"{what} is not UTF-8 (RFC 8259): byte {e.start}") from e
    else:
        text = data
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise error(f"{what} holds a lone surrogate at character {e.start}") from e
    if text.startswith("\ufeff"):
        raise error(f"{what} starts with a byte order mark (RFC 8259: plain UTF-8 only)")
    try:
        value = _DECODER.decode(text)
    except _Refused as e:
        raise error(f"{what} is not valid JSON: {e}") from e
    except RecursionError as e:
        raise error(f"{what} is nested deeper than {MAX_DEPTH} levels") from e
    except ValueError as e:
        raise error(f"{what} is not valid JSON: {e}") from e
    if _SURROGATE_ESCAPE.search(text) and _lone_surrogate(value):
        raise error(f"{what} holds a lone surrogate escape (a string with no UTF-8 form)")
    # deeper than MAX_DEPTH needs more opening brackets than that (cheap to count, in C)
    maybe_deep = text.count("[") + text.count("{") > MAX_DEPTH
    if maybe_deep and _depth_exceeds(value, MAX_DEPTH):
        raise error(f"{what} is nested deeper than {MAX_DEPTH} levels")
    return value
