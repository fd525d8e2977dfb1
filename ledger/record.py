"""The ledger record: the leaf of the Merkle tree and a link of the hash chain.

Leaf bytes are the RFC 8785 canonical JSON of::

    {"v": 1, "log": <origin>, "index": n, "prev": <hex leaf hash of record n-1, or 64 zeros>,
     "time": "YYYY-MM-DDTHH:MM:SS.ffffffZ", "bodyType": "dsse" | "sigstore-bundle",
     "body": "sha256:<hex digest of the exact submitted bytes>"}

:meth:`Record.from_leaf` accepts only bytes that are exactly the canonical encoding of a valid
record, so a record you hold always re-encodes to the bytes it came from.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

import rfc8785

from attest._internal.frozen import Frozen, set_field
from ledger._internal.jsontext import loads
from ledger.errors import Error, IntegrityError, InvalidInput
from ledger.merkle import hash_leaf

__all__ = [
    "GENESIS_PREV",
    "MAX_INDEX",
    "MAX_ORIGIN_BYTES",
    "BodyType",
    "Record",
    "body_record_index",
    "check_link",
    "format_time",
    "from_iso",
    "names_body",
    "parse_time",
    "parse_when",
]

BodyType = Literal["dsse", "sigstore-bundle"]
BODY_TYPES: tuple[BodyType, ...] = ("dsse", "sigstore-bundle")
GENESIS_PREV = "0" * 64
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_PLAIN = re.compile(r"[ -!#-\[\]-~]*")  # printable ASCII except quote and backslash
_KEYS = {"v", "log", "index", "prev", "time", "bodyType", "body"}
# A leaf exactly as :meth:`Record._encode`'s template writes it (a printable-ASCII origin): its
# fields can be read without a JSON parser; the record built from them is still checked in full
# and must re-encode to the same bytes. Any other leaf goes through the parser.
_PLAIN_LEAF = re.compile(
    rb'\{"body":"(sha256:[0-9a-f]{64})","bodyType":"([a-z-]+)","index":(0|[1-9][0-9]{0,15}),'
    rb'"log":"([ -!#-\[\]-~]+)","prev":"([0-9a-f]{64})","time":"([0-9TZ:.-]{27})","v":1\}'
)
MAX_ORIGIN_BYTES = (
    255  # `ledger init` refuses a longer origin (C2SP origins are short hostnames/paths)
)
MAX_INDEX = 2**53 - 1  # RFC 8785 (I-JSON) numbers: larger integers are not exactly representable


def format_time(t: datetime) -> str:
    """UTC, microseconds, ``Z``: the one time format records use."""
    if t.tzinfo is None:
        raise InvalidInput("record times must be timezone-aware")
    try:
        utc = t.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-23:00 is in the year 10000 in UTC
        raise InvalidInput(
            f"time {t.isoformat()} is outside the years 1 to 9999 once converted to UTC"
        ) from None
    # isoformat, not strftime: half the time, and years before 1000 keep four digits (glibc's
    # %Y wrote "999-…", which parse_time refuses)
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_iso(text: str) -> datetime:
    """``datetime.fromisoformat``, which also reads text no time has (a NUL before the zone, say):
    printable ASCII only, else ``ValueError``."""
    if not (text.isascii() and text.isprintable()):
        raise ValueError("a time is printable ASCII")
    return datetime.fromisoformat(text)


def parse_when(text: str | None, what: str) -> datetime | None:
    """An RFC 3339 / ISO 8601 time that names its zone, in UTC (what a person or a client gives:
    the CLI's ``--valid-from``, the admin API's ``validFrom``); ``None`` for ``None``."""
    if text is None:
        return None
    try:
        when = from_iso(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise InvalidInput(f"{what} {text!r} is not an RFC 3339 time") from e
    if when.tzinfo is None:
        raise InvalidInput(f"{what} {text!r} has no time zone (add Z or +hh:mm)")
    try:
        return when.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{what} {text!r} is outside the years 1 to 9999 in UTC") from None


def parse_time(text: str) -> datetime:
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        raise InvalidInput(f"time {text!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    try:
        return datetime.fromisoformat(text)
    except ValueError as e:
        raise InvalidInput(f"time {text!r} is not a valid date and time") from e


@lru_cache(maxsize=256)
def _check_time(text: str) -> None:
    """:func:`parse_time`'s check, remembered: a batch's records share one time (an invalid
    time raises, and a raise is never cached)."""
    parse_time(text)


class Record(Frozen):
    """One sequenced submission. ``leaf`` and ``leaf_hash`` are computed once, at construction
    (they are not fields: not compared, not in the repr)."""

    _fields = ("log", "index", "prev", "time", "body_type", "body", "v")
    log: str
    index: int
    prev: str
    time: str
    body_type: BodyType
    body: str
    v: Literal[1]
    leaf: bytes
    leaf_hash: bytes

    def __init__(
        self,
        log: str,
        index: int,
        prev: str,
        time: str,
        body_type: BodyType,
        body: str,
        v: Literal[1] = 1,
    ) -> None:
        set_field(self, "log", log)
        set_field(self, "index", index)
        set_field(self, "prev", prev)
        set_field(self, "time", time)
        set_field(self, "body_type", body_type)
        set_field(self, "body", body)
        set_field(self, "v", v)
        self.__post_init__()

    def __post_init__(self) -> None:
        """Every field is checked for type first, so a record you hold is always valid: a value
        read from unsigned input (an export line, a stored leaf) that is not a string where one
        belongs is :class:`InvalidInput`, never a ``TypeError`` from a regex further down."""
        if type(self.v) is not int or self.v != 1:
            raise InvalidInput(f"unsupported record version {self.v!r}")
        if not isinstance(self.log, str) or not self.log:
            raise InvalidInput("record log origin must be a non-empty string")
        try:
            self.log.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidInput("record log origin is not encodable as UTF-8") from e
        if type(self.index) is not int or not 0 <= self.index <= MAX_INDEX:
            raise InvalidInput("record index must be an integer from 0 to 2^53-1 (RFC 8785)")
        for name in ("prev", "time", "body_type", "body"):
            if not isinstance(getattr(self, name), str):
                raise InvalidInput(f"record {name} must be a string")
        if not _HEX64.fullmatch(self.prev):
            raise InvalidInput("record prev must be 64 lower-case hex digits")
        if self.index == 0 and self.prev != GENESIS_PREV:
            raise InvalidInput("record 0 must have the all-zero prev")
        _check_time(self.time)
        if self.body_type not in BODY_TYPES:
            raise InvalidInput(f"unknown body type {self.body_type!r}")
        if not _DIGEST.fullmatch(self.body):
            raise InvalidInput("record body must be sha256:<64 hex digits>")
        set_field(self, "leaf", self._encode())
        set_field(self, "leaf_hash", hash_leaf(self.leaf))

    def _encode(self) -> bytes:
        """RFC 8785 canonical JSON of the record.

        Every field but ``log`` is validated ASCII without escapes, so when ``log`` is printable
        ASCII too the canonical form is a fixed template (keys in RFC 8785 order); the test suite
        checks the template against the ``rfc8785`` library. Anything else goes through it.
        """
        if _PLAIN.fullmatch(self.log):
            return (
                f'{{"body":"{self.body}","bodyType":"{self.body_type}","index":{self.index},'
                f'"log":"{self.log}","prev":"{self.prev}","time":"{self.time}","v":{self.v}}}'
            ).encode()
        return rfc8785.dumps(self.to_json())  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        return {
            "v": self.v,
            "log": self.log,
            "index": self.index,
            "prev": self.prev,
            "time": self.time,
            "bodyType": self.body_type,
            "body": self.body,
        }

    @classmethod
    def chain(
        cls,
        log: str,
        index: int,
        prev: str,
        time: str,
        bodies: Sequence[tuple[BodyType, bytes]],
    ) -> list[Record]:
        """The records of ``bodies`` (body type, SHA-256 digest of the body) at ``index``,
        ``index + 1``, … of log ``log``, the first after the record whose leaf hash is ``prev``,
        all at ``time``: a writer's batch. The same records, leaves included, as constructing
        each (a test holds them equal), for less: the first is constructed, so every field is
        checked; the others differ from it only in fields that are checked here or valid by
        construction — the index (the last one checked against :data:`MAX_INDEX`), ``prev`` (the
        hex of the record before's leaf hash), the body type (checked) and the body (the hex of
        a digest checked to be 32 bytes)."""
        if not bodies:
            return []
        first = cls(log, index, prev, time, bodies[0][0], "sha256:" + _digest_hex(bodies[0][1]))
        if index + len(bodies) - 1 > MAX_INDEX:
            raise InvalidInput("record index must be an integer from 0 to 2^53-1 (RFC 8785)")
        if not _PLAIN.fullmatch(log):  # the template does not apply: construct each
            out = [first]
            for i, (body_type, digest) in enumerate(bodies[1:], index + 1):
                out.append(
                    cls(
                        log,
                        i,
                        out[-1].leaf_hash.hex(),
                        time,
                        body_type,
                        "sha256:" + _digest_hex(digest),
                    )
                )
            return out
        out = [first]
        new = object.__new__
        prev_hex = first.leaf_hash.hex()
        sha256 = hashlib.sha256
        for i, (body_type, digest) in enumerate(bodies[1:], index + 1):
            if body_type not in BODY_TYPES:
                raise InvalidInput(f"unknown body type {body_type!r}")
            body = "sha256:" + _digest_hex(digest)
            leaf = (
                f'{{"body":"{body}","bodyType":"{body_type}","index":{i},'
                f'"log":"{log}","prev":"{prev_hex}","time":"{time}","v":1}}'
            ).encode()
            leaf_hash = sha256(b"\x00" + leaf).digest()  # hash_leaf, inline
            rec = new(cls)
            rec.__dict__.update(
                log=log,
                index=i,
                prev=prev_hex,
                time=time,
                body_type=body_type,
                body=body,
                v=1,
                leaf=leaf,
                leaf_hash=leaf_hash,
            )
            out.append(rec)
            prev_hex = leaf_hash.hex()
        return out

    @property
    def body_digest(self) -> bytes:
        return bytes.fromhex(self.body.removeprefix("sha256:"))

    @classmethod
    def from_leaf(cls, leaf: bytes) -> Record:
        """Parse leaf bytes; they must be exactly the canonical encoding of a valid record."""
        plain = _PLAIN_LEAF.fullmatch(leaf)
        if plain is not None:  # the template :meth:`_encode` writes: fields read without a parser
            body, body_type, index, log, prev, time = (g.decode() for g in plain.groups())
            record = cls(log, int(index), prev, time, body_type, body)  # type: ignore[arg-type]
            if record.leaf != leaf:
                raise InvalidInput("leaf is not in RFC 8785 canonical form")
            return record
        obj = loads(leaf, "leaf")
        if not isinstance(obj, dict) or set(obj) != _KEYS:
            raise InvalidInput("leaf does not have exactly the record fields")
        record = cls(
            log=obj["log"],
            index=obj["index"],
            prev=obj["prev"],
            time=obj["time"],
            body_type=obj["bodyType"],
            body=obj["body"],
            v=obj["v"],
        )
        if record.leaf != leaf:
            raise InvalidInput("leaf is not in RFC 8785 canonical form")
        return record


def _digest_hex(digest: bytes) -> str:
    if type(digest) is not bytes or len(digest) != 32:
        raise InvalidInput("a body digest must be 32 bytes (SHA-256)")
    return digest.hex()


def check_link(rec: Record, *, index: int, origin: str, prev: str, last_time: str) -> None:
    """Check that ``rec`` may stand at ``index`` of log ``origin``, after the record whose leaf
    hash is ``prev`` and whose time is ``last_time``. Raises :class:`IntegrityError` at ``index``.

    Shared by ``ledger check`` (stored records) and ``ledger import`` (exported records).
    """
    if rec.index != index:
        raise IntegrityError(f"record {index}: leaf says index {rec.index}", index)
    if rec.log != origin:
        raise IntegrityError(f"record {index}: leaf names log {rec.log!r}, not {origin!r}", index)
    if rec.prev != prev:
        raise IntegrityError(
            f"record {index}: prev does not name the leaf hash of record {index - 1}", index
        )
    if rec.time < last_time:
        raise IntegrityError(
            f"record {index}: time {rec.time} is earlier than the record before", index
        )


def body_record_index(leaf: bytes, digest: bytes) -> int | None:
    """The index of the record ``leaf`` if it is a record of the body with ``digest``."""
    try:
        rec = Record.from_leaf(leaf)
    except Error:
        return None
    return rec.index if rec.body == "sha256:" + digest.hex() else None


def names_body(leaf: bytes, index: object, digest: bytes) -> bool:
    """Whether the stored leaf is record ``index`` of the body with ``digest``."""
    return body_record_index(leaf, digest) == index
