"""``attest provenance``, ``attest run`` and ``attest test-result``: what a build step records."""

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
    send,
)
from attest._internal.cli_help import RUN_EXIT_CODES, epilog
from attest.collect.clock import utc_now
from attest.errors import InvalidInput


@app.command(epilog=epilog("attest provenance -s 'dist/*' --key ci-key -o prov.json"))
def provenance(
    subject: SubjectOpt,
    deps: Annotated[
        list[str] | None,
        typer.Option("--deps", help="Lock file, SBOM or 'python-env'; repeatable."),
    ] = None,
    dockerfile: Annotated[
        list[Path] | None, typer.Option("--dockerfile", help="Record its FROM base images.")
    ] = None,
    started_on: Annotated[
        str | None, typer.Option("--started-on", help="Build start (RFC 3339); default from CI.")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="KEY=VALUE external parameter; repeatable.")
    ] = None,
    source: Annotated[Path, typer.Option("--source", help="Git checkout to describe.")] = Path("."),
    key: KeyOpt = None,
    sigstore: SigstoreOpt = False,
    trust_config: TrustConfigOpt = None,
    out: OutOpt = None,
    ledger: LedgerOpt = None,
) -> None:
    """SLSA Provenance v1: subjects, git, CI run, times, dependencies and base images."""
    from attest.build import provenance_statement
    from attest.collect.ci import detect_ci
    from attest.collect.clock import started_on as start_time
    from attest.collect.deps import collect_dependencies
    from attest.collect.docker import parse_dockerfile
    from attest.collect.git import collect_git
    from attest.collect.subjects import resolve_subjects

    with errors():
        signing = Signing.of(key, sigstore, trust_config)
        env = dict(os.environ)
        ci = detect_ci(env)
        params = dict(_key_value(p) for p in param or [])
        dependencies = [d for spec in deps or [] for d in collect_dependencies(spec)]
        images = []
        for path in dockerfile or []:
            found, warnings = parse_dockerfile(path)
            images.extend(found)
            for w in warnings:
                typer.echo(f"attest: warning: {w}", err=True)
        statement = provenance_statement(
            subjects=resolve_subjects(subject),
            ci=ci,
            git=collect_git(source),
            dependencies=dependencies,
            base_images=images,
            started_on=start_time(started_on, env, ci.started_at),
            finished_on=utc_now(),
            parameters=params,
        )
        deliver(statement, signing, out=out, ledger=ledger)


def _key_value(text: str) -> tuple[str, str]:
    k, sep, v = text.partition("=")
    if not sep or not k:
        raise InvalidInput(f"--param wants KEY=VALUE, got {text!r}")
    return k, v


@app.command(
    context_settings={"allow_interspersed_args": False},
    epilog=epilog(
        "attest run --step build -p 'dist/*' --key ci-key -o build.json -- tar czf dist/app.tgz src",
        RUN_EXIT_CODES,
    ),
)
def run(
    command: Annotated[list[str], typer.Argument(help="The step's command, after --.")],
    step: Annotated[
        str,
        typer.Option(
            "--step",
            help="Step name (as a layout names it): one file-name component, not empty, no "
            "leading '.', no '/', '\\' or control characters.",
        ),
    ],
    materials: Annotated[
        list[str] | None, typer.Option("--materials", "-m", help="Glob hashed before; repeatable.")
    ] = None,
    products: Annotated[
        list[str] | None, typer.Option("--products", "-p", help="Glob hashed after; repeatable.")
    ] = None,
    link_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="statement (in-toto Link v0.3 predicate), or link / link-dsse: an in-toto v0.9 "
            "link for in-toto-verify, written to STEP.KEYID8.link unless --out says otherwise.",
        ),
    ] = "statement",
    key: KeyOpt = None,
    sigstore: SigstoreOpt = False,
    trust_config: TrustConfigOpt = None,
    out: OutOpt = None,
    ledger: LedgerOpt = None,
) -> None:
    """Run one step and attest it as an in-toto link; exits with the command's code."""
    from attest._internal import fields
    from attest.build import link_statement
    from attest.intoto_classic import (
        CLASSIC_FORMATS,
        check_step_name,
        classic_link,
        link_filename,
        sign_classic,
    )
    from attest.run import run_step

    with errors():
        check_step_name(step)
        signing = Signing.of(key, sigstore, trust_config)  # before the step: never waste a build
        if link_format not in ("statement", *CLASSIC_FORMATS):
            raise InvalidInput(
                f"--format must be statement, link or link-dsse, not {link_format!r}"
            )
        signer = signing.signer
        if link_format in CLASSIC_FORMATS and signer is None:
            raise InvalidInput("in-toto v0.9 links are signed with --key (in-toto has no keyless)")
        result = run_step(
            command,
            materials=materials or [],
            products=products or [],
            base=Path.cwd(),
            clock=utc_now,
        )
        times = result.times
        environment = {
            "startedOn": times.started_on and fields.format_time(times.started_on),
            "finishedOn": times.finished_on and fields.format_time(times.finished_on),
            "workdir": str(Path.cwd()),
        }
        if signer is not None and link_format in CLASSIC_FORMATS:
            link = classic_link(
                name=step,
                command=command,
                materials=result.materials,
                products=result.products,
                byproducts=result.byproducts,
                environment=environment,
            )
            body = sign_classic(link, signer, dsse=link_format == "link-dsse")
            send(body, out=out or link_filename(step, signer.keyid), ledger=ledger)
        else:
            statement = link_statement(
                step=step,
                command=command,
                materials=result.materials,
                products=result.products,
                byproducts=result.byproducts,
                environment=environment,
            )
            deliver(statement, signing, out=out, ledger=ledger)
    raise typer.Exit(result.exit_code)


