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
    """The report for people (rich): what was verified, then one table row per rule, then the
    verdict. Every cell is literal text — a rule or file name such as ``[app.zip]`` is never read
    as rich markup; colour only on a terminal, never with ``NO_COLOR`` (rich's own rules)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from verify._internal.printable import printable

    console = Console(file=stream, highlight=False, markup=False, emoji=False, soft_wrap=False)
    names = ", ".join(f"{a.name} ({a.digest_keys()[0]})" for a in out.artifacts)
    if names:
        console.print(Text(printable(f"verify: {names}")), soft_wrap=True)
    if out.checkpoint is not None:
        cp = out.checkpoint.checkpoint
        line = f"ledger: {cp.origin}, checkpoint size {cp.size} (signature and proofs OK)"
        console.print(Text(printable(line)), soft_wrap=True)
    if out.attestations or out.untrusted:
        line = f"attestations: {len(out.attestations)} trusted, {len(out.untrusted)} not trusted"
        console.print(Text(line), soft_wrap=True)
    for u in out.untrusted:
        where = f"record {u.index}" if u.index is not None else "attestation"
        console.print(Text(printable(f"  not counted: {where}: {u.reason}")), soft_wrap=True)
    table = Table("rule", "result", "reason", expand=True)
    for r in out.rules:
        result = Text("pass", style="green") if r.passed else Text("FAIL", style="red")
        table.add_row(Text(printable(r.rule)), result, Text(printable(r.reason)))
    console.print(table)
    verdict = Text("PASSED", style="green") if out.passed else Text("FAILED", style="red")
    tail = "" if out.passed else ": policy not met"
    console.print(Text.assemble("verdict: ", verdict, f"{tail} (exit {out.exit_code})"))


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False)
