"""Audit query parameters, parsed at the edge into always-valid values (pure).

Every parser raises :class:`~ledger.errors.BadQuery` (HTTP 400) naming the parameter and why, so
hostile input — SQL metacharacters, huge values, bad ranges, forged cursors — never reaches a
query as anything but a bound value of a known shape.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from ledger.errors import BadQuery
from ledger.index.facts import MAX_VALUE, VEX_STATUSES, split_purl
from ledger.index.ranges import parse_range
from ledger.record import format_time, from_iso

__all__ = [
    "MAX_LIMIT",
    "AsOf",
    "Cursor",
    "VersionMatcher",
    "parse_as_of",
    "parse_cursor",
    "parse_digest",
    "parse_limit",
    "parse_size",
    "parse_status",
    "parse_text",
    "parse_time_param",
    "parse_versions",
]

MAX_LIMIT = 1000
MAX_SIZE = (1 << 53) - 1
_DIGEST = re.compile(r"([a-z0-9][a-z0-9_+.-]{0,31}):([0-9a-f]{16,128})")
_INT = re.compile(r"[0-9]{1,16}")


def parse_text(name: str, value: str | None) -> str | None:
    """A free-text filter value (signer, builder, repo, …): bounded, printable."""
    if value is None:
        return None
    if not value or len(value) > MAX_VALUE:
        raise BadQuery(f"{name}: give 1 to {MAX_VALUE} characters")
    if any(ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise BadQuery(f"{name}: control characters are not allowed")
    return value


def parse_digest(name: str, value: str) -> str:
    """``alg:hex`` (``sha256:…``, OCI-style digests too), lower-cased."""
    v = value.strip().lower()
    if not _DIGEST.fullmatch(v):
        raise BadQuery(
            f"{name}: expected ALG:HEX such as sha256:<64 hex digits>, got {value[:80]!r}"
        )
    return v


def parse_size(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    if not _INT.fullmatch(value) or int(value) > MAX_SIZE:
        raise BadQuery(f"{name}: expected a tree size (a non-negative integer below 2^53)")
    return int(value)


def parse_limit(value: str | None, default: int = 100) -> int:
    if value is None:
        return default
    if not _INT.fullmatch(value) or not 1 <= int(value) <= MAX_LIMIT:
        raise BadQuery(f"limit: expected an integer from 1 to {MAX_LIMIT}")
    return int(value)


def parse_time_param(name: str, value: str | None) -> str | None:
    """An RFC 3339 UTC time, returned in the ledger's record-time form (compares as a string)."""
    if value is None:
        return None
    if len(value) > 64:
        raise BadQuery(f"{name}: expected an RFC 3339 time such as 2026-11-01T10:00:00Z")
    try:
        when = from_iso(value)
        if when.tzinfo is None:
            raise ValueError("give a time zone, e.g. Z")
        return format_time(when.astimezone(UTC))
    except (ValueError, OverflowError) as e:
        raise BadQuery(
            f"{name}: expected an RFC 3339 time such as 2026-11-01T10:00:00Z ({e})"
        ) from e


@dataclass(frozen=True)
class AsOf:
    """What the answer covers: at most ``size`` records, or the log as it stood at ``time``."""

    size: int | None = None
    time: str | None = None


def parse_as_of(value: str | None) -> AsOf | None:
    if value is None:
        return None
    if _INT.fullmatch(value):
        return AsOf(size=parse_size("asOf", value))
    return AsOf(time=parse_time_param("asOf", value))


def parse_status(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in VEX_STATUSES:
        raise BadQuery(f"status: one of {', '.join(VEX_STATUSES)}")
    return value


@dataclass(frozen=True)
class VersionMatcher:
    """A package (purl without version) and the versions wanted: a vers range compared with the
    ecosystem's own rules (``univers``), or one exact version."""

    package: str
    purl_type: str
    exact: str | None
    range_text: str | None
    _range: Any = None

    def matches(self, version: str) -> bool:
        if self.exact is not None:
            return version == self.exact
        if self._range is None:
            return True
        try:
            return bool(self._range.version_class(version) in self._range)
        except Exception:
            return False


def parse_versions(purl: str | None, versions: str | None) -> VersionMatcher | None:
    """``purl`` (a package, or with ``@version`` for one exact version) and ``versions`` (a range:
    ``vers:<type>/<constraints>``, or the ecosystem's own syntax such as ``^1.2`` or ``~=2.0``)."""
    if purl is None:
        if versions is not None:
            raise BadQuery("versions: needs a purl to say which package")
        return None
    purl = parse_text("purl", purl) or ""
    parts = split_purl(purl)
    if parts is None:
        raise BadQuery(f"purl: not a package URL (pkg:TYPE/NAMESPACE/NAME), got {purl[:80]!r}")
    package, exact = parts
    purl_type = package[4:].split("/", 1)[0]
    if versions is None:
        return VersionMatcher(package, purl_type, exact or None, None)
    if exact:
        raise BadQuery("purl: give the package without @version when versions gives a range")
    versions = parse_text("versions", versions) or ""
    return VersionMatcher(package, purl_type, None, versions, parse_range(purl_type, versions))


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after record ``after``, in the tree of ``size``."""

    after: int
    size: int
    query: str  # a hash of the filters it belongs to

    def encode(self) -> str:
        raw = json.dumps([self.after, self.size, self.query], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def query_key(filters: Mapping[str, object]) -> str:
    canonical = json.dumps(sorted((k, str(v)) for k, v in filters.items() if v is not None))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def parse_cursor(value: str | None, key: str) -> Cursor | None:
    if value is None:
        return None
    bad = BadQuery("cursor: not a cursor this server handed out (start again without it)")
    if len(value) > 200:
        raise bad
    try:
        doc = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as e:
        raise bad from e
    if (
        not isinstance(doc, list)
        or len(doc) != 3
        or not all(type(x) is int and 0 <= x <= MAX_SIZE for x in doc[:2])
        or not isinstance(doc[2], str)
    ):
        raise bad
    if doc[2] != key:
        raise BadQuery("cursor: it belongs to another query (keep the same filters across pages)")
    return Cursor(doc[0], doc[1], doc[2])
