"""An artifact's story shows each deploy decision (SLSA VSA) about it: the result, verifier,
policy and levels its body records — read from the stored body, so a reader sees "why was this
deployed?" without decoding the entry (issue 10 §2, the story route). SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from ledger.index.evidence import AuditReader
from ledger.index.story import artifact_story
from ledger.log import Ledger
from tests.ledger import audit_samples as s
from tests.ledger.test_index import KEY, audited

__all__ = ["audited"]  # the fixture, re-exported for pytest

VSA = "https://slsa.dev/verification_summary/v1"


def _vsa(result: str, **extra: Any) -> bytes:
    pred: dict[str, Any] = {
        "verifier": {"id": "https://verify.example/gate"},
        "timeVerified": "2026-11-29T10:00:00Z",
        "resourceUri": "file:app.zip",
        "policy": {"uri": "https://example.com/policy.yaml"},
        "verificationResult": result,
        "verifiedLevels": ["SLSA_BUILD_LEVEL_2"],
    }
    return s.sign(s.statement([("app.zip", s.APP1)], VSA, pred | extra), KEY)


def test_story_shows_each_vsa_decision(audited: Ledger) -> None:
    passed = audited.append(_vsa("PASSED")).index
    failed = audited.append(_vsa("FAILED", verifier="not an object", verifiedLevels=[1])).index
    odd = audited.append(
        s.sign(s.statement([("app.zip", s.APP1)], VSA, {"verificationResult": 7}), KEY)
    ).index
    told = artifact_story(AuditReader(audited), "sha256:" + s.APP1, audited.store.size())
    steps = {st["index"]: st for st in told.steps}
    assert [i for i, st in steps.items() if st["kind"] == "vsa"] == [passed, failed, odd]
    assert steps[passed]["decision"] == {
        "result": "PASSED",
        "verifier": "https://verify.example/gate",
        "policy": "https://example.com/policy.yaml",
        "levels": ["SLSA_BUILD_LEVEL_2"],
        "timeVerified": "2026-11-29T10:00:00Z",
        "resourceUri": "file:app.zip",
    }
    # a field of the wrong shape is left out, never passed through or fatal
    assert steps[failed]["decision"] == {
        "result": "FAILED",
        "policy": "https://example.com/policy.yaml",
        "timeVerified": "2026-11-29T10:00:00Z",
        "resourceUri": "file:app.zip",
    }
    assert steps[odd]["decision"] == {}
    assert all("decision" not in st for st in told.steps if st["kind"] != "vsa")
