"""Fix records as OpenVEX: ``fixed`` statements for vulnerabilities named explicitly, or found
by comparing this scan with the previous one (present then, gone now)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

from attest.errors import InvalidInput
from attest.predicates import OpenVEX, VexStatement, VulnScan
from attest.statement import ResourceDescriptor

__all__ = ["fixed_between", "fixed_vex"]


def fixed_between(previous: VulnScan, current: VulnScan) -> list[str]:
    """Vulnerability ids in ``previous`` that ``current`` no longer reports (aliases count)."""

    def ids(scan: VulnScan) -> set[str]:
        out = set()
        for v in scan.result:
            out.add(v.id)
            for a in v.annotations:
                out.update(a.get("aliases", []))
        return out

    still = ids(current)
    return sorted({v.id for v in previous.result} - still)


def _product(subject: ResourceDescriptor) -> tuple[str, dict[str, str]]:
    ident = subject.uri or subject.name
    hashes = {
        alg.replace("sha", "sha-", 1): value
        for alg, value in subject.digest.items()
        if alg in ("sha256", "sha384", "sha512")
    }
    return ident, hashes


def fixed_vex(
    vulnerabilities: Sequence[str],
    subjects: Sequence[ResourceDescriptor],
    *,
    author: str,
    now: datetime,
    note: str = "",
) -> OpenVEX:
    """One OpenVEX document: each vulnerability ``fixed`` in every subject."""
    names = sorted({v.strip() for v in vulnerabilities if v.strip()})
    if not names:
        raise InvalidInput("no vulnerabilities to record as fixed")
    products = dict(_product(s) for s in subjects)
    statements = tuple(
        VexStatement(
            vulnerability=name,
            products=tuple(products),
            status="fixed",
            impact_statement=note,
            product_hashes=products,
        )
        for name in names
    )
    content = json.dumps([names, sorted(products)], separators=(",", ":")).encode()
    doc_id = "urn:sha256:" + hashlib.sha256(content + now.isoformat().encode()).hexdigest()
    return OpenVEX(id=doc_id, author=author, timestamp=now, statements=statements)