@app.command(
    "test-result",
    epilog=epilog("attest test-result --result PASSED -s dist/app.tgz --key ci-key -o t.json"),
)
def test_result(
    subject: SubjectOpt,
    result: Annotated[
        str | None,
        typer.Option("--result", help="PASSED, WARNED or FAILED (default: from --junit)."),
    ] = None,
    junit: Annotated[
        list[Path] | None,
        typer.Option("--junit", help="JUnit XML report: test names and result; repeatable."),
    ] = None,
    step: Annotated[
        str, typer.Option("--step", help="Test step name (the same rule as attest run --step).")
    ] = "test",
    url: Annotated[str, typer.Option("--url", help="Where the test run can be seen.")] = "",
    passed: Annotated[
        list[str] | None, typer.Option("--passed", help="Passed test; repeatable.")
    ] = None,
    failed: Annotated[
        list[str] | None, typer.Option("--failed", help="Failed test; repeatable.")
    ] = None,
    config: Annotated[
        list[str] | None, typer.Option("--config", help="Test configuration file; repeatable.")
    ] = None,
    key: KeyOpt = None,
    sigstore: SigstoreOpt = False,
    trust_config: TrustConfigOpt = None,
    out: OutOpt = None,
    ledger: LedgerOpt = None,
) -> None:
    """in-toto Test Result v0.1 for the subjects."""
    from attest.build import test_result_statement
    from attest.collect.ci import detect_ci
    from attest.collect.junit import parse_junit
    from attest.collect.subjects import resolve_subjects
    from attest.intoto_classic import check_step_name
    from attest.statement import ResourceDescriptor

    with errors():
        check_step_name(step)
        signing = Signing.of(key, sigstore, trust_config)
        passed_names, failed_names = list(passed or []), list(failed or [])
        verdict = result.upper() if result else ""
        if junit:
            summary = parse_junit(junit)
            passed_names += summary.passed
            failed_names += summary.failed
            # skipped tests are neither passed nor warned: the predicate has no field for them
            if (
                verdict
                and verdict != summary.result
                and not (verdict == "WARNED" and summary.result == "PASSED")
            ):
                raise InvalidInput(
                    f"--result {verdict} contradicts the JUnit report ({summary.result})"
                )
            verdict = verdict or summary.result
        if not verdict:
            raise InvalidInput("give --result or --junit")
        statement = test_result_statement(
            subjects=resolve_subjects(subject),
            result=verdict,
            url=url or detect_ci(dict(os.environ)).run_url,
            configuration=[
                ResourceDescriptor(name=f"step:{step}"),
                *(resolve_subjects(config) if config else []),
            ],
            passed=passed_names,
            failed=failed_names,
        )
        deliver(statement, signing, out=out, ledger=ledger)
