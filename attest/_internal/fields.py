"""Typed field access for predicate parsers: each getter names the field and the error code."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from attest.errors import InvalidStatement
from attest.statement import ResourceDescriptor


def obj(doc: Mapping[str, Any], key: str, code: str, *, required: bool = False) -> dict[str, Any]:
    value = doc.get(key)
    if value is None or (required and value == {}):
        if required:
            raise InvalidStatement(code, f"{key} is required")
        return {}
    if not isinstance(value, dict):
        raise InvalidStatement(code, f"{key} must be an object")
    return value


def text(doc: Mapping[str, Any], key: str, code: str, *, required: bool = False) -> str:
    value = doc.get(key, "")
    if not isinstance(value, str):
        raise InvalidStatement(code, f"{key} must be a string")
    if required and not value:
        raise InvalidStatement(code, f"{key} is required")
    return value


def strings(doc: Mapping[str, Any], key: str, code: str) -> tuple[str, ...]:
    value = doc.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidStatement(code, f"{key} must be a list of strings")
    return tuple(value)


def descriptors(doc: Mapping[str, Any], key: str, code: str) -> tuple[ResourceDescriptor, ...]:
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise InvalidStatement(code, f"{key} must be a list of resource descriptors")
    return tuple(ResourceDescriptor.from_dict(v) for v in value)


def timestamp(doc: Mapping[str, Any], key: str, code: str) -> datetime | None:
    value = doc.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidStatement(code, f"{key} must be an RFC 3339 timestamp")
    try:
        return parse_rfc3339(value)
    except ValueError as e:
        raise InvalidStatement(code, f"{key} {e}: {value!r}") from e


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 time as an aware UTC datetime; ``ValueError`` says what is wrong with it."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as e:
        raise ValueError("is not an RFC 3339 time") from e
    if parsed.tzinfo is None:
        raise ValueError("has no time zone")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as e:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("is out of range") from e


def format_time(t: datetime) -> str:
    """UTC, RFC 3339 with a ``Z`` (microseconds only when present)."""
    t = t.astimezone(UTC)
    # %Y is not zero-padded on glibc (year 1 → "1"): always four digits, as RFC 3339 wants
    fmt = "-%m-%dT%H:%M:%S.%fZ" if t.microsecond else "-%m-%dT%H:%M:%SZ"
    return f"{t.year:04d}" + t.strftime(fmt)


def prune(d: dict[str, Any]) -> dict[str, Any]:
    """Drop empty values, as protobuf JSON does for unset fields."""
    return {k: v for k, v in d.items() if v not in (None, "", [], {}, ())}
