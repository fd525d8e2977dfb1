"""The verdict for people (a table, readable in a CI log) and for machines (JSON; its schema
is :data:`REPORT_SCHEMA`, also printed in docs/deploy.md)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from verify.pipeline import Outcome

__all__ = ["REPORT_SCHEMA", "error_report", "render_text", "to_json"]

REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://provenance-ledger.dev/schemas/verify-report.v1.json",
    "title": "verify report",
    "type": "object",
    "required": ["reportVersion", "verdict", "exitCode", "artifacts", "rules"],
    "properties": {
        "reportVersion": {"const": 1},
        "verdict": {"enum": ["PASSED", "FAILED", "ERROR"]},
        "exitCode": {"enum": [0, 1, 2, 3, 4]},
        "error": {"type": "string"},
        "verifiedAt": {"type": "string", "format": "date-time"},
        "artifacts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "digest"],
                "properties": {
                    "name": {"type": "string"},
                    "digest": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
        },
        "checkpoint": {
            "type": "object",
            "required": ["origin", "size", "rootHash"],
            "properties": {
                "origin": {"type": "string"},
                "size": {"type": "integer", "minimum": 0},
                "rootHash": {"type": "string"},
            },
        },
        "attestations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["predicateType", "signers"],
                "properties": {
                    "index": {"type": ["integer", "null"]},
                    "time": {"type": "string"},
                    "predicateType": {"type": "string"},
                    "signers": {"type": "array", "items": {"type": "string"}},
                    "refused": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "untrusted": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["reason"],
                "properties": {
                    "index": {"type": ["integer", "null"]},
                    "reason": {"type": "string"},
                },
            },
        },
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["rule", "passed", "reason"],
                "properties": {
                    "rule": {"type": "string"},
                    "passed": {"type": "boolean"},
                    "reason": {"type": "string"},
                    "records": {"type": "array", "items": {"type": "integer"}},
                },
            },
        },
    },
}


def to_json(out: Outcome) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "reportVersion": 1,
        "verdict": "PASSED" if out.passed else "FAILED",
        "exitCode": out.exit_code,
        "verifiedAt": out.at.isoformat(),
        "artifacts": [{"name": a.name, "digest": a.digest} for a in out.artifacts],
        "attestations": [
            {
                "index": a.index,
                "time": a.time.isoformat(),
                "predicateType": a.statement.predicate_type,
                "signers": list(a.signers),
                "refused": list(a.refused),
            }
            for a in out.attestations
        ],
        "untrusted": [{"index": u.index, "reason": u.reason} for u in out.untrusted],
        "rules": [
            {"rule": r.rule, "passed": r.passed, "reason": r.reason, "records": list(r.records)}
            for r in out.rules
        ],
    }
    if out.checkpoint is not None:
        import base64

        cp = out.checkpoint.checkpoint
        doc["checkpoint"] = {
            "origin": cp.origin,
            "size": cp.size,
            "rootHash": base64.b64encode(cp.root_hash).decode(),
        }
    return doc


def error_report(message: str, code: int, artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "reportVersion": 1,
        "verdict": "ERROR",
        "exitCode": code,
        "error": message,
        "artifacts": artifacts,
        "rules": [],
    }


def render_text(out: Outcome, stream: TextIO) -> None:
    """The report for people: what was verified, then one table row per rule, then the verdict."""
    from verify._internal.text_table import draw_table, style_for

    style = style_for(stream)
    lines = []
    names = ", ".join(f"{a.name} ({a.digest_keys()[0]})" for a in out.artifacts)
    if names:
        lines.append(f"verify: {names}")
    if out.checkpoint is not None:
        cp = out.checkpoint.checkpoint
        lines.append(f"ledger: {cp.origin}, checkpoint size {cp.size} (signature and proofs OK)")
    if out.attestations or out.untrusted:
        lines.append(
            f"attestations: {len(out.attestations)} trusted, {len(out.untrusted)} not trusted"
        )
    for u in out.untrusted:
        where = f"record {u.index}" if u.index is not None else "attestation"
        lines.append(f"  not counted: {where}: {u.reason}")
    rows = [
        [(r.rule, None), ("pass", "green") if r.passed else ("FAIL", "red"), (r.reason, None)]
        for r in out.rules
    ]
    lines += draw_table(("rule", "result", "reason"), rows, style)
    verdict = style.paint("PASSED", "green") if out.passed else style.paint("FAILED", "red")
    tail = "" if out.passed else ": policy not met"
    lines.append(f"verdict: {verdict}{tail} (exit {out.exit_code})")
    stream.write("\n".join(lines) + "\n")


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False)
