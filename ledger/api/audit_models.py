"""The JSON shapes of the audit API: the evidence document and what rides along with it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChangesDoc",
    "EvidenceDoc",
    "EvidenceEntry",
    "EvidenceRequest",
    "StoryDoc",
    "Truncation",
]

_CP = "demo.example/ledger\n7\nq5x0e1uT0b0bN8sU5bqsE1JmXy1F0Wb3m2o3Cj0mB2k=\n\n\u2014 demo.example/ledger Az3…=\n"
_HASH = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="


class EvidenceEntry(BaseModel):
    """One record: its leaf and exact body (base64), and its inclusion proof."""

    index: int = Field(ge=0)
    leaf: str
    body: str
    inclusionProof: list[str]  # noqa: N815 - the wire name
    record: dict[str, Any]


class Consistency(BaseModel):
    fromSize: int = Field(ge=0)  # noqa: N815
    proof: list[str]


class EvidenceDoc(BaseModel):
    """DESIGN.md §3.3: one signed checkpoint and the entries proved against it; ``next`` is the
    cursor of the following page (or null); routes add their own summary fields."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "mediaType": "application/vnd.provenance-ledger.evidence.v1+json",
                    "checkpoint": _CP,
                    "treeSize": 7,
                    "entries": [
                        {
                            "index": 2,
                            "leaf": "eyJ2IjoxLC4uLn0=",
                            "body": "eyJwYXlsb2FkVHlwZSI6Li4ufQ==",
                            "inclusionProof": [_HASH],
                            "record": {"index": 2, "time": "2026-11-29T13:31:29.107648Z"},
                        }
                    ],
                    "next": None,
                }
            ]
        },
    )

    mediaType: str  # noqa: N815
    checkpoint: str
    treeSize: int  # noqa: N815
    entries: list[EvidenceEntry]
    consistency: Consistency | None = None
    next: str | None = None


class Truncation(BaseModel):
    """One bound an answer stopped at: ``part`` is ``producers`` (builds and links of a digest),
    ``records`` (its other records; the newest are kept), ``decisions`` (VSA steps whose decision
    was not read: ``steps``), ``materials`` (material digests not followed: ``digests``) or
    ``depth``; ``page`` says how to read every record of ``digest``."""

    model_config = ConfigDict(extra="allow")

    part: str
    limit: int
    digest: str | None = None
    page: str | None = None


class _Bounded(EvidenceDoc):
    complete: bool = Field(
        description="The server's claim that no bound cut the answer (see `truncated`); a "
        "client cannot check it from the answer."
    )
    truncated: list[Truncation] = Field(description="Each part of the answer a bound cut.")


class StoryDoc(_Bounded):
    """The story route's document: the evidence, ``story`` (the steps), ``artifact``."""

    story: list[dict[str, Any]]
    artifact: dict[str, Any]


class ChangesDoc(_Bounded):
    """The changes route's document: the evidence and ``changes``."""

    changes: dict[str, Any]


class EvidenceRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"subjects": ["sha256:" + "ab" * 32]}]}
    )

    subjects: list[str] = Field(min_length=1, max_length=1000)
