"""The ledger's one strict JSON parser: :mod:`attest`'s, raising the ledger's own error types.

UTF-8 only (no BOM), no duplicate object keys, no NaN or Infinity, nesting at most
:data:`MAX_DEPTH` levels (see ``attest/_internal/jsontext.py``). Bodies (append, import, the API),
export lines, leaves and registry documents all go through :func:`loads`, so no two readers of
the same bytes can see two different documents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attest._internal import jsontext
from attest.errors import Error as AttestError
from ledger.errors import Error, InvalidInput

__all__ = ["MAX_DEPTH", "loads"]

MAX_DEPTH = jsontext.MAX_DEPTH


def loads(data: bytes | str, what: str, *, error: Callable[[str], Error] = InvalidInput) -> Any:
    """Parse ``data`` (``what`` names it in the message) or raise ``error(message)``."""
    try:
        return jsontext.loads(data, what)
    except AttestError as e:
        raise error(str(e)) from e
