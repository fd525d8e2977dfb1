"""SLSA Verification Summary Attestations (VSA v1) from another verifier, checked as
``slsa-verifier verify-vsa`` does.

1. the DSSE signature with the given public key, on a signature whose ``keyid`` is the given key
   ID (slsa-verifier requires the match; ``ErrorNoValidSignature``). ECDSA signatures may be DER
   or raw ``r‖s`` (Google's VSAs are raw);
2. an in-toto Statement v1 with predicate type ``https://slsa.dev/verification_summary/v1``;
3. every expected subject digest is in a subject (``ErrorMismatchHash``);
4. ``verifier.id``, ``resourceUri`` equal the expected ones; ``verificationResult`` is PASSED;
5. every expected level is verified, where ``SLSA_BUILD_LEVEL_n`` also grants the lower build
   levels (``ErrorMismatchVerifiedLevels``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from attest.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from attest.errors import Error, InvalidInput, SignatureError
from attest.keys import load_public_key

__all__ = ["VSA_PREDICATE", "VsaMismatch", "VsaPolicy", "verify_vsa"]

VSA_PREDICATE = "https://slsa.dev/verification_summary/v1"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
_BUILD_LEVEL = re.compile(r"SLSA_BUILD_LEVEL_(\d+)")


class VsaMismatch(Error):
    """The VSA is validly signed but does not say what the policy requires (``code`` is
    slsa-verifier's error name)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code


@dataclass(frozen=True)
class VsaPolicy:
    """``verify-vsa``'s ``--subject-digest``, ``--verifier-id``, ``--resource-uri``,
    ``--verified-levels`` and ``--public-key-id``."""

    key_id: str
    subject_digests: Mapping[str, str]
    verifier_id: str
    resource_uri: str
    verified_levels: Sequence[str] = field(default=())

    def __post_init__(self) -> None:
        if not self.key_id or not self.subject_digests:
            raise InvalidInput("a VSA policy needs a key ID and at least one subject digest")


def _signed_statement(envelope: bytes, key_pem: bytes, key_id: str) -> dict[str, Any]:
    env = Envelope.from_json(envelope)
    if env.payload_type != INTOTO_PAYLOAD_TYPE:
        raise VsaMismatch("ErrorInvalidDssePayload", f"payload type {env.payload_type}")
    key = load_public_key(key_pem, source="VSA public key")
    for sig in env.signatures:
        if sig.keyid != key_id:
            continue
        try:
            key.verify(sig.sig, env.pae())
        except SignatureError:
            continue
        try:
            statement = json.loads(env.unverified_payload)
        except ValueError as e:
            raise VsaMismatch("ErrorInvalidDssePayload", f"payload is not JSON: {e}") from e
        if not isinstance(statement, dict):
            raise VsaMismatch("ErrorInvalidDssePayload", "payload is not a statement")
        return statement
    raise SignatureError(f"no signature with key ID {key_id!r} verifies (ErrorNoValidSignature)")


def _levels_granted(levels: Sequence[str]) -> set[str]:
    granted = set(levels)
    for level in levels:
        if m := _BUILD_LEVEL.fullmatch(level):
            granted.update(f"SLSA_BUILD_LEVEL_{n}" for n in range(int(m.group(1)) + 1))
    return granted


def _check(statement: Mapping[str, Any], policy: VsaPolicy) -> None:
    if statement.get("_type") != STATEMENT_V1 or statement.get("predicateType") != VSA_PREDICATE:
        raise VsaMismatch("ErrorInvalidDssePayload", "not an in-toto v1 SLSA VSA v1")
    subjects = [s.get("digest", {}) for s in statement.get("subject") or [] if isinstance(s, dict)]
    for algo, value in policy.subject_digests.items():
        if not any(d.get(algo) == value for d in subjects if isinstance(d, dict)):
            raise VsaMismatch("ErrorMismatchHash", f"no subject has {algo}:{value}")
    pred = statement.get("predicate") or {}
    checks = (
        ("ErrorMismatchVerifierID", (pred.get("verifier") or {}).get("id"), policy.verifier_id),
        ("ErrorMismatchResourceURI", pred.get("resourceUri"), policy.resource_uri),
        ("ErrorInvalidVerificationResult", pred.get("verificationResult"), "PASSED"),
    )
    for code, have, want in checks:
        if have != want:
            raise VsaMismatch(code, f"{have!r}, expected {want!r}")
    missing = set(policy.verified_levels) - _levels_granted(pred.get("verifiedLevels") or [])
    if missing:
        raise VsaMismatch("ErrorMismatchVerifiedLevels", f"levels {sorted(missing)} not verified")


def verify_vsa(envelope: bytes, key_pem: bytes, policy: VsaPolicy) -> dict[str, Any]:
    """Verify a VSA (DSSE envelope JSON) with its signer's public key (PEM) against ``policy``;
    return the verified statement. Raises :class:`SignatureError`, :class:`VsaMismatch` or
    :class:`InvalidInput`."""
    statement = _signed_statement(envelope, key_pem, policy.key_id)
    _check(statement, policy)
    return statement
