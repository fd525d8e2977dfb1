"""The trust registry's data, pure: signer specs, the two operations, and the state they fold to.

A registry operation is the payload of a DSSE envelope of type :data:`REGISTRY_PAYLOAD_TYPE`
signed by the ledger's admin key (see :mod:`ledger.registry.entries`). The state at log index
``i`` is ``fold(apply, ops of the registry records before i)``: no clock, no database.

Times are record times (``YYYY-MM-DDTHH:MM:SS.ffffffZ``, UTC), so they compare as strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

import rfc8785

from attest.errors import Error as AttestError
from attest.keys import PublicKey, load_public_key
from attest.sigstore_bundle import IdentityPolicy
from ledger.errors import InvalidInput, NotFound, NotTrusted
from ledger.record import format_time, parse_time

__all__ = [
    "REGISTRY_PAYLOAD_TYPE",
    "RegistryOp",
    "RegistryState",
    "Signer",
    "SignerSpec",
    "SigstoreIdentity",
    "parse_op",
]

REGISTRY_PAYLOAD_TYPE = "application/vnd.provenance-ledger.registry.v1+json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")


def _time(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"registry entry: {what} must be a time string")
    try:
        parse_time(value)
    except InvalidInput as e:
        raise InvalidInput(f"registry entry: {what}: {e}") from e
    return value


def _str(doc: Mapping[str, Any], key: str, what: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"registry entry: {what} must be a non-empty string")
    return value


@dataclass(frozen=True)
class SigstoreIdentity:
    """A keyless signer: Fulcio certificate issuer (exact) and subject (exact or full-match
    regex), verified against the trusted root carried in the entry itself."""

    issuer: str
    identity: str
    regex: bool
    trusted_root: Mapping[str, Any] = field(repr=False)

    def policy(self) -> IdentityPolicy:
        try:
            return IdentityPolicy(self.issuer, self.identity, subject_regex=self.regex)
        except AttestError as e:
            raise InvalidInput(f"registry entry: {e}") from e

    def root_bytes(self) -> bytes:
        return rfc8785.dumps(dict(self.trusted_root))

    def to_json(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "identity": self.identity,
            "regex": self.regex,
            "trustedRoot": dict(self.trusted_root),
        }

    @classmethod
    def from_json(cls, doc: Any) -> SigstoreIdentity:
        if not isinstance(doc, dict):
            raise InvalidInput("registry entry: sigstore must be an object")
        root, regex = doc.get("trustedRoot"), doc.get("regex", False)
        if not isinstance(root, dict) or not isinstance(regex, bool):
            raise InvalidInput("registry entry: trustedRoot must be an object, regex a boolean")
        out = cls(_str(doc, "issuer", "issuer"), _str(doc, "identity", "identity"), regex, root)
        out.policy()  # a bad regular expression is refused when added, not when first used
        return out


@dataclass(frozen=True)
class SignerSpec:
    """What an admin registers: a public key or a Sigstore identity, with its limits."""

    name: str
    key_pem: str | None
    sigstore: SigstoreIdentity | None
    valid_from: str
    valid_until: str | None = None
    predicate_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise InvalidInput(f"signer name {self.name!r} must match {_NAME.pattern}")
        if (self.key_pem is None) == (self.sigstore is None):
            raise InvalidInput("a signer is exactly one of a public key or a Sigstore identity")
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise InvalidInput("a signer's validUntil must be after its validFrom")
        if self.key_pem is not None:
            object.__setattr__(self, "key_pem", self.public_key().spki_pem().decode())

    def public_key(self) -> PublicKey:
        assert self.key_pem is not None
        try:
            return load_public_key(self.key_pem.encode(), source=f"signer {self.name}")
        except AttestError as e:
            raise InvalidInput(str(e)) from e

    @property
    def kind(self) -> Literal["key", "sigstore"]:
        return "key" if self.key_pem is not None else "sigstore"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "validFrom": self.valid_from}
        if self.key_pem is not None:
            out["key"] = self.key_pem
        if self.sigstore is not None:
            out["sigstore"] = self.sigstore.to_json()
        if self.valid_until is not None:
            out["validUntil"] = self.valid_until
        if self.predicate_types:
            out["predicateTypes"] = list(self.predicate_types)
        return out

    @classmethod
    def from_json(cls, doc: Any) -> SignerSpec:
        if not isinstance(doc, dict):
            raise InvalidInput("registry entry: signer must be an object")
        key = doc.get("key")
        if key is not None and not isinstance(key, str):
            raise InvalidInput("registry entry: key must be a PEM string")
        types = doc.get("predicateTypes", [])
        if not isinstance(types, list) or not all(isinstance(t, str) and t for t in types):
            raise InvalidInput("registry entry: predicateTypes must be a list of URIs")
        until = doc.get("validUntil")
        return cls(
            name=_str(doc, "name", "name"),
            key_pem=key,
            sigstore=SigstoreIdentity.from_json(doc["sigstore"]) if "sigstore" in doc else None,
            valid_from=_time(doc.get("validFrom"), "validFrom"),
            valid_until=None if until is None else _time(until, "validUntil"),
            predicate_types=tuple(types),
        )


@dataclass(frozen=True)
class Signer:
    """A registered signer as of some log index: its spec, where it was added, its revocation."""

    spec: SignerSpec
    added_at_index: int
    revoked_at: str | None = None
    key: PublicKey | None = field(default=None, compare=False, repr=False)

    def refusal(self, at: str, predicate_type: str | None, not_before: str | None = None) -> str:
        """Why this signer may not sign ``predicate_type`` at ``at``, or ``""`` if it may.
        ``not_before`` (≤ ``at``) widens the instant to an interval for as-of checks."""
        s, start = self.spec, not_before or at
        if at < s.valid_from:
            return f"signer {s.name!r} is not valid until {s.valid_from}"
        if self.revoked_at is not None and start >= self.revoked_at:
            return f"signer {s.name!r} was revoked at {self.revoked_at}"
        if s.valid_until is not None and start >= s.valid_until:
            return f"signer {s.name!r} expired at {s.valid_until}"
        if s.predicate_types and predicate_type not in s.predicate_types:
            return (
                f"signer {s.name!r} is not allowed to sign predicate type {predicate_type} "
                f"(allowed: {', '.join(s.predicate_types)})"
            )
        return ""

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.spec.kind, **self.spec.to_json(), "addedAtIndex": self.added_at_index}
        if self.spec.sigstore is not None:
            out["sigstore"] = {k: v for k, v in out["sigstore"].items() if k != "trustedRoot"}
        if self.revoked_at is not None:
            out["revokedAt"] = self.revoked_at
        return out


@dataclass(frozen=True)
class RegistryOp:
    """``add`` (with ``spec``) or ``revoke`` (``name`` at ``at``) in the log named ``log`` (its
    origin: an entry signed for one ledger never applies in another that shares the admin key);
    ``time`` is the admin's clock."""

    op: Literal["add", "revoke"]
    log: str
    time: str
    spec: SignerSpec | None = None
    name: str = ""
    at: str = ""

    def to_json(self) -> dict[str, Any]:
        if self.spec is not None:
            return {
                "v": 1,
                "op": "add",
                "log": self.log,
                "time": self.time,
                "signer": self.spec.to_json(),
            }
        return {
            "v": 1,
            "op": "revoke",
            "log": self.log,
            "time": self.time,
            "name": self.name,
            "at": self.at,
        }

    def to_bytes(self) -> bytes:
        """RFC 8785 canonical JSON: the payload that gets signed, and the derived row."""
        return rfc8785.dumps(self.to_json())

    @classmethod
    def add(cls, log: str, spec: SignerSpec, now: datetime) -> RegistryOp:
        return cls("add", log, format_time(now), spec=spec)

    @classmethod
    def revoke(cls, log: str, name: str, at: datetime, now: datetime) -> RegistryOp:
        return cls("revoke", log, format_time(now), name=name, at=format_time(at))


