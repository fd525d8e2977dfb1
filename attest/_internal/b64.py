"""Base64 as DSSE wants it: write standard, read standard and URL-safe, padded or not."""

from __future__ import annotations

import base64
import binascii

from attest.errors import InvalidInput


def decode(text: object, what: str) -> bytes:
    """Decode standard or URL-safe base64 (DSSE verifiers MUST accept both)."""
    if not isinstance(text, str):
        raise InvalidInput(f"{what} must be a base64 string")
    s = text.strip().replace("-", "+").replace("_", "/")
    s += "=" * (-len(s) % 4)
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidInput(f"{what} is not valid base64") from e


def encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
