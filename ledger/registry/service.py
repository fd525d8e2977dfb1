"""Changing and reading the registry through a :class:`~ledger.log.Ledger` (admission included)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from attest.signers import KeySigner
from ledger._internal.jsontext import loads as strict_json
from ledger.admission import RootFiles
from ledger.errors import InvalidInput
from ledger.log import Ledger
from ledger.record import format_time
from ledger.registry.admin import check_admin_key
from ledger.registry.entries import sign_op
from ledger.registry.model import RegistryOp, SignerSpec, SigstoreIdentity
from ledger.sequencer import AppendResult

__all__ = ["add_signer", "list_signers", "make_spec", "revoke_signer"]


def _check_trusted_root(content: bytes) -> dict[str, Any]:
    """Parse a ``trusted_root.json`` and have sigstore load it and every key and certificate
    in it (which it reads only when a bundle is verified), so a bad one is refused now and not
    logged for good: a root whose CA certificate was junk was taken (the hostile test of
    2026-12-02), and every bundle of its signer refused later with an ASN.1 error."""
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import TrustedRoot

    doc = strict_json(content, "the trusted root")
    if not isinstance(doc, dict):
        raise InvalidInput("the trusted root must be a JSON object")
    roots = RootFiles()
    try:
        root = TrustedRoot.from_file(str(roots.path(content)))
        root.get_fulcio_certs()
        root.rekor_keyring(KeyringPurpose.VERIFY)
        root.ct_keyring(KeyringPurpose.VERIFY)
        for authority in root.get_timestamp_authorities():
            authority.certificates(allow_expired=True)
        # sigstore skips a log key it cannot load (a type it does not know, one whose declared
        # details are not its own): a root is refused only if none of its Rekor or none of its
        # CT log keys loads as sigstore loads them when it verifies
        for logs, what in [(root._inner.tlogs, "Rekor"), (root._inner.ctlogs, "CT log")]:
            if not any(_loads(log.public_key) for log in logs):
                raise ValueError(f"none of its {what} keys loads")
    except (ValueError, TypeError, SigstoreError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InvalidInput(f"not a Sigstore trusted root: {first}") from e
    finally:
        roots.close()
    return doc


def _loads(public_key: Any) -> bool:
    """Whether sigstore loads a trusted root's log key as it does to verify (its keyring
    skips, with a warning, one that does not)."""
    from sigstore._internal.trust import Key
    from sigstore.errors import Error as SigstoreError

    try:
        Key(public_key)
    except (SigstoreError, ValueError, TypeError):
        return False
    return True


def make_spec(
    name: str,
    *,
    now: datetime,
    key: bytes | None = None,
    issuer: str | None = None,
    identity: str | None = None,
    regex: bool = False,
    trusted_root: bytes | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    predicate_types: Sequence[str] = (),
) -> SignerSpec:
    """A validated signer: ``key`` (PEM or securesystemslib JSON) or ``issuer`` + ``identity`` +
    ``trusted_root`` (the file's bytes). ``valid_from`` defaults to ``now``."""
    for field, value in [("issuer", issuer), ("identity", identity)]:
        if value is not None:
            _check_text(field, value)
    if len(predicate_types) > _MAX_TYPES:
        raise InvalidInput(f"at most {_MAX_TYPES} predicate types per signer")
    if len(set(predicate_types)) != len(predicate_types):
        raise InvalidInput("a predicate type is listed twice")
    for uri in predicate_types:
        _check_type_uri(uri)
    sigstore = None
    if issuer is not None or identity is not None or trusted_root is not None:
        if key is not None or not (issuer and identity and trusted_root):
            raise InvalidInput(
                "give either a key, or a Sigstore issuer, identity and trusted root (all three)"
            )
        sigstore = SigstoreIdentity(issuer, identity, regex, _check_trusted_root(trusted_root))
        sigstore.policy()
    elif key is None:
        raise InvalidInput("a signer needs a key or a Sigstore identity")
    spec = SignerSpec(
        name=name,
        key_pem=key.decode("utf-8", "replace") if key is not None else None,
        sigstore=sigstore,
        valid_from=format_time(valid_from or now),
        valid_until=format_time(valid_until) if valid_until is not None else None,
        predicate_types=tuple(predicate_types),
    )
    # Refused when added, not when replayed: a registry that already logged such a key still
    # derives (the key simply verifies nothing)
    if spec.key_pem is not None and not spec.public_key().usable():
        raise InvalidInput(
            f"signer {name!r}: the key is not a usable Ed25519 public key (a small-order point: "
            "no signature can verify with it)"
        )
    return spec


def _hidden(value: str) -> str | None:
    """The first character of ``value`` a reader cannot see for what it is: a control (C0 or
    C1), a format character (bidi overrides, zero-width space, BOM), a surrogate, an unassigned
    code point or noncharacter, a private-use one, or a separator (space, U+2028)."""
    for ch in value:
        if unicodedata.category(ch)[0] in "CZ":
            return ch
    return None


def _check_text(field: str, value: str) -> None:
    """Strict in what the registry writes: an identity's text is what a reader sees."""
    ch = _hidden(value)
    if not value or ch is not None:
        where = "" if ch is None else f" (U+{ord(ch):04X})"
        raise InvalidInput(
            f"the Sigstore {field} must be non-empty text without control, format or "
            f"separator characters{where}"
        )


def _check_type_uri(uri: str) -> None:
    """An allowed predicate type is an in-toto TypeURI: a scheme, then nothing a reader cannot
    see (:func:`_hidden`)."""
    if len(uri) > _MAX_TYPE_URI or not _SCHEME.match(uri) or _hidden(uri) is not None:
        raise InvalidInput(
            f"predicate type {uri[:80]!r}: expected a URI such as https://slsa.dev/provenance/v1 "
            f"(a scheme, no spaces, control or format characters, at most {_MAX_TYPE_URI} "
            "characters)"
        )


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:.")
_MAX_TYPE_URI = 2048
_MAX_TYPES = 256


def _append_op(ledger: Ledger, op: RegistryOp, admin_key: KeySigner) -> AppendResult:
    """Admit and append one change on its own; a change another one overtook since admission
    (two adds of one name at once) is refused under the write lock, with nothing written."""
    check_admin_key(ledger.store, admin_key)
    return ledger.append_registry(ledger.admit(sign_op(op, admin_key)))


def add_signer(ledger: Ledger, spec: SignerSpec, admin_key: KeySigner) -> AppendResult:
    """Log an ``add`` for ``spec``; names are never reused."""
    return _append_op(ledger, RegistryOp.add(ledger.origin, spec, ledger.now()), admin_key)


def revoke_signer(
    ledger: Ledger, name: str, at: datetime | None, admin_key: KeySigner
) -> AppendResult:
    """Log a revocation of ``name`` effective at ``at`` (default: now). Records before the
    revocation's own record keep verifying as of their time."""
    now = ledger.now()
    return _append_op(ledger, RegistryOp.revoke(ledger.origin, name, at or now, now), admin_key)


def list_signers(ledger: Ledger) -> list[dict[str, Any]]:
    """Every signer ever added (revoked ones included), JSON-ready, trusted roots left out."""
    return [s.to_json() for s in ledger.trust().state.signers.values()]