def parse_op(doc: Any) -> RegistryOp:
    """A registry operation from its parsed JSON payload; :class:`InvalidInput` if malformed."""
    if not isinstance(doc, dict) or doc.get("v") != 1:
        raise InvalidInput("registry entry: payload must be an object with v = 1")
    log, time = _str(doc, "log", "log (the ledger's origin)"), _time(doc.get("time"), "time")
    if doc.get("op") == "add":
        return RegistryOp("add", log, time, spec=SignerSpec.from_json(doc.get("signer")))
    if doc.get("op") == "revoke":
        return RegistryOp(
            "revoke", log, time, name=_str(doc, "name", "name"), at=_time(doc.get("at"), "at")
        )
    raise InvalidInput(f"registry entry: unknown op {doc.get('op')!r} (add or revoke)")


@dataclass(frozen=True)
class RegistryState:
    """Every signer ever added, by name (names are never reused), with revocations applied."""

    signers: Mapping[str, Signer] = field(default_factory=lambda: MappingProxyType({}))

    def apply(self, op: RegistryOp, index: int) -> RegistryState:
        """The state after ``op`` (recorded at ``index``); :class:`InvalidInput` if it cannot
        apply (a name added twice, an unknown name, a second revocation)."""
        signers = dict(self.signers)
        if op.spec is not None:
            if op.spec.name in signers:
                raise InvalidInput(f"signer {op.spec.name!r} already exists; names are not reused")
            key = op.spec.public_key() if op.spec.key_pem is not None else None
            signers[op.spec.name] = Signer(op.spec, index, key=key)
        else:
            old = signers.get(op.name)
            if old is None:
                raise NotFound(f"cannot revoke {op.name!r}: no such signer")
            if old.revoked_at is not None:
                raise InvalidInput(f"signer {op.name!r} was already revoked at {old.revoked_at}")
            signers[op.name] = replace(old, revoked_at=op.at)
        return RegistryState(MappingProxyType(signers))

    def keys(self) -> list[Signer]:
        return [s for s in self.signers.values() if s.key is not None]

    def identities(self) -> list[Signer]:
        return [s for s in self.signers.values() if s.spec.sigstore is not None]

    def check(
        self, names: Iterable[str], predicate_type: str | None, at: str, grace: timedelta
    ) -> tuple[str, ...]:
        """The names among ``names`` allowed to sign ``predicate_type`` at ``at`` (or, with a
        ``grace``, at some instant of ``[at - grace, at]``); :class:`NotTrusted` with the first
        reason if none is."""
        not_before = format_time(parse_time(at) - grace) if grace else None
        allowed: list[str] = []
        reasons: list[str] = []
        for name in names:
            why = self.signers[name].refusal(at, predicate_type, not_before)
            (reasons if why else allowed).append(why or name)
        if not allowed:
            raise NotTrusted(reasons[0] if reasons else "unknown signer")
        return tuple(allowed)
