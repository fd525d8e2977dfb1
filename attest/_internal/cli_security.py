"""``attest scan`` and ``attest vex``: what was found, and what was fixed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from attest._internal.cli_app import (
    KeyOpt,
    LedgerOpt,
    OutOpt,
    Signing,
    SigstoreOpt,
    SubjectOpt,
    TrustConfigOpt,
    app,
    deliver,
    errors,
)
from attest._internal.cli_help import epilog
from attest.collect.clock import utc_now
from attest.errors import InvalidInput


@app.command(
    epilog=epilog("attest scan --report grype.json -s dist/app.tgz --key ci-key -o scan.json")
)
def scan(
    subject: SubjectOpt,
    report: Annotated[
        Path, typer.Option("--report", help="Grype, Trivy, Snyk or OSV-Scanner JSON.")
    ],
    key: KeyOpt = None,
    sigstore: SigstoreOpt = False,
    trust_config: TrustConfigOpt = None,
    out: OutOpt = None,
    ledger: LedgerOpt = None,
) -> None:
    """in-toto Vulns v0.2 from a scanner's JSON report."""
    from attest.build import statement as make_statement
    from attest.collect.scanners import parse_scan_report
    from attest.collect.subjects import resolve_subjects
    from attest.predicates import VulnScan

    with errors():
        signing = Signing.of(key, sigstore, trust_config)
        kind, found = parse_scan_report(report, now=utc_now())
        typer.echo(f"attest: {kind} report, {len(found.result)} findings", err=True)
        statement = make_statement(
            resolve_subjects(subject), VulnScan.PREDICATE_TYPE, found.to_dict()
        )
        deliver(statement, signing, out=out, ledger=ledger)


@app.command(
    epilog=epilog("attest vex --fixed CVE-2024-3651 -s dist/app.tgz --key ci-key -o vex.json")
)
def vex(
    subject: SubjectOpt,
    fixed: Annotated[
        list[str] | None, typer.Option("--fixed", help="CVE/GHSA id fixed; repeatable.")
    ] = None,
    previous: Annotated[
        Path | None, typer.Option("--previous", help="Previous scan report (fixed = gone since).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="This build's scan report.")
    ] = None,
    author: Annotated[str, typer.Option("--author", help="VEX author.")] = "",
    note: Annotated[
        str, typer.Option("--note", help="Impact statement, e.g. the fixing commit.")
    ] = "",
    key: KeyOpt = None,
    sigstore: SigstoreOpt = False,
    trust_config: TrustConfigOpt = None,
    out: OutOpt = None,
    ledger: LedgerOpt = None,
) -> None:
    """OpenVEX 'fixed' statements: explicit ids and/or those gone since the previous scan."""
    from attest.build import statement as make_statement
    from attest.collect.ci import detect_ci
    from attest.collect.scanners import parse_scan_report
    from attest.collect.subjects import resolve_subjects
    from attest.collect.vex import fixed_between, fixed_vex
    from attest.predicates import OpenVEX

    with errors():
        signing = Signing.of(key, sigstore, trust_config)
        now = utc_now()
        ids = list(fixed or [])
        if (previous is None) != (report is None):
            raise InvalidInput("--previous and --report go together")
        if previous is not None and report is not None:
            ids += fixed_between(
                parse_scan_report(previous, now=now)[1], parse_scan_report(report, now=now)[1]
            )
        subjects = resolve_subjects(subject)
        doc = fixed_vex(
            ids,
            subjects,
            author=author or detect_ci(dict(os.environ)).builder_id,
            now=now,
            note=note,
        )
        statement = make_statement(subjects, OpenVEX.PREDICATE_TYPE, doc.to_dict())
        deliver(statement, signing, out=out, ledger=ledger)
