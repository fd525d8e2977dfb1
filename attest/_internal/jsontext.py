"""JSON as a signed document needs it: the one place :mod:`attest` turns JSON text into values.

- **UTF-8 only** (RFC 8259 §8.1). ``json.loads`` on bytes would also guess UTF-16 and UTF-32 and
  skip a UTF-8 byte order mark; here anything but plain UTF-8 is refused, a leading BOM included
  (RFC 8259 forbids adding one; a signed payload is read as the exact bytes it is).
- **No duplicate object keys.** RFC 8259 leaves their meaning open: a first-wins and a last-wins
  consumer of the same signed bytes would read different subjects.
- **No NaN or Infinity**: they are not JSON, and RFC 8785 cannot canonicalise them.
- **Bounded nesting** (:data:`MAX_DEPTH`): a document nested deeper is refused with one line,
  never a ``RecursionError`` somewhere later.

Every failure is one ``error(message)`` (:class:`~attest.errors.InvalidInput` by default), so a
caller picks its own error type and the CLI prints one line.
"""

from __future__ import annotations

import json
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


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


# stateless, so one serves every call (``json.loads`` with hooks builds a decoder per call)
_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant)


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
    # deeper than MAX_DEPTH needs more opening brackets than that (cheap to count, in C)
    maybe_deep = text.count("[") + text.count("{") > MAX_DEPTH
    if maybe_deep and _depth_exceeds(value, MAX_DEPTH):
        raise error(f"{what} is nested deeper than {MAX_DEPTH} levels")
    return value
