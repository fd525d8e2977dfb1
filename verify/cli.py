"""The ``verify`` console script: the deploy gate.

``verify ARTIFACT --policy FILE [--ledger URL | --evidence FILE | --db URL]`` is the default
command (``verify check …`` is the same); ``export-evidence`` and ``attestations`` are
subcommands, in the typer app of :mod:`verify.commands` (``verify.cli.app`` is that app, loaded
on first use; other modules add subcommands with ``register(app)``, see
:data:`verify.commands.EXTENSIONS`). The default command is parsed here without typer when it can
be: a deploy pays for every import. Exit codes: 0 pass, 1 policy not met, 2 usage or bad input,
3 evidence unavailable, 4 a signature, proof, checkpoint or consistency check failed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

from attest._internal.frozen import Frozen, set_field
from verify import errors

__all__ = ["DEFAULT_COMMAND", "EXIT_CODES", "Format", "LayoutOptions", "console", "main"]

DEFAULT_COMMAND = "check"
EXIT_CODES = (
    "Exit codes: 0 pass; 1 policy not met; 2 usage or bad input (policy file included); "
    "3 evidence unavailable (ledger unreachable, nothing recorded); 4 a signature, proof, "
    "checkpoint or consistency check failed."
)


class Format(StrEnum):
    text = "text"
    json = "json"


class LayoutOptions(Frozen):
    """``--layout FILE --layout-key PUB… --link-dir DIR`` of the default command."""

    _fields = ("layout", "keys", "link_dir")
    layout: Path | None
    keys: tuple[Path, ...]
    link_dir: Path | None

    def __init__(
        self, layout: Path | None = None, keys: tuple[Path, ...] = (), link_dir: Path | None = None
    ) -> None:
        set_field(self, "layout", layout)
        set_field(self, "keys", keys)
        set_field(self, "link_dir", link_dir)


def __getattr__(name: str) -> Any:
    if name == "app":
        from verify.commands import app

        return app
    raise AttributeError(f"module 'verify.cli' has no attribute {name!r}")


def _fail(e: errors.Error, fmt: Format, artifact: str) -> NoReturn:
    if fmt is Format.json:
        from verify.report import dumps, error_report

        print(dumps(error_report(str(e), e.exit_code, [{"name": artifact, "digest": {}}])))
    from verify._internal.printable import printable

    print(f"verify: {type(e).__name__}: {printable(str(e))}", file=sys.stderr)
    raise SystemExit(e.exit_code)


def _converted(e: Exception) -> errors.Error | None:
    """Foreign errors that escaped their boundary, as ours (proof failures are exit 4)."""
    from attest.errors import Error as AttestError
    from attest.errors import SignatureError
    from ledger.errors import Error as LedgerError

    if isinstance(e, SignatureError):
        return errors.SignatureFailure(str(e))
    if isinstance(e, AttestError):
        return errors.UsageError(str(e))
    if isinstance(e, LedgerError):
        return errors.ProofFailure(str(e))
    return None


def guarded(fmt: Format, artifact: str, fn: Callable[[], int]) -> NoReturn:
    """Run one command; exit with its code, or with the code of the error it raised."""
    try:
        code = fn()
    except errors.Error as e:
        _fail(e, fmt, artifact)
    except Exception as e:
        ours = _converted(e)
        if ours is None:
            raise
        _fail(ours, fmt, artifact)
    raise SystemExit(code)


def parse_at(text: str | None) -> datetime:
    """``--at``: an RFC 3339 time with a zone; now when not given."""
    if text is None:
        return datetime.now(UTC)
    import re

    # RFC 3339 only: Python's ISO 8601 reader also takes week dates and basic forms
    stamp = r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?"
    if re.fullmatch(stamp, text):
        raise errors.UsageError("--at: give a time zone (e.g. 2026-11-29T12:00:00Z)")
    if not re.fullmatch(stamp + r"([Zz]|[+-]\d{2}:\d{2})", text):
        raise errors.UsageError(f"--at: {text!r} is not an RFC 3339 time")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as e:
        raise errors.UsageError(f"--at: {text!r} is not an RFC 3339 time") from e


def emit(out: Any, fmt: Format) -> int:
    """Print the report; the exit code it stands for."""
    from verify.report import dumps, render_text, to_json

    if fmt is Format.json:
        print(dumps(to_json(out)))
    else:
        render_text(out, sys.stdout)
    return int(out.exit_code)


def run_check_command(
    artifact: str,
    policy: Path,
    ledger: str | None,
    evidence: Path | None,
    db: str | None,
    fmt: Format,
    record: bool,
    record_key: Path | None,
    at: str | None,
    layout: LayoutOptions | None = None,
) -> NoReturn:
    """The default command (shared by the typer app and the fast path)."""
    from verify.run import Request, run_check

    options = layout or LayoutOptions()

    req = Request(
        artifact,
        policy,
        ledger,
        evidence,
        db,
        record,
        record_key,
        options.layout,
        options.keys,
        options.link_dir,
    )
    guarded(fmt, artifact, lambda: emit(run_check(req, parse_at(at), as_of=at is not None), fmt))


def run_attestations_command(
    artifact: str,
    policy: Path,
    bundles: list[Path],
    fmt: str,
    at: str | None,
    layout: Path | None = None,
    layout_keys: tuple[Path, ...] = (),
    link_dir: Path | None = None,
) -> NoReturn:
    """``verify attestations`` (shared by the typer app and the fast path)."""
    from verify.run import run_attestations

    form = Format(fmt)

    def run() -> int:
        out = run_attestations(
            artifact, policy, bundles, parse_at(at), layout, layout_keys, link_dir
        )
        return emit(out, form)

    guarded(form, artifact, run)


def main() -> None:
    """The console script: the default command parsed without typer when it can be."""
    import os

    from verify._internal.fast import parse_attestations, parse_check, parse_sigstore_bundle

    # pydantic loads only for sigstore-python's models or the trust registry's: skip its plugin
    # scan over every installed distribution's entry points (~20 ms of a cold start).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

    argv = sys.argv[1:]
    bundle = parse_sigstore_bundle(argv[1:]) if argv[:1] == ["sigstore-bundle"] else None
    if bundle is not None:
        from verify.bundle_verify import run_bundle_verify

        raise SystemExit(
            run_bundle_verify(
                bundle.file_or_digest,
                bundle.bundle,
                bundle.certificate_identity,
                bundle.certificate_oidc_issuer,
                bundle.trusted_root,
                bundle.key,
            )
        )
    third = parse_attestations(argv[1:]) if argv[:1] == ["attestations"] else None
    if third is not None:
        run_attestations_command(
            third.artifact,
            third.policy,
            third.bundle,
            third.fmt,
            third.at,
            third.layout,
            tuple(third.layout_key),
            third.link_dir,
        )
    ns = parse_check(argv)
    if ns is None:
        from verify.commands import app

        app()
        return
    run_check_command(
        ns.artifact,
        ns.policy,
        ns.ledger,
        ns.evidence,
        ns.db,
        Format(ns.fmt),
        ns.record,
        ns.record_key,
        ns.at,
        LayoutOptions(ns.layout, tuple(ns.layout_key), ns.link_dir),
    )


def console() -> NoReturn:
    """The ``verify`` console script: :func:`main`, then exit without the interpreter's teardown.

    Collecting every loaded module's objects at exit cost ~20 ms of a deploy gate's run, after
    the verdict was already written. By then nothing is left to tear down — the report is printed,
    the state file written and closed, files and connections closed by their ``with`` blocks —
    so once stdout and stderr are flushed the process ends with its exit code. A flush that fails
    (a closed pipe) takes the ordinary exit, which reports it.

    The cyclic garbage collector is off for the run: the imports alone set it off thirty times
    (~8 ms), and a run that ends within a second leaves nothing to it that matters — evidence is
    parsed JSON, freed by reference counting, and bounded (``verify.sources.MAX_EVIDENCE_BYTES``)."""
    import gc
    import os

    gc.disable()
    try:
        main()
        code: object = 0
    except SystemExit as e:
        code = e.code
    if not isinstance(code, int) and code is not None:
        raise SystemExit(code)  # a message to print: the ordinary way
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        raise SystemExit(code) from None
    os._exit(code or 0)
