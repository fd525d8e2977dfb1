"""Whom a deploy policy trusts: the ledger's checkpoint keys and state (``ledger:``) and the
signers (``signers:`` — a key, a Sigstore identity, or the ledger's registry). Read by
:mod:`verify.policy` into always-valid value classes, each naming the place of every mistake."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from attest._internal.frozen import Frozen, set_field
from verify._internal.reader import Fields, Loc, Problems

__all__ = ["LedgerPolicy", "SignerPolicy", "SigstoreSigner"]


class LedgerPolicy(Frozen):
    """The ledger this verifier trusts: checkpoint verifier key(s) in the C2SP vkey text form
    (``ledger init`` prints it), where it keeps the last checkpoint it trusted, and the
    ledger's admin public key(s) for registry-trusted signers."""

    _fields = ("keys", "state_dir", "admin_keys")
    keys: list[str]
    state_dir: str | None
    admin_keys: list[str]

    def __init__(self, keys: list[str], state_dir: str | None, admin_keys: list[str]) -> None:
        set_field(self, "keys", keys)
        set_field(self, "state_dir", state_dir)
        set_field(self, "admin_keys", admin_keys)

    @property
    def origin(self) -> str:
        """The log's origin: the name part of its verifier keys."""
        return self.keys[0].split("+", 1)[0]

    @classmethod
    def read(cls, value: Any, loc: Loc, problems: Problems) -> LedgerPolicy | None:
        f = Fields.of(value, loc, problems, cls.__name__)
        if f is None:
            return None
        keys = f.texts("keys", min_items=1)
        names = {k.split("+", 1)[0] for k in keys}
        if f.ok and (len(names) != 1 or "" in names):
            f.fail(
                "Value error, every ledger key must name the same log (NAME+HASH+KEY)", key="keys"
            )
        out = cls(
            keys, f.text("stateDir", name="state_dir"), f.texts("adminKeys", name="admin_keys")
        )
        return out if f.done() else None


class SigstoreSigner(Frozen):
    """A keyless signer: the certificate's OIDC issuer (exact) and subject, exact
    (``identity``) or a regular expression matched against the whole subject
    (``identityRegex``), verified against ``trustedRoot`` (default: the Sigstore production
    root shipped inside sigstore-python, read offline)."""

    _fields = ("issuer", "identity", "identity_regex", "trusted_root")
    issuer: str
    identity: str | None
    identity_regex: str | None
    trusted_root: str | None

    def __init__(
        self,
        issuer: str,
        identity: str | None,
        identity_regex: str | None,
        trusted_root: str | None,
    ) -> None:
        set_field(self, "issuer", issuer)
        set_field(self, "identity", identity)
        set_field(self, "identity_regex", identity_regex)
        set_field(self, "trusted_root", trusted_root)

    @classmethod
    def read(cls, value: Any, loc: Loc, problems: Problems) -> SigstoreSigner | None:
        f = Fields.of(value, loc, problems, cls.__name__)
        if f is None:
            return None
        out = cls(
            f.text("issuer", required=True, min_length=1),
            f.text("identity"),
            f.text("identityRegex", name="identity_regex"),
            f.text("trustedRoot", name="trusted_root"),
        )
        if not f.done():
            return None
        if (out.identity is None) == (out.identity_regex is None):
            f.fail("Value error, give exactly one of identity or identityRegex")
        elif out.identity_regex is not None:
            try:
                re.compile(out.identity_regex)
            except re.error as e:
                f.fail(f"Value error, identityRegex is not a regular expression: {e}")
        return out if f.ok else None


class SignerPolicy(Frozen):
    """One trusted signer: exactly one of a public key file, a Sigstore identity, or
    ``registry: true`` (whoever the ledger's trust registry allowed at the record's time,
    optionally only the registry ``names`` listed). ``notBefore``/``notAfter`` bound the time
    (the ledger's record time) at which its signatures count."""

    _fields = ("key", "sigstore", "registry", "names", "not_before", "not_after")
    key: str | None
    sigstore: SigstoreSigner | None
    registry: bool
    names: list[str]
    not_before: datetime | None
    not_after: datetime | None

    def __init__(
        self,
        key: str | None,
        sigstore: SigstoreSigner | None,
        registry: bool,
        names: list[str],
        not_before: datetime | None,
        not_after: datetime | None,
    ) -> None:
        set_field(self, "key", key)
        set_field(self, "sigstore", sigstore)
        set_field(self, "registry", registry)
        set_field(self, "names", names)
        set_field(self, "not_before", not_before)
        set_field(self, "not_after", not_after)

    def valid_at(self, t: datetime) -> str:
        """Why this signer does not count at ``t``, or ``""`` if it does."""
        if self.not_before is not None and t < self.not_before:
            return f"not valid before {self.not_before.isoformat()}"
        if self.not_after is not None and t >= self.not_after:
            return f"not valid after {self.not_after.isoformat()}"
        return ""

    @classmethod
    def read(cls, value: Any, loc: Loc, problems: Problems) -> SignerPolicy | None:
        f = Fields.of(value, loc, problems, cls.__name__)
        if f is None:
            return None
        if f.raw("names") == []:  # an empty allow-list must not read as "everyone"
            f.fail(
                "an empty list allows no registry signer: list names, or drop names to "
                "allow every signer the registry trusts",
                key="names",
            )
        out = cls(
            f.text("key"),
            f.model("sigstore", SigstoreSigner.read),
            f.flag("registry"),
            f.texts("names"),
            f.time("notBefore", name="not_before"),
            f.time("notAfter", name="not_after"),
        )
        if not f.done():
            return None
        why = out._inconsistency()
        if why:
            f.fail(f"Value error, {why}")
            return None
        return out

    def _inconsistency(self) -> str:
        if sum([self.key is not None, self.sigstore is not None, self.registry]) != 1:
            return "a signer is exactly one of key, sigstore or registry: true"
        if self.names and not self.registry:
            return "names applies to registry signers only"
        for t in (self.not_before, self.not_after):
            if t is not None and t.tzinfo is None:
                return "notBefore/notAfter need a time zone (e.g. 2026-01-01T00:00:00Z)"
        if self.not_before and self.not_after and self.not_after <= self.not_before:
            return "notAfter must be after notBefore"
        return ""
