"""API bearer tokens: operational state (not log entries), stored as SHA-256 hashes, never as text.

A token is ``lgr_`` followed by 32 random bytes (URL-safe base64), so a plain SHA-256 is a safe
hash: there is nothing to brute-force. Each token has a name, scopes (``append``, ``read``,
``admin``), a creation time and an optional expiry. Lookups go by hash; the stored hash is then
compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.exc import SQLAlchemyError

from ledger._internal import schema
from ledger.errors import InvalidInput, NotFound, StorageError, Unauthenticated
from ledger.record import format_time, from_iso

__all__ = ["SCOPES", "TokenInfo", "Tokens", "hash_token", "parse_expiry"]

SCOPES = ("append", "read", "admin")
PREFIX = "lgr_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_DURATION = re.compile(r"([1-9][0-9]*)([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def parse_expiry(text: str, now: datetime) -> datetime:
    """``2027-01-01T00:00:00Z`` (RFC 3339) or a duration from now: ``90d``, ``12h``, ``30m``."""
    if m := _DURATION.fullmatch(text):
        too_far = InvalidInput(f"expiry {text!r} is past the year 9999; give a shorter one")
        if len(m[1]) > 9:  # int() of a huge digit string is itself slow, and no use here
            raise too_far
        try:
            return now + timedelta(**{_UNITS[m[2]]: int(m[1])})
        except OverflowError:
            raise too_far from None
    try:
        t = from_iso(text)
    except ValueError as e:
        raise InvalidInput(f"expiry {text!r} is neither RFC 3339 nor a duration like 90d") from e
    if t.tzinfo is None:
        raise InvalidInput(f"expiry {text!r} needs a time zone (e.g. a trailing Z)")
    format_time(t)  # InvalidInput if it has no UTC form (9999-12-31T23:59:59-23:00)
    if t <= now:
        raise InvalidInput(f"expiry {text!r} is in the past")
    return t


@dataclass(frozen=True)
class TokenInfo:
    name: str
    scopes: tuple[str, ...]
    created: str
    expires: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "scopes": list(self.scopes),
            "created": self.created,
            "expires": self.expires,
        }


def _check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(scopes))
    if not out:
        raise InvalidInput("a token needs at least one scope: append, read or admin")
    bad = [s for s in out if s not in SCOPES]
    if bad:
        raise InvalidInput(f"unknown scope {bad[0]!r}: use append, read or admin")
    return out


class Tokens:
    """Create, list, revoke and authenticate tokens in one ledger database.

    ``authenticate`` keeps answers for ``cache_seconds`` (monotonic clock), so a revocation
    reaches every server process within that time without a query per request.
    """

    def __init__(
        self, engine: Engine, clock: Callable[[], datetime], cache_seconds: float = 0.0
    ) -> None:
        self._engine, self._clock, self._ttl = engine, clock, cache_seconds
        self._cache: dict[bytes, tuple[float, TokenInfo | None]] = {}
        self._lock = threading.Lock()

    def create(self, name: str, scopes: Iterable[str], expires: datetime | None = None) -> str:
        """Store a new token's hash; return the token itself (shown once, never stored)."""
        if not _NAME.fullmatch(name):
            raise InvalidInput(f"token name {name!r}: use 1-128 letters, digits, '.', '_' or '-'")
        checked = _check_scopes(scopes)
        token = PREFIX + secrets.token_urlsafe(32)
        row = {
            "name": name,
            "token_hash": hash_token(token),
            "scopes": " ".join(checked),
            "created": format_time(self._clock()),
            "expires": format_time(expires) if expires is not None else None,
        }
        t = schema.api_tokens
        taken = InvalidInput(f"a token named {name!r} exists; revoke it first")
        try:
            with self._engine.begin() as conn:
                # the engine turns driver errors into one-line StorageErrors, so a taken name is
                # looked up first; the UNIQUE constraint still settles a race
                if conn.execute(select(t.c.name).where(t.c.name == name)).first() is not None:
                    raise taken
                conn.execute(t.insert(), row)
        except DbIntegrityError as e:
            raise taken from e
        except SQLAlchemyError as e:
            raise StorageError(f"cannot store the token: {e.__class__.__name__}: {e}") from e
        return token

    def revoke(self, name: str) -> None:
        t = schema.api_tokens
        if not _NAME.fullmatch(name):  # no token has such a name (nor may PostgreSQL hold NUL)
            raise NotFound(f"no token named {name!r}")
        try:
            with self._engine.begin() as conn:
                gone = conn.execute(delete(t).where(t.c.name == name)).rowcount
        except SQLAlchemyError as e:
            raise StorageError(f"cannot revoke the token: {e.__class__.__name__}: {e}") from e
        if not gone:
            raise NotFound(f"no token named {name!r}")
        with self._lock:
            self._cache.clear()

    def list(self) -> list[TokenInfo]:
        t = schema.api_tokens.c
        q = select(t.name, t.scopes, t.created, t.expires).order_by(t.name)
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(q).all()
        except SQLAlchemyError as e:
            raise StorageError(f"cannot read tokens: {e.__class__.__name__}") from e
        return [TokenInfo(r.name, tuple(r.scopes.split()), r.created, r.expires) for r in rows]

    def authenticate(self, token: str) -> TokenInfo:
        """The token's record; raises :class:`Unauthenticated` if unknown or expired."""
        digest = hash_token(token)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and now - hit[0] < self._ttl:
            info = hit[1]
        else:
            info = self._lookup(digest)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now, info)
        if info is None:
            raise Unauthenticated("unknown or revoked token")
        if info.expires is not None and info.expires <= format_time(self._clock()):
            raise Unauthenticated(f"token {info.name!r} expired at {info.expires}")
        return info

    def _lookup(self, digest: bytes) -> TokenInfo | None:
        t = schema.api_tokens.c
        q = select(t.name, t.token_hash, t.scopes, t.created, t.expires).where(
            t.token_hash == digest
        )
        try:
            with self._engine.connect() as conn:
                row = conn.execute(q).first()
        except SQLAlchemyError as e:
            raise StorageError(f"cannot read tokens: {e.__class__.__name__}") from e
        if row is None or not hmac.compare_digest(bytes(row.token_hash), digest):
            return None
        return TokenInfo(row.name, tuple(row.scopes.split()), row.created, row.expires)
