"""Where a signed attestation goes: a file (written atomically), stdout, or a ledger.

A ledger submission is ``POST {URL}/api/v1/entries`` with the exact envelope or bundle bytes as
the body and ``Authorization: Bearer $LEDGER_TOKEN``; the ledger answers with the record's index,
leaf hash, inclusion proof and signed checkpoint (docs/formats.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from attest._internal.files import write_atomic
from attest.errors import SubmitError

__all__ = ["TOKEN_ENV", "submit_to_ledger", "write_output"]

TOKEN_ENV = "LEDGER_TOKEN"  # noqa: S105 - a variable name, not a secret


def write_output(path: str, data: bytes) -> None:
    write_atomic(Path(path) if path != "-" else "-", data if data.endswith(b"\n") else data + b"\n")


def submit_to_ledger(url: str, body: bytes, *, timeout: float = 30.0) -> dict[str, Any]:
    """Submit ``body`` to the ledger at ``url``; return its JSON receipt or raise SubmitError."""
    import httpx

    headers = {"Content-Type": "application/json"}
    token = os.environ.get(TOKEN_ENV)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    endpoint = url.rstrip("/") + "/api/v1/entries"
    try:
        response = httpx.post(endpoint, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as e:
        raise SubmitError(f"cannot reach the ledger at {endpoint}: {e}") from e
    if response.status_code >= 400:
        detail = response.text.strip().splitlines()[0][:300] if response.text.strip() else ""
        raise SubmitError(f"ledger refused the submission: HTTP {response.status_code} {detail}")
    try:
        receipt: dict[str, Any] = response.json()
    except ValueError as e:
        raise SubmitError(f"ledger answered HTTP {response.status_code} without JSON") from e
    return receipt
