"""The JSON shapes of the API (for OpenAPI and validation), with examples."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ledger.sequencer import AppendResult

if TYPE_CHECKING:
    from ledger.log import InclusionProof

__all__ = [
    "BatchReply",
    "BatchRequest",
    "ConsistencyProof",
    "EntryReply",
    "Health",
    "InclusionReply",
    "ProblemDetail",
    "Receipt",
    "TokenCreate",
    "TokenCreated",
    "TokenPublic",
    "b64",
    "problem_responses",
    "proof_json",
    "receipt_json",
]

_CP = "demo.example/ledger\n3\nq5x0e1uT0b0bN8sU5bqsE1JmXy1F0Wb3m2o3Cj0mB2k=\n\n\u2014 demo.example/ledger Az3…=\n"
_HASH = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries: a problem+json body for each status code."""
    return {c: {"model": ProblemDetail, "content": {"application/problem+json": {}}} for c in codes}


def proof_json(p: InclusionProof) -> dict[str, Any]:
    return {
        "index": p.index,
        "treeSize": p.tree_size,
        "leafHash": b64(p.leaf_hash),
        "inclusionProof": [b64(h) for h in p.proof],
        "checkpoint": p.checkpoint,
    }


class Receipt(BaseModel):
    """An acknowledged append: durable, integrated, proved and covered by a signed checkpoint."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "index": 2,
                    "leafHash": _HASH,
                    "inclusionProof": [_HASH],
                    "treeSize": 3,
                    "checkpoint": _CP,
                    "duplicate": False,
                }
            ]
        }
    )

    index: int = Field(ge=0)
    leafHash: str  # noqa: N815 - the wire name
    inclusionProof: list[str]  # noqa: N815
    treeSize: int = Field(ge=1)  # noqa: N815
    checkpoint: str
    duplicate: bool


def receipt_json(r: AppendResult) -> dict[str, object]:
    return {
        "index": r.index,
        "leafHash": b64(r.leaf_hash),
        "inclusionProof": [b64(p) for p in r.inclusion_proof],
        "treeSize": r.tree_size,
        "checkpoint": r.checkpoint,
        "duplicate": r.duplicate,
    }


class ProblemDetail(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:provenance-ledger:problem:invalid-input",
                    "title": "Invalid input",
                    "status": 422,
                    "detail": "body is not valid JSON: Expecting value: line 1 column 1 (char 0)",
                }
            ]
        }
    )

    type: str
    title: str
    status: int
    detail: str


class BatchRequest(BaseModel):
    """Each entry is the standard base64 of one body's exact bytes (so no byte is re-encoded)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"entries": ["eyJwYXlsb2FkVHlwZSI6Li4ufQ=="]}]}
    )

    entries: list[str] = Field(min_length=1)


class BatchReply(BaseModel):
    """One item per entry, in order: a receipt, or the problem that refused that entry."""

    results: list[Receipt | ProblemDetail]


_PROOF: dict[str, JsonValue] = {
    "index": 2,
    "treeSize": 3,
    "leafHash": _HASH,
    "inclusionProof": [_HASH],
    "checkpoint": _CP,
}


class InclusionReply(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_PROOF]})

    index: int
    treeSize: int  # noqa: N815
    leafHash: str  # noqa: N815
    inclusionProof: list[str]  # noqa: N815
    checkpoint: str


class EntryReply(InclusionReply):
    """A record, its exact body (base64) and its inclusion proof against the latest checkpoint."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_PROOF,
                    "record": {
                        "v": 1,
                        "log": "demo.example/ledger",
                        "index": 2,
                        "prev": "5c1e…",
                        "time": "2026-11-29T13:31:29.107648Z",
                        "bodyType": "dsse",
                        "body": "sha256:9c70…",
                    },
                    "bodyType": "dsse",
                    "body": "eyJwYXlsb2FkVHlwZSI6Li4ufQ==",
                }
            ]
        }
    )

    record: dict[str, object]
    bodyType: str  # noqa: N815
    body: str


class ConsistencyProof(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={"examples": [{"from": 1, "to": 3, "proof": [_HASH, _HASH]}]},
    )

    from_: int = Field(alias="from")
    to: int
    proof: list[str]


class Health(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ok", "database": "ok", "sequencer": "ok", "treeSize": 3}]
        }
    )

    status: str
    database: str
    sequencer: str
    treeSize: int  # noqa: N815


class TokenCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "ci", "scopes": ["append"], "expires": "90d"}]}
    )

    name: str = Field(min_length=1, max_length=128)
    scopes: list[str] = Field(min_length=1)
    expires: str | None = Field(None, description="RFC 3339 time or a duration: 90d, 12h, 30m.")


_TOKEN: dict[str, JsonValue] = {
    "name": "ci",
    "scopes": ["append"],
    "created": "2026-11-29T13:31:29.107648Z",
    "expires": None,
}


class TokenPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_TOKEN]})

    name: str
    scopes: list[str]
    created: str
    expires: str | None


class TokenCreated(TokenPublic):
    model_config = ConfigDict(json_schema_extra={"examples": [{**_TOKEN, "token": "lgr_…"}]})

    token: str = Field(description="Shown once; only its SHA-256 is stored.")
