"""``verify --record``: the decision as a signed SLSA Verification Summary (VSA v1), appended to
the ledger, so "why was this deployed?" has a proved answer (the artifact's story shows it)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from verify.errors import EvidenceUnavailable, UsageError
from verify.pipeline import Outcome

__all__ = ["APPEND_TOKEN_ENV", "VERIFIER_ID", "record_decision", "vsa_statement"]

VERIFIER_ID = "https://provenance-ledger.dev/verify/v1"
APPEND_TOKEN_ENV = "LEDGER_APPEND_TOKEN"  # noqa: S105 - a variable name, not a secret


def vsa_statement(out: Outcome, policy_file: Path, ledger_url: str) -> dict[str, Any]:
    """The in-toto Statement of the decision: subjects are the artifacts, the predicate names the
    policy (by digest) and every attestation it rests on (the ledger records, by body digest)."""
    from ledger.record import format_time
    from verify._internal.files import read_limited

    policy_digest = hashlib.sha256(read_limited(policy_file, "policy")).hexdigest()
    origin = out.checkpoint.checkpoint.origin if out.checkpoint else ledger_url
    inputs = [
        {
            "uri": f"{ledger_url.rstrip('/')}/api/v1/entries/{a.index}",
            "digest": {"sha256": a.body_sha256},
        }
        for a in out.attestations
        if a.index is not None
    ]
    first = out.artifacts[0]
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": a.name, "digest": a.digest} for a in out.artifacts],
        "predicateType": "https://slsa.dev/verification_summary/v1",
        "predicate": {
            "verifier": {"id": VERIFIER_ID},
            "timeVerified": format_time(out.at),
            "resourceUri": f"{origin}#{first.digest_keys()[0]}",
            "policy": {"uri": policy_file.resolve().as_uri(), "digest": {"sha256": policy_digest}},
            "inputAttestations": inputs,
            "verificationResult": "PASSED" if out.passed else "FAILED",
            "verifiedLevels": [],
        },
    }


def record_decision(out: Outcome, policy_file: Path, ledger_url: str, key: Path) -> int:
    """Sign the VSA with ``key`` and append it; the record's index."""
    import json

    from attest.dsse import sign_envelope
    from attest.errors import Error as AttestError
    from attest.signers import read_signer

    try:
        signer = read_signer(key)
    except AttestError as e:
        raise UsageError(f"--record-key: {e}") from e
    payload = json.dumps(vsa_statement(out, policy_file, ledger_url)).encode()
    body = sign_envelope(payload, [signer]).to_json()
    token = os.environ.get(APPEND_TOKEN_ENV) or os.environ.get("LEDGER_TOKEN")
    return _append(ledger_url, body, token)


def _append(url: str, body: bytes, token: str | None) -> int:
    import httpx

    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    endpoint = url.rstrip("/") + "/api/v1/entries"
    try:
        r = httpx.post(endpoint, content=body, headers=headers, timeout=30)
    except httpx.HTTPError as e:
        raise EvidenceUnavailable(f"--record: cannot reach the ledger at {endpoint}: {e}") from e
    if r.status_code >= 400:
        raise EvidenceUnavailable(
            f"--record: the ledger refused the summary: HTTP {r.status_code} {r.text[:300]}"
        )
    try:
        return int(r.json()["index"])
    except (ValueError, KeyError, TypeError) as e:
        raise EvidenceUnavailable("--record: the ledger's receipt has no index") from e
