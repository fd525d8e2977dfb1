"""The ``attest`` command: build, sign and deliver in-toto attestations from a CI step.

Every subcommand signs with ``--key FILE`` or ``--sigstore`` and then submits to ``--ledger URL``
and/or writes ``--out FILE`` (``-`` = stdout, the default). Errors are one line on stderr:
exit 1 signature or verification failure, 2 bad input (missing file, bad lock file, wrong
passphrase, usage), 3 ledger unreachable or refusing. ``attest run`` exits with its command's code.
Nothing is written unless everything before it succeeded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from attest.collect.clock import utc_now
from attest.errors import Error, InvalidInput, SignatureError, SubmitError
from attest.statement import Statement, parse_statement

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="attest: signed in-toto attestations from every CI step.",
)

_EXIT = {SignatureError: 1, SubmitError: 3}

KeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--key",
        envvar="ATTEST_KEY",
        help="Private key (PEM); passphrase in $ATTEST_KEY_PASSPHRASE.",
    ),
]
SigstoreOpt = Annotated[
    bool, typer.Option("--sigstore", help="Sign keyless with Sigstore (ambient OIDC in CI).")
]
TrustConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--trust-config", help="Sigstore ClientTrustConfig JSON (default: production via TUF)."
    ),
]
OutOpt = Annotated[
    str | None, typer.Option("--out", "-o", help="Write the envelope here ('-' = stdout).")
]
LedgerOpt = Annotated[
    str | None,
    typer.Option(
        "--ledger", envvar="LEDGER_URL", help="Submit to this ledger (token: $LEDGER_TOKEN)."
    ),
]
SubjectOpt = Annotated[
    list[str],
    typer.Option("--subject", "-s", help="File, glob, directory or sha256:… digest; repeatable."),
]


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except Error as e:
        code = next((c for t, c in _EXIT.items() if isinstance(e, t)), 2)
        typer.echo(f"attest: error: {e}", err=True)
        raise typer.Exit(code) from None


def _deliver(
    statement: Statement,
    *,
    key: Path | None,
    sigstore: bool,
    trust_config: Path | None,
    out: str | None,
    ledger: str | None,
) -> None:
    """Sign, then submit, then write: a failure at any step leaves nothing behind."""
    if (key is None) == (not sigstore):
        raise InvalidInput("give exactly one of --key FILE or --sigstore")
    payload = statement.to_json()
    if key is not None:
        from attest.dsse import sign_envelope
        from attest.signers import read_signer

        body = sign_envelope(payload, [read_signer(key)]).to_json()
    else:
        from attest.keyless import sign_keyless

        body = sign_keyless(payload, trust_config=trust_config)
    _send(body, out=out, ledger=ledger)


def _send(body: bytes, *, out: str | None, ledger: str | None) -> None:
    from attest.submit import submit_to_ledger, write_output

    if ledger:
        receipt = submit_to_ledger(ledger, body)
        typer.echo(json.dumps(receipt), err=out == "-")  # stdout unless the envelope is there
    if out is not None or not ledger:
        write_output(out or "-", body)


@app.command()
def keygen(
    output: Annotated[Path, typer.Option("--output", "-o", help="Writes NAME and NAME.pub.")],
    key_type: Annotated[
        str, typer.Option("--type", help="ed25519, ecdsa-p256, ecdsa-p384 or rsa (3072-bit, PSS).")
    ] = "ed25519",
    encrypt: Annotated[
        bool,
        typer.Option("--encrypt", help="Encrypt with the passphrase in $ATTEST_KEY_PASSPHRASE."),
    ] = False,
) -> None:
    """Generate a signing key pair."""
    from attest.signers import PASSPHRASE_ENV, write_keypair

    with _errors():
        passphrase = os.environ.get(PASSPHRASE_ENV, "").encode() or None
        if encrypt and passphrase is None:
            raise InvalidInput(f"--encrypt needs a passphrase in ${PASSPHRASE_ENV}")
        public = write_keypair(output, key_type, passphrase if encrypt else None)
        typer.echo(
            json.dumps({"keyid": public.keyid, "scheme": public.scheme, "public": f"{output}.pub"})
        )


@app.command()
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

    with _errors():
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
        _deliver(
            statement, key=key, sigstore=sigstore, trust_config=trust_config, out=out, ledger=ledger
        )


def _key_value(text: str) -> tuple[str, str]:
    k, sep, v = text.partition("=")
    if not sep or not k:
        raise InvalidInput(f"--param wants KEY=VALUE, got {text!r}")
    return k, v


@app.command(context_settings={"allow_interspersed_args": False})
def run(
    command: Annotated[list[str], typer.Argument(help="The step's command, after --.")],
    step: Annotated[str, typer.Option("--step", help="Step name (as a layout names it).")],
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
    from attest.intoto_classic import CLASSIC_FORMATS, classic_link, link_filename, sign_classic
    from attest.run import run_step
    from attest.signers import read_signer

    with _errors():
        if (key is None) == (not sigstore):
            raise InvalidInput("give exactly one of --key FILE or --sigstore")
        if link_format not in ("statement", *CLASSIC_FORMATS):
            raise InvalidInput(
                f"--format must be statement, link or link-dsse, not {link_format!r}"
            )
        if link_format in CLASSIC_FORMATS and key is None:
            raise InvalidInput("in-toto v0.9 links are signed with --key (in-toto has no keyless)")
        # load the key before the step runs: a bad key must not waste a build
        signer = read_signer(key) if key is not None else None
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
        materials_, products_ = result.materials, result.products
        if signer is not None and link_format in CLASSIC_FORMATS:
            link = classic_link(
                name=step,
                command=command,
                materials=materials_,
                products=products_,
                byproducts=result.byproducts,
                environment=environment,
            )
            body = sign_classic(link, signer, dsse=link_format == "link-dsse")
            _send(body, out=out or link_filename(step, signer.keyid), ledger=ledger)
        else:
            statement = link_statement(
                step=step,
                command=command,
                materials=materials_,
                products=products_,
                byproducts=result.byproducts,
                environment=environment,
            )
            _deliver(
                statement,
                key=key,
                sigstore=sigstore,
                trust_config=trust_config,
                out=out,
                ledger=ledger,
            )
    raise typer.Exit(result.exit_code)


@app.command("test-result")
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
    step: Annotated[str, typer.Option("--step", help="Test step name.")] = "test",
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
    from attest.statement import ResourceDescriptor

    with _errors():
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
        _deliver(
            statement,
            key=key,
            sigstore=sigstore,
            trust_config=trust_config,
            out=out,
            ledger=ledger,
        )


@app.command()
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

    with _errors():
        kind, found = parse_scan_report(report, now=utc_now())
        typer.echo(f"attest: {kind} report, {len(found.result)} findings", err=True)
        statement = make_statement(
            resolve_subjects(subject), VulnScan.PREDICATE_TYPE, found.to_dict()
        )
        _deliver(
            statement, key=key, sigstore=sigstore, trust_config=trust_config, out=out, ledger=ledger
        )


@app.command()
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

    with _errors():
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
        _deliver(
            statement, key=key, sigstore=sigstore, trust_config=trust_config, out=out, ledger=ledger
        )


@app.command()
def sign(
    statement_file: Annotated[Path, typer.Argument(help="An in-toto Statement (JSON).")],
    key: KeyOpt = None,
    sigstore: SigstoreOpt = False,
    trust_config: TrustConfigOpt = None,
    out: OutOpt = None,
    ledger: LedgerOpt = None,
) -> None:
    """Validate a Statement and sign it."""
    with _errors():
        try:
            raw = statement_file.read_bytes()
        except OSError as e:
            raise InvalidInput(f"cannot read {statement_file}: {e.strerror}") from e
        statement = parse_statement(raw)
        _deliver(
            statement, key=key, sigstore=sigstore, trust_config=trust_config, out=out, ledger=ledger
        )


@app.command()
def verify(
    envelope: Annotated[Path, typer.Argument(help="DSSE envelope or Sigstore bundle (JSON).")],
    key: Annotated[
        list[Path] | None, typer.Option("--key", help="Trusted public key; repeatable.")
    ] = None,
    subject: Annotated[
        list[str] | None, typer.Option("--subject", help="Artifact the statement must name.")
    ] = None,
    trusted_root: Annotated[
        Path | None, typer.Option("--trusted-root", help="Sigstore trusted_root.json (bundles).")
    ] = None,
    identity: Annotated[
        str | None, typer.Option("--identity", help="Certificate subject (bundles).")
    ] = None,
    issuer: Annotated[str | None, typer.Option("--issuer", help="OIDC issuer (bundles).")] = None,
    regex: Annotated[
        bool, typer.Option("--regex", help="Identity and issuer are regexes.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail when the predicate breaks its schema.")
    ] = False,
) -> None:
    """Check one envelope or bundle locally: signature, statement schema, subjects."""
    from attest.verification import verify_file

    with _errors():
        result = verify_file(
            envelope,
            keys=key or [],
            subjects=subject or [],
            trusted_root=trusted_root,
            identity=identity,
            issuer=issuer,
            regex=regex,
            strict=strict,
        )
        typer.echo(json.dumps(result))


def main() -> None:
    app(prog_name="attest")


if __name__ == "__main__":
    main()
