"""Steps 6 and 7 of the pipeline: who signed each body, and whether that signer counts then.

:class:`Trust` holds the policy's signers, loaded once: public keys (files relative to the policy)
and Sigstore identities (sigstore-python is imported only when a bundle has to be opened).
:meth:`Trust.open` verifies one body — a DSSE envelope against every trusted key, a Sigstore bundle
against each identity — and returns an :class:`Attestation` naming the policy signers whose
signature verified and who were valid at the record's time. A body signed by nobody the policy
trusts is :class:`Untrusted` (reported, never counted), also when its DSSE ``keyid`` (an unsigned
hint) names a trusted key. A Sigstore bundle counts only once sigstore verified all of it against
the trusted root (:mod:`verify.bundle_trust`): a certificate the root did not issue is never
counted, whatever identity it claims; a genuine certificate of a trusted signer on a bundle that
does not verify is a :class:`~verify.errors.SignatureFailure`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attest._internal.frozen import Frozen, Value, set_field
from attest.errors import Error as AttestError
from attest.errors import SignatureError
from attest.keys import PublicKey
from attest.statement import Statement
from attest.verification import VerifiedStatement, open_statement
from verify.errors import PolicyFileError
from verify.policy import Policy, SigstoreSigner

if TYPE_CHECKING:  # imported by the pipeline only for a policy with registry signers
    from verify.registry import RegistryHistory

__all__ = ["Attestation", "Trust", "Untrusted", "default_trusted_root"]

_ROOT_DIR = "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"


class Attestation(Frozen):
    """A statement whose signature verified, with the policy signers that count for it.

    ``index``: the ledger record, or None for a third-party attestation; ``time``: the record's
    time (ledger) or the verification time (third-party); ``refused``: signers whose signature
    verified but who did not count then; ``keys_of``: signer name -> the key (SPKI fingerprint)
    behind it — a threshold counts distinct keys, so a key that is both a policy signer and a
    registry signer counts once; ``body_sha256``: hex SHA-256 of the exact body (what the
    ledger's record names)."""

    _fields = (
        "index",
        "time",
        "statement",
        "verified",
        "signers",
        "refused",
        "keys_of",
        "body_sha256",
    )
    index: int | None
    time: datetime
    statement: Statement
    verified: VerifiedStatement
    signers: tuple[str, ...]
    refused: tuple[str, ...]
    keys_of: Mapping[str, str]
    body_sha256: str

    def __init__(
        self,
        index: int | None,
        time: datetime,
        statement: Statement,
        verified: VerifiedStatement,
        signers: tuple[str, ...],
        refused: tuple[str, ...] = (),
        keys_of: Mapping[str, str] | None = None,
        body_sha256: str = "",
    ) -> None:
        set_field(self, "index", index)
        set_field(self, "time", time)
        set_field(self, "statement", statement)
        set_field(self, "verified", verified)
        set_field(self, "signers", signers)
        set_field(self, "refused", refused)
        set_field(self, "keys_of", {} if keys_of is None else keys_of)
        set_field(self, "body_sha256", body_sha256)

    def distinct(self, names: Iterable[str]) -> set[str]:
        """The distinct signing keys (or identities) behind ``names``."""
        return {self.keys_of.get(n, n) for n in names}

    @property
    def label(self) -> str:
        return f"record {self.index}" if self.index is not None else "attestation"


class Untrusted(Frozen):
    _fields = ("index", "reason")
    index: int | None
    reason: str

    def __init__(self, index: int | None, reason: str) -> None:
        set_field(self, "index", index)
        set_field(self, "reason", reason)


def default_trusted_root() -> Path:
    """The Sigstore production trusted root shipped inside sigstore-python (no network)."""
    import importlib.util

    spec = importlib.util.find_spec("sigstore")
    if spec is None or not spec.submodule_search_locations:
        raise PolicyFileError("sigstore-python is not installed: give sigstore.trustedRoot")
    root = Path(next(iter(spec.submodule_search_locations))) / "_store" / _ROOT_DIR
    return root / "trusted_root.json"


def _hinted(named: list[tuple[str, PublicKey]], doc: dict[str, Any]) -> str:
    """Why a body that verified with no trusted key is not counted, naming the trusted signer its
    signatures' ``keyid`` claims: the keyid is an unsigned hint anyone can copy, so such a body
    is listed as not trusted (never a proof failure that would block every later deploy)."""
    hints = {s.get("keyid") for s in doc.get("signatures") or [] if isinstance(s, dict)}
    claimed = [n for n, k in named if k.keyid in hints]
    if claimed:
        return (
            f"its keyid names trusted signer {claimed[0]!r} but no signature verifies with that "
            "key (the keyid is an unsigned hint): not counted"
        )
    return "signed by no key the policy trusts"


def _read_key(policy: Policy, name: str, rel: str) -> PublicKey:
    from attest.keys import load_public_key
    from verify._internal.files import read_limited

    path = policy.path(rel)
    data = read_limited(path, f"signers.{name}.key", error=PolicyFileError)
    try:
        return load_public_key(data, source=str(path))
    except AttestError as e:
        raise PolicyFileError(f"signers.{name}.key: {e}") from e


class Trust(Value):
    """The policy's signers, loaded: keys by name, Sigstore identities by name; ``registry`` is
    set once the evidence's registry is replayed."""

    _fields = ("policy", "keys", "identities", "admin_keys", "registry")

    def __init__(
        self,
        policy: Policy,
        keys: dict[str, PublicKey] | None = None,
        identities: dict[str, SigstoreSigner] | None = None,
        admin_keys: list[PublicKey] | None = None,
        registry: RegistryHistory | None = None,
    ) -> None:
        self.policy = policy
        self.keys = {} if keys is None else keys
        self.identities = {} if identities is None else identities
        self.admin_keys = [] if admin_keys is None else admin_keys
        self.registry = registry

    @classmethod
    def load(cls, policy: Policy) -> Trust:
        trust = cls(policy)
        seen: dict[bytes, str] = {}
        for name, s in policy.signers.items():
            if s.key is not None:
                key = _read_key(policy, name, s.key)
                if key.spki_pem() in seen:
                    raise PolicyFileError(
                        f"signers {seen[key.spki_pem()]!r} and {name!r} are the same key: "
                        "a threshold counts distinct signers"
                    )
                seen[key.spki_pem()] = name
                trust.keys[name] = key
            elif s.sigstore is not None:
                if s.sigstore.trusted_root is not None:  # sigstore reads it: bound it first
                    from verify._internal.files import read_limited

                    where = f"signers.{name}.sigstore.trustedRoot"
                    read_limited(policy.path(s.sigstore.trusted_root), where, error=PolicyFileError)
                trust.identities[name] = s.sigstore
        if policy.ledger is not None:
            trust.admin_keys = [
                _read_key(policy, "ledger.adminKeys", k) for k in policy.ledger.admin_keys
            ]
        return trust

    @property
    def wants_registry(self) -> bool:
        return any(s.registry for s in self.policy.signers.values())

    def _registry_keys(self, index: int | None) -> list[tuple[str, PublicKey]]:
        """(``POLICYNAME/REGISTRYNAME``, key) of every registry key signer before ``index``."""
        if self.registry is None or index is None:
            return []
        state = self.registry.state_before(index)
        out = []
        for name, s in self.policy.signers.items():
            if s.registry:
                out += [
                    (f"{name}/{r.spec.name}", r.key)
                    for r in state.signers.values()
                    if r.key is not None and (not s.names or r.spec.name in s.names)
                ]
        return out

    def open(self, body: bytes, index: int | None, time: datetime) -> Attestation | Untrusted:
        """Steps 6 and 7 for one body recorded (or judged) at ``time``."""
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            return Untrusted(index, "not JSON")
        if not isinstance(doc, dict):
            return Untrusted(index, "not a JSON object")
        if "dsseEnvelope" in doc or ("mediaType" in doc and "verificationMaterial" in doc):
            opened = self._open_bundle(body, index, time)
        else:
            opened = self._open_envelope(body, doc, index, time)
        if isinstance(opened, Attestation):
            return opened.replace(body_sha256=hashlib.sha256(body).hexdigest())
        return opened

    def _open_envelope(
        self, body: bytes, doc: dict[str, Any], index: int | None, time: datetime
    ) -> Attestation | Untrusted:
        if doc.get("payloadType") != "application/vnd.in-toto+json":
            return Untrusted(index, f"payloadType {doc.get('payloadType')!r} is not in-toto")
        named = [*self.keys.items(), *self._registry_keys(index)]
        if not named:
            return Untrusted(index, "a DSSE envelope, and the policy trusts no key")
        try:
            verified = open_statement(body, keys=[k for _, k in named])
        except SignatureError:
            return Untrusted(index, _hinted(named, doc))
        except AttestError as e:
            return Untrusted(index, f"not a valid attestation: {e}")
        # by the key itself: a keyid is whatever the key's file says (two files may claim one)
        signed = {k.spki_pem() for k in verified.signer_keys}
        names = [n for n, k in named if k.spki_pem() in signed]
        att = self._attestation(verified, names, index, time)
        prints = {n: hashlib.sha256(k.spki_pem()).hexdigest() for n, k in named}
        return att.replace(keys_of={n: prints[n] for n in names})

    def _open_bundle(
        self, body: bytes, index: int | None, time: datetime
    ) -> Attestation | Untrusted:
        """Attributed to an identity only once sigstore verified the whole bundle against that
        identity's root (:mod:`verify.bundle_trust` says in what order, and what is exit 4)."""
        from attest.sigstore_bundle import IdentityPolicy
        from verify.bundle_trust import TrustedIdentity, judge_bundle

        trusted = []
        for name, s in self.identities.items():
            regex = s.identity_regex is not None
            subject = s.identity_regex if regex else s.identity
            assert subject is not None
            root = self.policy.path(s.trusted_root) if s.trusted_root else default_trusted_root()
            identity = IdentityPolicy(s.issuer, subject, subject_regex=regex)
            trusted.append(TrustedIdentity(name, identity, root))
        where = f"record {index}" if index is not None else "a Sigstore bundle"
        verdict = judge_bundle(body, trusted, where)
        if verdict.name is None or verdict.verified is None:
            return Untrusted(index, verdict.reason)
        return self._attestation(verdict.verified, [verdict.name], index, time)

    def _attestation(
        self, verified: VerifiedStatement, names: list[str], index: int | None, time: datetime
    ) -> Attestation:
        """Step 7: keep the signers valid at the record's time (the policy's window, and for a
        registry signer also the registry's: validity, revocation, allowed predicate types)."""
        counted, refused = [], []
        for name in names:
            why = self._refusal(name, index, time, verified.statement.predicate_type)
            if why:
                refused.append(f"{name}: {why} (signed at {time.isoformat()})")
            else:
                counted.append(name)
        return Attestation(
            index, time, verified.statement, verified, tuple(counted), tuple(refused)
        )

    def _refusal(self, name: str, index: int | None, time: datetime, predicate_type: str) -> str:
        """Why ``name`` does not count for a record at ``index``, ``time``: the policy's window;
        for a registry signer the registry as it stood before the record (its key, validity,
        predicate types: a signer added later never validates an older record), and then every
        revocation the proved registry holds, also one logged after the record, whose effective
        time is at or before the record's (``ledger signers revoke --at`` dated to a leak) — of
        this name or of any registry name with the same key: a revocation is of the key."""
        policy_name, _, registry_name = name.partition("/")
        why = self.policy.signers[policy_name].valid_at(time)
        if why or not registry_name or self.registry is None or index is None:
            return why
        from ledger.record import format_time

        when = format_time(time)
        signer = self.registry.state_before(index).signers[registry_name]
        why = signer.refusal(when, predicate_type)
        revoked = self.registry.key_revocation(registry_name, signer.key)
        if why or revoked is None or when < revoked[1]:
            return why
        name_, at, logged = revoked
        whose = "" if name_ == registry_name else f" has the key of {name_!r}, which"
        after = "after" if index is None or logged > index else "before"
        return (
            f"signer {registry_name!r}{whose} was revoked at {at}, by record {logged} "
            f"logged {after} this one"
        )
